package dev.inferpam.core.internal;

/**
 * A compiled glob: {@code *} matches within one path segment ({@code /} excluded), {@code **}
 * across segments. Case-sensitive. Immutable and thread-safe.
 */
public final class Glob {
  private final String pattern;

  private Glob(String pattern) {
    this.pattern = pattern;
  }

  /** Compiles {@code pattern}; throws {@link IllegalArgumentException} saying why it is invalid. */
  public static Glob compile(String pattern) {
    throw new UnsupportedOperationException("TODO");
  }

  public boolean matches(String text) {
    throw new UnsupportedOperationException("TODO");
  }

  public String pattern() {
    return pattern;
  }

  @Override
  public String toString() {
    return pattern;
  }
}
