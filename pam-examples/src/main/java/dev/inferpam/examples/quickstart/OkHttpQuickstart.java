package dev.inferpam.examples.quickstart;

// README okhttp begin
import dev.inferpam.core.PamEngine;
import dev.inferpam.okhttp.PamInterceptor;
import java.nio.file.Path;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

// README okhttp end

/**
 * The README's OkHttp quickstart, compiled and run by the test suite ({@code QuickstartTest}):
 * the regions between the {@code README okhttp} markers, in order, are what the README shows.
 */
public final class OkHttpQuickstart {
  private OkHttpQuickstart() {}

  /** The quickstart's engine, built from {@code policy.yaml} in the working directory. */
  public static PamEngine engine() {
    // README okhttp begin
    PamEngine engine =
        PamEngine.fromPolicy(Path.of("policy.yaml")); // build once, share; close() at shutdown
    // README okhttp end
    return engine;
  }

  /** Builds the client of the quickstart around a shared engine. */
  public static OkHttpClient client(PamEngine engine) {
    // README okhttp begin
    OkHttpClient client =
        PamInterceptor.of(engine)
            .install(new OkHttpClient.Builder()) // adds the interceptor, turns off redirects
            .build();
    // README okhttp end
    return client;
  }

  /** Sends one chat request with the caller's own key; returns status and body. */
  public static String ask(OkHttpClient client, String url, String serviceKey, String json)
      throws java.io.IOException {
    // README okhttp begin
    Request request =
        new Request.Builder()
            .url(url) // e.g. http://127.0.0.1:11434/v1/chat/completions
            .header("Authorization", "Bearer " + serviceKey) // the caller's own key
            .post(RequestBody.create(json, MediaType.get("application/json")))
            .build();
    String answer;
    try (Response response = client.newCall(request).execute()) {
      // allowed: the server saw the upstream credential, never the caller's key
      // denied:  a synthetic 4xx with {"error":{"type":"pam_error","code":...}}, the server saw
      // nothing
      answer = response.code() + " " + response.body().string();
    }
    // README okhttp end
    return answer;
  }
}
