package dev.inferpam.core.internal.masking;

import static dev.inferpam.core.internal.masking.BodyMaskerJson.integer;
import static dev.inferpam.core.internal.masking.BodyMaskerJson.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Masker;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The text streams of one SSE response: recognises the events that carry streamed text (OpenAI
 * chat and completions chunks, OpenAI Responses API deltas, Anthropic content block deltas) or
 * streamed tool-call arguments (OpenAI {@code delta.tool_calls[i].function.arguments} and
 * {@code delta.function_call.arguments}, Responses API {@code response.function_call_arguments}
 * and the other argument/input/code deltas, Anthropic {@code input_json_delta}), feeds each
 * stream through its own streaming session, so that a value split over any number of fragments
 * is masked, and releases a stream's held tail in an event of the same shape before the event
 * that ends the stream. Any other event is masked JSON-aware, value by value.
 *
 * <p>An event's JSON is read in place ({@link JsonSpans}) and written again by splicing
 * ({@link JsonSplice}): the streamed fields get the text their sessions release, the strings the
 * masker changes get their masked text, and every other byte passes as it came. Only the events
 * this class makes up (a tail released in an event of its own) and a finishing chunk whose tail
 * needs a field its choice lacks are built as trees and written compact.
 */
final class SseStreams {
  /** Text fields of an OpenAI chat {@code choices[i].delta}, each its own stream. */
  private static final List<String> CHAT_FIELDS =
      List.of("content", "refusal", "reasoning_content", "reasoning");

  /**
   * Responses API event types (without {@code .delta}/{@code .done}) whose {@code delta} is
   * streamed text or streamed arguments.
   */
  private static final Set<String> RESPONSES_TEXT =
      Set.of(
          "response.output_text",
          "response.refusal",
          "response.reasoning_text",
          "response.reasoning_summary_text",
          "response.audio.transcript",
          "response.function_call_arguments",
          "response.custom_tool_call_input",
          "response.mcp_call_arguments",
          "response.code_interpreter_call_code");

  private static final Set<String> RESPONSES_END =
      Set.of("response.completed", "response.incomplete", "response.failed");

  private static final byte[] DONE = "[DONE]".getBytes(StandardCharsets.US_ASCII);

  private final BodyMaskerValues values;
  private final int maxStreams;
  private final long maxTemplateBytes;
  private final Map<String, Stream> open = new LinkedHashMap<>();
  private final JsonSpans json = new JsonSpans();
  private final JsonSplice splice = new JsonSplice(json);
  private final List<Stream> fed = new ArrayList<>();
  private final List<Slot> slots = new ArrayList<>();
  private final int[] found = new int[6];

  /** Members of an OpenAI choice read, in one walk. */
  private static final String[] CHOICE_MEMBERS = {"index", "delta", "text", "finish_reason"};

  /** Members of an OpenAI delta read, in one walk: the text streams, then the calls. */
  private static final String[] DELTA_MEMBERS = {
    "content", "refusal", "reasoning_content", "reasoning", "tool_calls", "function_call"
  };

  /**
   * @param maxStreams most streams open at once
   * @param maxTemplateBytes most data bytes of the distinct events kept as templates for tails
   */
  SseStreams(BodyMaskerValues values, int maxStreams, long maxTemplateBytes) {
    this.values = values;
    this.maxStreams = maxStreams;
    this.maxTemplateBytes = maxTemplateBytes;
  }

  /** The framing of the event being masked, for the events made up later in its shape. */
  interface Shape {
    /**
     * The event's lines as a made-up event keeps them: {@code [before, prefix, terminator,
     * after]}: the (masked) {@code event:} lines before its first data line, that line's
     * {@code data:} or {@code data: } and terminator, the {@code event:} lines after it.
     */
    String[] synthetic();
  }

  /**
   * The last event of a stream, kept to make up an event in its shape for the tail: its data as
   * delivered (masked), and its framing.
   */
  private record Template(byte[] data, long size, String[] framing) {}

