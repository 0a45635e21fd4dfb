package dev.inferpam.api;

import java.util.Objects;

/**
 * An upstream credential: the header to set and its full value (scheme included).
 * {@link #toString()} never shows the value.
 */
public record Credential(String header, String value) {
  public Credential {
    Objects.requireNonNull(header, "header");
    Objects.requireNonNull(value, "value");
    if (header.isBlank()) throw new IllegalArgumentException("header must not be blank");
  }

  @Override
  public String toString() {
    return "Credential[" + header + ": ██]";
  }
}
