package dev.inferpam.core.internal.credentials;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.core.internal.http.StrictUtf8;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Reads the upstream credential from a file ({@code upstream.credential.from-file}), such as a
 * mounted Kubernetes or Docker secret, and picks up a rotated secret without a restart.
 *
 * <p>The file's attributes are looked at (one {@code stat}, following symbolic links as
 * Kubernetes secret mounts need) at most once per {@link #CHECK_INTERVAL} of the clock while it
 * gives a credential, by the first call after the interval has passed, and by every call while it
 * gives none; the contents are re-read only when the last-modified time, size or file identity
 * changed. Other calls return the value held: a rotated file is in use within a second, and a
 * request costs no system call. Surrounding whitespace, including the
 * trailing newline most editors add, is stripped. The header value is
 * {@code scheme + " " + secret}, or the bare secret when the scheme is empty.
 *
 * <p>A missing, unreadable, empty, non-UTF-8 or oversized ({@value #MAX_BYTES} bytes) file, or
 * one holding a character that may not appear in a header value, gives
 * {@link CredentialUnavailableException} naming the path, never the contents. A failure is
 * kept until a look finds the file changed, so a bad file is not re-read per request (only its
 * attributes are). {@link #toString()} never shows the value.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use. Readers see an immutable snapshot; a look
 * at the file is made by one thread at a time while the others that find it due wait for its
 * result.
 */
public final class FileCredentialProvider implements CredentialProvider {

  /** Largest credential file read; anything bigger is not a header value. */
  public static final int MAX_BYTES = 64 * 1024;

  /** Longest time between two looks at the file's attributes. */
  public static final Duration CHECK_INTERVAL = Duration.ofSeconds(1);

  private final String header;
  private final String scheme;
  private final Path file;
  private final Clock clock;

  /** One look at a time; a lock, not a monitor, so that a virtual thread reading the file is not pinned. */
  private final ReentrantLock lock = new ReentrantLock();

  private volatile Snapshot snapshot;

  /**
   * @param header header to set, e.g. {@code Authorization}
   * @param scheme prefix such as {@code Bearer}; {@code ""} for the bare secret
   * @param file   file holding the secret; need not exist yet
   * @param clock  times the looks at the file (an engine passes its own clock)
   * @throws IllegalArgumentException when the header is blank or the scheme is not one token
   */
  public FileCredentialProvider(String header, String scheme, Path file, Clock clock) {
    this.header = CredentialProviders.checkHeader(header);
    this.scheme = CredentialProviders.checkScheme(scheme);
    this.file = Objects.requireNonNull(file, "file");
    this.clock = Objects.requireNonNull(clock, "clock");
  }

  @Override
  public Credential current() throws CredentialUnavailableException {
    Snapshot seen = snapshot;
    long now = clock.millis();
    if (!fresh(seen, now)) seen = look(now);
    if (seen.credential == null) throw new CredentialUnavailableException(seen.error);
    return seen.credential;
  }

  /**
   * Whether {@code seen} holds without a look: a credential looked at less than the interval ago.
   * A failure never holds (a file caught mid-write, empty, is looked at again by the next call),
   * and a clock that went back makes a look due.
   */
  private static boolean fresh(Snapshot seen, long now) {
    return seen != null
        && seen.credential != null
        && now >= seen.checked
        && now - seen.checked < CHECK_INTERVAL.toMillis();
  }

  /** Looks at the file's attributes, re-reading it when they changed; one thread at a time. */
  private Snapshot look(long now) {
    lock.lock();
    try {
      Snapshot seen = snapshot;
      if (fresh(seen, now)) return seen; // another thread looked meanwhile
      Stamp stamp;
      try {
        stamp = stamp();
      } catch (CredentialUnavailableException e) {
        seen = Snapshot.failed(null, e.getMessage(), now);
        snapshot = seen;
        return seen;
      }
      if (seen != null && stamp.equals(seen.stamp)) {
        seen = seen.lookedAt(now);
      } else {
        seen = load(stamp, now);
        // The stamp was taken before reading: when a write raced with the read, the file's
        // attributes differ now, and the next call looks again instead of keeping what may be
        // half of the new value for the interval.
        if (!stamp.equals(stampOrNull())) seen = seen.lookedAt(now - CHECK_INTERVAL.toMillis());
      }
      snapshot = seen;
      return seen;
    } finally {
      lock.unlock();
    }
  }

  private Stamp stampOrNull() {
    try {
      return stamp();
    } catch (CredentialUnavailableException e) {
      return null;
    }
  }

  private Stamp stamp() throws CredentialUnavailableException {
    try {
      BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
      if (!attributes.isRegularFile()) {
        throw new CredentialUnavailableException(
            "credential file " + file + " is not a regular file");
      }
      return new Stamp(attributes.lastModifiedTime(), attributes.size(), attributes.fileKey());
    } catch (IOException e) {
      throw new CredentialUnavailableException(unreadable(e));
    }
  }

  private Snapshot load(Stamp stamp, long now) {
    byte[] bytes;
    try (InputStream in = Files.newInputStream(file)) {
      bytes = in.readNBytes(MAX_BYTES + 1);
    } catch (IOException e) {
      return Snapshot.failed(stamp, unreadable(e), now);
    }
    if (bytes.length > MAX_BYTES) {
      return Snapshot.failed(
          stamp, "credential file " + file + " is larger than " + MAX_BYTES + " bytes", now);
    }
    String decoded = StrictUtf8.decode(bytes);
    if (decoded == null)
      return Snapshot.failed(stamp, "credential file " + file + " is not valid UTF-8", now);
    String secret = decoded.strip();
    if (secret.isEmpty())
      return Snapshot.failed(stamp, "credential file " + file + " is empty", now);
    if (!CredentialProviders.isHeaderSafe(secret)) {
      return Snapshot.failed(
          stamp,
          "credential file " + file + " holds a character not allowed in a header value",
          now);
    }
    return new Snapshot(
        stamp, new Credential(header, CredentialProviders.headerValue(scheme, secret)), null, now);
  }

  /** Says why without the exception's own message, which for some providers quotes content. */
  private String unreadable(IOException e) {
    if (e instanceof NoSuchFileException) return "credential file " + file + " does not exist";
    if (e instanceof AccessDeniedException)
      return "credential file " + file + " is not readable (access denied)";
    return "credential file " + file + " could not be read (" + e.getClass().getSimpleName() + ")";
  }

  @Override
  public String toString() {
    return "FileCredentialProvider[" + header + " from file " + file + "]";
  }

  /** What identifies one version of the file; {@code fileKey} catches an atomic replace. */
  private record Stamp(FileTime modified, long size, Object fileKey) {}

  /**
   * The result of the last look: a credential, or the reason there is none; {@code stamp} is
   * {@code null} when the attributes could not be read, {@code checked} the clock's milliseconds
   * at the look.
   */
  private record Snapshot(Stamp stamp, Credential credential, String error, long checked) {
    static Snapshot failed(Stamp stamp, String error, long checked) {
      return new Snapshot(stamp, null, error, checked);
    }

    Snapshot lookedAt(long now) {
      return new Snapshot(stamp, credential, error, now);
    }
  }
}
