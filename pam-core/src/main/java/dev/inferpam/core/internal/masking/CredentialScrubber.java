package dev.inferpam.core.internal.masking;

import dev.inferpam.core.internal.JsonEscapes;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * Replaces the exact values of one exchange's credentials (the upstream credential it injects,
 * the caller's own token or key) wherever they appear in what is passed back: response bodies,
 * streamed ones too, response headers, and the record. Immutable and thread-safe; each
 * {@link #open()} stream is for one body and one thread at a time.
 *
 * <p><b>What is looked for.</b> Of each credential header value: the value as sent and, for a
 * {@code <scheme> <token>} value ({@code Bearer sk-...}), the token alone; the token (or a value
 * without a scheme) also as it reads inside a JSON string (quotes, backslashes and control chars
 * escaped, and once more with {@code /} written {@code \/}) and percent-encoded (RFC 3986
 * unreserved chars kept), when those spellings differ from it. Values
 * shorter than {@value #MIN_LENGTH} chars are not looked for: replacing every occurrence of a
 * short string would break bodies, and such a value is no secret anyway.
 *
 * <p><b>Replacement.</b> A found value becomes {@code [REDACTED:credential]} fitted to its own
 * length in bytes (padded with {@code *} before the closing bracket, or shortened to
 * {@code [***]}), so that a body whose only change is a scrubbed credential keeps its
 * {@code Content-Length}. It never contains a quote, backslash or line break, so JSON and
 * server-sent events stay well-formed.
 *
 * <p><b>Cost.</b> One pass over the bytes, eight at a time where no value's first two bytes
 * stand (the usual text), else testing each against tables of the values' first byte
 * and first two bytes; a stream holds back only a trailing run that is still a proper prefix of a value
 * (at most the longest value's length minus one byte), so a body without one is passed on as it
 * came, without a copy.
 */
public final class CredentialScrubber {
  /** The shortest credential value that is looked for. */
  public static final int MIN_LENGTH = 8;

  /** What a found credential becomes, fitted to its length. */
  public static final String REPLACEMENT = "[REDACTED:credential]";

  private static final byte[] NONE = new byte[0];

  /** Every form looked for, UTF-8, longest first (so a longer form wins at the same start). */
  private final byte[][] forms;

  private final String[] texts;
  private final boolean[] first = new boolean[256];

  /** The first two bytes of every form, hashed to a bit: most first-byte hits stop at it. */
  private final long[] pairs = new long[PAIR_BITS / 64];

  private static final int PAIR_BITS = 4096;

  /**
   * The distinct first two bytes of the forms, each broadcast to the eight bytes of a word
   * ({@code lead[k]} the first, {@code next[k]} the second), for skipping eight positions at a
   * time where none starts a form; {@code null} when there are too many pairs for that to pay.
   */
  private final long[] lead;

  private final long[] next;
  private static final int MAX_SKIP_PAIRS = 8;
  private static final long ONES = 0x0101010101010101L;
  private static final long HIGHS = 0x8080808080808080L;
  private static final java.lang.invoke.VarHandle LONGS =
      java.lang.invoke.MethodHandles.byteArrayViewVarHandle(
          long[].class, java.nio.ByteOrder.LITTLE_ENDIAN);

  private CredentialScrubber(Set<String> values) {
    String[] given = values.toArray(String[]::new);
    byte[][] bytes = new byte[given.length][];
    Integer[] order = new Integer[given.length];
    for (int i = 0; i < given.length; i++) {
      bytes[i] = given[i].getBytes(StandardCharsets.UTF_8);
      order[i] = i;
    }
    Arrays.sort(order, Comparator.comparingInt((Integer i) -> bytes[i].length).reversed());
    this.texts = new String[given.length];
    this.forms = new byte[given.length][];
    for (int i = 0; i < given.length; i++) {
      texts[i] = given[order[i]];
      forms[i] = bytes[order[i]];
      first[forms[i][0] & 0xFF] = true;
      int pair = pair(forms[i][0], forms[i][1]); // every form has MIN_LENGTH bytes or more
      pairs[pair >>> 6] |= 1L << pair;
    }
    Set<Integer> distinct = new LinkedHashSet<>();
    for (byte[] form : forms) distinct.add((form[0] & 0xFF) << 8 | (form[1] & 0xFF));
    if (distinct.size() <= MAX_SKIP_PAIRS) {
      lead = new long[distinct.size()];
      next = new long[distinct.size()];
      int k = 0;
      for (int p : distinct) {
        lead[k] = (p >>> 8) * ONES;
        next[k] = (p & 0xFF) * ONES;
        k++;
      }
    } else {
      lead = null;
      next = null;
    }
  }

  /**
   * Whether no form's first two bytes stand at any of the positions {@code i .. i+7} (reads
   * {@code in[i, i+9)}). Each pair is compared eight positions at once: a byte of
   * {@code word ^ broadcast} is zero where they are equal, and the zero-byte test below never
   * misses one (it may flag a byte that is not, which only sends the scan the slow way).
   */
  private boolean noFormStartsIn(byte[] in, int i) {
    long here = (long) LONGS.get(in, i);
    long after = (long) LONGS.get(in, i + 1);
    for (int k = 0; k < lead.length; k++) {
      long a = here ^ lead[k];
      long b = after ^ next[k];
      if (((a - ONES) & ~a & (b - ONES) & ~b & HIGHS) != 0) return false;
    }
    return true;
  }

  private static int pair(byte a, byte b) {
    return ((a & 0xFF) * 31 + (b & 0xFF)) & (PAIR_BITS - 1);
  }

  /**
   * A scrubber for the credential header values {@code values} (nulls ignored), or {@code null}
   * when none is long enough to look for: then there is nothing to do, and nothing to pay.
   */
  public static CredentialScrubber of(Collection<String> values) {
    Set<String> forms = new LinkedHashSet<>();
    for (String value : values) {
      if (value == null) continue;
      String v = value.strip();
      int space = v.indexOf(' ');
      if (space > 0) {
        // "<scheme> <token>": the whole value as sent, and the token in every form (which also
        // covers any spelling of the whole value that keeps the token as it is)
        if (v.length() >= MIN_LENGTH) forms.add(v);
        addForms(forms, v.substring(space + 1).strip());
      } else {
        addForms(forms, v);
      }
    }
    return forms.isEmpty() ? null : new CredentialScrubber(forms);
  }

  private static void addForms(Set<String> forms, String v) {
    if (v.length() < MIN_LENGTH) return;
    forms.add(v);
    boolean escaped = false;
    boolean reserved = false;
    for (int i = 0; i < v.length(); i++) {
      char c = v.charAt(i);
      escaped |= c == '"' || c == '\\' || c == '/' || c < 0x20;
      reserved |= !unreserved(c);
    }
    if (escaped) { // most tokens (base64url, hex, JWTs) need neither form: no work for them
      String json = jsonEscaped(v);
      forms.add(json);
      forms.add(json.replace("/", "\\/"));
    }
    if (reserved) forms.add(percentEncoded(v));
  }

  private static boolean unreserved(int c) {
    return (c >= 'A' && c <= 'Z')
        || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9')
        || c == '-'
        || c == '.'
        || c == '_'
        || c == '~';
  }

  /** {@code v} as the inside of a JSON string, with the escapes a JSON writer uses. */
  static String jsonEscaped(String v) {
    return JsonEscapes.append(new StringBuilder(v.length() + 8), v, false).toString();
  }

  /** {@code v} percent-encoded as UTF-8, RFC 3986 unreserved chars kept, upper-case hex. */
  static String percentEncoded(String v) {
    StringBuilder out = new StringBuilder(v.length() + 8);
    for (byte b : v.getBytes(StandardCharsets.UTF_8)) {
      int c = b & 0xFF;
      if (unreserved(c)) {
        out.append((char) c);
      } else {
        out.append('%')
            .append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
            .append(Character.toUpperCase(Character.forDigit(c & 0xF, 16)));
      }
    }
    return out.toString();
  }

  /** The replacement for a value of {@code length} bytes: exactly {@code length} ASCII bytes. */
  static byte[] replacement(int length) {
    byte[] out = new byte[length];
    if (length >= REPLACEMENT.length()) {
      byte[] label = REPLACEMENT.getBytes(StandardCharsets.US_ASCII);
      System.arraycopy(label, 0, out, 0, label.length - 1);
      Arrays.fill(out, label.length - 1, length - 1, (byte) '*');
    } else {
      Arrays.fill(out, 1, length - 1, (byte) '*');
      out[0] = '[';
    }
    out[length - 1] = ']';
    return out;
  }

  /** {@code text} with every credential form replaced; {@code text} itself when none is in it. */
  public String scrub(String text) {
    if (text == null || text.isEmpty()) return text;
    String out = text;
    for (String form : texts) {
      if (out.contains(form)) {
        out =
            out.replace(
                form,
                new String(
                    replacement(form.getBytes(StandardCharsets.UTF_8).length),
                    StandardCharsets.US_ASCII));
      }
    }
    return out;
  }

  /** Whether {@code text} holds a credential form. */
  public boolean holds(String text) {
    if (text == null) return false;
    for (String form : texts) {
      if (text.contains(form)) return true;
    }
    return false;
  }

  /** A stream for one body. */
  public Stream open() {
    return new Stream();
  }

  /**
   * Scrubs one body as its bytes pass: what {@link #push} returns may be delivered at once; a
   * trailing run that could still become a credential is held until the next push decides it,
   * or {@link #finish()}. The output, joined, is the same however the body was cut.
   */
  public final class Stream {
    private byte[] held = NONE;
    private int found;

    private Stream() {}

    /**
     * The bytes of {@code b[off, off+len)} (after those held from before) that may be delivered
     * now, scrubbed; {@code b} itself when it is the whole array and nothing changed or was held.
     */
    public byte[] push(byte[] b, int off, int len) {
      byte[] in;
      int from;
      int end;
      if (held.length == 0) {
        in = b;
        from = off;
        end = off + len;
      } else {
        in = new byte[held.length + len];
        System.arraycopy(held, 0, in, 0, held.length);
        System.arraycopy(b, off, in, held.length, len);
        from = 0;
        end = in.length;
      }
      return scan(in, from, end, false);
    }

    /** Ends the body: the held bytes, scrubbed (a run that never completed is not a credential). */
    public byte[] finish() {
      byte[] in = held;
      held = NONE;
      return in.length == 0 ? NONE : scan(in, 0, in.length, true);
    }

    /** Credentials replaced so far. */
    public int found() {
      return found;
    }

    private byte[] scan(byte[] in, int from, int end, boolean last) {
      ByteArrayOutputStream out = null;
      int copied = from; // in[from, copied) already written to out
      int hold = end;
      int i = from;
      while (i < end) {
        if (lead != null) {
          while (i + 9 <= end && noFormStartsIn(in, i)) i += 8;
          if (i >= end) break;
        }
        if (!first[in[i] & 0xFF]) {
          i++;
          continue;
        }
        if (i + 1 < end) {
          int pair = pair(in[i], in[i + 1]);
          if ((pairs[pair >>> 6] & 1L << pair) == 0) {
            i++;
            continue;
          }
        }
        int length = 0;
        boolean open = false;
        for (byte[] form : forms) {
          int n = Math.min(form.length, end - i);
          if (!Arrays.equals(in, i, i + n, form, 0, n)) continue;
          if (n == form.length) {
            length = n;
            break;
          }
          if (!last) {
            open = true; // a longer form could still complete here: decide with more bytes
            break;
          }
        }
        if (open) {
          hold = i;
          break;
        }
        if (length == 0) {
          i++;
          continue;
        }
        if (out == null) out = new ByteArrayOutputStream(end - from + 16);
        out.write(in, copied, i - copied);
        out.writeBytes(replacement(length));
        found++;
        i += length;
        copied = i;
      }
      held = hold < end ? Arrays.copyOfRange(in, hold, end) : NONE;
      if (out == null) {
        if (from == 0 && hold == in.length) return in;
        return Arrays.copyOfRange(in, from, hold);
      }
      out.write(in, copied, hold - copied);
      return out.toByteArray();
    }
  }
}
