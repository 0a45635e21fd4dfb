package dev.inferpam.core;

import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.internal.recording.RecordCodec;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Objects;

/**
 * The recording line format of {@code docs/recording.md} for stores other than the JSONL
 * directory (module {@code pam-postgres} keeps the same lines in a table): a record's line, its
 * place in a hash chain, and reading a line back. A line encoded here is byte for byte the line
 * the JSONL recorder writes for the same record and {@code prev}.
 *
 * <p>Stateless and thread-safe, except that a {@link MessageDigest} from {@link #digest()} is
 * used by one thread at a time.
 */
public final class RecordFormat {
  /** {@code prev} of a chain's first line: 64 zeros. */
  public static final String GENESIS = RecordCodec.GENESIS;

  private RecordFormat() {}

  /**
   * The start of {@code record}'s line, everything before {@code ,"prev":}, as UTF-8 bytes: the
   * costly part of encoding, which any thread may do; {@link #chain} then adds the links.
   *
   * @throws RuntimeException when the record cannot be encoded (a bug)
   */
  public static byte[] lineStart(SessionRecord record) {
    return RecordCodec.bodyBytes(Objects.requireNonNull(record, "record"));
  }

  /** A SHA-256 digest for {@link #chain} and {@link #check}; one per thread. */
  public static MessageDigest digest() {
    return RecordCodec.sha256();
  }

  /**
   * The whole line of a record chained to {@code prev} (without a line break), and its hash.
   *
   * @param lineStart what {@link #lineStart} returned
   * @param prev      the hash of the line before in the chain, or {@link #GENESIS}
   * @param digest    a digest of {@link #digest()}, used by this thread only
   * @throws IllegalArgumentException when {@code prev} is not 64 lower-case hex digits
   */
  public static Line chain(byte[] lineStart, String prev, MessageDigest digest) {
    if (!RecordCodec.isHash(prev))
      throw new IllegalArgumentException("prev must be 64 lower-case hex digits");
    byte[] tail = RecordCodec.tail(lineStart, prev, digest);
    String text =
        new String(lineStart, StandardCharsets.UTF_8)
            + new String(tail, 0, tail.length - 1, StandardCharsets.US_ASCII);
    return new Line(text, prev, RecordCodec.hashOfTail(tail));
  }

  /**
   * Reads the links at the end of a stored line and recomputes its hash from its bytes.
   *
   * @return the links, and whether the hash the line carries is the hash of its bytes; {@code
   *     null} when the line does not end with {@code ,"prev":"<64 hex>","hash":"<64 hex>"}}
   */
  public static Check check(String line, MessageDigest digest) {
    byte[] bytes = line.getBytes(StandardCharsets.UTF_8);
    RecordCodec.Links links = RecordCodec.links(bytes, bytes.length);
    if (links == null) return null;
    String computed = RecordCodec.hashOf(bytes, bytes.length - RecordCodec.HASH_TAIL, digest);
    return new Check(links.prev(), links.hash(), computed.equals(links.hash()));
  }

  /**
   * Decodes an {@code exchange} or {@code intent} line.
   *
   * @throws IllegalArgumentException when the text is not such a line
   */
  public static SessionRecord decode(String line) {
    return RecordCodec.decode(line);
  }

  /**
   * A record's time as its line holds it: whole milliseconds.
   *
   * @return {@code time} cut to milliseconds, or {@code null}
   */
  public static java.time.Instant recordedTime(java.time.Instant time) {
    return time == null ? null : time.truncatedTo(java.time.temporal.ChronoUnit.MILLIS);
  }

  /**
   * One chained line.
   *
   * @param text the line, without a line break
   * @param prev the hash it is chained to
   * @param hash its own hash
   */
  public record Line(String text, String prev, String hash) {}

  /**
   * What {@link #check} found at the end of a line.
   *
   * @param prev   the {@code prev} the line carries
   * @param hash   the {@code hash} the line carries
   * @param intact whether {@code hash} is the hash of the line's bytes
   */
  public record Check(String prev, String hash, boolean intact) {}
}
