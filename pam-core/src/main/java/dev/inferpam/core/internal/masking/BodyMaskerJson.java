package dev.inferpam.core.internal.masking;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * JSON-aware masking, fail closed: every string, keys included, is masked on its own, except a
 * string value directly under one of the {@link #UNTOUCHED} keys; numbers, booleans and nulls are
 * kept. Numbers keep their exact text (embeddings pass bit-exact). SSE events and NDJSON lines
 * are masked the same way by splicing ({@link JsonSplice}); the trees here ({@link #maskTree},
 * {@link #write}) only build the events those maskers make up for held-back tails.
 */
final class BodyMaskerJson {
  /**
   * Keys whose <em>string</em> value is never masked: structural fields, base64 embeddings, and
   * opaque tokens a client must get back unchanged. Only a string right under such a key is kept:
   * an object or array under it is masked like any other (fail closed).
   */
  static final Set<String> UNTOUCHED =
      Set.of(
          "embedding",
          "embeddings",
          "id",
          "object",
          "model",
          "role",
          "type",
          "finish_reason",
          "stop_reason",
          "system_fingerprint",
          "created",
          "signature",
          "encrypted_content",
          "item_id",
          "call_id",
          "tool_call_id",
          "tool_use_id");

  private static final JsonMapper MAPPER =
      JsonMapper.builder()
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
          .configure(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES, false)
          .build();
  private static final JsonFactory FACTORY = MAPPER.getFactory();

  /** Resolved once: looking the tree serializer up on every event was a measurable cost. */
  private static final ObjectWriter TREE_WRITER = MAPPER.writerFor(JsonNode.class);

  private static final ObjectReader TREE_READER = MAPPER.readerFor(JsonNode.class);

  private BodyMaskerJson() {}

  /** The JSON value of {@code text}, or {@code null} when it is not exactly one JSON value. */
  static JsonNode parse(String text) {
    try {
      JsonNode node = TREE_READER.readTree(text);
      return node == null || node.isMissingNode() ? null : node;
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  /** The JSON value of UTF-8 {@code json}, or {@code null} when it is not exactly one JSON value. */
  static JsonNode parse(byte[] json) {
    try {
      JsonNode node = TREE_READER.readTree(json);
      return node == null || node.isMissingNode() ? null : node;
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  /** Compact JSON of {@code node}. */
  static String write(JsonNode node) {
    try {
      return TREE_WRITER.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      // Cannot happen for a tree that was parsed under the same limits.
      throw new IllegalStateException("JSON tree not writable", e);
    }
  }

  /**
   * Masks the strings of {@code node} in place, keys included (a renamed key keeps its place);
   * returns the node to use (a new one for a string).
   */
  static JsonNode maskTree(JsonNode node, BodyMaskerValues values) {
    if (node.isTextual()) return TextNode.valueOf(values.mask(node.textValue()));
    if (node instanceof ObjectNode object) {
      boolean renamed = false;
      for (Map.Entry<String, JsonNode> field : object.properties()) {
        String key = field.getKey();
        renamed |= !values.mask(key).equals(key);
        JsonNode value = field.getValue();
        if (value.isTextual() ? !UNTOUCHED.contains(key) : value.isContainerNode()) {
          field.setValue(maskTree(value, values));
        }
      }
      if (renamed) renameKeys(object, values);
    } else if (node instanceof ArrayNode array) {
      for (int i = 0; i < array.size(); i++) {
        JsonNode value = array.get(i);
        if (value.isTextual() || value.isContainerNode()) array.set(i, maskTree(value, values));
      }
    }
    return node;
  }

  /**
   * Puts the members of {@code object} back under their masked keys, in order (two keys masked
   * alike become one member, the later value kept). Counts only the values found, not again.
   */
  private static void renameKeys(ObjectNode object, BodyMaskerValues values) {
    List<Map.Entry<String, JsonNode>> members = new ArrayList<>();
    for (Map.Entry<String, JsonNode> field : object.properties())
      members.add(Map.entry(field.getKey(), field.getValue()));
    object.removeAll();
    BodyMaskerValues uncounted = values.fork();
    for (Map.Entry<String, JsonNode> member : members)
      object.set(uncounted.mask(member.getKey()), member.getValue());
  }

  /**
   * Masks a whole JSON document, giving UTF-8; {@code null} when it is not exactly one JSON value
   * (the caller then masks it as text). A document in which nothing needs masking, the usual
   * case, is returned as it came (the same array, formatting kept); otherwise it is written
   * again, compact, with the masked string values. Counts go to {@code values} only on success.
   */
  static byte[] maskDocument(byte[] json, BodyMaskerValues values) {
    BlockMasker block = values.block();
    if (block != null && QuietJson.isQuiet(json, block))
      return json; // the usual case, without a parser
    return maskParsed(json, values);
  }

  /** {@link #maskDocument} with a parser, whatever the document. */
  static byte[] maskParsed(byte[] json, BodyMaskerValues values) {
    BodyMaskerValues tally = values.fork();
    List<String> masked = new ArrayList<>();
    int outcome;
    try (JsonParser p = FACTORY.createParser(json)) {
      outcome =
          copy(
              p,
              null,
              v -> {
                String m = tally.mask(v);
                masked.add(m);
                return m;
              });
    } catch (IOException | RuntimeException e) {
      return null;
    }
    if (outcome == INVALID) return null;
    values.addAll(tally);
    if (outcome == UNCHANGED && isStrictUtf8(json)) return json;
    // Something was masked, or the bytes are not strict UTF-8 (an overlong form Jackson decoded
    // without complaint, which another decoder would read otherwise): write the document again,
    // from the values as they were scanned and masked in the first pass.
    Iterator<String> replay = masked.iterator();
    StringWriter out = new StringWriter(json.length + 16);
    try (JsonParser p = FACTORY.createParser(json);
        JsonGenerator g = FACTORY.createGenerator(out)) {
      copy(p, g, v -> replay.next());
    } catch (IOException e) {
      throw new IllegalStateException("JSON document not writable a second time", e);
    }
    return out.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** Whether {@code b} is UTF-8 as the JDK's strict decoder reads it (no overlong forms, no surrogates). */
  private static boolean isStrictUtf8(byte[] b) {
    int i = 0;
    while (i < b.length && b[i] >= 0) i++;
    if (i == b.length) return true; // plain ASCII, the usual case
    return dev.inferpam.core.internal.http.StrictUtf8.decode(b) != null;
  }

  private static final int INVALID = -1;
  private static final int UNCHANGED = 0;
  private static final int CHANGED = 1;

  /**
   * Walks one root value token by token, masking with {@code mask} (in document order) every key
   * and every string value not right under an {@link #UNTOUCHED} key, and writing every token to
   * {@code g} when there is one; {@link #INVALID} when there is no root value or more than one,
   * else whether a string changed.
   */
  private static int copy(JsonParser p, JsonGenerator g, UnaryOperator<String> mask)
      throws IOException {
    int depth = 0;
    int roots = 0;
    boolean changed = false;
    String field = null; // the key of the value about to come, null in arrays
    JsonToken t;
    while ((t = p.nextToken()) != null) {
      if (depth == 0 && roots++ > 0) return INVALID;
      switch (t) {
        case START_OBJECT, START_ARRAY -> {
          depth++;
          if (g != null) {
            if (t == JsonToken.START_OBJECT) g.writeStartObject();
            else g.writeStartArray();
          }
        }
        case END_OBJECT, END_ARRAY -> {
          depth--;
          if (g != null) {
            if (t == JsonToken.END_OBJECT) g.writeEndObject();
            else g.writeEndArray();
          }
        }
        case FIELD_NAME -> {
          String name = p.currentName();
          String out = mask.apply(name);
          changed |= !out.equals(name);
          if (g != null) g.writeFieldName(out);
        }
        case VALUE_STRING -> {
          String v = p.getText();
          boolean keep = field != null && UNTOUCHED.contains(field);
          String out = keep ? v : mask.apply(v);
          changed |= !out.equals(v);
          if (g != null) g.writeString(out);
        }
        case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> {
          if (g != null) g.writeNumber(p.getText()); // exact text
        }
        case VALUE_TRUE, VALUE_FALSE -> {
          if (g != null) g.writeBoolean(t == JsonToken.VALUE_TRUE);
        }
        case VALUE_NULL -> {
          if (g != null) g.writeNull();
        }
        default -> {
          return INVALID; // VALUE_EMBEDDED_OBJECT, NOT_AVAILABLE: not from a text parser
        }
      }
      field = t == JsonToken.FIELD_NAME ? p.currentName() : null;
    }
    if (roots != 1 || depth != 0) return INVALID;
    return changed ? CHANGED : UNCHANGED;
  }

  /** Text of a string member, or null. */
  static String text(JsonNode node, String name) {
    JsonNode v = node == null ? null : node.get(name);
    return v != null && v.isTextual() ? v.textValue() : null;
  }

  /** An int member, or {@code otherwise}. */
  static int integer(JsonNode node, String name, int otherwise) {
    JsonNode v = node == null ? null : node.get(name);
    return v != null && v.isIntegralNumber() && v.canConvertToInt() ? v.intValue() : otherwise;
  }

  /** A whole JSON body: buffered up to the cap, then masked value by value. */
  static final class Body implements BodyMasker.Framing {
    private final BodyMaskerValues values;
    private final int cap;
    private ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    private BodyMaskerText fallback;

    Body(BodyMaskerValues values, int cap) {
      this.values = values;
      this.cap = cap;
    }

    @Override
    public String push(byte[] b, int off, int len) {
      if (fallback != null) return fallback.push(b, off, len);
      if ((long) buffer.size() + len <= cap) {
        buffer.write(b, off, len);
        return "";
      }
      fallback = new BodyMaskerText(values); // too large to parse: stream it as text
      byte[] held = buffer.toByteArray();
      buffer = null;
      return fallback.push(held, 0, held.length) + fallback.push(b, off, len);
    }

    @Override
    public String finish() {
      return new String(finishBytes(), StandardCharsets.UTF_8);
    }

    @Override
    public byte[] finishBytes() {
      if (fallback != null) return fallback.finish().getBytes(StandardCharsets.UTF_8);
      byte[] body = buffer.toByteArray();
      buffer = null;
      if (body.length == 0) return body;
      byte[] masked = maskDocument(body, values);
      if (masked != null) return masked;
      BodyMaskerText text = new BodyMaskerText(values);
      return (text.push(body, 0, body.length) + text.finish()).getBytes(StandardCharsets.UTF_8);
    }
  }
}
