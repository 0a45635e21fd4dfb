package dev.inferpam.core.internal.masking;

import java.util.List;
import java.util.Map;

/** Sample values of every built-in detector, and prose around them, for masking tests. */
final class MaskingSamples {
  private MaskingSamples() {}

  static final String PEM =
      "-----BEGIN RSA PRIVATE KEY-----\n"
          + "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
          + "KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n"
          + "-----END RSA PRIVATE KEY-----";

  static final String JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl";

  /** Detector name -> values it must mask (each also masked when surrounded by prose). */
  static final Map<String, List<String>> VALUES =
      Map.of(
          "email", List.of("alice@example.com", "bob.smith+ml@mail.example.co.uk"),
          "phone", List.of("+44 20 7946 0958", "(415) 555-2671", "415-555-2671", "+14155552671"),
          "credit-card", List.of("4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881"),
          "us-ssn", List.of("123-45-6789", "078-05-1120"),
          "iban", List.of("DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"),
          "ipv4", List.of("192.168.1.20", "10.0.0.1"),
          "ipv6", List.of("2001:db8::8a2e:370:7334", "fe80::1"),
          "aws-access-key", List.of("AKIAIOSFODNN7EXAMPLE"),
          "jwt", List.of(JWT),
          "private-key", List.of(PEM));

  /**
   * Everyday words and near misses that must stay. Not "version": it deliberately keeps a
   * following IPv4-looking value (see the ipv4 detector), which would count as a leak here.
   */
  static final List<String> WORDS =
      List.of(
          "the",
          "model",
          "answered",
          "with",
          "a",
          "short",
          "summary",
          "of",
          "order",
          "12345",
          "1.2.3",
          "v2.0.1",
          "at",
          "10:30",
          "on",
          "2024-05-01",
          "and",
          "then",
          "said:",
          "thanks!",
          "(see",
          "below)",
          "e-mail",
          "me",
          "@home",
          "user@",
          "+1",
          "4111",
          "-",
          "Ünïcödé",
          "日本語",
          "emoji 😀",
          "x.y",
          "A1",
          "AKIA",
          "eyJ",
          "-----",
          "BEGIN");

  static final List<String> SEPARATORS = List.of(" ", " ", " ", ", ", ". ", "\n", "\n\n", " — ");
}
