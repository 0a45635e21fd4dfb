package dev.inferpam.spring.boot;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.core.env.Environment;
import org.springframework.util.ClassUtils;

/**
 * No Spring AI model is left ungoverned without the application saying so. The starter governs
 * the clients Spring AI's models call through — Boot's {@code RestClient}, {@code RestTemplate}
 * and {@code WebClient} builders (OpenAI and Anthropic on 1.1, Ollama, Mistral, DeepSeek, ZhiPu,
 * MiniMax, Stability, ElevenLabs) and, on Spring AI 2, the OkHttp clients of its OpenAI and
 * Anthropic SDK models. Some models call through a cloud SDK with an HTTP client of its own, which
 * no in-process seam reaches: Azure OpenAI, Amazon Bedrock, Google GenAI, Vertex AI, OCI
 * Generative AI, Spring AI 1.1's OpenAI SDK module and Hugging Face (which builds its own {@code
 * RestTemplate}). When one of them is on the class path the application does not start, saying
 * which, unless {@code inferpam.client.ungoverned} names it: route such models through the inferpam
 * gateway (their base URL pointed at it), which governs any client, and list them there.
 *
 * <p>Active with the client side ({@code inferpam.client.enabled}, default true).
 */
@AutoConfiguration(after = InferpamAutoConfiguration.class)
@ConditionalOnProperty(prefix = "inferpam", name = "enabled", matchIfMissing = true)
@ConditionalOnProperty(prefix = "inferpam.client", name = "enabled", matchIfMissing = true)
public class InferpamSpringAiCoverageAutoConfiguration {

  /** Spring AI model classes whose calls no in-process seam reaches, by the name to list them by. */
  static final Map<String, List<String>> UNGOVERNED = new LinkedHashMap<>();

  static {
    UNGOVERNED.put(
        "azure-openai",
        List.of(
            "org.springframework.ai.azure.openai.AzureOpenAiChatModel",
            "org.springframework.ai.azure.openai.AzureOpenAiEmbeddingModel",
            "org.springframework.ai.azure.openai.AzureOpenAiImageModel"));
    UNGOVERNED.put(
        "bedrock",
        List.of(
            "org.springframework.ai.bedrock.converse.BedrockProxyChatModel",
            "org.springframework.ai.bedrock.titan.BedrockTitanEmbeddingModel",
            "org.springframework.ai.bedrock.cohere.BedrockCohereEmbeddingModel"));
    UNGOVERNED.put(
        "google-genai",
        List.of(
            "org.springframework.ai.google.genai.GoogleGenAiChatModel",
            "org.springframework.ai.google.genai.text.GoogleGenAiTextEmbeddingModel"));
    UNGOVERNED.put(
        "vertex-ai",
        List.of(
            "org.springframework.ai.vertexai.gemini.VertexAiGeminiChatModel",
            "org.springframework.ai.vertexai.embedding.text.VertexAiTextEmbeddingModel",
            "org.springframework.ai.vertexai.embedding.multimodal.VertexAiMultimodalEmbeddingModel"));
    UNGOVERNED.put(
        "oci-genai",
        List.of(
            "org.springframework.ai.oci.cohere.OCICohereChatModel",
            "org.springframework.ai.oci.OCIEmbeddingModel"));
    UNGOVERNED.put(
        "openai-sdk",
        List.of(
            "org.springframework.ai.openaisdk.OpenAiSdkChatModel",
            "org.springframework.ai.openaisdk.OpenAiSdkEmbeddingModel",
            "org.springframework.ai.openaisdk.OpenAiSdkImageModel"));
    UNGOVERNED.put(
        "huggingface", List.of("org.springframework.ai.huggingface.HuggingfaceChatModel"));
  }

  /**
   * @throws IllegalStateException when a model no seam reaches is on the class path and {@code
   *     inferpam.client.ungoverned} does not name it; or when that property names an unknown one
   */
  public InferpamSpringAiCoverageAutoConfiguration(Environment environment) {
    Set<String> accepted = new TreeSet<>();
    for (String name :
        Binder.get(environment)
            .bind("inferpam.client.ungoverned", String[].class)
            .orElse(new String[0])) {
      String n = name.strip().toLowerCase(Locale.ROOT);
      if (n.isEmpty()) continue;
      if (!UNGOVERNED.containsKey(n)) {
        throw new IllegalStateException(
            "inferpam: inferpam.client.ungoverned: unknown model family \""
                + name.strip()
                + "\"; known: "
                + String.join(", ", UNGOVERNED.keySet()));
      }
      accepted.add(n);
    }
    ClassLoader loader = getClass().getClassLoader();
    List<String> found = new ArrayList<>();
    for (Map.Entry<String, List<String>> family : UNGOVERNED.entrySet()) {
      if (accepted.contains(family.getKey())) continue;
      for (String type : family.getValue()) {
        if (ClassUtils.isPresent(type, loader)) {
          found.add(family.getKey() + " (" + type + ")");
          break;
        }
      }
    }
    if (!found.isEmpty()) {
      throw new IllegalStateException(
          "inferpam: Spring AI models on the class path call through an SDK whose HTTP client"
              + " inferpam cannot govern in-process: "
              + String.join(", ", found)
              + ". Route them through the inferpam gateway (point their base URL at it) and list"
              + " them in inferpam.client.ungoverned, or remove them; inferpam.client.enabled=false"
              + " turns the whole client side off");
    }
  }
}
