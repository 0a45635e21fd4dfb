package dev.inferpam.testkit;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.credentials.CredentialProviders;
import dev.inferpam.core.internal.credentials.EnvCredentialProvider;
import dev.inferpam.core.internal.credentials.FileCredentialProvider;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Map;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.io.TempDir;

/** The built-in credential providers against the contract: environment, file, OAuth2 client credentials, none. */
class BuiltInCredentialProviderContractTest {
  static final String SECRET = "sk-upstream-3b9f0c1d7e";

  @Nested
  class FromTheEnvironment extends CredentialProviderContract {
    @Override
    protected CredentialProvider createProvider() {
      return new EnvCredentialProvider(
          "Authorization", "Bearer", "MODEL_KEY", Map.of("MODEL_KEY", SECRET)::get);
    }

    @Override
    protected Credential expectedCredential() {
      return new Credential("Authorization", "Bearer " + SECRET);
    }

    @Override
    protected CredentialProvider createUnavailableProvider() {
      return new EnvCredentialProvider(
          "Authorization", "Bearer", "MODEL_KEY", Map.<String, String>of()::get);
    }
  }

  @Nested
  class FromAFile extends CredentialProviderContract {
    @TempDir Path dir;

    @Override
    protected CredentialProvider createProvider() throws Exception {
      Path file = dir.resolve("model-key");
      Files.writeString(file, SECRET + "\n");
      return new FileCredentialProvider("X-Model-Key", "", file, Clock.systemUTC());
    }

    @Override
    protected Credential expectedCredential() {
      return new Credential("X-Model-Key", SECRET);
    }

    @Override
    protected CredentialProvider createUnavailableProvider() {
      return new FileCredentialProvider(
          "X-Model-Key", "", dir.resolve("missing"), Clock.systemUTC());
    }
  }

  @Nested
  class FromAnOAuth2TokenEndpoint extends CredentialProviderContract {
    MockWebServer tokens;

    MockWebServer tokens() throws Exception {
      if (tokens == null) {
        tokens = new MockWebServer();
        tokens.setDispatcher(
            new Dispatcher() {
              @Override
              public MockResponse dispatch(RecordedRequest request) {
                return request.getUrl().encodedPath().equals("/token")
                    ? new MockResponse.Builder()
                        .code(200)
                        .setHeader("Content-Type", "application/json")
                        .body(
                            "{\"access_token\":\""
                                + SECRET
                                + "\",\"token_type\":\"Bearer\",\"expires_in\":3600}")
                        .build()
                    : new MockResponse.Builder().code(503).build();
              }
            });
        tokens.start(InetAddress.getLoopbackAddress(), 0);
      }
      return tokens;
    }

    @AfterEach
    void stop() throws Exception {
      if (tokens != null) tokens.close();
    }

    CredentialProvider provider(String path) throws Exception {
      Policy policy =
          Policy.parse(
              """
          version: 1
          upstream:
            credential:
              oauth2:
                token-endpoint: http://127.0.0.1:%d%s
                client-id: inferpam
                client-secret-from-env: CLIENT_SECRET
          """
                  .formatted(tokens().getPort(), path));
      return CredentialProviders.from(
          policy.upstream().credential(),
          Map.of("CLIENT_SECRET", "client-secret-77")::get,
          Clock.systemUTC());
    }

    @Override
    protected CredentialProvider createProvider() throws Exception {
      return provider("/token");
    }

    @Override
    protected Credential expectedCredential() {
      return new Credential("Authorization", "Bearer " + SECRET);
    }

    @Override
    protected CredentialProvider createUnavailableProvider() throws Exception {
      return provider("/down");
    }
  }

  @Nested
  class None extends CredentialProviderContract {
    @Override
    protected CredentialProvider createProvider() {
      return CredentialProvider.NONE;
    }

    @Override
    protected Credential expectedCredential() {
      return null;
    }
  }
}
