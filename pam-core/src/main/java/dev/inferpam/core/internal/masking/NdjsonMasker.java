package dev.inferpam.core.internal.masking;

import static dev.inferpam.core.internal.masking.BodyMaskerJson.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Masker;
import dev.inferpam.core.stream.NdjsonFramer;
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
 */
final class NdjsonMasker extends FramedMasker implements NdjsonFramer.Handler {
  /** Streamed text fields, as paths: {@code "message.content"} is {@code content} in {@code message}. */
  private static final List<String> STREAMED =
      List.of("message.content", "message.thinking", "response", "thinking");

  private final NdjsonFramer framer;
  private final Map<String, Masker.Session> open = new LinkedHashMap<>();
  private ObjectNode template; // the last line that fed a stream
  private boolean unterminated; // the last line came without its \n

  NdjsonMasker(BodyMaskerValues values, int cap) {
    super(values);
    this.framer = new NdjsonFramer(cap, this);
  }

  @Override
  void frame(byte[] b, int off, int len) {
    framer.push(b, off, len);
  }

  @Override
  void endFrames() {
    framer.finish(); // a last line without its \n comes with terminator ""
  }

  @Override
  void releaseTails() {
    releaseAll(out, unterminated);
  }

  @Override
  public void line(String text, String terminator) {
    unterminated = terminator.isEmpty();
    out.append(maskLine(text)).append(terminator);
  }

  /** Too long a line: after releasing the streams' tails, the rest goes as text. */
  @Override
  public void overflow() {
    releaseAll(out, false);
    fallBack();
  }

  private String maskLine(String text) {
    if (text.isBlank()) return text;
    JsonNode root = BodyMaskerJson.parse(text);
    if (root == null) return values.mask(text);
    if (root instanceof ObjectNode object) return streamLine(object);
    return BodyMaskerJson.write(BodyMaskerJson.maskTree(root, values));
  }

  private String streamLine(ObjectNode object) {
    List<String> paths = new ArrayList<>();
    List<String> texts = new ArrayList<>();
    for (String path : STREAMED) {
      ObjectNode holder = holder(object, path, false);
      String value = holder == null ? null : text(holder, field(path));
      if (value == null) continue;
      paths.add(path);
      texts.add(value);
      holder.put(field(path), ""); // not masked twice, not counted twice
    }
    BodyMaskerJson.maskTree(object, values);
    for (int i = 0; i < paths.size(); i++) {
      Masker.Session session = open.computeIfAbsent(paths.get(i), p -> values.open());
      holder(object, paths.get(i), false).put(field(paths.get(i)), session.push(texts.get(i)));
    }
    JsonNode done = object.get("done");
    if (done != null && done.isBoolean() && done.booleanValue()) {
      for (String path : new ArrayList<>(open.keySet())) {
        String tail = values.finish(open.remove(path));
        if (!tail.isEmpty()) append(object, path, tail);
      }
    } else if (!paths.isEmpty()) {
      template = object;
    }
    return BodyMaskerJson.write(object);
  }

  /** Ends every stream, each tail in a line like the last streamed one. */
  private void releaseAll(StringBuilder out, boolean unterminated) {
    for (String path : new ArrayList<>(open.keySet())) {
      String tail = values.finish(open.remove(path));
      if (tail.isEmpty()) continue;
      ObjectNode line =
          template == null ? JsonNodeFactory.instance.objectNode() : template.deepCopy();
      for (String other : STREAMED) {
        ObjectNode holder = holder(line, other, false);
        if (holder != null && holder.has(field(other))) holder.put(field(other), "");
      }
      append(line, path, tail);
      if (unterminated) out.append('\n');
      unterminated = false;
      out.append(BodyMaskerJson.write(line)).append('\n');
    }
  }

  private static void append(ObjectNode object, String path, String tail) {
    ObjectNode holder = holder(object, path, true);
    String released = text(holder, field(path));
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
