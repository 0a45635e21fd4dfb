package dev.inferpam.spring.internal;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.core.Authentication;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import java.io.IOException;
import java.net.URI;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The application's own key from configuration ({@code inferpam.client.api-key} of the Spring Boot
 * starter, on Boot 3.5 and 4 alike), checked once at start-up, for the adapters' {@code
 * withTokenSupplier}. The key is never logged nor put in a message. Not API.
 */
public final class ClientApiKey {
  private ClientApiKey() {}

  /**
   * The key's supplier, or {@code null} when {@code apiKey} is null (not configured).
   *
   * @param property the key's configuration name, for the messages
   * @throws IllegalStateException when the key is blank, or {@code engine} does not identify a
   *     caller by it (the message names the property and the engine's reason, never the key)
   */
  public static Supplier<String> checked(String property, String apiKey, PamEngine engine) {
    if (apiKey == null) return null;
    if (apiKey.isBlank()) {
      throw new IllegalStateException(
          "inferpam: "
              + property
              + " is set but blank: set it to a service key whose sha256 the policy lists in"
              + " identity.api-keys, or remove it");
    }
    Authentication who =
        engine.authenticate(
            RequestHead.of(
                "POST",
                URI.create("http://localhost/"),
                Map.of("Authorization", List.of("Bearer " + apiKey))));
    if (who instanceof Authentication.Refused refused) {
      throw new IllegalStateException(
          "inferpam: "
              + property
              + " does not identify a caller of the policy ("
              + message(refused.error())
              + "): set it to a service key whose sha256 the policy lists in identity.api-keys");
    }
    return () -> apiKey;
  }

  /** The error's {@code error.message}, which never quotes the credential. */
  private static String message(ErrorResponse error) {
    try {
      return new ObjectMapper()
          .readTree(error.body())
          .path("error")
          .path("message")
          .asText("status " + error.status());
    } catch (IOException e) {
      return "status " + error.status();
    }
  }
}
