package dev.inferpam.testsupport;

/**
 * Model answers in the shapes inference servers send them: OpenAI-style chat completions (whole
 * and as SSE deltas, with usage) and Ollama-style NDJSON chunks. Text only; pair them with
 * {@link ModelAnswer}. Stateless and thread-safe.
 */
public final class Completions {
  /** The event that ends an OpenAI stream. */
  public static final String SSE_DONE = "data: [DONE]\n\n";

  private Completions() {}

  /** A {@code chat.completion} whose one choice says {@code content}, without usage. */
  public static String chat(String content) {
    return "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
        + "{\"role\":\"assistant\",\"content\":"
        + Json.string(content)
        + "}}]}";
  }

  /** A {@code chat.completion} whose one choice says {@code content}, with its usage. */
  public static String chat(String content, long promptTokens, long completionTokens) {
    return "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
        + "{\"role\":\"assistant\",\"content\":"
        + Json.string(content)
        + "}}],\"usage\":"
        + usage(promptTokens, completionTokens)
        + "}";
  }

  /** An OpenAI {@code usage} object: prompt, completion and their total. */
  public static String usage(long promptTokens, long completionTokens) {
    return "{\"prompt_tokens\":"
        + promptTokens
        + ",\"completion_tokens\":"
        + completionTokens
        + ",\"total_tokens\":"
        + (promptTokens + completionTokens)
        + "}";
  }

  /** One SSE event carrying {@code content} as {@code choices[0].delta.content}, blank line included. */
  public static String sseDelta(String content) {
    return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        + Json.string(content)
        + "}}]}\n\n";
  }

  /** The last SSE event of a stream asked for with {@code stream_options.include_usage}: no choices, usage. */
  public static String sseUsage(long promptTokens, long completionTokens) {
    return "data: {\"choices\":[],\"usage\":" + usage(promptTokens, completionTokens) + "}\n\n";
  }

  /** One Ollama {@code /api/chat} NDJSON line carrying {@code content}; {@code done} ends the stream. */
  public static String ollamaChat(String model, String content, boolean done) {
    return "{\"model\":"
        + Json.string(model)
        + ",\"message\":{\"role\":\"assistant\",\"content\":"
        + Json.string(content)
        + "},\"done\":"
        + done
        + "}\n";
  }
}
