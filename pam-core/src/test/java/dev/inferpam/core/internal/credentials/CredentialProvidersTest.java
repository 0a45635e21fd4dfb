package dev.inferpam.core.internal.credentials;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.core.Policy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CredentialProvidersTest {

  private final Map<String, String> env = Map.of("OPENAI_API_KEY", "sk-env");

  @TempDir Path dir;

  @Test
  void noSourceMeansNoCredential() throws Exception {
    assertThat(CredentialProviders.from(null)).isSameAs(CredentialProvider.NONE);
    assertThat(CredentialProviders.from(null, env::get).current()).isNull();
  }

  @Test
  void buildsAnEnvironmentProvider() throws Exception {
    CredentialProvider provider =
        CredentialProviders.from(
            new Policy.CredentialSource("Authorization", "Bearer", "OPENAI_API_KEY", null),
            env::get);

    assertThat(provider).isInstanceOf(EnvCredentialProvider.class);
    assertThat(provider.current()).isEqualTo(new Credential("Authorization", "Bearer sk-env"));
  }

  @Test
  void buildsAFileProvider() throws Exception {
    Path file = Files.writeString(dir.resolve("key"), "sk-file\n");
    CredentialProvider provider =
        CredentialProviders.from(new Policy.CredentialSource("api-key", "", null, file), env::get);

    assertThat(provider).isInstanceOf(FileCredentialProvider.class);
    assertThat(provider.current()).isEqualTo(new Credential("api-key", "sk-file"));
  }

  @Test
  void defaultsToABearerAuthorizationHeader() throws Exception {
    CredentialProvider provider =
        CredentialProviders.from(
            new Policy.CredentialSource(null, null, "OPENAI_API_KEY", null), env::get);
    assertThat(provider.current()).isEqualTo(new Credential("Authorization", "Bearer sk-env"));
  }

  @Test
  void defaultsToTheBareSecretForOtherHeaders() throws Exception {
    CredentialProvider provider =
        CredentialProviders.from(
            new Policy.CredentialSource("x-api-key", null, "OPENAI_API_KEY", null), env::get);
    assertThat(provider.current()).isEqualTo(new Credential("x-api-key", "sk-env"));
  }

  @Test
  void anExplicitEmptySchemeMeansTheBareSecret() throws Exception {
    CredentialProvider provider =
        CredentialProviders.from(
            new Policy.CredentialSource("Authorization", "", "OPENAI_API_KEY", null), env::get);
    assertThat(provider.current()).isEqualTo(new Credential("Authorization", "sk-env"));
  }

  @Test
  void requiresExactlyOneSource() {
    assertThatThrownBy(
            () ->
                CredentialProviders.from(
                    new Policy.CredentialSource(null, null, null, null), env::get))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "upstream.credential: exactly one of from-env / from-file / oauth2 must be set");
    assertThatThrownBy(
            () ->
                CredentialProviders.from(
                    new Policy.CredentialSource(null, null, "OPENAI_API_KEY", dir.resolve("k")),
                    env::get))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void theDefaultFactoryReadsTheProcessEnvironment() {
    CredentialProvider provider =
        CredentialProviders.from(
            new Policy.CredentialSource(null, null, "INFERPAM_TEST_SURELY_UNSET_VARIABLE", null));
    assertThatThrownBy(provider::current)
        .hasMessage("environment variable INFERPAM_TEST_SURELY_UNSET_VARIABLE is not set");
  }
}
