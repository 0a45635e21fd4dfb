package dev.inferpam.spring.boot;

import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code inferpam.*}: where the policy is, and which sides the starter governs.
 *
 * <pre>
 * inferpam.policy=classpath:inferpam-policy.yaml   # or file:/etc/inferpam/policy.yaml (required)
 * inferpam.client.enabled=true                    # RestClient, RestTemplate, WebClient (default)
 * inferpam.client.api-key=${INFERPAM_API_KEY}     # the application's key, for calls without one
 * inferpam.server.enabled=false                   # the filter in front of this application
 * inferpam.server.url-patterns=/v1/*              # where the filter applies (default /*)
 * inferpam.server.endpoints=true                  # /pam/approvals/* and /pam/quota (default)
 * </pre>
 */
@ConfigurationProperties("inferpam")
public class InferpamProperties {
  /** Whether the starter does anything at all (default true). */
  private boolean enabled = true;

  /** The policy file: a Spring resource location, {@code file:} or {@code classpath:}. */
  private String policy;

  private final Client client = new Client();
  private final Server server = new Server();

  public boolean isEnabled() {
    return enabled;
  }

  public void setEnabled(boolean enabled) {
    this.enabled = enabled;
  }

  public String getPolicy() {
    return policy;
  }

  public void setPolicy(String policy) {
    this.policy = policy;
  }

  public Client getClient() {
    return client;
  }

  public Server getServer() {
    return server;
  }

  /** The outbound side: Spring's HTTP clients built from Boot's builders. */
  public static class Client {
    /** Whether every RestClient, RestTemplate and WebClient built from Boot's builders is governed. */
    private boolean enabled = true;

    /**
     * The application's own credential: a service key whose sha256 the policy lists in {@code
     * identity.api-keys}, sent (as {@code Authorization: Bearer}) on the governed calls that carry
     * no credential of their own, such as Spring AI's Ollama models'; a call with its own keeps
     * it. It identifies the application to the policy and is removed before the call is sent.
     * Unset by default: calls without a credential are refused 401. A secret: never logged.
     */
    private String apiKey;

    public boolean isEnabled() {
      return enabled;
    }

    public void setEnabled(boolean enabled) {
      this.enabled = enabled;
    }

    public String getApiKey() {
      return apiKey;
    }

    public void setApiKey(String apiKey) {
      this.apiKey = apiKey;
    }
  }

  /** The inbound side: this application's own endpoints behind the filter. */
  public static class Server {
    /** Whether {@code PamFilter} is registered in front of this application. */
    private boolean enabled = false;

    /** The URL patterns the filter applies to. */
    private List<String> urlPatterns = new ArrayList<>(List.of("/*"));

    /** Whether the reviewer ({@code /pam/approvals/*}) and quota ({@code /pam/quota}) endpoints are served. */
    private boolean endpoints = true;

    public boolean isEnabled() {
      return enabled;
    }

    public void setEnabled(boolean enabled) {
      this.enabled = enabled;
    }

    public List<String> getUrlPatterns() {
      return urlPatterns;
    }

    public void setUrlPatterns(List<String> urlPatterns) {
      this.urlPatterns = urlPatterns;
    }

    public boolean isEndpoints() {
      return endpoints;
    }

    public void setEndpoints(boolean endpoints) {
      this.endpoints = endpoints;
    }
  }
}
