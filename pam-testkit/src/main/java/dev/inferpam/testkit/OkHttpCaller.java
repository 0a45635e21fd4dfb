package dev.inferpam.testkit;

import dev.inferpam.testkit.AdapterConformance.Adapter;
import dev.inferpam.testkit.AdapterConformance.CallerRequest;
import dev.inferpam.testkit.AdapterConformance.CallerResponse;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * A caller on OkHttp for {@link AdapterConformance}: sends each {@link CallerRequest} with an
 * {@link OkHttpClient} to a base URL. The client may be plain (the adapter is a server: a filter,
 * a gateway) or carry the adapter itself (an OkHttp interceptor in front of the model's URL).
 *
 * <p>The request target is sent as given (OkHttp keeps {@code ;} and percent escapes; it does
 * resolve dot segments, which the kit does not send). {@code Content-Type} becomes the body's
 * media type. <b>Thread-safety:</b> as safe as the client: calls may run concurrently.
 */
@SuppressWarnings("try") // close() passes on what the resources' close() throws
public final class OkHttpCaller implements Adapter {
  private final OkHttpClient client;
  private final HttpUrl base;
  private final List<AutoCloseable> resources;

  private OkHttpCaller(OkHttpClient client, HttpUrl base, List<AutoCloseable> resources) {
    this.client = Objects.requireNonNull(client, "client");
    this.base = Objects.requireNonNull(base, "base");
    this.resources = resources;
  }

  /**
   * An adapter under test reached by sending with {@code client} to {@code base} (scheme, host
   * and port; its path is replaced by each request's); {@link #close()} shuts the client down
   * and then closes {@code resources} in reverse order (the server, the fake model, ...).
   */
  public static OkHttpCaller of(OkHttpClient client, HttpUrl base, AutoCloseable... resources) {
    return new OkHttpCaller(client, base, List.of(resources));
  }

  /**
   * A client builder for callers: 10 s read and call timeouts (a test that hangs fails instead),
   * no retry on a dropped connection (a retry would hide a broken answer).
   */
  public static OkHttpClient.Builder clientBuilder() {
    return new OkHttpClient.Builder()
        .readTimeout(Duration.ofSeconds(10))
        .callTimeout(Duration.ofSeconds(30))
        .retryOnConnectionFailure(false);
  }

  @Override
  public CallerResponse send(CallerRequest request) throws IOException {
    String path = request.path();
    int q = path.indexOf('?');
    HttpUrl.Builder url = base.newBuilder().encodedPath(q < 0 ? path : path.substring(0, q));
    url.encodedQuery(q < 0 ? null : path.substring(q + 1));
    Request.Builder b = new Request.Builder().url(url.build());
    String contentType = null;
    for (Map.Entry<String, String> h : request.headers()) {
      if (h.getKey().equalsIgnoreCase("Content-Type")) contentType = h.getValue();
      else b.addHeader(h.getKey(), h.getValue());
    }
    RequestBody body =
        request.body() == null
            ? null
            : RequestBody.create(
                request.body(), contentType == null ? null : MediaType.get(contentType));
    b.method(request.method(), body);
    Response response = client.newCall(b.build()).execute();
    return new CallerResponse() {
      @Override
      public int status() {
        return response.code();
      }

      @Override
      public Map<String, List<String>> headers() {
        return response.headers().toMultimap();
      }

      @Override
      public InputStream body() {
        return response.body().byteStream();
      }

      @Override
      public void close() {
        response.close();
      }
    };
  }

  @Override
  public void close() throws Exception {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    Exception failure = null;
    for (int i = resources.size() - 1; i >= 0; i--) {
      try {
        resources.get(i).close();
      } catch (Exception e) {
        if (failure == null) failure = e;
        else failure.addSuppressed(e);
      }
    }
    if (failure != null) throw failure;
  }

  @Override
  public String toString() {
    return "OkHttpCaller[" + base + "]";
  }
}
