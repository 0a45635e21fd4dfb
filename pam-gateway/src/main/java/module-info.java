/**
 * The inferpam gateway: a reverse proxy in front of a model server ({@code Gateway},
 * {@code GatewayMain}) and the record replay tool ({@code dev.inferpam.gateway.replay}). The
 * demo ({@code dev.inferpam.gateway.demo}) and {@code dev.inferpam.gateway.internal} are not API.
 */
// Micrometer and pam-micrometer are automatic modules (Automatic-Module-Name), as Spring's are
@SuppressWarnings("requires-automatic")
module dev.inferpam.gateway {
  requires transitive dev.inferpam.core;
  requires transitive dev.inferpam.servlet;
  requires transitive okhttp3;
  requires transitive org.eclipse.jetty.server;
  requires com.fasterxml.jackson.databind;
  requires com.nimbusds.jose.jwt;
  requires jdk.httpserver;
  requires io.netty.buffer;
  requires io.netty.codec;
  requires io.netty.codec.http;
  requires io.netty.common;
  requires io.netty.handler;
  requires io.netty.transport;
  requires io.netty.transport.classes.epoll;
  requires org.eclipse.jetty.ee10.servlet;
  requires org.slf4j;
  requires dev.inferpam.micrometer;
  requires micrometer.core;
  requires micrometer.registry.prometheus;

  exports dev.inferpam.gateway;
  exports dev.inferpam.gateway.replay;
}