  /** Makes an event carrying {@code tail} in the shape of a stream's last event. */
  @FunctionalInterface
  private interface Synth {
    ObjectNode make(ObjectNode template, String tail);
  }

  /**
   * Where a finishing OpenAI choice takes a stream's tail: the string member {@code field} of the
   * object reached from the choice by {@code path} (member names; {@code tool >= 0}: then the
   * element of {@code tool_calls} whose {@code index} is {@code tool}, then its {@code function}).
   */
  private record Place(List<String> path, int tool, String field) {
    /** The holder in the event as read, or -1 when a step is missing or not an object. */
    int find(JsonSpans json, int choice) {
      int at = choice;
      for (String step : path) {
        at = json.member(at, step);
        if (!json.isObject(at)) return -1;
      }
      if (tool >= 0) {
        int calls = json.member(at, "tool_calls");
        if (!json.isArray(calls)) return -1;
        int call = -1;
        int c = 0;
        for (int e = json.first(calls); e >= 0 && call < 0; e = json.after(calls, e), c++) {
          if (json.isObject(e) && json.integer(e, "index", c) == tool) call = e;
        }
        at = json.member(call, "function");
        if (!json.isObject(at)) return -1;
      }
      return at;
    }

    /** Appends {@code tail} to the field in a tree of the chunk, making the path where missing. */
    void append(ObjectNode choice, String tail) {
      ObjectNode at = choice;
      for (String step : path) at = child(at, step);
      if (tool >= 0) {
        ArrayNode calls =
            at.get("tool_calls") instanceof ArrayNode a ? a : at.putArray("tool_calls");
        ObjectNode call = null;
        for (int c = 0; c < calls.size() && call == null; c++) {
          if (calls.get(c) instanceof ObjectNode o && integer(o, "index", c) == tool) call = o;
        }
        if (call == null) call = calls.addObject().put("index", tool);
        at = child(call, "function");
      }
      String released = text(at, field);
      at.put(field, (released == null ? "" : released) + tail);
    }
  }

  /**
   * A streamed string of one event ({@code token}) that feeds stream {@code key}; {@code synth}
   * makes the tail events of a new stream (null for OpenAI, whose synth is made from
   * {@code index} and {@code place} only when a stream opens).
   */
  private record Slot(String key, int token, Synth synth, int index, Place place) {
    Synth synthesizer() {
      return synth != null ? synth : chatSynth(index, place);
    }
  }

  /** Places of the OpenAI fields that are streams (tool calls aside), in {@link #CHAT_FIELDS} order, then text and function_call. */
  private static final List<String> DELTA = List.of("delta");

  private static final Place[] PLACES = {
    new Place(DELTA, -1, "content"),
    new Place(DELTA, -1, "refusal"),
    new Place(DELTA, -1, "reasoning_content"),
    new Place(DELTA, -1, "reasoning"),
    new Place(List.of(), -1, "text"),
    new Place(List.of("delta", "function_call"), -1, "arguments")
  };

  private static final int TEXT = 4;
  private static final int FUNCTION_CALL = 5;

  /** Stream keys of the first choices' fields, made once: {@code openai:<index>:<field>}. */
  private static final String[][] CHAT_KEYS = new String[16][];

  static {
    for (int i = 0; i < CHAT_KEYS.length; i++) {
      CHAT_KEYS[i] = new String[PLACES.length];
      for (int f = 0; f < PLACES.length; f++) CHAT_KEYS[i][f] = makeChatKey(i, f);
    }
  }

  private static String chatKey(int index, int field) {
    if (index >= 0 && index < CHAT_KEYS.length) return CHAT_KEYS[index][field];
    return makeChatKey(index, field);
  }

  private static String makeChatKey(int index, int field) {
    String name = field < TEXT ? CHAT_FIELDS.get(field) : field == TEXT ? "text" : "function_call";
    return "openai:" + index + ":" + name;
  }

