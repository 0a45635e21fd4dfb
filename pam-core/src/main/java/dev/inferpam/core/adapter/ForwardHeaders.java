package dev.inferpam.core.adapter;

import dev.inferpam.core.PolicyException;
import dev.inferpam.core.internal.policy.PolicyText;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The forward allow-list: the caller's request headers a proxy (the gateway) passes to the
 * upstream ({@link #forwarded}), and the check of {@code request.forward-headers}, caller request
 * headers a policy adds to it. Stateless and thread-safe.
 *
 * <p>A listed name must be an RFC 9110 token, listed once (names compare case-insensitively),
 * and none of the headers that must never come from a caller: the caller's credentials
 * ({@code Authorization}, {@code X-Api-Key}, {@code Proxy-*}), hop-by-hop headers, the framing
 * of the body the gateway forwards ({@code Host}, {@code Content-Length},
 * {@code Content-Encoding}, {@code Transfer-Encoding}, {@code Accept-Encoding}: the gateway must
 * receive plain text to mask and record it), {@code Cookie}, forwarding claims
 * ({@code Forwarded}, {@code X-Forwarded-*}, {@code X-Real-IP}, {@code Via}) and method
 * overrides (the upstream would act on another method than the one the policy checked). The
 * upstream credential's own header is refused by {@link dev.inferpam.core.Policy} itself, which
 * knows both sections.
 */
public final class ForwardHeaders {
  /** The policy key, as error messages name it. */
  public static final String KEY = "request.forward-headers";

  /** RFC 9110 token, as header names are. */
  private static final Pattern TOKEN = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");

  private static final String CREDENTIAL = "a caller credential header";
  private static final String HOP_BY_HOP = "a hop-by-hop header";
  private static final String FRAMING = "the gateway sets it for the body it forwards";
  private static final String FORWARDING_CLAIM =
      "a forwarding claim; the gateway sets X-Forwarded-For, -Proto "
          + "and -Host from what it saw";
  private static final String METHOD_OVERRIDE =
      "it would make the upstream act on another method than the one " + "the policy checked";

  /** Lower-case names never forwarded from a caller, with the reason; {@link #refusal} adds two prefixes. */
  private static final Map<String, String> NEVER =
      Map.ofEntries(
          Map.entry("authorization", CREDENTIAL),
          Map.entry("x-api-key", CREDENTIAL),
          Map.entry("connection", HOP_BY_HOP),
          Map.entry("keep-alive", HOP_BY_HOP),
          Map.entry("te", HOP_BY_HOP),
          Map.entry("trailer", HOP_BY_HOP),
          Map.entry("trailers", HOP_BY_HOP),
          Map.entry("upgrade", HOP_BY_HOP),
          Map.entry("expect", HOP_BY_HOP),
          Map.entry("host", FRAMING),
          Map.entry("content-length", FRAMING),
          Map.entry("content-encoding", FRAMING),
          Map.entry("transfer-encoding", FRAMING),
          Map.entry(
              "accept-encoding",
              "the gateway must receive the answer uncompressed to mask and record it"),
          Map.entry("cookie", "the caller's cookies"),
          Map.entry("forwarded", FORWARDING_CLAIM),
          Map.entry("x-real-ip", FORWARDING_CLAIM),
          Map.entry("via", FORWARDING_CLAIM),
          Map.entry("x-http-method-override", METHOD_OVERRIDE),
          Map.entry("x-http-method", METHOD_OVERRIDE),
          Map.entry("x-method-override", METHOD_OVERRIDE));

  /**
   * Request headers forwarded to the upstream (lower-case), besides {@code X-B3-*} and the
   * policy's {@code request.forward-headers}: what an upstream needs to read the request and
   * answer in the right shape, and tracing. {@code Content-Encoding} only reaches the upstream on a
   * body the engine passed as it came (it drops it from a body it decoded).
   */
  private static final Set<String> FORWARDED =
      Set.of(
          "content-type",
          "content-encoding",
          "accept",
          "accept-language",
          "user-agent",
          "inference-header-content-length",
          "anthropic-version",
          "anthropic-beta",
          "openai-beta",
          "traceparent",
          "tracestate",
          "baggage",
          "b3",
          "x-request-id",
          "x-correlation-id");

  private ForwardHeaders() {}

  /**
   * Whether a proxy forwards the caller's header {@code lowerCaseName} by default (the policy's
   * {@code request.forward-headers} add to these).
   */
  public static boolean forwarded(String lowerCaseName) {
    return FORWARDED.contains(lowerCaseName) || lowerCaseName.startsWith("x-b3-");
  }

  /**
   * The lower-case header names a {@code Connection} header lists: hop-by-hop as well, never
   * forwarded.
   *
   * @param connectionValues the values of {@code Connection}, or {@code null}
   */
  public static Set<String> connectionTokens(Iterable<String> connectionValues) {
    if (connectionValues == null) return Set.of();
    Set<String> out = new HashSet<>();
    for (String value : connectionValues) {
      if (value == null) continue;
      for (String token : value.split(",")) {
        String t = token.strip().toLowerCase(Locale.ROOT);
        if (!t.isEmpty()) out.add(t);
      }
    }
    return out;
  }

  /**
   * Why {@code name} may never be forwarded from a caller, or {@code null} when a policy may list it.
   *
   * @param name a header name in any case
   */
  public static String refusal(String name) {
    String lower = name.toLowerCase(Locale.ROOT);
    String reason = NEVER.get(lower);
    if (reason != null) return reason;
    if (lower.startsWith("proxy-"))
      return lower.equals("proxy-authorization") ? CREDENTIAL : HOP_BY_HOP;
    if (lower.startsWith("x-forwarded-")) return FORWARDING_CLAIM;
    return null;
  }

  /**
   * Checks the listed names.
   *
   * @param names the names as written, or {@code null} for none
   * @return the names as written, in the order given
   * @throws PolicyException naming {@value #KEY}{@code [i]} and the value: not a header name, listed
   *     twice, or one that {@link #refusal} refuses
   */
  public static List<String> check(List<String> names) {
    if (names == null) return List.of();
    Map<String, Integer> seen = new HashMap<>();
    for (int i = 0; i < names.size(); i++) {
      String name = names.get(i);
      String path = KEY + "[" + i + "]";
      if (name == null || !TOKEN.matcher(name).matches()) {
        throw new PolicyException(
            path
                + ": expected a header name, was "
                + (name == null ? "null" : PolicyText.quote(name)));
      }
      String lower = name.toLowerCase(Locale.ROOT);
      Integer other = seen.putIfAbsent(lower, i);
      if (other != null) {
        throw new PolicyException(
            path
                + ": duplicate header "
                + PolicyText.quote(name)
                + " (also "
                + KEY
                + "["
                + other
                + "])");
      }
      String reason = refusal(lower);
      if (reason != null) {
        throw new PolicyException(
            path
                + ": "
                + PolicyText.quote(name)
                + " is never forwarded from a caller ("
                + reason
                + ")");
      }
    }
    return List.copyOf(names);
  }

  /**
   * Refuses the upstream credential's header among checked {@code names}: the gateway sets that
   * credential itself, and a caller's value must never be passed on.
   *
   * @param credentialHeader {@code upstream.credential.header}, or {@code null} (the default,
   *                         {@code Authorization}, is refused by {@link #check} already)
   * @throws PolicyException naming {@value #KEY}{@code [i]} and the value
   */
  public static void checkNotCredential(List<String> names, String credentialHeader) {
    for (int i = 0; credentialHeader != null && i < names.size(); i++) {
      if (names.get(i).equalsIgnoreCase(credentialHeader)) {
        throw new PolicyException(
            KEY
                + "["
                + i
                + "]: "
                + PolicyText.quote(names.get(i))
                + " is the upstream credential's header (upstream.credential.header); it is never taken from a caller");
      }
    }
  }
}
