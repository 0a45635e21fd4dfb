package dev.inferpam.core.internal.quotas;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The direct usage reader means what the Jackson reader means: on usage objects as upstreams send
 * them, and on the same damaged (bytes replaced, dropped, cut short), whenever the direct reader
 * decides, it decides as Jackson does — and on ordinary usage it does decide.
 */
class UsageValuesProperties {

  private static final List<String> KEYS =
      List.of(
          "prompt_tokens",
          "input_tokens",
          "completion_tokens",
          "output_tokens",
          "total_tokens",
          "cached_tokens",
          "prompt_tokens_details",
          "service_tier",
          "x");
  private static final List<String> VALUES =
      List.of(
          "0",
          "7",
          "41",
          "120",
          "999999999999999999",
          "9999999999999999999",
          "99999999999999999999",
          "-3",
          "-0",
          "1.5",
          "2e3",
          "01",
          "\"12\"",
          "\"\"",
          "null",
          "true",
          "false",
          "{}",
          "[]",
          "[1,2]",
          "{\"cached_tokens\":0,\"audio_tokens\":3}",
          "{\"a\":{\"b\":[true,null,\"x\"]}}",
          "\"caf\u00e9\"",
          "\"a\\\"b\"",
          "[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]");
  private static final List<String> SPACES = List.of("", "", "", " ", "\n  ", "\t", "\r\n");

  /** Bytes a damage can write: structure, digits, letters, quote and escape, NUL, non-ASCII. */
  private static final byte[] NOISE =
      "{}[]:,\" \\0123456789-.eEtfnul\u0000x".getBytes(StandardCharsets.ISO_8859_1);

  @Provide
  Arbitrary<String> usageObjects() {
    Arbitrary<String> member =
        Combinators.combine(
                Arbitraries.of(KEYS),
                Arbitraries.of(VALUES),
                Arbitraries.of(SPACES),
                Arbitraries.of(SPACES))
            .as((k, v, s1, s2) -> s1 + "\"" + k + "\"" + s2 + ":" + s1 + v + s2);
    return Combinators.combine(
            member.list().ofMaxSize(7), Arbitraries.of(SPACES), Arbitraries.of(SPACES))
        .as((members, before, after) -> before + "{" + String.join(",", members) + "}" + after);
  }

  @Provide
  Arbitrary<byte[]> damaged() {
    return Combinators.combine(
            usageObjects(),
            Arbitraries.integers().between(0, 3),
            Arbitraries.integers().between(0, 10_000).list().ofSize(6),
            Arbitraries.of(0, 1, 2, 3))
        .as(
            (text, damages, positions, kind) -> {
              byte[] b = text.getBytes(StandardCharsets.UTF_8);
              for (int d = 0; d < damages && b.length > 0; d++) {
                int at = positions.get(d) % b.length;
                b =
                    switch ((kind + d) % 4) {
                      case 0 -> replace(b, at, NOISE[positions.get(d + 1) % NOISE.length]);
                      case 1 -> drop(b, at);
                      case 2 -> Arrays.copyOf(b, at); // cut short
                      default -> insert(b, at, NOISE[positions.get(d + 2) % NOISE.length]);
                    };
              }
              return b;
            });
  }

  @Property(tries = 3000)
  void onUsageObjectsTheDirectReaderAgreesWithJackson(@ForAll("usageObjects") String text) {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    assertAgree(b);
  }

  @Property(tries = 5000)
  void onDamagedUsageObjectsTheDirectReaderAgreesWithJacksonWhenItDecides(
      @ForAll("damaged") byte[] b) {
    assertAgree(b);
  }

  @Property(tries = 2000)
  void bareCountsAgreeWithJackson(@ForAll("damagedCounts") byte[] b) {
    long direct = UsageValues.count(b, b.length);
    if (direct != UsageValues.UNSURE_COUNT) {
      assertThat(direct)
          .as("count of %s", show(b))
          .isEqualTo(UsageValues.countByJackson(b, b.length));
    }
  }