  /** Anthropic's streamed fields: the synths that set them, made once. */
  private static final Map<String, Synth> ANTHROPIC =
      Map.of(
          "text", anthropicSynth("text"),
          "thinking", anthropicSynth("thinking"),
          "partial_json", anthropicSynth("partial_json"));

  private static Synth anthropicSynth(String field) {
    return (template, tail) -> {
      ObjectNode copy = template.deepCopy();
      if (copy.get("delta") instanceof ObjectNode d) d.put(field, tail);
      return copy;
    };
  }

  private static final Synth RESPONSES =
      (template, tail) -> {
        ObjectNode copy = template.deepCopy();
        copy.put("delta", tail);
        if (copy.get("logprobs") instanceof ArrayNode) copy.putArray("logprobs");
        return copy;
      };

  private static final class Stream {
    final Masker.Session session;
    final Synth synth;
    final Place place;
    Template template;
    boolean ended;

    Stream(Masker.Session session, Synth synth, Place place) {
      this.session = session;
      this.synth = synth;
      this.place = place;
    }
  }

  /** {@link #onData} results. */
  static final int FULL = 0;

  static final int JSON = 1;
  static final int TEXT_DATA = 2;

  /**
   * Masks one event's data, {@code b[off, off + len)}, into {@code into}; events that must come
   * first (released tails) are appended to {@code before}. JSON data is written back by splicing
   * ({@code compact}: without the white space between tokens, for data that came in several
   * lines); other data is masked as one text. Returns {@link #JSON} (the data written holds no
   * line break), {@link #TEXT_DATA} (it may), or {@link #FULL}, having changed nothing, when the
   * event would open more streams, or keep more template data, than allowed.
   */
  int onData(
      byte[] b, int off, int len, boolean compact, Shape shape, ByteSink before, ByteSink into) {
    if (isDone(b, off, len)) {
      endAll(before);
      into.append(b, off, len);
      return TEXT_DATA;
    }
    int read = json.parse(b, off, off + len);
    if (read == JsonSpans.BAD_UTF8) { // read it as the text it decodes to, U+FFFD included
      b = new String(b, off, len, StandardCharsets.UTF_8).getBytes(StandardCharsets.UTF_8);
      off = 0;
      len = b.length;
      read = json.parse(b, 0, len);
    }
    if (read != JsonSpans.OK) {
      into.append(values.mask(new String(b, off, len, StandardCharsets.UTF_8)));
      return TEXT_DATA;
    }
    splice.reset();
    fed.clear();
    pending.clear();
    if (json.isObject(0)) {
      int choices = json.member(0, "choices");
      if (json.isArray(choices)) {
        if (!openAi(choices, len)) return FULL;
        write(into, compact, shape);
        return JSON;
      }
      String type = json.text(0, "type");
      if (type != null) {
        List<Slot> slots = typedSlots(type);
        if (slots != null) {
          if (!feed(slots, len)) return FULL;
          write(into, compact, shape);
          return JSON;
        }
        endBefore(type, before);
      }
    }
    splice.maskAll(values);
    splice.writeTo(into, compact);
    return JSON;
  }

  /** Writes the spliced event and keeps it as the template of the streams it fed. */
  private void write(ByteSink into, boolean compact, Shape shape) {
    int mark = into.size();
    if (pending.isEmpty()) {
      splice.writeTo(into, compact);
    } else {
      placeInTree(into, mark, compact);
    }
    if (fed.isEmpty()) return;
    Template template = null;
    for (Stream stream : fed) {
      if (stream.ended) continue; // by this very event
      if (template == null)
        template = new Template(into.copy(mark), json.to() - json.from(), shape.synthetic());
      stream.template = template;
    }
  }

  /** Ends every open stream, appending events with their tails. */
  void endAll(ByteSink out) {
    endWhere("", out);
  }

