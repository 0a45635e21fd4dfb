package dev.inferpam.core.internal.quotas;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Usage is found wherever a response puts it among other members — deep values, strings with
 * escapes and brackets, decoy {@code usage} keys below the levels that count — and however the
 * body is cut into chunks.
 */
class UsageExtractorProperties {

  /** A response document with usage in one of the places that count, and what it carries. */
  record Doc(String json, Map<String, Long> expected) {}

  private static final List<String> NOISE =
      List.of(
          "\"text with \\\"usage\\\": {\\\"prompt_tokens\\\": 1}, brackets ]} and , commas\"",
          "{\"usage\":{\"prompt_tokens\":999},\"deep\":[{\"usage\":{\"completion_tokens\":999}}]}",
          "[[[{\"a\":\"}\"}],[]],{\"b\":[\"]\",\"\\\\\"]}]",
          "12345",
          "-1.5e3",
          "true",
          "null",
          "\"\"",
          "{}",
          "[]",
          "{\"message\":{\"usage\":{\"prompt_tokens\":999}}}");
  private static final List<String> KEYS =
      List.of("id", "choices", "model", "content", "x", "usage_note", "data");

  @Provide
  Arbitrary<Doc> docs() {
    Arbitrary<String> member =
        Combinators.combine(Arbitraries.of(KEYS), Arbitraries.of(NOISE))
            .as((k, v) -> "\"" + k + "\":" + v);
    Arbitrary<Long> count = Arbitraries.longs().between(0, 5_000_000_000L);
    Arbitrary<Doc> usage =
        Combinators.combine(count, count, count, Arbitraries.of(0, 1, 2, 3, 4))
            .as(
                (p, c, t, where) -> {
                  String object =
                      "{\"prompt_tokens\":"
                          + p
                          + ",\"details\":{\"cached_tokens\":7,\"x\":[1,{\"total_tokens\":9}]},"
                          + "\"completion_tokens\":"
                          + c
                          + ",\"total_tokens\":"
                          + t
                          + "}";
                  Map<String, Long> expected = new LinkedHashMap<>();
                  expected.put("prompt_tokens", p);
                  expected.put("completion_tokens", c);
                  expected.put("total_tokens", t);
                  return switch (where) {
                    case 0 -> new Doc("\"usage\":" + object, expected);
                    case 1 ->
                        new Doc(
                            "\"message\":{\"role\":\"assistant\",\"usage\":"
                                + object
                                + ",\"content\":\"}\"}",
                            expected);
                    case 2 ->
                        new Doc(
                            "\"response\":{\"output\":[{\"usage\":{\"prompt_tokens\":1}}],\"usage\":"
                                + object
                                + "}",
                            expected);
                    case 3 ->
                        new Doc(
                            "\"usage\" : \n " + object.replace(",", " , ").replace(":", ": "),
                            expected);
                    default ->
                        new Doc(
                            "\"prompt_eval_count\":" + p + ",\"eval_count\":" + c,
                            Map.of("prompt_tokens", p, "completion_tokens", c));
                  };
                });
    return Combinators.combine(member.list().ofMaxSize(4), usage, member.list().ofMaxSize(4))
        .as(
            (before, u, after) -> {
              List<String> members = new ArrayList<>(before);
              members.add(u.json());
              members.addAll(after);
              return new Doc("{" + String.join(",", members) + "}", u.expected());
            });
  }

  @Property(tries = 1500)
  void usageIsFoundInJsonHoweverTheBodyIsCut(
      @ForAll("docs") Doc doc, @ForAll("cuts") List<Integer> cuts) {
    assertThat(feed("application/json", doc.json(), cuts)).as(doc.json()).isEqualTo(doc.expected());
  }

  @Property(tries = 800)
  void usageIsFoundInTheLastEventOfAStreamHoweverItIsCut(
      @ForAll("docs") Doc doc, @ForAll("cuts") List<Integer> cuts) {
    String stream =
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n"
            // a document over several lines is sent as several data lines, which the event joins
            + "event: x\ndata: "
            + doc.json().replace("\n", "\ndata: ")
            + "\n\ndata: [DONE]\n\n";
    assertThat(feed("text/event-stream", stream, cuts)).as(stream).isEqualTo(doc.expected());
    String ndjson =
        "{\"done\":false,\"message\":{\"content\":\"a\"}}\n" + doc.json().replace("\n", " ") + "\n";
    assertThat(feed("application/x-ndjson", ndjson, cuts)).as(ndjson).isEqualTo(doc.expected());
  }

