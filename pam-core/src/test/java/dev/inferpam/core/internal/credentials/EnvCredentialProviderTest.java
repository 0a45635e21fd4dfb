package dev.inferpam.core.internal.credentials;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class EnvCredentialProviderTest {

  private static final String SECRET = "sk-proj-abc123";
  private final Map<String, String> env = new HashMap<>();

  @Test
  void prefixesTheScheme() throws CredentialUnavailableException {
    env.put("OPENAI_API_KEY", SECRET);
    EnvCredentialProvider provider =
        new EnvCredentialProvider("Authorization", "Bearer", "OPENAI_API_KEY", env::get);

    assertThat(provider.current()).isEqualTo(new Credential("Authorization", "Bearer " + SECRET));
  }

  @Test
  void usesTheBareSecretWithAnEmptyScheme() throws CredentialUnavailableException {
    env.put("ANTHROPIC_API_KEY", SECRET);
    EnvCredentialProvider provider =
        new EnvCredentialProvider("x-api-key", "", "ANTHROPIC_API_KEY", env::get);

    assertThat(provider.current()).isEqualTo(new Credential("x-api-key", SECRET));
  }

  @Test
  void stripsSurroundingWhitespace() throws CredentialUnavailableException {
    env.put("K", "  " + SECRET + "\n");
    assertThat(
            new EnvCredentialProvider("Authorization", "Bearer", "K", env::get).current().value())
        .isEqualTo("Bearer " + SECRET);
  }

  @Test
  void readsTheVariableOnEveryCall() throws CredentialUnavailableException {
    EnvCredentialProvider provider =
        new EnvCredentialProvider("Authorization", "Bearer", "K", env::get);
    env.put("K", "one");
    assertThat(provider.current().value()).isEqualTo("Bearer one");
    env.put("K", "two");
    assertThat(provider.current().value()).isEqualTo("Bearer two");
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "   ", "\n"})
  void refusesBlankVariablesNamingTheVariable(String value) {
    env.put("OPENAI_API_KEY", value);
    EnvCredentialProvider provider =
        new EnvCredentialProvider("Authorization", "Bearer", "OPENAI_API_KEY", env::get);

    assertThatThrownBy(provider::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessage("environment variable OPENAI_API_KEY is not set");
  }

  @Test
  void refusesAnUnsetVariable() {
    EnvCredentialProvider provider =
        new EnvCredentialProvider("Authorization", "Bearer", "OPENAI_API_KEY", env::get);
    assertThatThrownBy(provider::current)
        .hasMessage("environment variable OPENAI_API_KEY is not set");
  }

  @ParameterizedTest
  @ValueSource(strings = {"sk-1\r\nX-Injected: yes", "sk-\u0000", "sk-\u00e9", "a\tb"})
  void refusesValuesThatCannotBeAHeaderWithoutQuotingThem(String value) {
    env.put("K", value);
    EnvCredentialProvider provider = new EnvCredentialProvider("X-Api-Key", "", "K", env::get);

    assertThatThrownBy(provider::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessage("environment variable K holds a character not allowed in a header value");
  }

  @Test
  void neverShowsTheSecret() throws CredentialUnavailableException {
    env.put("OPENAI_API_KEY", SECRET);
    EnvCredentialProvider provider =
        new EnvCredentialProvider("Authorization", "Bearer", "OPENAI_API_KEY", env::get);

    assertThat(provider.toString())
        .isEqualTo("EnvCredentialProvider[Authorization from env OPENAI_API_KEY]");
    assertThat(provider.current().toString()).doesNotContain(SECRET);
  }

  @Test
  void readsTheProcessEnvironmentByDefault() throws CredentialUnavailableException {
    String name =
        System.getenv().containsKey("PATH") ? "PATH" : System.getenv().keySet().iterator().next();
    EnvCredentialProvider provider = new EnvCredentialProvider("X-Probe", "", name);
    // Only the shape is asserted: the value is whatever this machine holds.
    assertThat(provider.current().header()).isEqualTo("X-Probe");
    assertThat(provider.current())
        .as("the process environment cannot change: read once, not on every request")
        .isSameAs(provider.current());
    EnvCredentialProvider unset =
        new EnvCredentialProvider("X-Probe", "", "INFERPAM_SURELY_UNSET_" + System.nanoTime());
    for (int i = 0; i < 2; i++) {
      assertThatThrownBy(unset::current)
          .isInstanceOf(CredentialUnavailableException.class)
          .hasMessageStartingWith("environment variable INFERPAM_SURELY_UNSET_")
          .hasMessageEndingWith(" is not set");
    }
  }

  @Test
  void refusesBadConfiguration() {
    assertThatThrownBy(() -> new EnvCredentialProvider("Authorization", "Bearer", " ", env::get))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("from-env");
    assertThatThrownBy(() -> new EnvCredentialProvider("Bad Header", "", "K", env::get))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("upstream.credential.header");
    assertThatThrownBy(() -> new EnvCredentialProvider("Authorization", "Bearer x", "K", env::get))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("upstream.credential.scheme");
  }
}
