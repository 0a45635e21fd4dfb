package dev.inferpam.testkit;

import dev.inferpam.api.Masker;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.masking.BlockMasker;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Nested;

/** The built-in maskers against the contract: the policy's detectors under each strategy, and the identity. */
class BuiltInMaskerContractTest {
  static final List<MaskerContract.Sensitive> SAMPLES =
      List.of(
          new MaskerContract.Sensitive(
              "write to alice.smith@example.com before noon", "alice.smith@example.com"),
          new MaskerContract.Sensitive(
              "card 4111 1111 1111 1111 was charged", "4111 1111 1111 1111"),
          new MaskerContract.Sensitive(
              "{\"key\":\"AKIAIOSFODNN7EXAMPLE\",\"ok\":true}", "AKIAIOSFODNN7EXAMPLE"),
          new MaskerContract.Sensitive(
              "IBAN DE89 3704 0044 0532 0130 00 on file", "DE89 3704 0044 0532 0130 00"),
          new MaskerContract.Sensitive("staff EMP-123456 asked", "EMP-123456"),
          new MaskerContract.Sensitive("from 10.20.30.40 at dawn", "10.20.30.40"));

  abstract static class Detectors extends MaskerContract {
    abstract String strategy();

    @Override
    protected Masker createMasker() {
      String yaml =
          """
          version: 1
          masking:
            detectors: [email, credit-card, aws-access-key, iban, ipv4]
            custom:
              - {name: employee-id, pattern: "EMP-[0-9]{6}"}
            strategy: %s
          """
              .formatted(strategy());
      if (strategy().equals("hash")) yaml += "  hash-key-from-env: MASK_KEY\n";
      Policy p = Policy.parse(yaml);
      return BlockMasker.from(
          p.masking(), Map.of("MASK_KEY", "0123456789abcdef0123456789abcdef")::get);
    }

    @Override
    protected List<Sensitive> sensitiveSamples() {
      return SAMPLES;
    }
  }

  @Nested
  class Redact extends Detectors {
    @Override
    String strategy() {
      return "redact";
    }
  }

  @Nested
  class Partial extends Detectors {
    @Override
    String strategy() {
      return "partial";
    }
  }

  @Nested
  class Hash extends Detectors {
    @Override
    String strategy() {
      return "hash";
    }
  }

  @Nested
  class Identity extends MaskerContract {
    @Override
    protected Masker createMasker() {
      return Masker.IDENTITY;
    }

    @Override
    protected List<Sensitive> sensitiveSamples() {
      return List.of();
    }
  }
}
