package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Masker;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Policy.MaskStrategy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Whole-text masking: strategies, overlap resolution, counts, the factory from a policy. */
class BlockMaskerTest {
  private static final byte[] KEY =
      "0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.UTF_8);

  private static BlockMasker all(MaskStrategy strategy) {
    return new BlockMasker(Detectors.all(), strategy, strategy == MaskStrategy.HASH ? KEY : null);
  }

  @Test
  void redactsEveryDetectorWithItsLabel() {
    String text =
        "Mail john.doe@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111, SSN 123-45-6789, "
            + "IBAN GB82 WEST 1234 5698 7654 32, host 10.0.0.1 / 2001:db8::1, key AKIAIOSFODNN7EXAMPLE, token "
            + DetectorsTest.JWT
            + "\n"
            + DetectorsTest.PEM
            + "\nend";
    assertThat(all(MaskStrategy.REDACT).mask(text))
        .isEqualTo(
            "Mail [EMAIL] or call [PHONE]; card [CREDIT_CARD], SSN [US_SSN], IBAN [IBAN], host [IPV4] / [IPV6], "
                + "key [AWS_ACCESS_KEY], token [JWT]\n[PRIVATE_KEY]\nend");
  }

  @Test
  void maskingAWholeTextAtOnceGivesWhatASessionReleasesAndCounts() {
    String text =
        "Mail john.doe@example.com, jane@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111";
    for (MaskStrategy strategy : MaskStrategy.values()) {
      BlockMasker m = all(strategy);
      Masker.Session session = m.open();
      String streamed = session.push(text) + session.finish();
      Map<String, Integer> counts =
          new java.util.TreeMap<>(Map.of("email", 1)); // added to, not replaced
      assertThat(m.mask(text, counts)).as(strategy.name()).isEqualTo(streamed);
      assertThat(counts)
          .as(strategy.name())
          .isEqualTo(Map.of("email", 3, "phone", 1, "credit-card", 1));
      assertThat(session.counts()).isEqualTo(Map.of("email", 2, "phone", 1, "credit-card", 1));
    }
  }

  /**
   * A custom pattern (a detector without an alphabet) holds back more than the e-mail detector
   * does: a push that ends just after an address used to release the address's first half, since
   * the scan stopped at the custom pattern's undecided point (found by pam-testkit's MaskerContract).
   */
  @Test
  void aValueIsMaskedWhereverAStreamSplitsItWhenACustomPatternHoldsBackMore() {
    Policy p =
        Policy.parse(
            """
        version: 1
        masking:
          detectors: [email, credit-card]
          custom:
            - {name: employee-id, pattern: "EMP-[0-9]{6}"}
        """);
    BlockMasker m = BlockMasker.from(p.masking(), Map.<String, String>of()::get);
    for (String text :
        List.of(
            "write to alice.smith@example.com before noon",
            "card 4111 1111 1111 1111 and EMP-123456 today")) {
      String whole = m.mask(text);
      for (int i = 0; i <= text.length(); i++) {
        Masker.Session s = m.open();
        String out = s.push(text.substring(0, i)) + s.push(text.substring(i)) + s.finish();
        assertThat(out).as("split at %d", i).isEqualTo(whole);
      }
    }
  }

  @Test
  void leavesTextWithoutValuesUnchanged() {
    String text =
        "Release v1.2.3.4 shipped on 2024-01-15, order 12345678, version 10.0.0.1; std::vector";
    assertThat(all(MaskStrategy.REDACT).mask(text)).isSameAs(text);
  }

  @Test
  void partialKeepsTheLastFourAndTheSeparators() {
    BlockMasker m = all(MaskStrategy.PARTIAL);
    assertThat(m.mask("card 4111-1111-1111-1111 ok")).isEqualTo("card ****-****-****-1111 ok");
    assertThat(m.mask("card 4111 1111 1111 1111 ok")).isEqualTo("card **** **** **** 1111 ok");
    assertThat(m.mask("ssn 123-45-6789")).isEqualTo("ssn ***-**-6789");
    assertThat(m.mask("ip 10.0.0.1")).isEqualTo("ip **.*.*.*"); // too short to keep any
  }

