/**
 * inferpam for Jakarta Servlet 6 containers: {@code PamFilter}, the reviewer and quota
 * endpoints, and {@code PamContextListener}.
 */
module dev.inferpam.servlet {
  requires transitive dev.inferpam.core;
  requires transitive jakarta.servlet;
  requires com.fasterxml.jackson.databind;
  requires org.slf4j;

  exports dev.inferpam.servlet;
}
