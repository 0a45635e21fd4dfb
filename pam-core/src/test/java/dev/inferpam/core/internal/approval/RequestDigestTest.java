package dev.inferpam.core.internal.approval;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The digest an approval is bound to changes with anything a reviewer approved. */
class RequestDigestTest {
  static final Principal ALICE =
      new Principal("alice", Set.of("ml"), Principal.VIA_OIDC, "https://idp", Map.of());
  static final String BODY = "{\"model\":\"m\",\"prompt\":\"dump all\"}";

  static InferenceRequest req(String method, String path, String query, String body) {
    return new InferenceRequest(
        method,
        path,
        query,
        Map.of("authorization", List.of("Bearer secret")),
        body.getBytes(StandardCharsets.UTF_8),
        "10.0.0.1");
  }

  @Test
  void isTheHexSha256AndStable() {
    String d = RequestDigest.of(ALICE, req("POST", "/v1/completions", null, BODY));
    assertThat(d).matches("[0-9a-f]{64}");
    assertThat(RequestDigest.of(ALICE, req("post", "/v1/completions", null, BODY))).isEqualTo(d);
  }

  @Test
  void headersGroupsAndPeerDoNotCount() {
    String d = RequestDigest.of(ALICE, req("POST", "/v1/completions", null, BODY));
    InferenceRequest otherHeaders =
        new InferenceRequest(
            "POST",
            "/v1/completions",
            null,
            Map.of("authorization", List.of("Bearer other")),
            BODY.getBytes(StandardCharsets.UTF_8),
            "10.9.9.9");
    Principal moreGroups =
        new Principal("alice", Set.of("ml", "x"), Principal.VIA_OIDC, "https://idp", Map.of());
    assertThat(RequestDigest.of(moreGroups, otherHeaders)).isEqualTo(d);
  }

  @Test
  void differentBodyPathMethodQueryOrPrincipalGiveDifferentDigests() {
    Set<String> all = new HashSet<>();
    all.add(RequestDigest.of(ALICE, req("POST", "/v1/completions", null, BODY)));
    all.add(
        RequestDigest.of(ALICE, req("POST", "/v1/completions", null, BODY.replace("all", "al1"))));
    all.add(RequestDigest.of(ALICE, req("POST", "/v1/completions", null, BODY + " ")));
    all.add(RequestDigest.of(ALICE, req("POST", "/v1/chat/completions", null, BODY)));
    all.add(RequestDigest.of(ALICE, req("PUT", "/v1/completions", null, BODY)));
    all.add(RequestDigest.of(ALICE, req("POST", "/v1/completions", "", BODY)));
    all.add(RequestDigest.of(ALICE, req("POST", "/v1/completions", "stream=true", BODY)));
    all.add(
        RequestDigest.of(
            Principal.of("alice", Set.of("ml"), Principal.VIA_OIDC),
            req("POST", "/v1/completions", null, BODY)));
    all.add(
        RequestDigest.of(
            new Principal("alice", Set.of(), Principal.VIA_OIDC, "https://other", Map.of()),
            req("POST", "/v1/completions", null, BODY)));
    all.add(
        RequestDigest.of(
            Principal.of("alice", Set.of("ml"), Principal.VIA_API_KEY),
            req("POST", "/v1/completions", null, BODY)));
    all.add(
        RequestDigest.of(
            new Principal("bob", Set.of("ml"), Principal.VIA_OIDC, "https://idp", Map.of()),
            req("POST", "/v1/completions", null, BODY)));
    assertThat(all).hasSize(11);
  }

  @Test
  void fieldsAreFramedSoBytesCannotMoveBetweenThem() {
    // Without length prefixes these two would hash the same concatenation.
    Principal ab = new Principal("b", Set.of(), "x", "a", Map.of());
    Principal a_b = new Principal("ab", Set.of(), "x", "", Map.of());
    InferenceRequest r = req("POST", "/p", null, "");
    assertThat(RequestDigest.of(ab, r)).isNotEqualTo(RequestDigest.of(a_b, r));
    assertThat(RequestDigest.of(ALICE, req("POST", "/v1/x", null, "y")))
        .isNotEqualTo(RequestDigest.of(ALICE, req("POST", "/v1/", null, "xy")));
  }
}
