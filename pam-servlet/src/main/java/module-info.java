/**
 * inferpam for Jakarta Servlet 6 containers: {@code PamFilter}, the reviewer and quota
 * endpoints, and {@code PamContextListener}.
 */
// "module": the gateway module that the qualified export names is built after this one
@SuppressWarnings("module")
module dev.inferpam.servlet {
  requires transitive dev.inferpam.core;
  requires transitive jakarta.servlet;
  requires com.fasterxml.jackson.databind;
  requires org.slf4j;

  exports dev.inferpam.servlet;
  // the gateway's /pam context serves the endpoints as the servlets here do
  exports dev.inferpam.servlet.internal to
      dev.inferpam.gateway;
}