  @Test
  void hashIsStableKeyedAndLabelled() {
    BlockMasker m = all(MaskStrategy.HASH);
    String once = m.mask("to john.doe@example.com");
    assertThat(once).matches("to \\[EMAIL:[0-9a-f]{6}]");
    assertThat(m.mask("to john.doe@example.com")).isEqualTo(once);
    assertThat(m.mask("to John.Doe@Example.com"))
        .isEqualTo(once); // emails compare case-insensitively
    assertThat(m.mask("4111 1111 1111 1111")).isEqualTo(m.mask("4111-1111-1111-1111"));
    assertThat(m.mask("to jane@example.com")).isNotEqualTo(once);
    BlockMasker otherKey =
        new BlockMasker(
            Detectors.all(),
            MaskStrategy.HASH,
            "another-key-of-32-bytes-length!!".getBytes(StandardCharsets.UTF_8));
    assertThat(otherKey.mask("to john.doe@example.com")).isNotEqualTo(once);
  }

  @Test
  void hashNeedsALongEnoughKey() {
    assertThatThrownBy(
            () ->
                new BlockMasker(
                    Detectors.all(), MaskStrategy.HASH, "short".getBytes(StandardCharsets.UTF_8)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("masking hash key must be at least 16 bytes");
  }

  /** A detector reporting fixed spans, to drive overlap resolution. */
  private static Detector spans(String name, int... startEnd) {
    return new Detector() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public int maxMatchLength() {
        return 100;
      }

      @Override
      public void find(CharSequence text, int from, Consumer<Match> out) {
        for (int i = 0; i < startEnd.length; i += 2) {
          if (startEnd[i] >= from) out.accept(new Match(startEnd[i], startEnd[i + 1], name));
        }
      }
    };
  }

  @Test
  void overlapsResolveEarliestStartThenLongestThenDetectorOrderAndOverlapsExtend() {
    String text = "0123456789";
    BlockMasker m =
        new BlockMasker(
            List.of(spans("a", 2, 4, 5, 7), spans("b", 1, 3, 5, 9), spans("c", 5, 9)),
            MaskStrategy.REDACT,
            null);
    // b[1,3) is taken first; a[2,4) overlaps it and extends it; at 5 the longest, b, wins
    assertThat(m.matches(text)).containsExactly(new Match(1, 4, "b"), new Match(5, 9, "b"));
    assertThat(m.mask(text)).isEqualTo("0[B]4[B]9");
  }

  @Test
  void theLongerOfTwoOverlappingDetectorsWins() {
    BlockMasker m = all(MaskStrategy.REDACT);
    assertThat(m.mask("via ::ffff:192.0.2.1 now")).isEqualTo("via [IPV6] now");
    Masker.Session s = m.open();
    assertThat(s.push("mail bob@10.0.0.1.example.com") + s.finish()).isEqualTo("mail [EMAIL]");
    assertThat(s.counts()).isEqualTo(Map.of("email", 1));
  }

  @Test
  void sessionReleasesAllButAPossiblyIncompleteValueAndCounts() {
    BlockMasker m = all(MaskStrategy.REDACT);
    Masker.Session s = m.open();
    assertThat(s.push("a@example.com and b@exa")).isEqualTo("[EMAIL] and ");
    // the space could still belong to a phone number or a card in groups
    assertThat(s.push("mple.org, 123-45-6789")).isEqualTo("[EMAIL],");
    assertThat(s.push(" is mine.")).isEqualTo(" [US_SSN] is ");
    assertThat(s.finish()).isEqualTo("mine.");
    assertThat(s.counts()).isEqualTo(Map.of("email", 2, "us-ssn", 1));
  }

  @Test
  void maskEqualsASessionOnTheWholeText() {
    BlockMasker m = all(MaskStrategy.REDACT);
    String text = "x 4111111111111111 y a@b.co";
    Masker.Session s = m.open();
    assertThat(s.push(text) + s.finish()).isEqualTo(m.mask(text));
  }

  @Test
  void holdBackIsTheLongestDetectorDecision() {
    assertThat(all(MaskStrategy.REDACT).maxHoldBack())
        .isEqualTo(PrivateKeyDetector.MAX_LENGTH + Detector.LOOKAHEAD);
    assertThat(
            new BlockMasker(
                    List.of(Detectors.builtIn("us-ssn"), Detectors.builtIn("ipv4")),
                    MaskStrategy.REDACT,
                    null)
                .maxHoldBack())
        .isEqualTo(15 + Detector.LOOKAHEAD);
  }

  @Test
  void maxHoldBackBelowWhatADetectorNeedsIsRefusedNamingIt() {
    assertThatThrownBy(() -> new BlockMasker(Detectors.all(), MaskStrategy.REDACT, null, 4096))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "max-hold-back 4096 is too small: detector jwt needs "
                + (JwtDetector.MAX_LENGTH + Detector.LOOKAHEAD)
                + " chars");
  }

