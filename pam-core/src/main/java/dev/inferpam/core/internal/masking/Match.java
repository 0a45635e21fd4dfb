package dev.inferpam.core.internal.masking;

import java.util.Objects;

/**
 * One value found by a {@link Detector}: the characters {@code [start, end)} of the scanned text.
 * Immutable; the constructor refuses negative or empty spans with {@link IllegalArgumentException}.
 *
 * @param start    index of the first character, {@code >= 0}
 * @param end      index after the last character, {@code > start} (empty matches are never reported)
 * @param detector name of the detector that found it, e.g. {@code email}
 */
public record Match(int start, int end, String detector) {
  public Match {
    Objects.requireNonNull(detector, "detector");
    if (start < 0 || end <= start) {
      throw new IllegalArgumentException(
          "invalid match [" + start + ", " + end + ") of " + detector);
    }
  }

  /** Number of characters matched. */
  public int length() {
    return end - start;
  }
}
