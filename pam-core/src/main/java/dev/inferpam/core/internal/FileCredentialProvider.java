package dev.inferpam.core.internal;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.Objects;

/**
 * Reads the upstream credential from a file ({@code upstream.credential.from-file}), such as a
 * mounted Kubernetes or Docker secret, and picks up a rotated secret without a restart.
 *
 * <p>Each call reads the file's attributes (one {@code stat}, following symbolic links as
 * Kubernetes secret mounts need) and re-reads the contents only when the last-modified time,
 * size or file identity changed; otherwise the cached value is returned. Surrounding
 * whitespace, including the trailing newline most editors add, is stripped. The header value is
 * {@code scheme + " " + secret}, or the bare secret when the scheme is empty.
 *
 * <p>A missing, unreadable, empty, non-UTF-8 or oversized ({@value #MAX_BYTES} bytes) file, or
 * one holding a character that may not appear in a header value, gives
 * {@link CredentialUnavailableException} naming the path, never the contents. The outcome,
 * failure included, is cached until the file changes, so a bad file is not re-read per request.
 * {@link #toString()} never shows the value.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use. Readers see an immutable snapshot; a
 * change is re-read by one thread at a time while the others wait for its result.
 */
public final class FileCredentialProvider implements CredentialProvider {

  /** Largest credential file read; anything bigger is not a header value. */
  public static final int MAX_BYTES = 64 * 1024;

  private final String header;
  private final String scheme;
  private final Path file;
  private final Object lock = new Object();
  private volatile Snapshot snapshot;

  /**
   * @param header header to set, e.g. {@code Authorization}
   * @param scheme prefix such as {@code Bearer}; {@code ""} for the bare secret
   * @param file   file holding the secret; need not exist yet
   * @throws IllegalArgumentException when the header is blank or the scheme is not one token
   */
  public FileCredentialProvider(String header, String scheme, Path file) {
    this.header = CredentialProviders.checkHeader(header);
    this.scheme = CredentialProviders.checkScheme(scheme);
    this.file = Objects.requireNonNull(file, "file");
  }

  @Override
  public Credential current() throws CredentialUnavailableException {
    Stamp stamp = stamp();
    Snapshot seen = snapshot;
    if (seen == null || !seen.stamp.equals(stamp)) {
      synchronized (lock) {
        seen = snapshot;
        if (seen == null || !seen.stamp.equals(stamp)) {
          // The stamp was taken before reading: a write racing with the read changes the
          // stamp, so the next call reads again instead of keeping a half-written value.
          seen = load(stamp);
          snapshot = seen;
        }
      }
    }
    if (seen.credential == null) throw new CredentialUnavailableException(seen.error);
    return seen.credential;
  }

  private Stamp stamp() throws CredentialUnavailableException {
    try {
      BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
      if (!attributes.isRegularFile()) {
        throw new CredentialUnavailableException("credential file " + file + " is not a regular file");
      }
      return new Stamp(attributes.lastModifiedTime(), attributes.size(), attributes.fileKey());
    } catch (IOException e) {
      throw new CredentialUnavailableException(unreadable(e));
    }
  }

  private Snapshot load(Stamp stamp) {
    byte[] bytes;
    try (InputStream in = Files.newInputStream(file)) {
      bytes = in.readNBytes(MAX_BYTES + 1);
    } catch (IOException e) {
      return Snapshot.failed(stamp, unreadable(e));
    }
    if (bytes.length > MAX_BYTES) {
      return Snapshot.failed(stamp, "credential file " + file + " is larger than " + MAX_BYTES + " bytes");
    }
    String decoded = StrictUtf8.decode(bytes);
    if (decoded == null) return Snapshot.failed(stamp, "credential file " + file + " is not valid UTF-8");
    String secret = decoded.strip();
    if (secret.isEmpty()) return Snapshot.failed(stamp, "credential file " + file + " is empty");
    if (!CredentialProviders.isHeaderSafe(secret)) {
      return Snapshot.failed(stamp, "credential file " + file
          + " holds a character not allowed in a header value");
    }
    return new Snapshot(stamp, new Credential(header, CredentialProviders.headerValue(scheme, secret)), null);
  }

  /** Says why without the exception's own message, which for some providers quotes content. */
  private String unreadable(IOException e) {
    if (e instanceof NoSuchFileException) return "credential file " + file + " does not exist";
    if (e instanceof AccessDeniedException) return "credential file " + file + " is not readable (access denied)";
    return "credential file " + file + " could not be read (" + e.getClass().getSimpleName() + ")";
  }

  @Override
  public String toString() {
    return "FileCredentialProvider[" + header + " from file " + file + "]";
  }

  /** What identifies one version of the file; {@code fileKey} catches an atomic replace. */
  private record Stamp(FileTime modified, long size, Object fileKey) {}

  /** The result of reading one version: a credential, or the reason there is none. */
  private record Snapshot(Stamp stamp, Credential credential, String error) {
    static Snapshot failed(Stamp stamp, String error) {
      return new Snapshot(stamp, null, error);
    }
  }
}
