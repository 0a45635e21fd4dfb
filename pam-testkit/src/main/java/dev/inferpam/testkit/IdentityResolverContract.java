package dev.inferpam.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The compatibility kit for {@link IdentityResolver} implementations: extend it in a JUnit 5
 * test, give a resolver and the credentials to try, and the tests check what the engine relies
 * on — a credential the resolver accepts identifies the expected subject, a request without one
 * (or with a kind the resolver does not handle) is {@link Optional#empty()} so that the next
 * resolver may try, an invalid credential it is responsible for is an
 * {@link AuthenticationException} whose message (it becomes the 401's {@code error_description})
 * never quotes it, the principal never carries it, identification works from the request's head
 * alone, and the resolver is thread-safe.
 *
 * <pre>{@code
 * class MyResolverContractTest extends IdentityResolverContract {
 *   protected IdentityResolver createResolver() { return new MyResolver(...); }
 *   protected Map<String, String> validCredential() { return Map.of("Authorization", "Bearer " + TOKEN); }
 *   protected String expectedSubject() { return "alice"; }
 *   protected Map<String, String> invalidCredential() { return Map.of("Authorization", "Bearer expired-token"); }
 * }
 * }</pre>
 *
 * <p>Each test creates one resolver. Requests are made as the engine makes them: method
 * {@code POST}, a canonical path, the given headers, an empty body.
 */
public abstract class IdentityResolverContract {

  /** For an identity resolver's test class to extend. */
  protected IdentityResolverContract() {}

  /** A new resolver; called once per test. */
  protected abstract IdentityResolver createResolver() throws Exception;

  /** Headers (name to value) of a request carrying a credential the resolver accepts. */
  protected abstract Map<String, String> validCredential() throws Exception;

  /** The subject {@link #validCredential()} identifies. */
  protected abstract String expectedSubject();

  /**
   * Headers carrying a credential the resolver is responsible for and refuses (an unknown key,
   * an expired or badly signed token), or {@code null} when it has no such case; default
   * {@code null}.
   */
  protected Map<String, String> invalidCredential() throws Exception {
    return null;
  }

  /**
   * Headers carrying a credential of a kind the resolver does not handle, which it must leave
   * to others ({@link Optional#empty()}), or {@code null} to skip that test; default HTTP Basic
   * credentials.
   */
  protected Map<String, String> foreignCredential() throws Exception {
    return Map.of("Authorization", "Basic YWxpY2U6d29uZGVybGFuZA==");
  }

  /** The path requests are made to; default {@code /v1/chat/completions}. */
  protected String path() {
    return "/v1/chat/completions";
  }

  /** A request as the engine hands it to resolvers: head only, empty body. */
  protected final InferenceRequest requestWith(Map<String, String> headers) {
    Map<String, List<String>> h = new LinkedHashMap<>();
    h.put("Content-Type", List.of("application/json"));
    if (headers != null) headers.forEach((k, v) -> h.put(k, List.of(v)));
    return new InferenceRequest("POST", path(), null, h, new byte[0], "127.0.0.1");
  }

  /** What must never appear in a principal or a message: each header value and its part after the scheme. */
  private static List<String> secrets(Map<String, String> headers) {
    List<String> out = new ArrayList<>();
    if (headers == null) return out;
    for (String v : headers.values()) {
      out.add(v);
      int space = v.indexOf(' ');
      if (space > 0 && space < v.length() - 1) out.add(v.substring(space + 1).strip());
    }
    out.removeIf(s -> s.length() < 8); // too short to be told apart from ordinary text
    return out;
  }

  private static void assertHoldsNone(String what, String text, List<String> secrets) {
    for (String secret : secrets) {
      assertThat(text).as(what + " must not hold the credential").doesNotContain(secret);
    }
  }

  // ------------------------------------------------------------------------------------- tests

  @Test
  void aValidCredentialIdentifiesTheExpectedSubject() throws Exception {
    Optional<Principal> p = createResolver().resolve(requestWith(validCredential()));

    assertThat(p).as("resolve() never returns null").isNotNull();
    assertThat(p).isPresent();
    assertThat(p.get().subject()).isEqualTo(expectedSubject());
    assertThat(p.get().via()).isNotBlank();
  }

  @Test
  void thePrincipalNeverCarriesTheCredential() throws Exception {
    Principal p = createResolver().resolve(requestWith(validCredential())).orElseThrow();

    List<String> secrets = secrets(validCredential());
    assertHoldsNone("the principal", p.toString(), secrets);
    assertHoldsNone("the principal's attributes", String.valueOf(p.attributes()), secrets);
  }

  @Test
  void aRequestWithoutACredentialIsLeftToOthers() throws Exception {
    Optional<Principal> p = createResolver().resolve(requestWith(Map.of()));

    assertThat(p).as("resolve() never returns null").isNotNull().isEmpty();
  }

  @Test
  void aCredentialOfAnotherKindIsLeftToOthers() throws Exception {
    Map<String, String> foreign = foreignCredential();
    assumeThat(foreign).as("a foreign credential to try").isNotNull();

    Optional<Principal> p = createResolver().resolve(requestWith(foreign));

    assertThat(p).as("resolve() never returns null").isNotNull().isEmpty();
  }

  @Test
  void anInvalidCredentialIsRefusedWithoutQuotingIt() throws Exception {
    Map<String, String> invalid = invalidCredential();
    assumeThat(invalid).as("an invalid credential to try").isNotNull();
    IdentityResolver resolver = createResolver();

    assertThatThrownBy(() -> resolver.resolve(requestWith(invalid)))
        .isInstanceOf(AuthenticationException.class)
        .satisfies(
            e -> {
              assertThat(e.getMessage()).as("the message, shown to the caller").isNotBlank();
              assertHoldsNone("the message", e.getMessage(), secrets(invalid));
              assertHoldsNone("the exception", e.toString(), secrets(invalid));
            });
  }

  @Test
  void theSameCredentialIdentifiesTheSameCallerEveryTime() throws Exception {
    IdentityResolver resolver = createResolver();
    Principal first = resolver.resolve(requestWith(validCredential())).orElseThrow();

    for (int i = 0; i < 20; i++) {
      assertThat(resolver.resolve(requestWith(validCredential()))).contains(first);
    }
  }

  @Test
  void identifiesFromTheHeadWhateverTheMethodAndPath() throws Exception {
    IdentityResolver resolver = createResolver();
    Map<String, List<String>> headers = new LinkedHashMap<>();
    validCredential().forEach((k, v) -> headers.put(k, List.of(v)));

    Optional<Principal> p =
        resolver.resolve(new InferenceRequest("GET", "/pam/approvals", null, headers, null, null));

    assertThat(p).map(Principal::subject).contains(expectedSubject());
  }

  @Test
  void isThreadSafe() throws Exception {
    IdentityResolver resolver = createResolver();
    Map<String, String> valid = validCredential();
    int threads = 8;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<List<String>>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        done.add(
            pool.submit(
                (Callable<List<String>>)
                    () -> {
                      List<String> subjects = new ArrayList<>();
                      for (int i = 0; i < 100; i++) {
                        subjects.add(
                            resolver
                                .resolve(requestWith(valid))
                                .map(Principal::subject)
                                .orElse(null));
                        assertThat(resolver.resolve(requestWith(Map.of()))).isEmpty();
                      }
                      return subjects;
                    }));
      }
      for (Future<List<String>> f : done) {
        assertThat(f.get(30, TimeUnit.SECONDS)).hasSize(100).containsOnly(expectedSubject());
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
