package dev.inferpam.core.stream;

/** The argument checks the framers share. */
final class Framers {
  private Framers() {}

  /**
   * {@code max}, a framer's size limit.
   *
   * @throws IllegalArgumentException naming {@code name} when {@code max <= 0}
   */
  static long positive(long max, String name) {
    if (max <= 0) throw new IllegalArgumentException(name + " must be > 0, was " + max);
    return max;
  }
}
