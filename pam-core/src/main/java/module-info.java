/**
 * The inferpam engine. Applications use {@code dev.inferpam.core} ({@code PamEngine},
 * {@code Policy}); adapters — an HTTP client interceptor, a servlet filter, a gateway — use
 * {@code dev.inferpam.core.adapter} as well; {@code dev.inferpam.core.stream} frames event streams.
 * Everything under {@code dev.inferpam.core.internal} is implementation, exported to no module.
 */
module dev.inferpam.core {
  requires transitive dev.inferpam.api;
  requires com.fasterxml.jackson.databind;
  requires com.fasterxml.jackson.dataformat.yaml;
  requires com.github.benmanes.caffeine;
  requires com.nimbusds.jose.jwt;
  requires java.net.http;
  requires org.slf4j;
  requires org.yaml.snakeyaml;

  exports dev.inferpam.core;

  uses dev.inferpam.core.StateBackend;

  exports dev.inferpam.core.adapter;
  exports dev.inferpam.core.stream;
}
