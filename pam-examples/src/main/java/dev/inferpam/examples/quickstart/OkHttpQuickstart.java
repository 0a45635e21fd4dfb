package dev.inferpam.examples.quickstart;

import dev.inferpam.core.PamEngine;
import dev.inferpam.okhttp.PamInterceptor;
import java.io.IOException;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * The README's OkHttp quickstart, compiled and run by the test suite ({@code QuickstartTest}):
 * the code between the {@code README} markers is what the README shows.
 */
public final class OkHttpQuickstart {
  private OkHttpQuickstart() {}

  /** Builds the client of the quickstart around a shared engine. */
  public static OkHttpClient client(PamEngine engine) {
    // README okhttp-client begin
    OkHttpClient client = PamInterceptor.of(engine)
        .install(new OkHttpClient.Builder())     // adds the interceptor, turns off redirects
        .build();
    // README okhttp-client end
    return client;
  }

  /** Sends one chat request with the caller's own key; returns status and body. */
  public static String ask(OkHttpClient client, String url, String serviceKey, String json) throws IOException {
    // README okhttp-call begin
    Request request = new Request.Builder()
        .url(url)                                                // e.g. http://127.0.0.1:11434/v1/chat/completions
        .header("Authorization", "Bearer " + serviceKey)        // the caller's own key
        .post(RequestBody.create(json, MediaType.get("application/json")))
        .build();
    String answer;
    try (Response response = client.newCall(request).execute()) {
      // allowed: the server saw the upstream credential, never the caller's key
      // denied:  a synthetic 4xx with {"error":{"type":"pam_error","code":...}}, the server saw nothing
      answer = response.code() + " " + response.body().string();
    }
    // README okhttp-call end
    return answer;
  }
}
