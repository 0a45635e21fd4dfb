/**
 * The inferpam gateway: a reverse proxy in front of a model server ({@code Gateway},
 * {@code GatewayMain}) and the record replay tool ({@code dev.inferpam.gateway.replay}). The
 * demo ({@code dev.inferpam.gateway.demo}) and {@code dev.inferpam.gateway.internal} are not API.
 */
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

  exports dev.inferpam.gateway;
  exports dev.inferpam.gateway.replay;
}
