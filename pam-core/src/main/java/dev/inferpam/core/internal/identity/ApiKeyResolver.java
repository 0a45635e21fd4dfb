package dev.inferpam.core.internal.identity;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.Sha256;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Identifies service principals by API key ({@code identity.api-keys} in the policy).
 *
 * <p>The caller's key is read from {@code Authorization: Bearer <key>} or
 * {@code X-Api-Key: <key>}. Its SHA-256 is compared, in constant time, with every configured
 * hash; the policy never holds a key itself.
 *
 * <ul>
 *   <li>a match gives {@code Principal(name, groups, via="api-key")}, unless the key's
 *       {@code expires} is at or before now: then {@code AuthenticationException("api key
 *       expired")};
 *   <li>no credential header, or an {@code Authorization} header with another scheme: empty,
 *       so another resolver may try;
 *   <li>an unknown bearer value shaped like a JWT or JWE (see {@link BearerTokens#isJwtShaped}):
 *       empty, so that an OIDC resolver later in the chain can claim it;
 *   <li>any other unknown value: {@code AuthenticationException("unknown api key")};
 *   <li>two different credentials ({@code Authorization: Bearer} and {@code X-Api-Key} with
 *       different values), or a credential header given more than once: refused, because we
 *       cannot know which one the caller meant, nor which one a server behind us would use.
 * </ul>
 *
 * <p>Neither the key nor its hash ever appears in a message or in {@link #toString()}.
 *
 * <p><b>Thread-safety:</b> immutable after construction; safe for concurrent use. The clock is
 * read on every call, so expiry takes effect without a restart.
 */
public final class ApiKeyResolver implements IdentityResolver {

  private static final String AUTHORIZATION = "authorization";
  private static final String X_API_KEY = "x-api-key";

  private final List<Entry> entries;
  private final Clock clock;

  /**
   * @param keys  the configured keys; two may share a name (key rotation), never a hash
   * @param clock decides expiry
   * @throws IllegalArgumentException when a hash is not 64 hex digits or two keys share a hash
   *     (which principal would it be?); the message names the key, not the hash
   */
  public ApiKeyResolver(List<Policy.ApiKey> keys, Clock clock) {
    Objects.requireNonNull(keys, "keys");
    this.clock = Objects.requireNonNull(clock, "clock");
    List<Entry> list = new ArrayList<>(keys.size());
    Map<String, String> nameByHash = new HashMap<>();
    for (int i = 0; i < keys.size(); i++) {
      Policy.ApiKey key = Objects.requireNonNull(keys.get(i), "keys[" + i + "]");
      String where = "identity.api-keys[" + i + "] (" + key.name() + ")";
      String hex = key.sha256Hex().toLowerCase(Locale.ROOT);
      if (hex.length() != 64 || !hex.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
        throw new IllegalArgumentException(where + ": sha256 must be 64 hex digits");
      }
      String other = nameByHash.putIfAbsent(hex, key.name());
      if (other != null) {
        throw new IllegalArgumentException(where + ": same sha256 as key \"" + other + "\"");
      }
      list.add(new Entry(key, HexFormat.of().parseHex(hex)));
    }
    this.entries = List.copyOf(list);
  }

  @Override
  public Optional<Principal> resolve(InferenceRequest request) throws AuthenticationException {
    String bearer = BearerTokens.token(single(request, AUTHORIZATION, "Authorization"));
    String apiKey = single(request, X_API_KEY, "X-Api-Key");
    if (apiKey != null) apiKey = apiKey.strip();
    if (apiKey != null && apiKey.isEmpty()) apiKey = null;

    if (bearer != null && apiKey != null && !bearer.equals(apiKey)) {
      throw new AuthenticationException("conflicting credentials in Authorization and X-Api-Key");
    }
    String presented = bearer != null ? bearer : apiKey;
    if (presented == null) return Optional.empty();

    Entry match = lookup(presented);
    if (match == null) {
      // Only a bearer value can be an OIDC token; X-Api-Key is ours alone.
      if (bearer != null && BearerTokens.isJwtShaped(bearer)) return Optional.empty();
      throw new AuthenticationException("unknown api key");
    }
    Instant expires = match.key.expires();
    if (expires != null && !clock.instant().isBefore(expires)) {
      throw new AuthenticationException("api key expired");
    }
    return Optional.of(
        new Principal(match.key.name(), match.key.groups(), Principal.VIA_API_KEY, null, Map.of()));
  }

  /** Compares against every entry, without stopping at a match, so timing says nothing. */
  private Entry lookup(String presented) {
    byte[] digest = sha256(presented);
    Entry match = null;
    for (Entry entry : entries) {
      boolean equal = MessageDigest.isEqual(digest, entry.sha256);
      if (equal && match == null) match = entry;
    }
    return match;
  }

  /** The value of {@code name} when sent once, {@code null} when absent. */
  private static String single(InferenceRequest request, String name, String display)
      throws AuthenticationException {
    List<String> values = request.headers().get(name);
    if (values == null || values.isEmpty()) return null;
    if (values.size() > 1)
      throw new AuthenticationException("more than one " + display + " header");
    return values.get(0);
  }

  private static byte[] sha256(String value) {
    return Sha256.of(value.getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public String toString() {
    return "ApiKeyResolver[" + entries.size() + " keys]";
  }

  private record Entry(Policy.ApiKey key, byte[] sha256) {}
}
