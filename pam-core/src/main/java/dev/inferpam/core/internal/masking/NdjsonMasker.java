package dev.inferpam.core.internal.masking;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Masker;
import dev.inferpam.core.stream.NdjsonFramer;
import dev.inferpam.core.stream.NdjsonScanner;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Newline-delimited JSON (Ollama): one JSON value a line, each line delivered as soon as its
 * {@code \n} arrives. The streamed text fields ({@code message.content} and
 * {@code message.thinking} of {@code /api/chat}, {@code response} and {@code thinking} of
 * {@code /api/generate}) each go through one streaming session; the line with
 * {@code "done": true} carries the released text plus the held tails. Other lines are masked
 * JSON-aware, non-JSON lines as text.
 *
 * <p>Lines are cut as {@link NdjsonFramer} cuts them (a {@code \r} before the {@code \n} is part
 * of the terminator; a line over the cap switches the rest of the body to text), but kept as
 * bytes: a line's JSON is read in place and written back by splicing ({@link JsonSplice}), so
 * what needs no change leaves as it came. Only a line made up for the tails at the end of a body
 * without {@code "done": true}, or a done line lacking the object a tail goes in, is built as a
 * tree and written compact.
 */
final class NdjsonMasker extends FramedMasker implements NdjsonScanner.Listener {
  /** Streamed text fields, as paths: {@code "message.content"} is {@code content} in {@code message}. */
  private static final List<String> STREAMED =
      List.of("message.content", "message.thinking", "response", "thinking");

  private final long cap;
  private final NdjsonScanner scanner = new NdjsonScanner(this);
  private final ByteSink line = new ByteSink();
  private final JsonSpans json = new JsonSpans();
  private final JsonSplice splice = new JsonSplice(json);
  private final Map<String, Masker.Session> open = new LinkedHashMap<>();
  private byte[] template; // the last line that fed a stream, as delivered
  private boolean unterminated; // the last line came without its \n

  NdjsonMasker(BodyMaskerValues values, int cap) {
    super(values);
    this.cap = cap;
  }

  @Override
  void frame(byte[] b, int off, int len) {
    scanner.push(b, off, len);
  }

  @Override
  void endFrames() {
    if (fallback != null || line.size() == 0) return;
    line(line.array(), line.size(), ""); // a last line without its \n
    line.reset();
  }

  @Override
  void releaseTails() {
    releaseAll(unterminated);
  }

  @Override
  public void text(byte[] b, int off, int len) {
    if (fallback != null) {
      raw(b, off, len);
      return;
    }
    if ((long) line.size() + len > cap) { // too long a line: after the tails, the rest as text
      releaseAll(false);
      fallBack();
      if (line.size() > 0) raw(line.array(), 0, line.size());
      line.reset();
      raw(b, off, len);
      return;
    }
    line.append(b, off, len);
  }

  @Override
  public void lineEnd() {
    if (fallback != null) {
      raw(new byte[] {'\n'}, 0, 1);
      return;
    }
    int n = line.size();
    boolean cr = n > 0 && line.at(n - 1) == '\r';
    line(line.array(), cr ? n - 1 : n, cr ? "\r\n" : "\n");
    line.reset();
  }

  private void line(byte[] b, int len, String terminator) {
    unterminated = terminator.isEmpty();
    maskLine(b, len);
    out.append(terminator);
  }

  private void maskLine(byte[] b, int len) {
    if (isBlank(b, len)) {
      out.append(new String(b, 0, len, StandardCharsets.UTF_8));
      return;
    }
    int read = json.parse(b, 0, len);
    if (read == JsonSpans.BAD_UTF8) { // read it as the text it decodes to, U+FFFD included
      b = new String(b, 0, len, StandardCharsets.UTF_8).getBytes(StandardCharsets.UTF_8);
      len = b.length;
      read = json.parse(b, 0, len);
    }
    if (read != JsonSpans.OK) {
      out.append(values.mask(new String(b, 0, len, StandardCharsets.UTF_8)));
      return;
    }
    splice.reset();
    if (json.isObject(0)) {
      streamLine();
      return;
    }
    splice.maskAll(values);
    splice.writeTo(out, false);
  }

