package dev.inferpam.core.internal.masking;

import dev.inferpam.core.Policy.MaskStrategy;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Locale;
import java.util.Objects;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * What a found value is replaced with. One instance per masking session: it holds a {@link Mac},
 * which is not thread-safe, so <b>not thread-safe</b>; a fresh one per session is cheap.
 *
 * <ul>
 *   <li>{@code REDACT}: {@code [LABEL]}, the label being the detector name upper-cased with
 *       {@code -} as {@code _}: {@code [EMAIL]}, {@code [CREDIT_CARD]}.</li>
 *   <li>{@code PARTIAL}: every letter and digit becomes {@code *} except the last 4; other
 *       characters (separators such as {@code -}, space, {@code .}, {@code @}) are kept, so
 *       {@code 4111 1111 1111 1234} becomes {@code **** **** **** 1234} and the shape stays
 *       readable. A value with fewer than 8 letters/digits is masked completely: keeping 4 of it
 *       would reveal half or more.</li>
 *   <li>{@code HASH}: {@code [LABEL:xxxxxx]}, the first 6 hex digits of
 *       HMAC-SHA256(key, normalized value). Normalized: for {@code credit-card}, {@code iban},
 *       {@code phone} and {@code us-ssn} only letters and digits, upper-cased (so spacing does
 *       not change the pseudonym); for {@code email} lower-cased; otherwise as found. 24 bits:
 *       a pseudonym links mentions, it is not a unique id.</li>
 * </ul>
 */
final class Replacements {
  static final int KEEP = 4;

  private final MaskStrategy strategy;
  private final byte[] key;
  private Mac mac;

  Replacements(MaskStrategy strategy, byte[] key) {
    this.strategy = Objects.requireNonNull(strategy, "strategy");
    this.key = key;
    if (strategy == MaskStrategy.HASH && (key == null || key.length == 0)) {
      throw new IllegalArgumentException("strategy hash needs a key");
    }
  }

  static String label(String detector) {
    return detector.toUpperCase(Locale.ROOT).replace('-', '_');
  }

  String replace(String detector, String value) {
    return switch (strategy) {
      case REDACT -> "[" + label(detector) + "]";
      case PARTIAL -> partial(value);
      case HASH -> "[" + label(detector) + ":" + hash(detector, value) + "]";
    };
  }

  static String partial(String value) {
    int alnum = 0;
    for (int i = 0; i < value.length(); i++) {
      if (Character.isLetterOrDigit(value.charAt(i))) alnum++;
    }
    int keep = alnum >= 2 * KEEP ? KEEP : 0;
    StringBuilder out = new StringBuilder(value.length());
    int seen = 0;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (Character.isLetterOrDigit(c)) {
        seen++;
        out.append(seen > alnum - keep ? c : '*');
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }

  private String hash(String detector, String value) {
    try {
      if (mac == null) {
        mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
      }
      byte[] h = mac.doFinal(normalize(detector, value).getBytes(StandardCharsets.UTF_8));
      StringBuilder hex = new StringBuilder(6);
      for (int i = 0; i < 3; i++) hex.append(String.format("%02x", h[i]));
      return hex.toString();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 unavailable", e); // every Java 17 runtime has it
    }
  }

  static String normalize(String detector, String value) {
    return switch (detector) {
      case "credit-card", "iban", "phone", "us-ssn" -> {
        StringBuilder b = new StringBuilder(value.length());
        for (int i = 0; i < value.length(); i++) {
          char c = value.charAt(i);
          if (Character.isLetterOrDigit(c)) b.append(Character.toUpperCase(c));
        }
        yield b.toString();
      }
      case "email" -> value.toLowerCase(Locale.ROOT);
      default -> value;
    };
  }
}
