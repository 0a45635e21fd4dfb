package dev.inferpam.core.internal.identity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Two credentials in one request are refused by the chain, whatever resolvers it has and in
 * whatever order: a valid token next to an API key must not be taken as the token's subject.
 */
class IdentityChainTest {
  private static final String KEY = "pam_ci_0123456789abcdef";
  private static final String OTHER_KEY = "pam_agent_fedcba9876543210";

  /** A bearer value the token resolver below accepts, as an OIDC resolver accepts a valid JWT. */
  private static final String TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";

  private final Clock clock = Clock.fixed(Instant.parse("2026-06-01T12:00:00Z"), ZoneOffset.UTC);
  private final IdentityResolver apiKeys =
      new ApiKeyResolver(
          List.of(
              new Policy.ApiKey("ci", ApiKeyResolverTest.sha256(KEY), Set.of("ci"), null),
              new Policy.ApiKey("agent", ApiKeyResolverTest.sha256(OTHER_KEY), Set.of("ci"), null)),
          clock);

  /** Accepts {@link #TOKEN} presented as a bearer token, as a token resolver does. */
  private final IdentityResolver tokens =
      request -> {
        String token = BearerTokens.token(request.header("authorization"));
        return TOKEN.equals(token)
            ? Optional.of(Principal.of("token-alice", Set.of("ml"), "oidc"))
            : Optional.empty();
      };

  static Stream<Arguments> twoCredentials() {
    return Stream.of(
        Arguments.of(
            "token and key", headers("Authorization", "Bearer " + TOKEN, "X-Api-Key", KEY)),
        Arguments.of(
            "token and the key of nobody",
            headers("Authorization", "Bearer " + TOKEN, "X-Api-Key", "x")),
        Arguments.of(
            "token and an empty key", headers("Authorization", "Bearer " + TOKEN, "X-Api-Key", "")),
        Arguments.of(
            "the same key in both", headers("Authorization", "Bearer " + KEY, "X-Api-Key", KEY)),
        Arguments.of("key twice", headers("X-Api-Key", KEY, "X-Api-Key", KEY)),
        Arguments.of("key and an empty key", headers("X-Api-Key", KEY, "X-Api-Key", "")),
        Arguments.of("two keys joined", headers("X-Api-Key", KEY + ", " + OTHER_KEY)),
        Arguments.of("key joined with nothing", headers("X-Api-Key", KEY + ",")),
        Arguments.of(
            "Authorization twice",
            headers("Authorization", "Bearer " + TOKEN, "Authorization", "Bearer " + KEY)),
        Arguments.of(
            "token twice",
            headers("Authorization", "Bearer " + TOKEN, "Authorization", "Bearer " + TOKEN)),
        Arguments.of(
            "two bearers joined", headers("Authorization", "Bearer " + TOKEN + ", Bearer " + KEY)),
        Arguments.of(
            "bearer with a comma", headers("Authorization", "Bearer " + TOKEN + "," + KEY)),
        Arguments.of(
            "another scheme, then a bearer",
            headers("Authorization", "Digest a=\"b\", Bearer " + TOKEN)),
        Arguments.of(
            "token and Proxy-Authorization",
            headers(
                "Authorization", "Bearer " + TOKEN, "Proxy-Authorization", "Basic dXNlcjpwYXNz")),
        Arguments.of(
            "key and Proxy-Authorization",
            headers("X-Api-Key", KEY, "Proxy-Authorization", "Bearer x")),
        Arguments.of(
            "Basic and key", headers("Authorization", "Basic dXNlcjpwYXNz", "X-Api-Key", KEY)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("twoCredentials")
  void refusesTwoCredentialsWhateverTheResolverOrder(
      String name, Map<String, List<String>> headers) {
    InferenceRequest request =
        new InferenceRequest("POST", "/v1/chat/completions", null, headers, null, null);
    for (List<IdentityResolver> chain :
        List.of(
            List.of(apiKeys, tokens),
            List.of(tokens, apiKeys),
            List.of(tokens),
            List.of(apiKeys))) {
      assertThatThrownBy(() -> IdentityChain.identify(chain, request))
          .as("%s, chain %s", name, chain)
          .isInstanceOf(AuthenticationException.class)
          .hasMessageStartingWith("more than one ")
          .hasMessageNotContaining(KEY)
          .hasMessageNotContaining(TOKEN);
    }
  }

  @Test
  void oneCredentialIsStillResolved() throws AuthenticationException {
    List<IdentityResolver> chain = List.of(apiKeys, tokens);
    assertThat(
            IdentityChain.identify(chain, request(headers("Authorization", "Bearer " + TOKEN)))
                .subject())
        .isEqualTo("token-alice");
    assertThat(IdentityChain.identify(chain, request(headers("X-Api-Key", KEY))).subject())
        .isEqualTo("ci");
    assertThat(
            IdentityChain.identify(chain, request(headers("Authorization", "Bearer " + KEY)))
                .subject())
        .isEqualTo("ci");
    // An auth-param list is one credential: its commas separate parameters, not credentials.
    assertThat(
            IdentityChain.identify(
                chain, request(headers("Authorization", "Digest a=\"b\", c=\"d\""))))
        .isNull();
  }

  private static InferenceRequest request(Map<String, List<String>> headers) {
    return new InferenceRequest("POST", "/v1/chat/completions", null, headers, null, null);
  }

  /** Name-value pairs; a name given twice is one header sent twice. */
  private static Map<String, List<String>> headers(String... pairs) {
    Map<String, List<String>> out = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2)
      out.computeIfAbsent(pairs[i], k -> new ArrayList<>()).add(pairs[i + 1]);
    out.replaceAll((k, v) -> Collections.unmodifiableList(v));
    return out;
  }
}
