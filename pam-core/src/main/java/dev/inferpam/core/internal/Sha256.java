package dev.inferpam.core.internal;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * SHA-256 digests without a provider look-up per call: fresh digests are clones of one
 * prototype (the look-up {@code MessageDigest.getInstance} does costs more than the hashing of a
 * token or a small body).
 *
 * <p><b>Thread-safety:</b> safe; each call returns a digest of its own.
 */
public final class Sha256 {
  private static final MessageDigest PROTOTYPE = lookUp();

  private Sha256() {}

  /** A fresh SHA-256 digest (not thread-safe itself; one per use). */
  public static MessageDigest newDigest() {
    try {
      return (MessageDigest) PROTOTYPE.clone();
    } catch (CloneNotSupportedException e) {
      return lookUp(); // a provider whose digests cannot be cloned
    }
  }

  /** The SHA-256 of {@code bytes}. */
  public static byte[] of(byte[] bytes) {
    return newDigest().digest(bytes);
  }

  private static MessageDigest lookUp() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required of every Java platform", e);
    }
  }
}
