package dev.inferpam.gateway.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A tiny stand-in for a model server, on 127.0.0.1 and a free port, for the demo: it speaks
 * enough of the OpenAI-compatible API ({@code POST /v1/chat/completions} as JSON, or as
 * server-sent events when the body says {@code "stream":true}; {@code POST /v1/embeddings};
 * {@code GET /v1/models}) and of Ollama's admin API ({@code POST /api/pull}, streamed NDJSON)
 * to show what the gateway lets through. Answers are canned and deterministic.
 *
 * <p>Like a real hosted model it insists on its own credential: a request without
 * {@code Authorization} equal to the expected value gets 401. It also notes, per request,
 * whether a demo caller's key arrived ({@link Seen#callerKeySeen()}), so the demo can show that
 * the gateway swapped credentials.
 *
 * <p>Uses the JDK's {@code com.sun.net.httpserver}: no dependency, loopback only. Not for
 * production. <b>Thread-safety:</b> serves requests concurrently; {@link #seen()} is safe to
 * read from any thread.
 */
public final class MockModelServer implements AutoCloseable {

  /** One request as the mock model server received it. */
  public record Seen(
      String method, String path, boolean upstreamCredentialOk, boolean callerKeySeen) {}

  /** The models {@code GET /v1/models} lists. */
  public static final List<String> MODELS = List.of("llama-3.1-8b", "llama-3.1-70b", "gpt-4o-mini");

  private static final ObjectMapper JSON = new ObjectMapper();

  /** The streamed answer; an email address and a phone number arrive split across events. */
  static final String[] STREAMED_WORDS = {
    "Privileged ",
    "access, ",
    "one ",
    "token ",
    "at ",
    "a ",
    "time. ",
    "Questions: ",
    "security-",
    "oncall@exa",
    "mple.com ",
    "or ",
    "(415) 555",
    "-2671."
  };

  private final LoopbackHttp http;
  private final String expectedAuthorization;
  private final List<String> callerKeys;
  private final List<Seen> seen = new CopyOnWriteArrayList<>();

  private MockModelServer(
      LoopbackHttp http, String expectedAuthorization, List<String> callerKeys) {
    this.http = http;
    this.expectedAuthorization = expectedAuthorization;
    this.callerKeys = List.copyOf(callerKeys);
  }

  /**
   * Starts the server on 127.0.0.1 and a free port.
   *
   * @param expectedAuthorization the {@code Authorization} value every request must carry
   * @param callerKeys            keys that should never arrive (noted in {@link #seen()})
   */
  public static MockModelServer start(String expectedAuthorization, List<String> callerKeys)
      throws IOException {
    Objects.requireNonNull(expectedAuthorization, "expectedAuthorization");
    LoopbackHttp http = LoopbackHttp.bind("mock-model");
    MockModelServer mock = new MockModelServer(http, expectedAuthorization, callerKeys);
    http.serve(mock::handle);
    return mock;
  }

  /** The base URL, e.g. {@code http://127.0.0.1:54321}. */
  public URI uri() {
    return URI.create(http.baseUrl());
  }

  /** Every request received so far, in order. */
  public List<Seen> seen() {
    return List.copyOf(seen);
  }

  @Override
  public void close() {
    http.close();
  }

  private void handle(HttpExchange ex) throws IOException {
    try (ex) {
      String method = ex.getRequestMethod();
      String path = ex.getRequestURI().getRawPath();
      byte[] body;
      try (InputStream in = ex.getRequestBody()) {
        body = in.readAllBytes();
      }
      String authorization = ex.getRequestHeaders().getFirst("Authorization");
      boolean credentialOk = expectedAuthorization.equals(authorization);
      boolean callerKeySeen = false;
      for (List<String> values : ex.getRequestHeaders().values()) {
        for (String v : values) {
          for (String key : callerKeys) callerKeySeen |= v.contains(key);
        }
      }
      seen.add(new Seen(method, path, credentialOk, callerKeySeen));

      if (!credentialOk) {
        sendJson(
            ex, 401, error("invalid_api_key", "missing or wrong API key for the model server"));
        return;
      }
      JsonNode request = parse(body);
      String model = request.path("model").asText("unknown");
      switch (method + " " + path) {
        case "GET /v1/models" -> sendJson(ex, 200, models());
        case "POST /v1/chat/completions" -> {
          if (request.path("stream").asBoolean(false)) streamChat(ex, model);
          else sendJson(ex, 200, chat(model, lastUserMessage(request)));
        }
        case "POST /v1/embeddings" -> sendJson(ex, 200, embeddings(model));
        case "POST /api/pull" ->
            pull(ex, request.path("model").asText(request.path("name").asText("unknown")));
        default -> sendJson(ex, 404, error("not_found", "no route for " + method + " " + path));
      }
    }
  }

  private static JsonNode parse(byte[] body) {
    if (body.length == 0) return JSON.createObjectNode();
    try {
      return JSON.readTree(body);
    } catch (IOException e) {
      return JSON.createObjectNode();
    }
  }

  private static String lastUserMessage(JsonNode request) {
    String last = "";
    for (JsonNode m : request.path("messages")) {
      if ("user".equals(m.path("role").asText())) last = m.path("content").asText("");
    }
    return last;
  }

  private static ObjectNode models() {
    ObjectNode root = JSON.createObjectNode().put("object", "list");
    ArrayNode data = root.putArray("data");
    for (String m : MODELS)
      data.addObject().put("id", m).put("object", "model").put("owned_by", "demo");
    return root;
  }

  private static ObjectNode chat(String model, String question) {
    String answer = "Hello from " + model + "! You asked: \"" + question + "\"";
    ObjectNode root =
        JSON.createObjectNode()
            .put("id", "chatcmpl-demo")
            .put("object", "chat.completion")
            .put("created", 1_700_000_000L)
            .put("model", model);
    ObjectNode choice = root.putArray("choices").addObject().put("index", 0);
    choice.putObject("message").put("role", "assistant").put("content", answer);
    choice.put("finish_reason", "stop");
    int promptTokens = Math.max(1, question.split("\\s+").length);
    int completionTokens = answer.split("\\s+").length;
    root.putObject("usage")
        .put("prompt_tokens", promptTokens)
        .put("completion_tokens", completionTokens)
        .put("total_tokens", promptTokens + completionTokens);
    return root;
  }

  private static void streamChat(HttpExchange ex, String model) throws IOException {
    ex.getResponseHeaders().set("Content-Type", "text/event-stream");
    ex.getResponseHeaders().set("Cache-Control", "no-cache");
    ex.sendResponseHeaders(200, 0);
    OutputStream out = ex.getResponseBody();
    for (String word : STREAMED_WORDS) {
      ObjectNode chunk = chunk(model);
      ObjectNode choice = chunk.putArray("choices").addObject().put("index", 0);
      choice.putObject("delta").put("content", word);
      choice.putNull("finish_reason");
      writeEvent(out, chunk.toString());
    }
    ObjectNode last = chunk(model);
    ObjectNode choice = last.putArray("choices").addObject().put("index", 0);
    choice.putObject("delta");
    choice.put("finish_reason", "stop");
    writeEvent(out, last.toString());
    writeEvent(out, "[DONE]");
  }

  private static ObjectNode chunk(String model) {
    return JSON.createObjectNode()
        .put("id", "chatcmpl-demo")
        .put("object", "chat.completion.chunk")
        .put("created", 1_700_000_000L)
        .put("model", model);
  }

  private static void writeEvent(OutputStream out, String data) throws IOException {
    out.write(("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
    // Each event leaves at once, as a real model server's tokens do.
    out.flush();
  }

  private static ObjectNode embeddings(String model) {
    ObjectNode root = JSON.createObjectNode().put("object", "list").put("model", model);
    ObjectNode item = root.putArray("data").addObject().put("object", "embedding").put("index", 0);
    ArrayNode vector = item.putArray("embedding");
    for (double v : new double[] {0.12, -0.03, 0.45, 0.0, -0.27}) vector.add(v);
    root.putObject("usage").put("prompt_tokens", 3).put("total_tokens", 3);
    return root;
  }

  private static void pull(HttpExchange ex, String model) throws IOException {
    ex.getResponseHeaders().set("Content-Type", "application/x-ndjson");
    ex.sendResponseHeaders(200, 0);
    OutputStream out = ex.getResponseBody();
    List<String> lines = new ArrayList<>();
    lines.add("{\"status\":\"pulling manifest\"}");
    lines.add(
        "{\"status\":\"downloading "
            + model.replaceAll("[^A-Za-z0-9._:-]", "")
            + "\",\"completed\":0}");
    lines.add("{\"status\":\"success\"}");
    for (String line : lines) {
      out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    }
  }

  private static ObjectNode error(String code, String message) {
    ObjectNode root = JSON.createObjectNode();
    root.putObject("error")
        .put("type", "invalid_request_error")
        .put("code", code)
        .put("message", message);
    return root;
  }

  private static void sendJson(HttpExchange ex, int status, JsonNode body) throws IOException {
    byte[] bytes = JSON.writeValueAsBytes(body);
    ex.getResponseHeaders().set("Content-Type", "application/json");
    ex.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(bytes);
    }
  }
}
