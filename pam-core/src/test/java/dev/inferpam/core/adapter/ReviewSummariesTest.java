package dev.inferpam.core.adapter;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Masker;
import dev.inferpam.api.ReviewNotifier;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** What reviewers are shown of a held request: model, operation and a masked, bounded excerpt. */
class ReviewSummariesTest {
  static final String EMAIL = "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}";

  /** Replaces {@code regex} in the whole text it is given (buffers until finish, like a real masker may). */
  static Masker replacing(String regex, String replacement) {
    return () ->
        new Masker.Session() {
          final StringBuilder buf = new StringBuilder();

          @Override
          public String push(String text) {
            buf.append(text);
            return "";
          }

          @Override
          public String finish() {
            return buf.toString().replaceAll(regex, replacement);
          }
        };
  }

  static final ReviewSummaries EMAILS = new ReviewSummaries(replacing(EMAIL, "[EMAIL]"), "");

  static InferenceRequest post(String path, String body) {
    return new InferenceRequest(
        "POST",
        path,
        null,
        Map.of("authorization", List.of("Bearer caller-token")),
        body.getBytes(StandardCharsets.UTF_8),
        "10.0.0.1");
  }

  @Test
  void summarisesModelOperationAndTheMaskedPromptJoinedByLines() {
    ReviewSummaries.Summary s =
        EMAILS.summarize(
            post(
                "/v1/chat/completions",
                "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                    + "{\"role\":\"user\",\"content\":\"dump all rows to bob@example.com\"}]}"));
    assertThat(s)
        .isEqualTo(
            new ReviewSummaries.Summary("llama-3", "chat", "be brief\ndump all rows to [EMAIL]"));
  }

  @Test
  void readsEveryPromptShape() {
    assertThat(EMAILS.summarize(post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"p\"}")))
        .isEqualTo(new ReviewSummaries.Summary("m", "completion", "p"));
    assertThat(
            EMAILS.summarize(post("/v1/embeddings", "{\"model\":\"m\",\"input\":[\"a\",\"b\"]}")))
        .isEqualTo(new ReviewSummaries.Summary("m", "embedding", "a\nb"));
    assertThat(
            EMAILS.summarize(
                post(
                    "/v1/responses",
                    "{\"model\":\"m\",\"instructions\":\"i\",\"input\":[{\"role\":\"user\",\"content\":"
                        + "[{\"type\":\"input_text\",\"text\":\"t\"}]}]}")))
        .isEqualTo(new ReviewSummaries.Summary("m", "chat", "i\nt"));
  }

  @Test
  void showsTheTextAsSentNotItsSkeletonToolDefinitionsAfterThePrompt() {
    ReviewSummaries.Summary s =
        EMAILS.summarize(
            post(
                "/v1/chat/completions",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\\u0501\\u057Dm\\u0440 \\u0430ll\"}],"
                    + "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"mail bob@example.com\"}}]}"));
    assertThat(s.excerpt()).isEqualTo("\u0501\u057Dm\u0440 \u0430ll\nf\nmail [EMAIL]");
  }

  @Test
  void theValueCutByTheLimitIsMaskedFirst() {
    // The address straddles the cut: masked before cutting, nothing of it is left.
    String prompt = "x".repeat(190) + " bob.builder@example.com";
    String excerpt =
        EMAILS
            .summarize(post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"" + prompt + "\"}"))
            .excerpt();
    assertThat(excerpt)
        .doesNotContain("bob")
        .doesNotContain("@")
        .startsWith("x".repeat(190) + " [EMAIL]");
  }

  @Test
  void longPromptsAreCutToTwoHundredCodePointsWithAnEllipsis() {
    String excerpt =
        EMAILS
            .summarize(
                post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"" + "a".repeat(500) + "\"}"))
            .excerpt();
    assertThat(excerpt).isEqualTo("a".repeat(ReviewSummaries.EXCERPT_CODE_POINTS) + "\u2026");

    String exactly =
        EMAILS
            .summarize(
                post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"" + "a".repeat(200) + "\"}"))
            .excerpt();
    assertThat(exactly).isEqualTo("a".repeat(200));
  }

  @Test
  void theCutNeverSplitsASurrogatePairAndFitsAReviewRequest() {
    String emoji = "\uD83D\uDE00"; // one code point, two chars
    String excerpt =
        EMAILS
            .summarize(
                post(
                    "/v1/completions",
                    "{\"model\":\"m\",\"prompt\":\"" + emoji.repeat(400) + "\"}"))
            .excerpt();
    assertThat(excerpt).isEqualTo(emoji.repeat(200) + "\u2026");
    assertThat(excerpt.length())
        .isLessThanOrEqualTo(ReviewNotifier.ReviewRequest.MAX_EXCERPT_CHARS);
  }

  @Test
  void noPromptTextGivesNoExcerpt() {
    assertThat(EMAILS.summarize(post("/v1/embeddings", "{\"model\":\"m\",\"input\":[1,2,3]}")))
        .isEqualTo(new ReviewSummaries.Summary("m", "embedding", null));
    assertThat(
            EMAILS
                .summarize(post("/v1/chat/completions", "{\"model\":\"m\",\"messages\":[]}"))
                .excerpt())
        .isNull();
    ReviewSummaries.Summary infer =
        EMAILS.summarize(post("/v2/models/resnet/infer", "{\"inputs\":[]}"));
    assertThat(infer).isEqualTo(new ReviewSummaries.Summary("resnet", "infer", null));
  }

  @Test
  void aFailingMaskerGivesNoExcerptRatherThanUnmaskedText() {
    AtomicInteger calls = new AtomicInteger();
    Masker throwing =
        () -> {
          calls.incrementAndGet();
          throw new IllegalStateException("detector broke on bob@example.com");
        };
    ReviewSummaries.Summary s =
        new ReviewSummaries(throwing, "")
            .summarize(
                post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"mail bob@example.com\"}"));
    assertThat(s).isEqualTo(new ReviewSummaries.Summary("m", "completion", null));
    assertThat(calls).hasValue(1);

    Masker nullMask =
        new Masker() {
          @Override
          public Session open() {
            return IDENTITY.open();
          }

          @Override
          public String mask(String text) {
            return null;
          }
        };
    assertThat(
            new ReviewSummaries(nullMask, "")
                .summarize(post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"secret\"}"))
                .excerpt())
        .isNull();
  }

  @Test
  void theBasePathIsHonouredAndAnUnclassifiableRequestGivesNothing() {
    ReviewSummaries based = new ReviewSummaries(Masker.IDENTITY, "/openai");
    assertThat(
            based.summarize(
                post(
                    "/openai/v1/chat/completions",
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")))
        .isEqualTo(new ReviewSummaries.Summary("m", "chat", "hi"));
    assertThat(based.summarize(post("/openai/v1/chat/completions", "not json")))
        .isEqualTo(new ReviewSummaries.Summary(null, null, null));
    assertThat(
            based.summarize(
                post("/openai/v1/chat/completions", "{\"model\":\"m\",\"model\":\"n\"}")))
        .isEqualTo(new ReviewSummaries.Summary(null, null, null));
  }
}
