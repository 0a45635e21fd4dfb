package dev.inferpam.core;

/**
 * A policy that cannot be loaded or built. The message names the key path and the bad value,
 * e.g. {@code entitlements[1].models[0]: invalid glob "llama-["}.
 */
public class PolicyException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public PolicyException(String message) {
    super(message);
  }

  public PolicyException(String message, Throwable cause) {
    super(message, cause);
  }
}
