package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.envVarName;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.filePath;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.nonEmpty;
import static dev.inferpam.core.internal.policy.PolicyNodes.required;
import static dev.inferpam.core.internal.policy.PolicyNodes.text;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.credentials.OAuth2CredentialProvider;
import java.nio.file.Path;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The {@code upstream} section: the {@code credential} the gateway sends upstream, from an
 * environment variable, a file or an OAuth2 client-credentials grant. Stateless; failures are
 * {@link dev.inferpam.core.PolicyException}s naming the key path.
 */
final class UpstreamSection {
  /** RFC 9110 token: header names and auth schemes. */
  private static final Pattern TOKEN = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");

  private UpstreamSection() {}

  static Policy.Upstream read(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("credential"), Set.of());
    Policy.CredentialSource credential = null;
    if (n.has("credential"))
      credential = credential(n.get("credential"), child(path, "credential"));
    return new Policy.Upstream(credential);
  }

  private static Policy.CredentialSource credential(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("header", "scheme", "from-env", "from-file", "oauth2"), Set.of());
    String header = "Authorization";
    if (n.has("header")) {
      String headerPath = child(path, "header");
      header = text(n.get("header"), headerPath);
      if (!TOKEN.matcher(header).matches()) {
        throw fail(headerPath, "expected a header name, was " + PolicyText.quote(header));
      }
    }
    String scheme =
        null; // absent: CredentialProviders picks Bearer for Authorization, none otherwise
    if (n.has("scheme")) {
      String schemePath = child(path, "scheme");
      scheme = text(n.get("scheme"), schemePath); // "" sends the raw value
      if (!scheme.isEmpty() && !TOKEN.matcher(scheme).matches()) {
        throw fail(
            schemePath,
            "expected a scheme such as Bearer, or \"\" for raw values, was "
                + PolicyText.quote(scheme));
      }
    }
    int sources =
        (n.has("from-env") ? 1 : 0) + (n.has("from-file") ? 1 : 0) + (n.has("oauth2") ? 1 : 0);
    if (sources != 1) throw fail(path, "exactly one of from-env / from-file / oauth2");
    String fromEnv = null;
    Path fromFile = null;
    Policy.OAuth2 oauth2 = null;
    if (n.has("from-env")) {
      fromEnv = envVarName(n.get("from-env"), child(path, "from-env"));
    } else if (n.has("from-file")) {
      fromFile = filePath(n.get("from-file"), child(path, "from-file"));
    } else {
      oauth2 = oauth2(n.get("oauth2"), child(path, "oauth2"));
    }
    return new Policy.CredentialSource(header, scheme, fromEnv, fromFile, oauth2);
  }

  /**
   * {@code upstream.credential.oauth2}: {@code token-endpoint} (absolute https URL; http only for
   * loopback hosts) and {@code client-id} required, exactly one of {@code client-secret-from-env}
   * / {@code client-secret-from-file}, optional {@code scope}, {@code audience} and
   * {@code refresh-before} (a duration, default {@link Policy.OAuth2#DEFAULT_REFRESH_BEFORE}).
   */
  private static Policy.OAuth2 oauth2(JsonNode n, String path) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of(
            "token-endpoint",
            "client-id",
            "client-secret-from-env",
            "client-secret-from-file",
            "scope",
            "audience",
            "refresh-before"),
        Set.of());
    String endpointPath = child(path, "token-endpoint");
    String endpointText = nonEmpty(required(n, path, "token-endpoint"), endpointPath);
    java.net.URI endpoint;
    try {
      endpoint = new java.net.URI(endpointText);
    } catch (java.net.URISyntaxException e) {
      throw fail(
          endpointPath, "expected an absolute https URL, was " + PolicyText.quote(endpointText));
    }
    String problem = OAuth2CredentialProvider.tokenEndpointProblem(endpoint);
    if (problem != null) throw fail(endpointPath, problem);
    String clientId = nonEmpty(required(n, path, "client-id"), child(path, "client-id"));
    if (n.has("client-secret-from-env") == n.has("client-secret-from-file")) {
      throw fail(path, "exactly one of client-secret-from-env / client-secret-from-file");
    }
    String secretEnv = null;
    Path secretFile = null;
    if (n.has("client-secret-from-env")) {
      secretEnv =
          envVarName(n.get("client-secret-from-env"), child(path, "client-secret-from-env"));
    } else {
      secretFile =
          filePath(n.get("client-secret-from-file"), child(path, "client-secret-from-file"));
    }
    String scope = n.has("scope") ? nonEmpty(n.get("scope"), child(path, "scope")) : null;
    String audience =
        n.has("audience") ? nonEmpty(n.get("audience"), child(path, "audience")) : null;
    java.time.Duration refreshBefore = null; // absent: Policy.OAuth2 applies the default
    if (n.has("refresh-before")) {
      String refreshPath = child(path, "refresh-before");
      try {
        refreshBefore = Durations.parse(text(n.get("refresh-before"), refreshPath));
      } catch (IllegalArgumentException e) {
        throw fail(refreshPath, e.getMessage());
      }
    }
    return new Policy.OAuth2(
        endpoint, clientId, secretEnv, secretFile, scope, audience, refreshBefore);
  }
}