  @Provide
  Arbitrary<byte[]> damagedCounts() {
    return Combinators.combine(
            Arbitraries.of(VALUES),
            Arbitraries.of(SPACES),
            Arbitraries.of(NOISE[0], NOISE[5], NOISE[8], (byte) 'x', (byte) '7', (byte) 0),
            Arbitraries.integers().between(-1, 25))
        .as(
            (v, s, noise, at) -> {
              byte[] b = (s + v + s).getBytes(StandardCharsets.UTF_8);
              return at < 0 || at >= b.length ? b : replace(b, at, noise);
            });
  }

  @Example
  void ordinaryUsageIsDecidedWithoutJackson() {
    String openAi =
        "{\"prompt_tokens\":231,\"completion_tokens\":402,\"total_tokens\":633,"
            + "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
            + "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
            + "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}";
    String anthropic =
        "{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
            + "\"output_tokens\":6,\"service_tier\":\"standard\"}";
    for (String text : List.of(openAi, anthropic, " { } ")) {
      byte[] b = text.getBytes(StandardCharsets.UTF_8);
      assertThat(UsageValues.object(b, b.length, new Long[5], new boolean[5]))
          .as(text)
          .isEqualTo(UsageValues.TAKEN);
    }
    byte[] count = " 26 ".getBytes(StandardCharsets.UTF_8);
    assertThat(UsageValues.count(count, count.length)).isEqualTo(26);
  }

  @Example
  void whatItDoesNotCoverGoesToJackson() {
    for (String text :
        List.of(
            "{\"prompt\\u005ftokens\":5}",
            "{\"prompt_tokens\":-0}",
            "{\"prompt_tokens\":1.0}",
            "{\"prompt_tokens\":12345678901234567890}",
            "\u0000{\u0000}",
            "{\"a\":\"\\n\"}")) {
      byte[] b = text.getBytes(StandardCharsets.UTF_8);
      assertThat(UsageValues.object(b, b.length, new Long[5], new boolean[5]))
          .as(text)
          .isEqualTo(UsageValues.UNSURE);
    }
    // and Jackson reads an escaped key as the key it spells
    byte[] escaped = "{\"prompt\\u005ftokens\":5}".getBytes(StandardCharsets.UTF_8);
    Long[] counts = new Long[5];
    boolean[] present = new boolean[5];
    assertThat(UsageValues.objectByJackson(escaped, escaped.length, counts, present))
        .isEqualTo(UsageValues.TAKEN);
    assertThat(counts[0]).isEqualTo(5L);
  }

  private static void assertAgree(byte[] b) {
    Long[] directCounts = new Long[5];
    boolean[] directPresent = new boolean[5];
    int direct = UsageValues.object(b, b.length, directCounts, directPresent);
    Long[] counts = new Long[5];
    boolean[] present = new boolean[5];
    int jackson = UsageValues.objectByJackson(b, b.length, counts, present);
    if (direct == UsageValues.UNSURE) return;
    assertThat(direct).as("outcome for %s", show(b)).isEqualTo(jackson);
    if (direct == UsageValues.TAKEN) {
      assertThat(directCounts).as("counts for %s", show(b)).containsExactly(counts);
      assertThat(directPresent).as("present for %s", show(b)).containsExactly(present);
    }
  }

  private static String show(byte[] b) {
    return new String(b, StandardCharsets.ISO_8859_1).replace("\u0000", "\\0");
  }

  private static byte[] replace(byte[] b, int at, byte c) {
    byte[] out = b.clone();
    out[at] = c;
    return out;
  }

  private static byte[] drop(byte[] b, int at) {
    byte[] out = new byte[b.length - 1];
    System.arraycopy(b, 0, out, 0, at);
    System.arraycopy(b, at + 1, out, at, b.length - at - 1);
    return out;
  }

  private static byte[] insert(byte[] b, int at, byte c) {
    byte[] out = new byte[b.length + 1];
    System.arraycopy(b, 0, out, 0, at);
    out[at] = c;
    System.arraycopy(b, at, out, at + 1, b.length - at);
    return out;
  }
}
