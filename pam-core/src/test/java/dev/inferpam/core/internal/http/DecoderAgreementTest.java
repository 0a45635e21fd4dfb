package dev.inferpam.core.internal.http;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class DecoderAgreementTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** What a policy denying logprobs and top_logprobs governs (see ParameterRules#governedPaths). */
  private static final DecoderAgreement GOVERNED =
      new DecoderAgreement(
          List.of(
              "logprobs",
              "options.logprobs",
              "parameters.logprobs",
              "top_logprobs",
              "options.top_logprobs",
              "parameters.top_logprobs"));

  private static void check(DecoderAgreement a, String body) throws Exception {
    byte[] raw = body.getBytes(UTF_8);
    JsonNode tree = JSON.readTree(raw);
    a.check(tree, raw);
  }

  private static String refusal(DecoderAgreement a, String body) {
    try {
      check(a, body);
    } catch (BadRequestException e) {
      return e.getMessage();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
    throw new AssertionError("accepted: " + body);
  }

  private static String notExact(String key, String name) {
    return "request body key \""
        + key
        + "\" is not the exact spelling of \""
        + name
        + "\"; servers that match keys ignoring case would read it as that";
  }

  private static String oneKey(String a, String b) {
    return "request body keys \""
        + a
        + "\" and \""
        + b
        + "\" are one key to servers that match keys ignoring case";
  }

  @Test
  void theIssuesExamplesAreRefusedNamingTheKey() {
    assertThat(refusal(DecoderAgreement.DEFAULT, "{\"model\":\"llama3.1\",\"MODEL\":\"gpt-4\"}"))
        .isEqualTo(notExact("MODEL", "model"));
    assertThat(refusal(GOVERNED, "{\"model\":\"m\",\"LogProbs\":true}"))
        .isEqualTo(notExact("LogProbs", "logprobs"));
    assertThat(refusal(GOVERNED, "{\"model\":\"m\",\"TOP_LOGPROBS\":5}"))
        .isEqualTo(notExact("TOP_LOGPROBS", "top_logprobs"));
    assertThat(refusal(GOVERNED, "{\"model\":\"m\",\"logprob\\u017f\":true}"))
        .isEqualTo(notExact("logprob\u017f", "logprobs"));
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        // the Kelvin sign folds to k, long s to s, at the top level and in options and parameters
        "{\"max_to\\u212aens\":100000}                         | max_to\u212aens                | max_tokens",
        "{\"options\":{\"NUM_PREDICT\":-1}}                       | options.NUM_PREDICT           | num_predict",
        "{\"options\":{\"LOGPROBS\":true}}                      | options.LOGPROBS              | logprobs",
        "{\"parameters\":{\"Top_LogProbs\":5}}                  | parameters.Top_LogProbs       | top_logprobs",
        "{\"Options\":{\"logprobs\":true}}                      | Options                       | options",
        "{\"me\\u017f\\u017fages\":[]}                            | me\u017f\u017fages             | messages",
        "{\"messages\":[{\"role\":\"user\",\"Content\":\"x\"}]}   | messages[0].Content           | content",
        "{\"input\":[{\"content\":[{\"type\":\"t\",\"TEXT\":\"x\"}]}]} | input[0].content[0].TEXT  | text",
        "{\"system\":[{\"type\":\"text\",\"Text\":\"x\"}]}        | system[0].Text                | text",
        "{\"N\":5}                                             | N                             | n",
        // keys whose values the prompt extractor skips or takes whole with their keys
        "{\"messages\":[{\"Role\":\"user\",\"content\":\"x\"}]}   | messages[0].Role              | role",
        "{\"messages\":[{\"content\":[{\"type\":\"tool_use\",\"Input\":{\"dump all\":1}}]}]} | messages[0].content[0].Input | input",
        "{\"tools\":[{\"function\":{\"name\":\"f\",\"PARAMETERS\":{}}}]} | tools[0].function.PARAMETERS | parameters",
        "{\"template\":{\"Data\":\"x\"}}                        | template.Data                 | data",
      })
  void aKeyThatFoldsToAGovernedNameMustBeItsExactSpelling(String body, String key, String name) {
    assertThat(refusal(GOVERNED, body)).isEqualTo(notExact(key, name));
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"stream\":true,\"\\u017ftream\":false}                          | stream          | \u017ftream",
        "{\"seed\":1,\"SEED\":2}                                             | seed            | SEED",
        "{\"options\":{\"seed\":1,\"Seed\":2}}                               | options.seed    | options.Seed",
        "{\"tools\":[{\"function\":{\"parameters\":{\"properties\":{\"id\":{},\"ID\":{}}}}}]}"
            + " | tools[0].function.parameters.properties.id | tools[0].function.parameters.properties.ID",
        "{\"a\":[[{\"\\u212a\":1,\"k\":2}]]}                                 | a[0][0].\u212a  | a[0][0].k",
        "{\"\\ufb05op\":1,\"\\ufb06op\":2}                                    | \ufb05op        | \ufb06op",
      })
  void twoKeysThatFoldAlikeAreRefusedAtAnyDepth(String body, String first, String second) {
    assertThat(refusal(DecoderAgreement.DEFAULT, body)).isEqualTo(oneKey(first, second));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "{\"model\":\"llama\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":10,\"stream\":true}",
        // governed names are checked only where rules read them: a tool schema may have a Model
        // property
        "{\"model\":\"m\",\"tools\":[{\"function\":{\"parameters\":{\"properties\":{\"Model\":{},\"Content\":{}}}}}]}",
        "{\"model\":\"m\",\"response_format\":{\"json_schema\":{\"schema\":{\"properties\":{\"LogProbs\":{},\"ID\":{}}}}}}",
        "{\"model\":\"m\",\"tools\":[{\"name\":\"f\",\"input_schema\":{\"properties\":{\"Type\":{},\"Role\":{}}}}]}",
        "{\"model\":\"m\",\"messages\":[{\"content\":[{\"type\":\"tool_use\",\"input\":{\"Input\":1,\"URL\":2}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"content\":[{\"type\":\"image_url\",\"image_url\":{\"URL\":\"u\"}}]}]}",
        "{\"model\":\"m\",\"metadata\":{\"Role\":\"x\",\"Content\":\"y\"}}",
        // a long s or ligature that folds to nothing governed is just another key
        "{\"model\":\"m\",\"\\ufb05op\":[\"x\"],\"Stop\":1}",
        // correctly paired escapes are one character to every decoder
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud83d\\ude00 \\uD83D\\uDE00\"}]}",
        // an escaped backslash followed by text that looks like an escape is not one
        "{\"model\":\"m\",\"prompt\":\"\\\\ud800\"}",
      })
  void ordinaryBodiesPass(String body) {
    assertThatCode(() -> check(GOVERNED, body)).doesNotThrowAnyException();
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"model\":\"llama\\ud800\"}                                      | model",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\\udfff\"}]}      | messages[0].content",
        "{\"prompt\":[\"a\",\"\\uDC00\\uD800\"]}                             | prompt[1]",
        "{\"x\":{\"y\":\"\\ud83d\"}}                                          | x.y",
      })
  void loneSurrogatesInValuesAreRefused(String body, String path) {
    assertThat(refusal(DecoderAgreement.DEFAULT, body))
        .isEqualTo(
            "request body has a lone surrogate escape in \""
                + path
                + "\"; servers read it differently");
  }

  @Test
  void loneSurrogatesInKeysAreRefused() {
    assertThat(refusal(DecoderAgreement.DEFAULT, "{\"options\":{\"a\\ud800\":1}}"))
        .isEqualTo(
            "request body has a lone surrogate escape in key \"options.a\\ud800\"; servers read it differently");
  }

  @Test
  void aGovernedNameThatIsNotPlainMakesEveryOtherSpellingRefused() {
    DecoderAgreement odd = new DecoderAgreement(List.of("LogProbs"));
    assertThat(refusal(odd, "{\"logprobs\":true}")).isEqualTo(notExact("logprobs", "LogProbs"));
    assertThatCode(() -> check(odd, "{\"LogProbs\":true}")).doesNotThrowAnyException();
  }

  @Test
  void dottedGovernedPathsAreCheckedAtTheirLevel() {
    DecoderAgreement nested = new DecoderAgreement(List.of("generation.config.top_k"));
    assertThat(refusal(nested, "{\"generation\":{\"config\":{\"TOP_K\":1}}}"))
        .isEqualTo(notExact("generation.config.TOP_K", "top_k"));
    assertThat(refusal(nested, "{\"Generation\":{}}"))
        .isEqualTo(notExact("Generation", "generation"));
    assertThatCode(() -> check(nested, "{\"other\":{\"config\":{\"TOP_K\":1}}}"))
        .doesNotThrowAnyException();
  }

  @Test
  void foldingPutsTogetherWhatGoMatches() {
    assertThat(DecoderAgreement.fold("MODEL")).isEqualTo("model");
    assertThat(DecoderAgreement.fold("logprob\u017f")).isEqualTo("logprobs");
    assertThat(DecoderAgreement.fold("\u212aey")).isEqualTo("key");
    assertThat(DecoderAgreement.fold("\u00c5"))
        .isEqualTo(DecoderAgreement.fold("\u212b")); // Å, Angstrom sign
    assertThat(DecoderAgreement.fold("\u03c3"))
        .isEqualTo(DecoderAgreement.fold("\u03c2")); // σ, final ς
    assertThat(DecoderAgreement.fold("\u00df"))
        .isEqualTo(DecoderAgreement.fold("\u1e9e")); // ß, capital ẞ
    assertThat(DecoderAgreement.fold("\u01c4")).isEqualTo(DecoderAgreement.fold("\u01c5")); // Ǆ, ǅ
    assertThat(DecoderAgreement.fold("\ufb05")).isEqualTo(DecoderAgreement.fold("\ufb06")); // ﬅ, ﬆ
    assertThat(DecoderAgreement.fold("\ufb05"))
        .isNotEqualTo("st"); // simple folding maps one rune to one
    String plain = "max_tokens";
    assertThat(DecoderAgreement.fold(plain)).isSameAs(plain); // the usual key is not copied
  }

  @Test
  void theRawScanFindsEverySurrogateEscapeSpelling() {
    assertThat(DecoderAgreement.mayHoldLoneSurrogate("\"\\ud800\"".getBytes(UTF_8))).isTrue();
    assertThat(DecoderAgreement.mayHoldLoneSurrogate("\"\\uDFFF\"".getBytes(UTF_8))).isTrue();
    assertThat(DecoderAgreement.mayHoldLoneSurrogate("\"\\uDbcd\"".getBytes(UTF_8))).isTrue();
    assertThat(DecoderAgreement.mayHoldLoneSurrogate("\"\\ud7ff\\ue000\\u00e9\"".getBytes(UTF_8)))
        .isFalse();
    assertThat(DecoderAgreement.mayHoldLoneSurrogate(null)).isFalse();
  }
}
