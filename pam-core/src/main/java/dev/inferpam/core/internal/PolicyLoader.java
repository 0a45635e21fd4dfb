package dev.inferpam.core.internal;

import dev.inferpam.core.Policy;
import java.nio.file.Path;

/** Loads and validates policy files. */
public final class PolicyLoader {
  private PolicyLoader() {}

  public static Policy load(Path file) {
    throw new UnsupportedOperationException("TODO");
  }

  public static Policy parse(String text, String source) {
    throw new UnsupportedOperationException("TODO");
  }
}
