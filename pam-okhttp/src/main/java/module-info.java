/** inferpam for OkHttp clients: {@code PamInterceptor}. */
module dev.inferpam.okhttp {
  requires transitive dev.inferpam.core;
  requires transitive okhttp3;
  requires org.slf4j;

  exports dev.inferpam.okhttp;
}
