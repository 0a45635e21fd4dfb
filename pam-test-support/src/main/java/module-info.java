/**
 * What inferpam's tests share: a mutable clock, ready policies, a scripted fake model server and
 * a local OIDC identity provider, all on 127.0.0.1; and the checks of virtual-thread tests.
 */
module dev.inferpam.testsupport {
  requires transitive mockwebserver3;
  requires transitive okhttp3;
  requires transitive com.nimbusds.jose.jwt;
  requires jdk.httpserver;
  requires java.management;
  requires jdk.jfr;

  exports dev.inferpam.testsupport;
}
