package dev.inferpam.core.internal.quotas;

import dev.inferpam.core.stream.NdjsonScanner;
import dev.inferpam.core.stream.SseField;
import dev.inferpam.core.stream.SseScanner;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Finds token usage in a response body as it streams past, without holding the body.
 *
 * <p>Fed every delivered chunk through {@link #accept}; {@link #usage()} then gives
 * {@code prompt_tokens} and {@code completion_tokens} (and {@code total_tokens} when the upstream
 * sent it) as far as they were found. Where they come from, by response type:
 * <ul>
 *   <li>JSON ({@code application/json}, {@code *+json}): the top-level {@code usage} object —
 *       OpenAI {@code prompt_tokens}/{@code completion_tokens}/{@code total_tokens}, Anthropic and
 *       the OpenAI Responses API {@code input_tokens}/{@code output_tokens} (read as prompt and
 *       completion) — and Ollama's top-level {@code prompt_eval_count}/{@code eval_count}.</li>
 *   <li>Server-sent events ({@code text/event-stream}): the same, per event's {@code data}: the
 *       OpenAI final chunk with {@code usage} (sent when the caller set
 *       {@code stream_options.include_usage}), Anthropic {@code message_start}
 *       ({@code message.usage}) and {@code message_delta} ({@code usage}), and the OpenAI Responses
 *       API {@code response.completed} ({@code response.usage}).</li>
 *   <li>NDJSON ({@code application/x-ndjson}, Ollama streaming): the same, per line; Ollama puts
 *       its counts on the final {@code done:true} line.</li>
 * </ul>
 * A later value replaces an earlier one (Anthropic's {@code message_delta} count is cumulative).
 *
 * <p>Bounded: a small state machine walks each JSON document byte by byte, tracking only nesting
 * and the keys of the first two object levels; only the value of a key that can carry usage is
 * copied (at most {@value #MAX_VALUE_BYTES} bytes, larger ones are skipped) and then read from
 * its bytes ({@link UsageValues}; a streaming parser, no tree, for what that reader does not
 * cover). Strings that are neither keys nor copied are skipped in a tight
 * loop. No line, event or body is ever buffered, so a long completion or a huge Ollama
 * {@code context} array costs nothing but the walk. Malformed input yields no usage, never an exception.
 *
 * <p>Not thread-safe: one instance per response, fed by one thread at a time.
 */
public final class UsageExtractor {
  /** Largest value of a usage-carrying key that is copied for parsing. */
  static final int MAX_VALUE_BYTES = 8 * 1024;

  public static final String PROMPT_TOKENS = "prompt_tokens";
  public static final String COMPLETION_TOKENS = "completion_tokens";
  public static final String TOTAL_TOKENS = "total_tokens";

  /**
   * Object-key paths (first two levels) whose values can carry usage: {@code usage},
   * {@code prompt_eval_count}, {@code eval_count}, {@code message.usage}, {@code response.usage}.
   * Keys are recognised from their bytes (see {@link #keyCode}), without building strings.
   */
  private static final String USAGE_PATH = "usage";

  private static final String PROMPT_EVAL_COUNT_PATH = "prompt_eval_count";
  private static final String EVAL_COUNT_PATH = "eval_count";
  private static final String MESSAGE_USAGE_PATH = "message.usage";
  private static final String RESPONSE_USAGE_PATH = "response.usage";

  private static final int OTHER_KEY = 0;
  private static final int USAGE_KEY = 1;
  private static final int PROMPT_EVAL_COUNT_KEY = 2;
  private static final int EVAL_COUNT_KEY = 3;
  private static final int MESSAGE_KEY = 4;
  private static final int RESPONSE_KEY = 5;
  private static final byte[][] KEY_NAMES = {
    null,
    "usage".getBytes(java.nio.charset.StandardCharsets.US_ASCII),
    "prompt_eval_count".getBytes(java.nio.charset.StandardCharsets.US_ASCII),
    "eval_count".getBytes(java.nio.charset.StandardCharsets.US_ASCII),
    "message".getBytes(java.nio.charset.StandardCharsets.US_ASCII),
    "response".getBytes(java.nio.charset.StandardCharsets.US_ASCII)
  };

  /** Which of the keys of interest {@code key[0..length)} spells, or {@link #OTHER_KEY}. */
  private static int keyCode(byte[] key, int length) {
    for (int code = USAGE_KEY; code < KEY_NAMES.length; code++) {
      byte[] name = KEY_NAMES[code];
      if (name.length == length && java.util.Arrays.equals(key, 0, length, name, 0, length))
        return code;
    }
    return OTHER_KEY;
  }

  private enum Framing {
    NONE,
    JSON,
    SSE,
    NDJSON
  }

  private final Framing framing;
  private final Scanner scanner = new Scanner();
  private final SseScanner sse;
  private final NdjsonScanner ndjson;
  private Long prompt;
  private Long completion;
  private Long total;

  private UsageExtractor(Framing framing) {
    this.framing = framing;
    this.sse = framing == Framing.SSE ? new SseScanner(new SseData()) : null;
    this.ndjson = framing == Framing.NDJSON ? new NdjsonScanner(new NdjsonLines()) : null;
  }

  /**
   * An extractor for a response of this {@code Content-Type} (parameters ignored, may be
   * {@code null}); for types that carry no usage it finds nothing and costs nothing.
   */
  public static UsageExtractor forContentType(String contentType) {
    return new UsageExtractor(framing(contentType));
  }

  private static Framing framing(String contentType) {
    if (contentType == null) return Framing.NONE;
    String type = contentType;
    int semicolon = type.indexOf(';');
    if (semicolon >= 0) type = type.substring(0, semicolon);
    type = type.trim().toLowerCase(Locale.ROOT);
    if (type.equals("text/event-stream")) return Framing.SSE;
    if (type.equals("application/x-ndjson") || type.equals("application/ndjson"))
      return Framing.NDJSON;
    if (type.equals("application/json") || type.endsWith("+json")) return Framing.JSON;
    return Framing.NONE;
  }

  /** True for a response type whose body is delivered as a stream of events or lines. */
  public static boolean isStreamingType(String contentType) {
    Framing f = framing(contentType);
    return f == Framing.SSE || f == Framing.NDJSON;
  }

  /** Feeds the next delivered bytes. */
  public void accept(byte[] b, int off, int len) {
    switch (framing) {
      case JSON -> json(b, off, len);
      case SSE -> sse.push(b, off, len);
      case NDJSON -> ndjson.push(b, off, len);
      default -> {}
    }
  }

  /** How far {@link #acceptLast} looks before the new bytes: for a key split across the two. */
  static final int KEY_LOOKBEHIND = 16;

  private static final VarHandle LONGS =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final long ONES = 0x0101010101010101L;
  private static final long HIGH_BITS = 0x8080808080808080L;
  private static final long QUOTES = '"' * ONES;
  private static final long E_BYTES = 'e' * ONES;
  private static final long T_BYTES = 't' * ONES;
  private static final long G_BYTES = 'g' * ONES;
  private static final long N_BYTES = 'n' * ONES;

  /**
   * Feeds the body's last bytes, {@code b[off..off+len)}, when nothing follows them; the bytes fed
   * before them, if any, end at {@code off} in the same array. Those last bytes are not walked at
   * all when they cannot add to the usage found: no value of interest is being read, and they
   * hold no key of interest ({@link #mayHoldUsageKey}, looking a few bytes back for a key split
   * across the two). Most of a long stream is such bytes.
   */
  public void acceptLast(byte[] b, int off, int len) {
    if (framing == Framing.NONE) return;
    if (!scanner.holdsKey() && !mayHoldUsageKey(b, Math.max(0, off - KEY_LOOKBEHIND), off + len))
      return;
    accept(b, off, len);
  }

  /**
   * Whether {@code b[from..to)} may hold a key this extractor takes: {@code "usage"} or a key ending
   * in {@code eval_count"}. Keys are recognised from their plain bytes only (an escaped one is
   * never taken), so bytes without either hold none.
   */
  static boolean mayHoldUsageKey(byte[] b, int from, int to) {
    // A key ends with a quote at least six bytes after from. Eight positions are looked at a
    // time: those holding a quote after 'e' or 't' after 'g' or 'n' (the ends of both keys; most
    // quotes in a stream are not) are checked byte by byte.
    int i = from + 6;
    for (; i + 8 <= to; i += 8) {
      long candidates =
          zeroBytes((long) LONGS.get(b, i) ^ QUOTES)
              & (zeroBytes((long) LONGS.get(b, i - 1) ^ E_BYTES)
                  | zeroBytes((long) LONGS.get(b, i - 1) ^ T_BYTES))
              & (zeroBytes((long) LONGS.get(b, i - 2) ^ G_BYTES)
                  | zeroBytes((long) LONGS.get(b, i - 2) ^ N_BYTES));
      while (candidates != 0) {
        if (keyEndsAt(b, from, i + (Long.numberOfTrailingZeros(candidates) >>> 3))) return true;
        candidates &= candidates - 1;
      }
    }
    for (; i < to; i++) if (keyEndsAt(b, from, i)) return true;
    return false;
  }

  /**
   * The high bit of each byte of {@code x} that is zero, and possibly of a 0x01 byte above a zero
   * one (never of a byte that is neither): callers check each position found.
   */
  private static long zeroBytes(long x) {
    return (x - ONES) & ~x & HIGH_BITS;
  }

  /** Whether {@code b[i]} is the closing quote of {@code "usage"} or of {@code ...eval_count}. */
  private static boolean keyEndsAt(byte[] b, int from, int i) {
    if (b[i] != '"') return false;
    if (i - from >= 6
        && b[i - 1] == 'e'
        && b[i - 2] == 'g'
        && b[i - 3] == 'a'
        && b[i - 4] == 's'
        && b[i - 5] == 'u'
        && b[i - 6] == '"') return true;
    return i - from >= 10
        && b[i - 1] == 't'
        && b[i - 2] == 'n'
        && b[i - 3] == 'u'
        && b[i - 4] == 'o'
        && b[i - 5] == 'c'
        && b[i - 6] == '_'
        && b[i - 7] == 'l'
        && b[i - 8] == 'a'
        && b[i - 9] == 'v'
        && b[i - 10] == 'e';
  }

  /** Walks JSON text (a whole body, an SSE event's data, an NDJSON line) piece by piece. */
  private void json(byte[] b, int off, int len) {
    int end = off + len;
    // Most of a body is the inside of strings (the generated text); those runs are skipped in a
    // tight loop up to the next byte that can matter, instead of stepping the state machine.
    for (int i = off; i < end; i++) {
      i = scanner.skipString(b, i, end);
      i = scanner.run(b, i, end);
      if (i < end) scanner.accept(b[i]);
    }
  }

  /** The token counts found so far: any of prompt, completion and total tokens; empty when none. */
  public Map<String, Long> usage() {
    Map<String, Long> out = new LinkedHashMap<>();
    if (prompt != null) out.put(PROMPT_TOKENS, prompt);
    if (completion != null) out.put(COMPLETION_TOKENS, completion);
    if (total != null) out.put(TOTAL_TOKENS, total);
    return out;
  }

  /**
   * Server-sent events, framed by {@link SseScanner}: the {@code data} lines of one event are
   * joined by LF (whitespace to JSON, so one document may span several lines) and walked as one
   * document; a blank line ends the event. Other fields and comments are skipped.
   */
  private final class SseData implements SseScanner.Listener {
    private boolean inData;

    @Override
    public void text(byte[] b, int off, int len) {
      if (inData) json(b, off, len);
    }

    @Override
    public void value(SseField field) {
      inData = field == SseField.DATA;
    }

    @Override
    public void lineEnd(String terminator) {
      if (inData) scanner.accept((byte) '\n');
      inData = false;
    }

    @Override
    public void blankLine(String terminator, boolean endsEvent) {
      scanner.reset();
    }

    @Override
    public void lf() {}
  }

  /** NDJSON, framed by {@link NdjsonScanner}: each line is walked as one document. */
  private final class NdjsonLines implements NdjsonScanner.Listener {
    @Override
    public void text(byte[] b, int off, int len) {
      json(b, off, len);
    }

    @Override
    public void lineEnd() {
      scanner.reset();
    }
  }

  // ---------------------------------------------------------------------------------------------

  private void found(String path, byte[] value, int length) {
    // Read directly from the bytes; only what that reader is unsure of goes to a parser.
    if (path.equals(PROMPT_EVAL_COUNT_PATH) || path.equals(EVAL_COUNT_PATH)) {
      long n = UsageValues.count(value, length);
      if (n == UsageValues.UNSURE_COUNT) n = UsageValues.countByJackson(value, length);
      if (n == UsageValues.NOT_A_COUNT) return;
      if (path.equals(PROMPT_EVAL_COUNT_PATH)) prompt = n;
      else completion = n;
      return;
    }
    Long[] counts = new Long[UsageValues.FIELDS.length];
    boolean[] present = new boolean[UsageValues.FIELDS.length];
    int outcome = UsageValues.object(value, length, counts, present);
    if (outcome == UsageValues.UNSURE) {
      java.util.Arrays.fill(counts, null);
      java.util.Arrays.fill(present, false);
      outcome = UsageValues.objectByJackson(value, length, counts, present);
    }
    if (outcome != UsageValues.TAKEN) return;
    // prompt_tokens / completion_tokens when present (even when not a count), else the
    // Anthropic and Responses API names
    prompt = or(present[0] ? counts[0] : counts[1], prompt);
    completion = or(present[2] ? counts[2] : counts[3], completion);
    total = or(counts[4], total);
  }

  private static Long or(Long found, Long before) {
    return found != null ? found : before;
  }

  /**
   * Walks one JSON document at a time and hands over the raw value of each key in
   * {@link #USAGE_PATH the paths above}. Keeps the nesting depth, whether each of the first two levels is an object,
   * the last key seen on those levels, and the value being copied — nothing else.
   */
  private final class Scanner {
    private static final int KEY_DEPTH = 2;
    private static final int MAX_KEY = 32;

    private int depth;
    private final boolean[] isObject = new boolean[KEY_DEPTH + 1];
    private final int[] keyAt = new int[KEY_DEPTH + 1];
    private boolean expectKey;
    private boolean inString;
    private boolean escape;
    private boolean stringIsKey;
    private final byte[] key = new byte[MAX_KEY];
    private int keyLength;
    private boolean keyUnusable;
    private String pendingPath;
    private int pendingDepth;
    private boolean broken;

    private boolean capturing;
    private String capturePath;
    private int captureDepth;
    private byte[] capture;
    private int captureLength;
    private boolean captureOverflow;

    /** Whether a key of interest was seen and its value is not read to its end yet. */
    boolean holdsKey() {
      return capturing || pendingPath != null;
    }

    void reset() {
      depth = 0;
      expectKey = false;
      inString = false;
      escape = false;
      stringIsKey = false;
      pendingPath = null;
      broken = false;
      capturing = false;
    }

    /**
     * Where the next byte that can change anything is, from {@code i}: past the inside of a
     * string that is neither a key nor being copied (stopping at a quote or a backslash), or
     * {@code i} itself when not in such a string; {@code end} once the document is broken (the
     * bytes given are never past the end of the document: a line or event ends outside them).
     */
    int skipString(byte[] b, int i, int end) {
      if (broken) return end;
      if (!inString || capturing || stringIsKey || escape) return i;
      while (i < end) {
        byte c = b[i];
        if (c == '"' || c == '\\') break;
        i++;
      }
      return i;
    }

    /**
     * Where the next byte that needs {@link #accept} is, from {@code i}: while a value is being
     * copied, or the walk is deeper than the key levels, nothing but strings and nesting matters
     * until the copied value ends (a comma or closing bracket at its level) or the walk climbs
     * back to the key levels (the closing bracket that does so); those bytes are stepped here in
     * a tight loop (a copied run appended at once). The byte returned is left for
     * {@code accept}, which does what the loop would not.
     */
    int run(byte[] b, int i, int end) {
      // Strings of a walk that copies nothing are skipped by skipString, faster
      if (broken || i >= end || (!capturing && (depth <= KEY_DEPTH || inString))) return i;
      // While copying, the level whose comma or closing bracket ends the value; else the deepest
      // level whose closing bracket climbs back to the key levels.
      int stop = capturing ? captureDepth : KEY_DEPTH + 1;
      int start = i;
      int d = depth;
      boolean str = inString;
      boolean esc = escape;
      for (; i < end; i++) {
        byte c = b[i];
        if (str && !esc) {
          // the inside of a string, most of the bytes: only a quote or a backslash matters
          while (c != '"' && c != '\\') {
            if (++i == end) break;
            c = b[i];
          }
          if (i == end) break;
        }
        if (str) {
          if (esc) esc = false;
          else if (c == '\\') esc = true;
          else if (c == '"') str = false;
          continue;
        }
        if (c == '"') {
          if (!capturing) break;
          str = true;
        } else if (c == '{' || c == '[') {
          d++;
        } else if (c == '}' || c == ']') {
          if (d == stop) break;
          d--;
        } else if (c == ',' && capturing && d == captureDepth) {
          break;
        }
      }
      if (i == start) return i;
      if (capturing) appendRun(b, start, i - start);
      else expectKey = false;
      depth = d;
      inString = str;
      escape = esc;
      stringIsKey = false;
      pendingPath = null;
      return i;
    }

    void accept(byte c) {
      if (broken) return;
      if (inString) {
        if (capturing) append(c);
        if (escape) {
          escape = false;
          keyUnusable |= stringIsKey; // keys of interest are plain ASCII
        } else if (c == '\\') {
          escape = true;
        } else if (c == '"') {
          inString = false;
          if (stringIsKey) keyDone();
        } else if (stringIsKey) {
          if (keyLength < MAX_KEY) key[keyLength++] = c;
          else keyUnusable = true;
        }
        return;
      }
      switch (c) {
        case '"' -> {
          if (capturing) append(c);
          pendingPath = null;
          inString = true;
          escape = false;
          stringIsKey = expectKey && depth >= 1 && depth <= KEY_DEPTH && isObject[depth];
          keyLength = 0;
          keyUnusable = false;
          expectKey = false;
        }
        case ':' -> {
          if (pendingPath != null && depth == pendingDepth && !capturing) {
            startCapture(pendingPath, depth);
          } else if (capturing) {
            append(c);
          }
          pendingPath = null;
        }
        case '{', '[' -> {
          if (capturing) append(c);
          pendingPath = null;
          depth++;
          if (depth <= KEY_DEPTH) {
            isObject[depth] = c == '{';
            keyAt[depth] = OTHER_KEY;
          }
          expectKey = c == '{';
        }
        case '}', ']' -> {
          if (capturing) {
            if (depth == captureDepth) endCapture();
            else append(c);
          }
          pendingPath = null;
          depth--;
          expectKey = false;
          if (depth < 0) broken = true;
        }
        case ',' -> {
          if (capturing) {
            if (depth == captureDepth) endCapture();
            else append(c);
          }
          pendingPath = null;
          expectKey = depth >= 1 && depth <= KEY_DEPTH && isObject[depth];
        }
        default -> {
          if (capturing) append(c);
        }
      }
    }

    private void keyDone() {
      if (capturing) return;
      if (keyUnusable) {
        keyAt[depth] = OTHER_KEY; // so a later level-2 key is not taken as under the previous key
        return;
      }
      int code = keyCode(key, keyLength);
      keyAt[depth] = code;
      String path = null;
      if (depth == 1) {
        if (code == USAGE_KEY) path = USAGE_PATH;
        else if (code == PROMPT_EVAL_COUNT_KEY) path = PROMPT_EVAL_COUNT_PATH;
        else if (code == EVAL_COUNT_KEY) path = EVAL_COUNT_PATH;
      } else if (code == USAGE_KEY) {
        if (keyAt[1] == MESSAGE_KEY) path = MESSAGE_USAGE_PATH;
        else if (keyAt[1] == RESPONSE_KEY) path = RESPONSE_USAGE_PATH;
      }
      if (path != null) {
        pendingPath = path;
        pendingDepth = depth;
      }
    }

    private void startCapture(String path, int atDepth) {
      capturing = true;
      capturePath = path;
      captureDepth = atDepth;
      captureLength = 0;
      captureOverflow = false;
      if (capture == null) capture = new byte[256];
    }

    private void appendRun(byte[] b, int off, int len) {
      if (captureOverflow) return;
      if (captureLength + len > capture.length) {
        if (captureLength + len > MAX_VALUE_BYTES) {
          captureOverflow = true;
          return;
        }
        capture =
            java.util.Arrays.copyOf(
                capture,
                Math.min(MAX_VALUE_BYTES, Math.max(capture.length * 2, captureLength + len)));
      }
      System.arraycopy(b, off, capture, captureLength, len);
      captureLength += len;
    }

    private void append(byte c) {
      if (captureOverflow) return;
      if (captureLength == capture.length) {
        if (capture.length >= MAX_VALUE_BYTES) {
          captureOverflow = true;
          return;
        }
        capture = java.util.Arrays.copyOf(capture, Math.min(MAX_VALUE_BYTES, capture.length * 2));
      }
      capture[captureLength++] = c;
    }

    private void endCapture() {
      capturing = false;
      // "usage":null is on every OpenAI chunk but the last: it carries nothing, no need to parse it
      if (!captureOverflow && !isNull(capture, captureLength))
        found(capturePath, capture, captureLength);
    }

    /** Whether {@code b[0..length)} is the JSON literal {@code null}, whitespace around it allowed. */
    private static boolean isNull(byte[] b, int length) {
      int start = 0;
      int end = length;
      while (start < end && isJsonSpace(b[start])) start++;
      while (end > start && isJsonSpace(b[end - 1])) end--;
      return end - start == 4
          && b[start] == 'n'
          && b[start + 1] == 'u'
          && b[start + 2] == 'l'
          && b[start + 3] == 'l';
    }

    private static boolean isJsonSpace(byte c) {
      return c == ' ' || c == '\t' || c == '\n' || c == '\r';
    }
  }
}
