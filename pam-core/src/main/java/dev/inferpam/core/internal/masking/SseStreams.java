package dev.inferpam.core.internal.masking;

import static dev.inferpam.core.internal.masking.BodyMaskerJson.integer;
import static dev.inferpam.core.internal.masking.BodyMaskerJson.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Masker;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
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

  private final BodyMaskerValues values;
  private final int maxStreams;
  private final long maxTemplateChars;
  private final Map<String, Stream> open = new LinkedHashMap<>();

  /**
   * @param maxStreams most streams open at once
   * @param maxTemplateChars most data chars of the distinct events kept as templates for tails
   */
  SseStreams(BodyMaskerValues values, int maxStreams, long maxTemplateChars) {
    this.values = values;
    this.maxStreams = maxStreams;
    this.maxTemplateChars = maxTemplateChars;
  }

  /** Makes an event carrying {@code tail} in the shape of a stream's last event. */
  @FunctionalInterface
  private interface Synth {
    ObjectNode make(ObjectNode template, String tail);
  }

  /** Appends a tail to a stream's field in an OpenAI chat or completions choice (making the path). */
  @FunctionalInterface
  private interface Place {
    void append(ObjectNode choice, String tail);
  }

  /**
   * A text field of one event that feeds stream {@code key}; {@code place} (OpenAI only, else
   * null) puts a tail into a finishing choice.
   */
  private record Slot(String key, ObjectNode holder, String field, Synth synth, Place place) {
    Slot(String key, ObjectNode holder, String field, Synth synth) {
      this(key, holder, field, synth, null);
    }
  }

  private static final class Stream {
    final Masker.Session session;
    final Synth synth;
    final Place place;
    ObjectNode template;
    SseFrame frame;
    int templateChars;

    Stream(Masker.Session session, Synth synth, Place place) {
      this.session = session;
      this.synth = synth;
      this.place = place;
    }
  }

  /**
   * Masks one event's data. Events that must come first (released tails) are appended to
   * {@code before}. Returns the new data, or {@code null}, having changed nothing, when the event
   * would open more streams, or keep more template data, than allowed.
   */
  String onData(String data, SseFrame event, StringBuilder before) {
    if (data.strip().equals("[DONE]")) {
      endAll(before);
      return data;
    }
    JsonNode root = BodyMaskerJson.parse(data);
    if (root == null) return values.mask(data);
    if (root instanceof ObjectNode object) {
      if (object.get("choices") instanceof ArrayNode choices)
        return openAi(object, choices, event, data.length());
      String type = text(object, "type");
      if (type != null) {
        List<Slot> slots = typedSlots(object, type);
        if (slots != null)
          return feed(object, slots, event, data.length()) ? BodyMaskerJson.write(object) : null;
        endBefore(object, type, before);
      }
    }
    return BodyMaskerJson.write(BodyMaskerJson.maskTree(root, values));
  }

  /** Ends every open stream, appending events with their tails. */
  void endAll(StringBuilder out) {
    endWhere("", out);
  }

  private String openAi(ObjectNode chunk, ArrayNode choices, SseFrame event, int chars) {
    List<Slot> slots = new ArrayList<>();
    Map<Integer, ObjectNode> finishing = new LinkedHashMap<>();
    for (int pos = 0; pos < choices.size(); pos++) {
      if (!(choices.get(pos) instanceof ObjectNode choice)) continue;
      int index = integer(choice, "index", pos);
      String key = "openai:" + index + ":";
      if (choice.get("delta") instanceof ObjectNode delta) {
        for (String field : CHAT_FIELDS) {
          if (text(delta, field) != null)
            slots.add(chatSlot(index, key + field, delta, field, deltaField(field)));
        }
        if (delta.get("tool_calls") instanceof ArrayNode calls) {
          for (int c = 0; c < calls.size(); c++) {
            if (calls.get(c) instanceof ObjectNode call
                && call.get("function") instanceof ObjectNode function
                && text(function, "arguments") != null) {
              int tool = integer(call, "index", c);
              slots.add(
                  chatSlot(
                      index, key + "tool:" + tool, function, "arguments", toolArguments(tool)));
            }
          }
        }
        if (delta.get("function_call") instanceof ObjectNode function
            && text(function, "arguments") != null) {
          slots.add(
              chatSlot(index, key + "function_call", function, "arguments", functionArguments()));
        }
      } else if (text(choice, "text") != null) {
        slots.add(
            chatSlot(
                index, key + "text", choice, "text", (c, tail) -> appendText(c, "text", tail)));
      }
      JsonNode reason = choice.get("finish_reason");
      if (reason != null && !reason.isNull()) finishing.put(index, choice);
    }
    if (!feed(chunk, slots, event, chars)) return null;
    // A finishing choice carries its streams' tails itself.
    finishing.forEach(
        (index, choice) -> {
          for (String key : keys("openai:" + index + ":")) {
            Stream stream = open.remove(key);
            String tail = values.finish(stream.session);
            if (!tail.isEmpty()) stream.place.append(choice, tail);
          }
        });
    return BodyMaskerJson.write(chunk);
  }

  private static Slot chatSlot(
      int index, String key, ObjectNode holder, String field, Place place) {
    return new Slot(key, holder, field, chatSynth(index, place), place);
  }

  /** {@code delta.<field>} of a chat choice. */
  private static Place deltaField(String field) {
    return (choice, tail) -> appendText(child(choice, "delta"), field, tail);
  }

  /** {@code delta.tool_calls[index == tool].function.arguments} of a chat choice. */
  private static Place toolArguments(int tool) {
    return (choice, tail) -> {
      ObjectNode delta = child(choice, "delta");
      ArrayNode calls =
          delta.get("tool_calls") instanceof ArrayNode a ? a : delta.putArray("tool_calls");
      ObjectNode call = null;
      for (int c = 0; c < calls.size() && call == null; c++) {
        if (calls.get(c) instanceof ObjectNode o && integer(o, "index", c) == tool) call = o;
      }
      if (call == null) call = calls.addObject().put("index", tool);
      appendText(child(call, "function"), "arguments", tail);
    };
  }

  /** {@code delta.function_call.arguments} of a chat choice (the functions API before tools). */
  private static Place functionArguments() {
    return (choice, tail) ->
        appendText(child(child(choice, "delta"), "function_call"), "arguments", tail);
  }

  /** The object member {@code name} of {@code parent}, made (replacing a non-object) when missing. */
  private static ObjectNode child(ObjectNode parent, String name) {
    return parent.get(name) instanceof ObjectNode o ? o : parent.putObject(name);
  }

  private static void appendText(ObjectNode holder, String field, String tail) {
    String released = text(holder, field);
    holder.put(field, (released == null ? "" : released) + tail);
  }

  /** Slots of an Anthropic or Responses API text delta, or null when the event is none. */
  private static List<Slot> typedSlots(ObjectNode event, String type) {
    if (type.equals("content_block_delta") && event.get("delta") instanceof ObjectNode delta) {
      String deltaType = text(delta, "type");
      String field =
          deltaType == null
              ? null
              : switch (deltaType) {
                case "text_delta" -> "text";
                case "thinking_delta" -> "thinking";
                case "input_json_delta" -> "partial_json";
                default -> null;
              };
      if (field == null || text(delta, field) == null) return null;
      Synth synth =
          (template, tail) -> {
            ObjectNode copy = template.deepCopy();
            if (copy.get("delta") instanceof ObjectNode d) d.put(field, tail);
            return copy;
          };
      return List.of(new Slot("anthropic:" + integer(event, "index", -1), delta, field, synth));
    }
    if (type.endsWith(".delta")
        && RESPONSES_TEXT.contains(base(type))
        && text(event, "delta") != null) {
      Synth synth =
          (template, tail) -> {
            ObjectNode copy = template.deepCopy();
            copy.put("delta", tail);
            if (copy.get("logprobs") instanceof ArrayNode) copy.putArray("logprobs");
            return copy;
          };
      return List.of(new Slot(responsesKey(event, base(type)), event, "delta", synth));
    }
    return null;
  }

  /** Ends the streams that {@code event} closes, before it is delivered. */
  private void endBefore(ObjectNode event, String type, StringBuilder before) {
    if (type.equals("content_block_stop")) {
      endWhere("anthropic:" + integer(event, "index", -1), before);
    } else if (type.equals("message_stop") || RESPONSES_END.contains(type)) {
      endAll(before);
    } else if (type.endsWith(".done") && RESPONSES_TEXT.contains(base(type))) {
      endWhere(responsesKey(event, base(type)), before);
    } else if (type.equals("response.output_item.done")) {
      endWhere("responses:" + integer(event, "output_index", -1) + ":", before);
    }
  }

  /**
   * Feeds the slots' texts to their streams and masks the rest of {@code root} value by value.
   * False, having changed nothing, when that would exceed the limits on streams or templates.
   */
  private boolean feed(ObjectNode root, List<Slot> slots, SseFrame event, int chars) {
    Set<String> keys = new HashSet<>();
    for (Slot slot : slots) keys.add(slot.key());
    int fresh = 0;
    for (String key : keys) {
      if (!open.containsKey(key)) fresh++;
    }
    if (open.size() + fresh > maxStreams || !templatesFit(keys, chars)) return false;
    List<String> texts = new ArrayList<>(slots.size());
    for (Slot slot : slots) {
      texts.add(slot.holder().get(slot.field()).textValue());
      slot.holder().put(slot.field(), ""); // not masked twice, not counted twice
    }
    BodyMaskerJson.maskTree(root, values);
    for (int i = 0; i < slots.size(); i++) {
      Slot slot = slots.get(i);
      Stream stream =
          open.computeIfAbsent(
              slot.key(), k -> new Stream(values.open(), slot.synth(), slot.place()));
      slot.holder().put(slot.field(), stream.session.push(texts.get(i)));
      stream.template = root;
      stream.frame = event;
      stream.templateChars = chars;
    }
    return true;
  }

  /** Whether the templates kept stay within budget once the streams {@code keys} keep this event. */
  private boolean templatesFit(Set<String> keys, int chars) {
    if (keys.isEmpty()) return true;
    Set<ObjectNode> kept = Collections.newSetFromMap(new IdentityHashMap<>());
    long total = chars;
    for (Map.Entry<String, Stream> entry : open.entrySet()) {
      Stream stream = entry.getValue();
      if (!keys.contains(entry.getKey()) && kept.add(stream.template))
        total += stream.templateChars;
    }
    return total <= maxTemplateChars;
  }

  /** Ends the open streams whose key is {@code key} or starts with it when it ends in ':'. */
  private void endWhere(String key, StringBuilder out) {
    List<String> keys =
        key.isEmpty() || key.endsWith(":")
            ? keys(key)
            : open.containsKey(key) ? List.of(key) : List.of();
    for (String k : keys) {
      Stream stream = open.remove(k);
      String tail = values.finish(stream.session);
      if (!tail.isEmpty()) {
        out.append(
            stream.frame.renderSynthetic(
                BodyMaskerJson.write(stream.synth.make(stream.template, tail))));
      }
    }
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

  private static String responsesKey(ObjectNode event, String base) {
    int part = integer(event, "content_index", integer(event, "summary_index", -1));
    return "responses:" + integer(event, "output_index", -1) + ":" + part + ":" + base;
  }
}
