package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.Policy.MaskStrategy;
import java.nio.charset.StandardCharsets;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The parser-free check says "nothing to mask" only where the parser agrees: on JSON documents
 * as models send them (with and without personal data, escapes, non-ASCII text), and on the same
 * damaged, whenever it answers {@code true}, masking with the parser returns the document as it
 * came and counts nothing. And on ordinary quiet documents it does answer {@code true}.
 */
class QuietJsonProperties {
  private static final BlockMasker MASKER =
      new BlockMasker(Detectors.all(), MaskStrategy.REDACT, null);

  private static final List<String> STRINGS =
      List.of(
          "\"\"",
          "\"plain words\"",
          "\"line\\nbreak \\\"q\\\" \\\\ \\/ \\t\"",
          "\"mail john.doe@example.com\"",
          "\"call +44 20 7946 0958\"",
          "\"card 4111 1111 1111 1111\"",
          "\"\\u0040 \\u00e9 \\u0041\"",
          "\"john\\u002edoe\\u0040example\\u002ecom\"",
          "\"caf\u00e9\"",
          "\"\\ud83d\\ude00\"",
          "\"10.0.0.1\"",
          "\"version 1.2.3\"",
          "\"AKIAIOSFODNN7EXAMPLE\"",
          "\"x\\qy\"",
          "\"tab\there\"");
  private static final List<String> SCALARS =
      List.of(
          "0",
          "-1",
          "12.5",
          "1e5",
          "-0.0E-3",
          "01",
          "1.",
          "-",
          "true",
          "false",
          "null",
          "nul",
          "4111111111111111");
  private static final List<String> KEYS =
      List.of("\"content\"", "\"id\"", "\"model\"", "\"a@b.com\"", "\"\"", "\"k\\n\"");
  private static final List<String> SPACE = List.of("", "", " ", "\n  ", "\t");
  private static final byte[] NOISE =
      "{}[]:,\" \\0123456789-.eEtfnul@\u0000x".getBytes(StandardCharsets.ISO_8859_1);

  @Provide
  Arbitrary<String> documents() {
    Arbitrary<String> scalar =
        Arbitraries.frequencyOf(
            net.jqwik.api.Tuple.of(3, Arbitraries.of(STRINGS)),
            net.jqwik.api.Tuple.of(1, Arbitraries.of(SCALARS)));
    Arbitrary<String> inner =
        Arbitraries.recursive(
            () -> scalar,
            v ->
                Arbitraries.oneOf(
                    v.list().ofMaxSize(4).map(l -> "[" + String.join(",", l) + "]"),
                    Combinators.combine(Arbitraries.of(KEYS), v, Arbitraries.of(SPACE))
                        .as((k, x, s) -> s + k + s + ":" + s + x)
                        .list()
                        .ofMaxSize(4)
                        .map(l -> "{" + String.join(",", l) + "}")),
            3);
    return Combinators.combine(Arbitraries.of(SPACE), inner, Arbitraries.of(SPACE))
        .as((a, d, z) -> a + d + z);
  }

  @Provide
  Arbitrary<byte[]> damaged() {
    return Combinators.combine(
            documents(),
            Arbitraries.integers().between(0, 10_000).list().ofSize(3),
            Arbitraries.of(0, 1, 2))
        .as(
            (doc, at, kind) -> {
              byte[] b = doc.getBytes(StandardCharsets.UTF_8);
              if (b.length == 0) return b;
              int i = at.get(0) % b.length;
              return switch (kind) {
                case 0 -> {
                  byte[] out = b.clone();
                  out[i] = NOISE[at.get(1) % NOISE.length];
                  yield out;
                }
                case 1 -> java.util.Arrays.copyOf(b, i);
                default -> {
                  byte[] out = new byte[b.length + 1];
                  System.arraycopy(b, 0, out, 0, i);
                  out[i] = NOISE[at.get(2) % NOISE.length];
                  System.arraycopy(b, i, out, i + 1, b.length - i);
                  yield out;
                }
              };
            });
  }

  @Property(tries = 3000)
  void whenItSaysQuietTheParserDeliversTheDocumentAsItCame(@ForAll("documents") String doc) {
    assertAgrees(doc.getBytes(StandardCharsets.UTF_8));
  }

  @Property(tries = 4000)
  void onDamagedDocumentsToo(@ForAll("damaged") byte[] doc) {
    assertAgrees(doc);
  }

  @Example
  void anOrdinaryCompletionIsQuietAndOneWithAnAddressIsNot() {
    String completion =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1767225600,\"choices\":"
            + "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"The rollback was delayed.\\nSee the "
            + "runbook, section \\\"Cache\\\".\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
            + "\"usage\":{\"prompt_tokens\":231,\"completion_tokens\":402,\"total_tokens\":633}}";
    assertThat(QuietJson.isQuiet(completion.getBytes(StandardCharsets.UTF_8), MASKER)).isTrue();
    String withAddress = completion.replace("See the", "Mail ops@example.com, see the");
    assertThat(QuietJson.isQuiet(withAddress.getBytes(StandardCharsets.UTF_8), MASKER)).isFalse();
    String escapedAddress = completion.replace("See the", "Mail ops\\u0040example.com, see the");
    assertThat(QuietJson.isQuiet(escapedAddress.getBytes(StandardCharsets.UTF_8), MASKER))
        .isFalse();
    // and through the masker: the escaped address is masked, the document written again
    BodyMaskerValues values = new BodyMaskerValues(MASKER);
    String out =
        new String(
            BodyMaskerJson.maskDocument(escapedAddress.getBytes(StandardCharsets.UTF_8), values),
            StandardCharsets.UTF_8);
    assertThat(out).contains("Mail [EMAIL], see the").doesNotContain("example.com");
    assertThat(values.counts()).isEqualTo(java.util.Map.of("email", 1));
  }

  @Example
  void eightBytesArePlainExactlyWhenNoneIsAQuoteABackslashAControlByteOrNonAscii() {
    for (int position = 0; position < 8; position++) {
      for (int value = 0; value < 256; value++) {
        byte[] word = "abcdefgh".getBytes(StandardCharsets.US_ASCII);
        word[position] = (byte) value;
        long w = java.nio.ByteBuffer.wrap(word).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        boolean special = value == '"' || value == '\\' || value < 0x20 || value > 0x7F;
        assertThat(QuietJson.isPlain(w)).as("byte %d at %d", value, position).isEqualTo(!special);
      }
    }
  }

  private static void assertAgrees(byte[] doc) {
    if (!QuietJson.isQuiet(doc, MASKER)) return;
    BodyMaskerValues values = new BodyMaskerValues(MASKER);
    byte[] parsed = BodyMaskerJson.maskParsed(doc, values);
    String shown = new String(doc, StandardCharsets.ISO_8859_1);
    assertThat(parsed).as("parser's answer for %s", shown).isNotNull();
    assertThat(new String(parsed, StandardCharsets.UTF_8))
        .as(shown)
        .isEqualTo(new String(doc, StandardCharsets.UTF_8));
    assertThat(values.counts()).as(shown).isEmpty();
  }
}