  /** Whether the line is only white space ({@link String#isBlank()} of its text). */
  private static boolean isBlank(byte[] b, int len) {
    for (int i = 0; i < len; i++) {
      byte c = b[i];
      if (c < 0) return new String(b, 0, len, StandardCharsets.UTF_8).isBlank();
      if (c != ' ' && (c < 0x09 || c > 0x0D) && (c < 0x1C || c > 0x1F)) return false;
    }
    return true;
  }

  private void streamLine() {
    List<String> paths = new ArrayList<>();
    List<Integer> tokens = new ArrayList<>();
    List<String> texts = new ArrayList<>();
    for (String path : STREAMED) {
      int v = json.member(holder(path), field(path));
      if (!json.isString(v)) continue;
      paths.add(path);
      tokens.add(v);
      texts.add(json.text(v));
      splice.setString(v, ""); // not masked twice, not counted twice
    }
    splice.maskAll(values);
    for (int i = 0; i < paths.size(); i++) {
      Masker.Session session = open.computeIfAbsent(paths.get(i), p -> values.open());
      splice.setOrKeep(tokens.get(i), session.push(texts.get(i)), texts.get(i));
    }
    int done = json.member(0, "done");
    int mark = out.size();
    if (done >= 0 && json.kind(done) == JsonSpans.TRUE) {
      List<String[]> inTree = new ArrayList<>();
      for (String path : new ArrayList<>(open.keySet())) {
        String tail = values.finish(open.remove(path));
        if (tail.isEmpty()) continue;
        int holder = inTree.isEmpty() ? holder(path) : -1; // keep the order once in a tree
        if (holder < 0) {
          inTree.add(new String[] {path, tail});
          continue;
        }
        int v = json.member(holder, field(path));
        if (json.isString(v)) splice.setString(v, splice.currentText(v) + tail);
        else if (v >= 0) splice.setString(v, tail); // a non-string member: replaced, as a put
        else splice.addMember(holder, field(path), tail);
      }
      splice.writeTo(out, false);
      if (!inTree.isEmpty()) { // a tail needs a "message" this line lacks: made in a tree
        JsonNode node = BodyMaskerJson.parse(out.copy(mark));
        if (!(node instanceof ObjectNode object))
          throw new IllegalStateException("masked line not readable as JSON");
        for (String[] t : inTree) append(object, t[0], t[1]);
        out.truncate(mark);
        out.append(BodyMaskerJson.write(object));
      }
    } else {
      splice.writeTo(out, false);
      if (!paths.isEmpty()) template = out.copy(mark);
    }
  }

  /** The object token holding the field at {@code path} in the line read, or -1. */
  private int holder(String path) {
    int dot = path.indexOf('.');
    if (dot < 0) return 0;
    int inner = json.member(0, path.substring(0, dot));
    return json.isObject(inner) ? inner : -1;
  }

  /** Ends every stream, each tail in a line like the last streamed one. */
  private void releaseAll(boolean unterminated) {
    for (String path : new ArrayList<>(open.keySet())) {
      String tail = values.finish(open.remove(path));
      if (tail.isEmpty()) continue;
      ObjectNode line = JsonNodeFactory.instance.objectNode();
      if (template != null && BodyMaskerJson.parse(template) instanceof ObjectNode t) line = t;
      for (String other : STREAMED) {
        ObjectNode holder = holder(line, other, false);
        if (holder != null && holder.has(field(other))) holder.put(field(other), "");
      }
      append(line, path, tail);
      if (unterminated) out.append((byte) '\n');
      unterminated = false;
      out.append(BodyMaskerJson.write(line)).append((byte) '\n');
    }
  }

  private static void append(ObjectNode object, String path, String tail) {
    ObjectNode holder = holder(object, path, true);
    String released = BodyMaskerJson.text(holder, field(path));
    holder.put(field(path), (released == null ? "" : released) + tail);
  }

  /** The object holding the field at {@code path}; created when {@code create}, else maybe null. */
  private static ObjectNode holder(ObjectNode object, String path, boolean create) {
    int dot = path.indexOf('.');
    if (dot < 0) return object;
    String name = path.substring(0, dot);
    if (object.get(name) instanceof ObjectNode inner) return inner;
    return create ? object.putObject(name) : null;
  }

  private static String field(String path) {
    return path.substring(path.indexOf('.') + 1);
  }
}
