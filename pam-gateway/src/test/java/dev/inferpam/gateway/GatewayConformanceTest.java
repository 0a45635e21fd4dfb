package dev.inferpam.gateway;

import dev.inferpam.core.PamEngine;
import dev.inferpam.testkit.AdapterConformance;
import dev.inferpam.testkit.OkHttpCaller;
import dev.inferpam.testsupport.FakeModelServer;
import dev.inferpam.testsupport.ModelScript;
import java.io.IOException;
import java.util.EnumSet;
import java.util.Set;
import okhttp3.HttpUrl;

/** The adapter conformance kit through the gateway in process, in front of a fake model server. */
class GatewayConformanceTest extends AdapterConformance {
  @Override
  protected Adapter start(PamEngine engine, ModelScript model) throws IOException {
    FakeModelServer upstream = FakeModelServer.start(model);
    Gateway gateway;
    try {
      gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
    } catch (IOException | RuntimeException e) {
      upstream.close();
      throw e;
    }
    return OkHttpCaller.of(
        OkHttpCaller.clientBuilder().build(), HttpUrl.get(gateway.uri()), upstream, gateway);
  }

  /**
   * The gateway's upstream client (OkHttp) asks for gzip itself and decodes it before masking; it
   * relays answers as they come, without their length.
   */
  @Override
  protected Set<Capability> capabilities() {
    return EnumSet.of(Capability.INJECTS_UPSTREAM_CREDENTIAL, Capability.DECODES_GZIP_ANSWERS);
  }
}
