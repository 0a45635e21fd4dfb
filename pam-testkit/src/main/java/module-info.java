/**
 * Contract test kits for inferpam's service provider interfaces, and the conformance kit every
 * adapter's tests run: JUnit 5 classes that a test extends.
 */
module dev.inferpam.testkit {
  requires transitive dev.inferpam.api;
  requires transitive dev.inferpam.core;
  requires transitive dev.inferpam.testsupport;
  requires transitive org.junit.jupiter.api;
  requires transitive org.junit.jupiter.params;
  requires transitive okhttp3;
  requires transitive com.fasterxml.jackson.databind;
  requires org.assertj.core;
  // Awaitility 4.3.0 has no module name of its own: the name comes from its file name
  // (pam-testkit's pom turns the requires-automatic lint off for it)
  requires awaitility;

  exports dev.inferpam.testkit;
}
