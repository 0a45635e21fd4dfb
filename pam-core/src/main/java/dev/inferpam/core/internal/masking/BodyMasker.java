package dev.inferpam.core.internal.masking;

import dev.inferpam.api.Masker;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Masks one response body as its bytes pass, aware of how the body is framed, so that masking
 * never breaks the format a client parses and never delays a streamed event.
 *
 * <h2>Framing by content type</h2>
 * The media type is compared case-insensitively, parameters are ignored and the charset is taken
 * to be UTF-8 (malformed bytes become U+FFFD).
 * <ul>
 *   <li>{@code text/event-stream}: server-sent events, see below.
 *   <li>{@code application/x-ndjson}, {@code application/ndjson}, {@code application/jsonl}:
 *       newline-delimited JSON (Ollama), see below.
 *   <li>{@code application/json} and any {@code type/subtype+json}: one JSON document.
 *   <li>any other {@code text/*}, and a missing or blank content type: plain text, masked as it
 *       arrives through one streaming session (only the masker's bounded tail is held back).
 *   <li>anything else (images, audio, video, {@code application/octet-stream}, protobuf, ...):
 *       {@link #open} returns {@code null} and the body passes untouched.
 * </ul>
 *
 * <h2>JSON values</h2>
 * Fail closed. In a JSON document, an SSE event's data and an NDJSON line, every string is
 * masked on its own, keys included (a masked key keeps its place; two keys masked alike become
 * one member); numbers, booleans and nulls are kept. The only strings kept as they are: a string
 * value right under one of these keys: the structural {@code id}, {@code object}, {@code model},
 * {@code role}, {@code type}, {@code finish_reason}, {@code stop_reason},
 * {@code system_fingerprint}, {@code created}, base64 {@code embedding} / {@code embeddings},
 * and the opaque tokens a client must send back unchanged: {@code signature},
 * {@code encrypted_content}, {@code item_id}, {@code call_id}, {@code tool_call_id} and
 * {@code tool_use_id}. An object or array under such a key is masked like any other (so float
 * embeddings, having no strings, pass bit-exact). Numbers keep their exact text.
 *
 * <p>An SSE event's data and an NDJSON line are read in place and masked by splicing: only a
 * string the masker changes (or a streamed field, below) is written again, JSON-escaped, at its
 * place; every other byte is kept (key order, white space, number spellings, the escapes of the
 * strings left alone), so an event with nothing to mask leaves byte for byte as it came. A
 * masked key keeps its place (two keys masked alike stay two members). JSON data of several
 * {@code data:} lines is written on one line, without the white space between tokens. Bytes
 * that are not well-formed UTF-8 become U+FFFD; they are never passed on.
 *
 * <p>A JSON document is buffered (up to 8 MiB) and delivered by {@link #finish()}; numbers keep
 * their exact text. A body that is not exactly one JSON value is masked as plain text instead;
 * one over the cap is streamed as plain text from the moment it passes the cap. Either way no
 * text is delivered unmasked.
 *
 * <h2>Server-sent events</h2>
 * Bytes may be split anywhere (mid line, mid UTF-8 sequence, mid {@code \r\n}); the output does
 * not depend on where. Lines end with {@code \n}, {@code \r\n} or {@code \r}, and keep their own
 * terminator; an event ends at a blank line and is delivered by the very push that completed it.
 * Every other line passes the masker too: the value of comment, {@code event:}, {@code id:} and
 * {@code retry:} lines (the field name and colon kept), and the whole line of any other field.
 * The {@code data:} lines of an event are joined by {@code \n} and handled as one value:
 * <ul>
 *   <li><b>Streamed text</b> goes through one streaming session per text stream, so a value split
 *       across any number of events is still masked. Each such event is delivered with its text
 *       field replaced by what the session released so far (possibly {@code ""}), every other
 *       field masked as a JSON value, spliced as above. The streams are:
 *       <ul>
 *         <li>OpenAI chat: {@code choices[i].delta.content} (also {@code refusal},
 *             {@code reasoning_content}, {@code reasoning}), one stream per choice index and
 *             field; completions: {@code choices[i].text}. A choice with a non-null
 *             {@code finish_reason} ends its streams and carries their tails in that same chunk
 *             (appended to its {@code delta.content} / {@code text}); {@code data: [DONE]} ends
 *             all streams first.
 *         <li>OpenAI Responses API: the {@code delta} of {@code response.output_text.delta} (also
 *             {@code response.refusal.delta}, {@code response.reasoning_text.delta},
 *             {@code response.reasoning_summary_text.delta},
 *             {@code response.audio.transcript.delta}), one stream per
 *             {@code output_index}/{@code content_index}. The matching {@code .done} event ends it
 *             (its whole {@code text} is masked as one value), as do
 *             {@code response.output_item.done} for its output index and
 *             {@code response.completed}, {@code response.incomplete}, {@code response.failed}
 *             for all.
 *         <li>Anthropic Messages: {@code content_block_delta} with a {@code text_delta} (or
 *             {@code thinking_delta}), one stream per {@code index};
 *             {@code content_block_stop} of that index ends it, {@code message_stop} ends all.
 *       </ul>
 *       Streamed tool-call arguments are streams of their own, so that a value split over
 *       fragments is masked too (their JSON text is masked as text): OpenAI chat
 *       {@code choices[i].delta.tool_calls[j].function.arguments} (one stream per choice and
 *       tool-call {@code index}; a finishing choice carries the tail in
 *       {@code delta.tool_calls}) and {@code delta.function_call.arguments}; the Responses API's
 *       {@code response.function_call_arguments.delta} (also
 *       {@code response.custom_tool_call_input.delta}, {@code response.mcp_call_arguments.delta},
 *       {@code response.code_interpreter_call_code.delta}), ended like the text deltas; and
 *       Anthropic's {@code input_json_delta} ({@code partial_json}), per block {@code index}.
 *       Each is delayed by at most the masker's hold-back.
 *   <li><b>Held-back tails.</b> When a stream ends, its held tail is delivered before the event
 *       that ended it: for OpenAI chat in the finishing chunk itself; otherwise in a synthetic
 *       event cloned from the stream's last delta event (same {@code event:} line, the text field
 *       set to the tail; {@code id:} lines are not copied; written compact). At the end of the
 *       body, streams that
 *       were never ended are released the same way, after the last event; a last event cut off
 *       without its blank line is completed with one.
 *   <li><b>Other JSON events</b> (message_start, errors, usage chunks, full responses) are masked
 *       value by value; <b>non-JSON data</b> is masked as one whole text. {@code [DONE]} passes.
 *       Every emitted event's data parses as JSON when the upstream's did.
 *   <li><b>Limits.</b> An event over 8 MiB, more than 1024 text streams open at once, or more
 *       than 8 MiB of event data kept as templates for tails (the last delta event of each
 *       open stream), switches the rest of the body to plain-text masking, after releasing the
 *       open streams' tails.
 * </ul>
 *
 * <h2>Newline-delimited JSON</h2>
 * One JSON value per {@code \n}-terminated line, each line delivered as soon as it is complete.
 * The text of Ollama's {@code message.content} ({@code /api/chat}) or {@code response}
 * ({@code /api/generate}), and their {@code thinking} counterparts, goes through one streaming
 * session; the line with {@code "done": true} ends the stream and carries the released text plus
 * the tail in its text field. If the body ends without it, the tail follows in a line cloned
 * from the last streamed one (written compact). Other lines are masked value by value, spliced
 * as above, non-JSON lines as text. A
 * line over 8 MiB switches the rest of the body to plain-text masking.
 *
 * <h2>Contract</h2>
 * One response, one thread at a time. Bad input never throws and never passes unmasked text;
 * memory is bounded by the caps above (plus the masker's own hold-back per stream). Exceptions of
 * the {@link Masker} itself propagate.
 */
public final class BodyMasker {
  /** Largest JSON body, SSE event or NDJSON line parsed as JSON; larger falls back to text. */
  static final int MAX_FRAME_BYTES = 8 * 1024 * 1024;

  /** Most text streams open at once in one SSE response; more falls back to text. */
  static final int MAX_STREAMS = 1024;

  private static final Set<String> NDJSON =
      Set.of("application/x-ndjson", "application/ndjson", "application/jsonl");

  /** How one kind of body is cut and masked: bytes in, text to deliver out. */
  interface Framing {
    String push(byte[] b, int off, int len);

    String finish();

    /** {@link #push} as UTF-8; a framing that works on bytes gives them without a detour. */
    default byte[] pushBytes(byte[] b, int off, int len) {
      return push(b, off, len).getBytes(StandardCharsets.UTF_8);
    }

    /** {@link #finish()} as UTF-8; a framing holding the very bytes to release may give them as they are. */
    default byte[] finishBytes() {
      return finish().getBytes(StandardCharsets.UTF_8);
    }
  }

  private final BodyMaskerValues values;
  private final Framing framing;
  private boolean finished;

  private BodyMasker(BodyMaskerValues values, Framing framing) {
    this.values = values;
    this.framing = framing;
  }

  /**
   * A body masker for a response of {@code contentType}, or {@code null} when bodies of that
   * type are passed untouched (binary types).
   */
  public static BodyMasker open(Masker masker, String contentType) {
    Objects.requireNonNull(masker, "masker");
    BodyMaskerValues values = new BodyMaskerValues(masker);
    String type = mediaType(contentType);
    Framing framing;
    if (type.equals("text/event-stream")) {
      framing = new SseMasker(values, MAX_FRAME_BYTES, MAX_STREAMS);
    } else if (NDJSON.contains(type)) {
      framing = new NdjsonMasker(values, MAX_FRAME_BYTES);
    } else if (type.equals("application/json")
        || (type.indexOf('/') > 0 && type.endsWith("+json"))) {
      framing = new BodyMaskerJson.Body(values, MAX_FRAME_BYTES);
    } else if (type.isEmpty() || type.startsWith("text/")) {
      framing = new BodyMaskerText(values);
    } else {
      return null;
    }
    return new BodyMasker(values, framing);
  }

  /**
   * Feeds upstream bytes; returns the bytes that may be delivered now (possibly none).
   *
   * @throws IllegalStateException after {@link #finish()}
   */
  public byte[] push(byte[] b, int off, int len) {
    Objects.checkFromIndexSize(off, len, b.length);
    if (finished) throw new IllegalStateException("body already finished");
    if (len == 0) return new byte[0];
    return framing.pushBytes(b, off, len);
  }

  /** Ends the body; returns what was held back. A second call returns nothing. */
  public byte[] finish() {
    if (finished) return new byte[0];
    finished = true;
    return framing.finishBytes();
  }

  /** Values masked so far, per detector, over all sessions of this body. */
  public Map<String, Integer> counts() {
    return values.counts();
  }

  /** The media type of a Content-Type value: lower case, without parameters; "" when missing. */
  static String mediaType(String contentType) {
    if (contentType == null) return "";
    int semicolon = contentType.indexOf(';');
    String type = semicolon < 0 ? contentType : contentType.substring(0, semicolon);
    return type.strip().toLowerCase(Locale.ROOT);
  }
}