  /** Whether the data is {@code [DONE]}, white space around it allowed. */
  private static boolean isDone(byte[] b, int off, int len) {
    int s = off;
    int e = off + len;
    while (s < e && isSpace(b[s])) s++;
    while (e > s && isSpace(b[e - 1])) e--;
    if (e - s == DONE.length && java.util.Arrays.equals(b, s, e, DONE, 0, DONE.length)) return true;
    // Unicode white space around it, as String.strip() sees it
    if (s < e && (b[s] < 0 || b[e - 1] < 0) && len < 64)
      return new String(b, off, len, StandardCharsets.UTF_8).strip().equals("[DONE]");
    return false;
  }

  /** ASCII white space as {@link Character#isWhitespace} has it. */
  private static boolean isSpace(byte c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  }

  /** Tails to place into finishing choices that lack the field's holder: made in a tree. */
  private final List<Object[]> pending = new ArrayList<>();

  private boolean openAi(int choices, int size) {
    List<Slot> slots = this.slots;
    slots.clear();
    Map<Integer, Integer> finishing = null;
    int pos = 0;
    for (int choice = json.first(choices);
        choice >= 0;
        choice = json.after(choices, choice), pos++) {
      if (!json.isObject(choice)) continue;
      int[] found = this.found;
      json.members(choice, CHOICE_MEMBERS, found);
      int index = json.integer(found[0], pos);
      int delta = found[1];
      int text = found[2];
      int reason = found[3];
      if (json.isObject(delta)) {
        json.members(delta, DELTA_MEMBERS, found);
        for (int f = 0; f < CHAT_FIELDS.size(); f++) {
          int v = found[f];
          if (json.isString(v)) slots.add(new Slot(chatKey(index, f), v, null, index, PLACES[f]));
        }
        int calls = found[4];
        int functionArguments = json.member(found[5], "arguments");
        if (json.isArray(calls)) {
          int c = 0;
          for (int call = json.first(calls); call >= 0; call = json.after(calls, call), c++) {
            int arguments = json.member(json.member(call, "function"), "arguments");
            if (json.isObject(call) && json.isString(arguments)) {
              int tool = json.integer(call, "index", c);
              slots.add(
                  new Slot(
                      "openai:" + index + ":tool:" + tool,
                      arguments,
                      null,
                      index,
                      new Place(DELTA, tool, "arguments")));
            }
          }
        }
        if (json.isString(functionArguments)) {
          slots.add(
              new Slot(
                  chatKey(index, FUNCTION_CALL),
                  functionArguments,
                  null,
                  index,
                  PLACES[FUNCTION_CALL]));
        }
      } else if (json.isString(text)) {
        slots.add(new Slot(chatKey(index, TEXT), text, null, index, PLACES[TEXT]));
      }
      if (reason >= 0 && !json.isNull(reason)) {
        if (finishing == null) finishing = new LinkedHashMap<>();
        finishing.put(index, choice);
      }
    }
    if (!feed(slots, size)) return false;
    if (finishing == null) return true;
    // A finishing choice carries its streams' tails itself.
    finishing.forEach(
        (index, choice) -> {
          for (String key : keys("openai:" + index + ":")) {
            Stream stream = open.remove(key);
            stream.ended = true;
            String tail = values.finish(stream.session);
            if (!tail.isEmpty()) place(stream.place, choice, tail);
          }
        });
    return true;
  }

  /** Appends {@code tail} to the place's field in {@code choice}, in place when its holder is there. */
  private void place(Place place, int choice, String tail) {
    int holder = pending.isEmpty() ? place.find(json, choice) : -1; // keep the order once in a tree
    if (holder < 0) {
      pending.add(new Object[] {place, choice, tail});
      return;
    }
    int v = json.member(holder, place.field());
    if (json.isString(v)) splice.setString(v, splice.currentText(v) + tail);
    else if (v >= 0)
      splice.setString(v, tail); // a non-string member: replaced, as a tree put would
    else splice.addMember(holder, place.field(), tail);
  }

