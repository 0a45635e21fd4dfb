package dev.inferpam.okhttp;

import dev.inferpam.core.PamEngine;
import dev.inferpam.testkit.AdapterConformance;
import dev.inferpam.testkit.OkHttpCaller;
import dev.inferpam.testsupport.FakeModelServer;
import dev.inferpam.testsupport.ModelScript;
import java.util.EnumSet;
import java.util.Set;
import okhttp3.OkHttpClient;

/** The adapter conformance kit through {@link PamInterceptor}: a caller's OkHttp client in front of the model. */
class PamInterceptorConformanceTest extends AdapterConformance {
  @Override
  protected Adapter start(PamEngine engine, ModelScript model) {
    FakeModelServer server = FakeModelServer.start(model);
    OkHttpClient client = PamInterceptor.of(engine).install(OkHttpCaller.clientBuilder()).build();
    return OkHttpCaller.of(client, server.url("/"), server);
  }

  /** OkHttp asks for gzip itself and decodes it before the interceptor sees the answer. */
  @Override
  protected Set<Capability> capabilities() {
    return EnumSet.of(
        Capability.INJECTS_UPSTREAM_CREDENTIAL,
        Capability.DECODES_GZIP_ANSWERS,
        Capability.KEEPS_CONTENT_LENGTH);
  }
}