  /**
   * The last bytes of a body fed through {@link UsageExtractor#acceptLast}, which skips what cannot
   * add to the usage, give the same usage as walking them all, wherever the earlier walk stopped
   * (in a key, in a value being read), in JSON, a stream or NDJSON, and with the keys escaped
   * (never taken) as well as plain.
   */
  @Property(tries = 1500)
  void skippingTheLastBytesThatHoldNoKeyFindsTheSameUsage(
      @ForAll("docs") Doc doc,
      @ForAll boolean escapeKeys,
      @ForAll @net.jqwik.api.constraints.IntRange(min = 0, max = 400) int stop) {
    String json =
        escapeKeys
            ? doc.json()
                .replace("\"usage\"", "\"us\\u0061ge\"")
                .replace("eval_count\"", "eval_coun\\u0074\"")
            : doc.json();
    for (String type : List.of("application/json", "text/event-stream", "application/x-ndjson")) {
      String body =
          switch (type) {
            case "text/event-stream" ->
                "data: {\"usage\":null}\n\ndata: " + json.replace("\n", "\ndata: ") + "\n\n";
            case "application/x-ndjson" -> "{\"done\":false}\n" + json.replace("\n", " ") + "\n";
            default -> json;
          };
      byte[] b = body.getBytes(StandardCharsets.UTF_8);
      UsageExtractor whole = UsageExtractor.forContentType(type);
      whole.accept(b, 0, b.length);
      int at = Math.min(stop, b.length);
      UsageExtractor skipping = UsageExtractor.forContentType(type);
      skipping.accept(b, 0, at);
      skipping.acceptLast(b, at, b.length - at);
      assertThat(skipping.usage()).as(type + " " + body).isEqualTo(whole.usage());
      if (escapeKeys && !body.contains("\"usage\"") && !body.contains("eval_count\"")) {
        assertThat(whole.usage()).as("escaped keys are never taken: " + body).isEmpty();
      }
    }
  }

  /**
   * The word-at-a-time scan for a key's end ({@link UsageExtractor#mayHoldUsageKey}) answers as a
   * byte-by-byte reading does, for keys, near-keys and their pieces anywhere in a range, cut at
   * either end.
   */
  @Property(tries = 3000)
  void theKeyScanAnswersAsReadingByteByByte(
      @ForAll("keyText") String text,
      @ForAll @net.jqwik.api.constraints.IntRange(min = 0, max = 40) int cutStart,
      @ForAll @net.jqwik.api.constraints.IntRange(min = 0, max = 40) int cutEnd) {
    byte[] b = text.getBytes(StandardCharsets.ISO_8859_1);
    int from = Math.min(cutStart, b.length);
    int to = Math.max(from, b.length - cutEnd);
    assertThat(UsageExtractor.mayHoldUsageKey(b, from, to))
        .as("[%d, %d) of %s", from, to, text)
        .isEqualTo(readingByteByByte(b, from, to));
  }

  @Provide
  Arbitrary<String> keyText() {
    return Arbitraries.oneOf(
            Arbitraries.of(
                "\"usage\"",
                "usage\"",
                "\"usag\"",
                "\"usage",
                "eval_count\"",
                "\"prompt_eval_count\"",
                "val_count\"",
                "eval_coun\"",
                "\"content\"",
                "\"role\"",
                "e\"",
                "t\"",
                "ge\"",
                "nt\"",
                "#\"",
                "\"\""),
            Arbitraries.strings().withChars("\"egnt_uasvlco#x :{}").ofMaxLength(12))
        .list()
        .ofMaxSize(12)
        .map(parts -> String.join("", parts));
  }

  private static boolean readingByteByByte(byte[] b, int from, int to) {
    String s = new String(b, from, to - from, StandardCharsets.ISO_8859_1);
    return s.contains("\"usage\"") || s.contains("eval_count\"");
  }

  @Provide
  Arbitrary<List<Integer>> cuts() {
    return Arbitraries.integers().between(1, 64).list().ofMaxSize(12);
  }

  /** Feeds {@code body} in pieces of the given sizes (the rest in one piece). */
  private static Map<String, Long> feed(String type, String body, List<Integer> cuts) {
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    UsageExtractor x = UsageExtractor.forContentType(type);
    int at = 0;
    for (int cut : cuts) {
      int n = Math.min(cut, b.length - at);
      x.accept(b, at, n);
      at += n;
    }
    x.accept(b, at, b.length - at);
    return x.usage();
  }
}