  @Test
  void fromPolicyBuildsCustomAndWordDetectors() {
    Policy.Masking masking =
        new Policy.Masking(
            List.of("email"),
            List.of(new Policy.CustomPattern("employee-id", "EMP-[0-9]{6}")),
            List.of(
                new Policy.WordList("codename", List.of("Project Nightingale", "Falcon"), true)),
            MaskStrategy.REDACT,
            null,
            null,
            Set.of());
    BlockMasker m = BlockMasker.from(masking, name -> null);
    assertThat(m.mask("EMP-123456 on project nightingale and FALCON, not Falconry, mail x@y.org"))
        .isEqualTo("[EMPLOYEE_ID] on [CODENAME] and [CODENAME], not Falconry, mail [EMAIL]");
    assertThat(m.maxHoldBack()).isEqualTo(Policy.Masking.DEFAULT_MAX_HOLD_BACK);
  }

  @Test
  void fromPolicyReadsTheHashKeyFromEnvOrFile(@TempDir Path dir) throws Exception {
    Policy.Masking fromEnv =
        new Policy.Masking(List.of("email"), null, null, MaskStrategy.HASH, "MASK_KEY", null, null);
    String a =
        BlockMasker.from(
                fromEnv,
                name -> name.equals("MASK_KEY") ? "0123456789abcdef0123456789abcdef" : null)
            .mask("a@b.co");
    Path file = dir.resolve("key");
    Files.writeString(file, "0123456789abcdef0123456789abcdef\n");
    Policy.Masking fromFile =
        new Policy.Masking(List.of("email"), null, null, MaskStrategy.HASH, null, file, null);
    assertThat(BlockMasker.from(fromFile, name -> null).mask("a@b.co")).isEqualTo(a);

    assertThatThrownBy(() -> BlockMasker.from(fromEnv, name -> null))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("masking hash key: environment variable MASK_KEY is not set");
    assertThatThrownBy(() -> BlockMasker.from(fromEnv, name -> "tooshort"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("masking hash key in environment variable MASK_KEY must be at least 16 bytes");
    Policy.Masking missing =
        new Policy.Masking(
            List.of("email"), null, null, MaskStrategy.HASH, null, dir.resolve("nope"), null);
    assertThatThrownBy(() -> BlockMasker.from(missing, name -> null))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("masking hash key: cannot read file ");
  }

  @Test
  void toStringNeverShowsTheKey() {
    assertThat(all(MaskStrategy.HASH).toString())
        .doesNotContain("0123456789abcdef")
        .contains("hash");
  }
}
