package dev.inferpam.core.adapter;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What an {@link Verdict.Allowed allowed} request sends upstream ({@link Verdict.Allowed#forward()}).
 * Two ways to apply it:
 * <ul>
 *   <li>an adapter that passes the caller's request on (an HTTP client interceptor, a filter in
 *       front of an application): remove {@link #removeHeaders()}, set {@link #setHeaders()}, send
 *       {@link #body()};</li>
 *   <li>an adapter that builds a new request to an upstream (a gateway, a proxy): send
 *       {@link #proxyHeaders()} (the caller's headers on the forward allow-list, already edited,
 *       the upstream credential included) and {@link #body()}, plus what it sets itself as a
 *       proxy ({@code Host}, framing, {@code X-Forwarded-*}).</li>
 * </ul>
 * The values of {@link #setHeaders()} are secrets: {@code toString()} never shows them.
 * Immutable.
 */
public interface Forward {

  /**
   * Lower-case names of the request headers that carry a caller's own credential. They are in
   * every {@link #removeHeaders()}; an adapter that must show a request before it is decided
   * (held for review, its body still arriving) hides them too.
   */
  Set<String> CALLER_CREDENTIAL_HEADERS =
      Set.of("authorization", "x-api-key", "proxy-authorization");

  /**
   * Lower-case names of the caller's request headers not to send: the caller's credential
   * headers; {@code Content-Encoding} and {@code Content-Length} when the engine decoded a
   * compressed body ({@link #body()} is then the decoded body, sent without a coding and with its
   * own length); {@code Accept-Encoding} when the response will be rewritten (masked, or scanned
   * for this exchange's credentials), so that it comes back as text the engine can read.
   */
  Set<String> removeHeaders();

  /**
   * Headers to set, replacing any of the same name: the upstream credential, when one is
   * configured. Names as the policy or the credential provider spell them.
   */
  Map<String, String> setHeaders();

  /**
   * The request body as the engine read and decided on it, with its content codings undone;
   * empty when there is none. Forward exactly these bytes. Do not modify the array.
   */
  byte[] body();

  /**
   * The headers a proxy sends: the caller's headers (names in lower case) on the forward
   * allow-list (what an upstream needs to read the request and answer in the right shape —
   * {@code Content-Type}, {@code Accept}, {@code Accept-Language}, {@code User-Agent},
   * {@code Inference-Header-Content-Length}, {@code Anthropic-Version}, {@code Anthropic-Beta},
   * {@code OpenAI-Beta} — tracing headers, and the policy's {@code request.forward-headers}),
   * without {@link #removeHeaders()} and those the caller's {@code Connection} names, then
   * {@link #setHeaders()} (names as spelled there, replacing any of the same name). Cookies, organisation and project headers, method overrides,
   * forwarding claims and anything else stay behind.
   */
  Map<String, List<String>> proxyHeaders();
}