  /**
   * The event spliced, then read as a tree to place the pending tails (making the members they
   * need), and written compact.
   */
  private void placeInTree(ByteSink into, int mark, boolean compact) {
    splice.writeTo(into, compact);
    ObjectNode chunk = (ObjectNode) readTree(into.copy(mark));
    ArrayNode choices = (ArrayNode) chunk.get("choices");
    int choicesToken = json.member(0, "choices");
    for (Object[] p : pending) {
      int position = 0;
      for (int e = json.first(choicesToken);
          e >= 0 && e != (int) p[1];
          e = json.after(choicesToken, e)) position++;
      ((Place) p[0]).append((ObjectNode) choices.get(position), (String) p[2]);
    }
    into.truncate(mark);
    into.append(BodyMaskerJson.write(chunk));
  }

  /** The JSON we wrote, read back as a tree; it was read before, so it parses. */
  private static JsonNode readTree(byte[] data) {
    JsonNode node = BodyMaskerJson.parse(data);
    if (node == null) throw new IllegalStateException("masked event data not readable as JSON");
    return node;
  }

  /** The object member {@code name} of {@code parent}, made (replacing a non-object) when missing. */
  private static ObjectNode child(ObjectNode parent, String name) {
    return parent.get(name) instanceof ObjectNode o ? o : parent.putObject(name);
  }

  /** Slots of an Anthropic or Responses API text delta, or null when the event is none. */
  private List<Slot> typedSlots(String type) {
    int delta = json.member(0, "delta");
    if (type.equals("content_block_delta") && json.isObject(delta)) {
      String deltaType = json.text(delta, "type");
      String field =
          deltaType == null
              ? null
              : switch (deltaType) {
                case "text_delta" -> "text";
                case "thinking_delta" -> "thinking";
                case "input_json_delta" -> "partial_json";
                default -> null;
              };
      int v = field == null ? -1 : json.member(delta, field);
      if (!json.isString(v)) return null;
      return List.of(
          new Slot("anthropic:" + json.integer(0, "index", -1), v, ANTHROPIC.get(field), -1, null));
    }
    if (type.endsWith(".delta") && RESPONSES_TEXT.contains(base(type)) && json.isString(delta)) {
      return List.of(new Slot(responsesKey(base(type)), delta, RESPONSES, -1, null));
    }
    return null;
  }

  /** Ends the streams that the event of {@code type} closes, before it is delivered. */
  private void endBefore(String type, ByteSink before) {
    if (type.equals("content_block_stop")) {
      endWhere("anthropic:" + json.integer(0, "index", -1), before);
    } else if (type.equals("message_stop") || RESPONSES_END.contains(type)) {
      endAll(before);
    } else if (type.endsWith(".done") && RESPONSES_TEXT.contains(base(type))) {
      endWhere(responsesKey(base(type)), before);
    } else if (type.equals("response.output_item.done")) {
      endWhere("responses:" + json.integer(0, "output_index", -1) + ":", before);
    }
  }

  /**
   * Feeds the slots' texts to their streams and masks the rest of the event value by value.
   * False, having changed nothing, when that would exceed the limits on streams or templates.
   */
  private boolean feed(List<Slot> slots, int size) {
    int fresh = 0;
    for (int i = 0; i < slots.size(); i++) {
      String key = slots.get(i).key();
      if (!open.containsKey(key) && !keyBefore(slots, i)) fresh++;
    }
    if (open.size() + fresh > maxStreams || !templatesFit(slots, size)) return false;
    int n = slots.size();
    String[] texts = new String[n];
    for (int i = 0; i < n; i++) {
      Slot slot = slots.get(i);
      texts[i] = json.text(slot.token());
      splice.setString(slot.token(), ""); // not masked twice, not counted twice
    }
    splice.maskAll(values);
    for (int i = 0; i < n; i++) {
      Slot slot = slots.get(i);
      Stream stream = open.get(slot.key());
      if (stream == null) {
        stream = new Stream(values.open(), slot.synthesizer(), slot.place());
        open.put(slot.key(), stream);
      }
      splice.setOrKeep(slot.token(), stream.session.push(texts[i]), texts[i]);
      fed.add(stream);
    }
    return true;
  }

