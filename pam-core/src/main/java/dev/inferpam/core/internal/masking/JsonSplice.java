package dev.inferpam.core.internal.masking;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Changes to a JSON value read by {@link JsonSpans}, written by splicing them into the original
 * bytes: a string (or key) given new text is written again, JSON-escaped, at its span; a member
 * added to an object goes after its last member; every other byte is copied as it came (key
 * order, white space, number spellings, the escapes of other strings). With no change, the
 * output is the input.
 *
 * <p>{@link #maskAll} is the JSON-aware masking of {@link BodyMaskerJson} done this way: every
 * key and every string value not right under an {@link BodyMaskerJson#UNTOUCHED} key is masked
 * on its own, and only the strings the masker changed are written again.
 *
 * <p>Not thread-safe; reused from one value to the next ({@link #reset}).
 */
final class JsonSplice {
  /** {@link BodyMaskerJson#UNTOUCHED} as bytes, by length. */
  private static final byte[][][] UNTOUCHED = new byte[32][][];

  static {
    for (String key : BodyMaskerJson.UNTOUCHED) {
      byte[] k = key.getBytes(StandardCharsets.US_ASCII);
      byte[][] same = UNTOUCHED[k.length];
      same = same == null ? new byte[1][] : Arrays.copyOf(same, same.length + 1);
      same[same.length - 1] = k;
      UNTOUCHED[k.length] = same;
    }
  }

  private final JsonSpans json;

  /** Per token: its new text (a string or key), or null. */
  private String[] strings = new String[64];

  /** Per object token: members to add, as raw JSON ({@code "k":v,...}), or null. */
  private StringBuilder[] inserts = new StringBuilder[64];

  /** Per token: whether it is in {@link #touched}. */
  private boolean[] marked = new boolean[64];

  /** The tokens with an edit, in the order they got their first one. */
  private int[] touched = new int[16];

  private int touchedCount;

  JsonSplice(JsonSpans json) {
    this.json = json;
  }

  /** Forgets every edit; call after each {@link JsonSpans#parse}. */
  void reset() {
    for (int i = 0; i < touchedCount; i++) {
      int t = touched[i];
      strings[t] = null;
      inserts[t] = null;
      marked[t] = false;
    }
    touchedCount = 0;
    int n = json.count();
    if (strings.length < n) {
      allocate(Math.max(n, strings.length * 2));
    } else if (strings.length > 4096 && n <= 64) {
      allocate(64);
    }
  }

  private void allocate(int size) {
    strings = new String[size];
    inserts = new StringBuilder[size];
    marked = new boolean[size];
  }

  private void touch(int t) {
    if (marked[t]) return;
    marked[t] = true;
    if (touchedCount == touched.length) touched = Arrays.copyOf(touched, touchedCount * 2);
    touched[touchedCount++] = t;
  }

  /**
   * Gives the string or key token {@code t} the text {@code text}; any other value token is
   * replaced whole (its subtree and edits in it included) by that string.
   */
  void setString(int t, String text) {
    touch(t);
    strings[t] = text;
  }

  /**
   * Gives the string token {@code t} the text {@code text}, or keeps its bytes (escapes and all)
   * when that is the text they read as.
   */
  void setOrKeep(int t, String text, String original) {
    if (text.equals(original)) {
      strings[t] = null; // touched stays: writeTo skips a token without edits
    } else {
      setString(t, text);
    }
  }

  /** The text token {@code t} is written with: its new text, else its own. */
  String currentText(int t) {
    return strings[t] != null ? strings[t] : json.text(t);
  }

  /** Adds the member {@code "key": "value"} at the end of the object token {@code object}. */
  void addMember(int object, String key, String value) {
    touch(object);
    StringBuilder members = inserts[object];
    if (members == null) members = inserts[object] = new StringBuilder();
    else members.append(',');
    ByteSink k = new ByteSink().appendJsonString(key).append((byte) ':').appendJsonString(value);
    members.append(new String(k.array(), 0, k.size(), StandardCharsets.UTF_8));
  }

  /**
   * Masks the value as {@link BodyMaskerJson#maskTree} would: every key and every string value
   * except one right under an {@link BodyMaskerJson#UNTOUCHED} key, each on its own; a string
   * that already has new text is left alone. Only the strings that change are edited.
   */
  void maskAll(BodyMaskerValues values) {
    BlockMasker block = values.block();
    boolean quietText = block != null && block.quietInQuietSet();
    for (int t = 0, n = json.count(); t < n; t++) {
      int kind = json.kind(t);
      if (kind != JsonSpans.KEY && kind != JsonSpans.STRING) continue;
      if (strings[t] != null) continue;
      if (kind == JsonSpans.STRING
          && t > 0
          && json.kind(t - 1) == JsonSpans.KEY
          && untouched(t - 1)) continue;
      if (json.end(t) - json.start(t) == 2) continue; // "" stays ""
      if (quietText && json.quiet(t)) continue;
      String text = json.text(t);
      String masked = values.mask(text);
      if (masked != text && !masked.equals(text)) setString(t, masked);
    }
  }

  /** Whether the key token {@code k} is one of {@link BodyMaskerJson#UNTOUCHED}. */
  private boolean untouched(int k) {
    if (json.escaped(k)) return BodyMaskerJson.UNTOUCHED.contains(json.text(k));
    byte[] b = json.bytes();
    int s = json.start(k) + 1;
    int len = json.end(k) - 1 - s;
    byte[][] same = len < UNTOUCHED.length ? UNTOUCHED[len] : null;
    if (same == null) return false;
    for (byte[] u : same) {
      if (Arrays.equals(b, s, s + len, u, 0, len)) return true;
    }
    return false;
  }

  /**
   * Writes the value with its edits: the bytes as they came between them, or, when
   * {@code compact}, without the white space between tokens (so that it fits one line).
   */
  void writeTo(ByteSink out, boolean compact) {
    byte[] b = json.bytes();
    int at = json.from();
    int to = json.to();
    if (touchedCount == 0) {
      copy(out, b, at, to, compact);
      return;
    }
    // the edits in document order: by position, a token's edit before an insert at its end
    long[] order = new long[touchedCount];
    int edits = 0;
    for (int i = 0; i < touchedCount; i++) {
      int t = touched[i];
      int pos;
      if (strings[t] != null) pos = json.start(t);
      else if (inserts[t] != null) pos = insertAt(t);
      else continue; // an edit taken back
      order[edits++] = ((long) pos << 32) | t;
    }
    Arrays.sort(order, 0, edits);
    for (int i = 0; i < edits; i++) {
      long o = order[i];
      int t = (int) o;
      if (strings[t] != null) {
        int s = json.start(t);
        if (s < at) continue; // inside a value replaced whole
        copy(out, b, at, s, compact);
        out.appendJsonString(strings[t]);
        at = json.end(t);
      }
      if (inserts[t] != null) {
        int p = insertAt(t);
        if (p < at) continue;
        copy(out, b, at, p, compact);
        if (json.first(t) >= 0) out.append((byte) ',');
        out.append(inserts[t]);
        at = p;
      }
    }
    copy(out, b, at, to, compact);
  }

  /** Where members are added to the object {@code t}: after its last member, else after its brace. */
  private int insertAt(int t) {
    int last = -1;
    for (int k = json.first(t); k >= 0; k = json.after(t, k)) last = k;
    return last < 0 ? json.start(t) + 1 : json.end(last + 1); // last + 1: the key's value
  }

  /** {@code b[from, to)}, whole tokens; without the white space between them when {@code compact}. */
  private static void copy(ByteSink out, byte[] b, int from, int to, boolean compact) {
    if (!compact) {
      out.append(b, from, to - from);
      return;
    }
    int i = from;
    while (i < to) {
      byte c = b[i];
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        i++;
        continue;
      }
      if (c != '"') {
        out.append(c);
        i++;
        continue;
      }
      int s = i++;
      while (b[i] != '"') i += b[i] == '\\' ? 2 : 1;
      i++;
      out.append(b, s, i - s);
    }
  }
}
