package dev.inferpam.sdktests;

import com.anthropic.client.AnthropicClient;
import com.anthropic.client.okhttp.AnthropicOkHttpClient;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import dev.inferpam.anthropic.PamAnthropicInterceptor;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.httpclient.PamHttpClient;
import dev.inferpam.langchain4j.PamLangChain4j;
import dev.inferpam.micrometer.PamMetrics;
import dev.inferpam.okhttp.PamInterceptor;
import dev.inferpam.spring.PamClientHttpRequestInterceptor;
import dev.inferpam.spring.PamExchangeFilterFunction;
import dev.langchain4j.model.openai.OpenAiChatModel;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.http.HttpClient;
import java.nio.file.Path;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;

/** The README's quickstarts for the AI clients, Spring's clients and metrics, compiled (QuickstartTest). */
final class ClientQuickstarts {
  private ClientQuickstarts() {}

  static Object[] clients(PamEngine engine, String callerKey) {
    // README clients begin
    // OpenAI Java SDK (4.94+): its OkHttp seam takes PamInterceptor (OkHttp 4.12 as well as 5)
    OpenAIClient openai =
        OpenAIOkHttpClient.builder()
            .apiKey(callerKey)
            .followRedirects(false)
            .addInterceptor(PamInterceptor.of(engine))
            .build();
    // denied: PermissionDeniedException("403: parameter \"logprobs\" is denied by policy")

    // Anthropic Java SDK: its own interceptor seam (sync, async, streaming)
    AnthropicClient anthropic =
        AnthropicOkHttpClient.builder()
            .apiKey(callerKey)
            .addInterceptor(PamAnthropicInterceptor.of(engine))
            .build();
    // denied: PermissionDeniedException; e.apiMessage() is the policy's message

    // LangChain4j: per model, or for every model (see below)
    OpenAiChatModel model =
        OpenAiChatModel.builder()
            .apiKey(callerKey)
            .modelName("llama-3.1-8b")
            .httpClientBuilder(PamLangChain4j.httpClientBuilder(engine))
            .build();

    // the JDK's HttpClient (Java 11+): any body handler, streams included
    HttpClient http = PamHttpClient.wrap(HttpClient.newHttpClient(), engine);
    // README clients end
    return new Object[] {openai, anthropic, model, http};
  }

  static Object[] springClients(PamEngine engine) {
    // README spring-clients begin
    RestClient rest =
        RestClient.builder().requestInterceptor(PamClientHttpRequestInterceptor.of(engine)).build();
    WebClient web = WebClient.builder().filter(PamExchangeFilterFunction.of(engine)).build();
    // README spring-clients end
    return new Object[] {rest, web};
  }

  static PamEngine metrics(MeterRegistry meterRegistry) {
    // README metrics begin
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.load(Path.of("policy.yaml")))
            .eventListener(PamMetrics.bindTo(meterRegistry)) // dev.inferpam.micrometer.PamMetrics
            .build();
    PamMetrics.bindEngine(engine, meterRegistry); // gauges: in flight, recorder backlog
    // README metrics end
    return engine;
  }
}