  /** Whether a slot before {@code i} feeds the same stream. */
  private static boolean keyBefore(List<Slot> slots, int i) {
    String key = slots.get(i).key();
    for (int k = 0; k < i; k++) if (slots.get(k).key().equals(key)) return true;
    return false;
  }

  /** Whether a slot feeds stream {@code key}. */
  private static boolean fed(List<Slot> slots, String key) {
    for (Slot slot : slots) if (slot.key().equals(key)) return true;
    return false;
  }

  /** Whether the templates kept stay within budget once the slots' streams keep this event. */
  private boolean templatesFit(List<Slot> slots, long size) {
    if (slots.isEmpty()) return true;
    long total = size;
    Set<Template> kept = null;
    for (Map.Entry<String, Stream> entry : open.entrySet()) {
      Template template = entry.getValue().template;
      if (template == null || fed(slots, entry.getKey())) continue;
      if (kept == null) kept = Collections.newSetFromMap(new IdentityHashMap<>());
      if (kept.add(template)) total += template.size();
    }
    return total <= maxTemplateBytes;
  }

  /** Ends the open streams whose key is {@code key} or starts with it when it ends in ':'. */
  private void endWhere(String key, ByteSink out) {
    if (open.isEmpty()) return;
    List<String> keys =
        key.isEmpty() || key.endsWith(":")
            ? keys(key)
            : open.containsKey(key) ? List.of(key) : List.of();
    for (String k : keys) {
      Stream stream = open.remove(k);
      String tail = values.finish(stream.session);
      if (!tail.isEmpty()) {
        Template template = stream.template;
        ObjectNode shape = (ObjectNode) readTree(template.data());
        renderSynthetic(
            out, template.framing(), BodyMaskerJson.write(stream.synth.make(shape, tail)));
      }
    }
  }

  /**
   * A made-up event in a template's framing ({@code event:} lines, as masked, and the data prefix
   * kept; {@code id:}, {@code retry:} and comments left out) carrying {@code data}.
   */
  private static void renderSynthetic(ByteSink out, String[] framing, String data) {
    out.append(framing[0]);
    SseMasker.appendData(out, framing[1], data, framing[2]);
    out.append(framing[3]).append(framing[2]);
  }

  private List<String> keys(String prefix) {
    List<String> keys = new ArrayList<>();
    for (String key : open.keySet()) if (key.startsWith(prefix)) keys.add(key);
    return keys;
  }

  /**
   * A chunk like {@code template} holding only choice {@code index}, with a fresh delta (or, for
   * a completions choice, text) into which {@code place} puts the tail.
   */
  private static Synth chatSynth(int index, Place place) {
    return (template, tail) -> {
      ObjectNode copy = template.deepCopy();
      ObjectNode choice = null;
      if (copy.get("choices") instanceof ArrayNode choices) {
        for (int pos = 0; pos < choices.size() && choice == null; pos++) {
          if (choices.get(pos) instanceof ObjectNode c && integer(c, "index", pos) == index)
            choice = c;
        }
      }
      if (choice == null) choice = JsonNodeFactory.instance.objectNode().put("index", index);
      if (choice.has("delta")) choice.putObject("delta");
      if (choice.has("text")) choice.put("text", "");
      place.append(choice, tail);
      if (choice.has("finish_reason")) choice.putNull("finish_reason");
      if (choice.has("logprobs")) choice.putNull("logprobs");
      copy.putArray("choices").add(choice);
      if (copy.hasNonNull("usage")) copy.putNull("usage");
      return copy;
    };
  }

  private static String base(String type) {
    return type.substring(0, type.lastIndexOf('.'));
  }

  private String responsesKey(String base) {
    int part = json.integer(0, "content_index", json.integer(0, "summary_index", -1));
    return "responses:" + json.integer(0, "output_index", -1) + ":" + part + ":" + base;
  }
}
