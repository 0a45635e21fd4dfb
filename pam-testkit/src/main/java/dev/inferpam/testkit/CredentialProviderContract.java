package dev.inferpam.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The compatibility kit for {@link CredentialProvider} implementations: extend it in a JUnit 5
 * test, give a provider whose source holds a known credential (and, if it has one, a provider
 * whose source is missing), and the tests check what the engine relies on — the credential is
 * given as configured, on every call and from many threads at once; a missing source is a
 * {@link CredentialUnavailableException} (so that the request is refused, never forwarded bare)
 * whose message names no secret; the header is one that can be sent; and neither the provider
 * nor the credential shows the secret in {@code toString()}.
 *
 * <pre>{@code
 * class VaultProviderContractTest extends CredentialProviderContract {
 *   protected CredentialProvider createProvider() { return new VaultProvider(vault, "model-key"); }
 *   protected Credential expectedCredential() { return new Credential("Authorization", "Bearer " + SECRET); }
 *   protected CredentialProvider createUnavailableProvider() { return new VaultProvider(vault, "missing"); }
 * }
 * }</pre>
 */
public abstract class CredentialProviderContract {
  /** An HTTP header name (RFC 9110 token). */
  private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]+");

  /** For a credential provider's test class to extend. */
  protected CredentialProviderContract() {}

  /** A provider whose credential source is in place; called once per test. */
  protected abstract CredentialProvider createProvider() throws Exception;

  /** The credential {@link #createProvider()}'s provider gives; {@code null} for one that injects nothing. */
  protected abstract Credential expectedCredential() throws Exception;

  /**
   * A provider whose source is missing or unusable (a variable unset, a file gone, a token
   * endpoint down), or {@code null} when it has no such state; default {@code null}.
   */
  protected CredentialProvider createUnavailableProvider() throws Exception {
    return null;
  }

  /** What must never be shown: the expected credential's value, and its part after the scheme. */
  protected List<String> secrets() throws Exception {
    List<String> out = new ArrayList<>();
    Credential c = expectedCredential();
    if (c == null) return out;
    out.add(c.value());
    int space = c.value().indexOf(' ');
    if (space > 0 && space < c.value().length() - 1)
      out.add(c.value().substring(space + 1).strip());
    out.removeIf(s -> s.length() < 8);
    return out;
  }

  private void assertShowsNoSecret(String what, String text) throws Exception {
    for (String secret : secrets())
      assertThat(text).as(what + " must not show the secret").doesNotContain(secret);
  }

  // ------------------------------------------------------------------------------------- tests

  @Test
  void givesTheConfiguredCredential() throws Exception {
    assertThat(createProvider().current()).isEqualTo(expectedCredential());
  }

  @Test
  void givesTheSameCredentialOnEveryCall() throws Exception {
    CredentialProvider provider = createProvider();
    for (int i = 0; i < 50; i++) assertThat(provider.current()).isEqualTo(expectedCredential());
  }

  @Test
  void theCredentialIsAHeaderThatCanBeSent() throws Exception {
    Credential c = createProvider().current();
    assumeThat(c).as("a provider that injects a credential").isNotNull();

    assertThat(c.header()).matches(TOKEN);
    assertThat(c.value())
        .isNotBlank()
        .doesNotContain("\r")
        .doesNotContain("\n")
        .doesNotContain("\0");
    assertThat(c.value()).as("no surrounding white space").isEqualTo(c.value().strip());
  }

  @Test
  void neitherTheProviderNorTheCredentialShowsTheSecret() throws Exception {
    CredentialProvider provider = createProvider();
    Credential c = provider.current();

    assertShowsNoSecret("the provider's toString()", provider.toString());
    assertShowsNoSecret("the credential's toString()", String.valueOf(c));
  }

  @Test
  void aMissingSourceIsRefusedWithAMessageThatNamesNoSecret() throws Exception {
    CredentialProvider unavailable = createUnavailableProvider();
    assumeThat(unavailable).as("a provider whose source is missing").isNotNull();

    for (int i = 0; i < 3; i++) {
      assertThatThrownBy(unavailable::current)
          .as(
              "a checked CredentialUnavailableException, never a RuntimeException or a null credential")
          .isInstanceOf(CredentialUnavailableException.class)
          .satisfies(
              e -> {
                assertThat(e.getMessage()).isNotBlank();
                assertShowsNoSecret("the message", e.getMessage());
              });
    }
    assertShowsNoSecret("the provider's toString()", unavailable.toString());
  }

  @Test
  void isThreadSafe() throws Exception {
    CredentialProvider provider = createProvider();
    Credential expected = expectedCredential();
    int threads = 8;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Void>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        done.add(
            pool.submit(
                (Callable<Void>)
                    () -> {
                      for (int i = 0; i < 200; i++)
                        assertThat(provider.current()).isEqualTo(expected);
                      return null;
                    }));
      }
      for (Future<Void> f : done) f.get(30, TimeUnit.SECONDS);
    } finally {
      pool.shutdownNow();
    }
  }
}
