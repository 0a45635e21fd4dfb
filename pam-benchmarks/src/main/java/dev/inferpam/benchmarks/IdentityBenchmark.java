package dev.inferpam.benchmarks;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.internal.identity.OidcResolver;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What identifying an OIDC caller costs, next to the one operation it cannot avoid: checking an
 * RS256 signature.
 *
 * <ul>
 *   <li>{@link #cachedToken}: a token the resolver has already validated, presented again: the
 *       validated-token cache (SHA-256 of the token, time claims re-checked) answers. Target
 *       &le; 5 µs.
 *   <li>{@link #freshRs256}: a token the resolver must validate in full (parse, header checks,
 *       key lookup in the cached JWK set, RS256 signature, claims, the principal), with the
 *       token cache disabled ({@code tokenCacheSize 0}). Eight distinct tokens are used in turn;
 *       with no cache, reusing them is as honest as minting a new one per call and keeps signing
 *       out of the measurement. Target: within 1.5&times; of {@link #bareJdkSignatureVerify}.
 *   <li>{@link #bareJdkSignatureVerify}: the floor: {@code Signature.getInstance("SHA256withRSA")}
 *       verifying the same eight tokens' signing input ({@code header.payload} as ASCII) against
 *       their signatures, base64url-decoded in setup, with the same public key, in the same run.
 * </ul>
 *
 * <p>Keys come from a JWKS served over HTTP on {@code 127.0.0.1} ({@link LocalIssuer}) and are
 * fetched once in setup, so no measured call touches the network. Setup resolves every token and
 * fails the run if any is refused, so a benchmark can never quietly measure a rejection path.
 *
 * <p>Single-threaded by default. {@code -t 8} shares one resolver between eight threads, as
 * request threads share it, and shows contention on its caches. Give it a longer warm-up
 * ({@code -wi 10}): with more busy threads than cores the JIT compiler threads get little CPU and
 * the fresh path is still getting faster after ten seconds. With more threads than cores, the
 * time per call also grows with oversubscription, so compare against
 * {@code bareJdkSignatureVerify} at the same {@code -t}, not against a single-threaded run.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Threads(1)
// Two forks show run-to-run spread; five warm-up seconds were too few for the fresh path's
// JIT on two cores (the fresh path keeps improving for several iterations), ten are enough.
@Fork(2)
@Warmup(iterations = 5, time = 2, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 2, timeUnit = TimeUnit.SECONDS)
public class IdentityBenchmark {

  /** Distinct tokens used in turn; a power of two so the cursor wraps with a mask. */
  static final int RING = 8;

  /** Long enough that no reasonable run outlives its tokens. */
  private static final Duration LIFETIME = Duration.ofHours(8);

  private static final String SUBJECT = "alice";

  /** One issuer, its tokens and two resolvers, shared by all benchmark threads. */
  @State(Scope.Benchmark)
  public static class Issuer {
    LocalIssuer issuer;
    IdentityResolver cached;
    IdentityResolver uncached;
    InferenceRequest cachedRequest;
    InferenceRequest[] freshRequests;
    RSAPublicKey publicKey;
    byte[][] signingInputs;
    byte[][] signatures;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
      issuer = LocalIssuer.start();
      Instant now = Instant.now();
      Clock clock = Clock.systemUTC();
      cached = new OidcResolver(List.of(issuer.policy()), clock);
      uncached = new OidcResolver(List.of(issuer.policy()), clock, 0);

      cachedRequest = request(issuer.mint(SUBJECT, "cached", now, LIFETIME));
      freshRequests = new InferenceRequest[RING];
      publicKey = issuer.publicKey();
      signingInputs = new byte[RING][];
      signatures = new byte[RING][];
      for (int i = 0; i < RING; i++) {
        String token = issuer.mint(SUBJECT, "fresh-" + i, now, LIFETIME);
        freshRequests[i] = request(token);
        int lastDot = token.lastIndexOf('.');
        signingInputs[i] = token.substring(0, lastDot).getBytes(StandardCharsets.US_ASCII);
        signatures[i] = Base64.getUrlDecoder().decode(token.substring(lastDot + 1));
      }

      // Fetches the JWKS, fills the token cache, and proves every measured call succeeds.
      expectAlice(cached.resolve(cachedRequest).orElse(null), "cached token");
      for (int i = 0; i < RING; i++) {
        expectAlice(uncached.resolve(freshRequests[i]).orElse(null), "fresh token " + i);
        if (!verify(publicKey, signingInputs[i], signatures[i])) {
          throw new IllegalStateException("bare JDK verify refused fresh token " + i);
        }
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
      for (IdentityResolver resolver : new IdentityResolver[] {cached, uncached}) {
        if (resolver instanceof AutoCloseable closeable) closeable.close();
      }
      if (issuer != null) issuer.close();
    }

    private static InferenceRequest request(String token) {
      return new InferenceRequest(
          "POST",
          "/v1/chat/completions",
          null,
          Map.of("Authorization", List.of("Bearer " + token)),
          new byte[0],
          "127.0.0.1");
    }

    private static void expectAlice(Principal principal, String what) {
      if (principal == null || !SUBJECT.equals(principal.subject())) {
        throw new IllegalStateException(what + " did not resolve to " + SUBJECT + ": " + principal);
      }
    }
  }

  /** Which of the {@link #RING} tokens comes next; one per thread so threads never share it. */
  @State(Scope.Thread)
  public static class Cursor {
    private int next;

    int next() {
      int i = next;
      next = (i + 1) & (RING - 1);
      return i;
    }
  }

  @Benchmark
  public Principal cachedToken(Issuer state) throws AuthenticationException {
    return state.cached.resolve(state.cachedRequest).orElseThrow();
  }

  @Benchmark
  public Principal freshRs256(Issuer state, Cursor cursor) throws AuthenticationException {
    return state.uncached.resolve(state.freshRequests[cursor.next()]).orElseThrow();
  }

  @Benchmark
  public boolean bareJdkSignatureVerify(Issuer state, Cursor cursor)
      throws GeneralSecurityException {
    int i = cursor.next();
    if (!verify(state.publicKey, state.signingInputs[i], state.signatures[i])) {
      throw new IllegalStateException("signature refused");
    }
    return true;
  }

  /** A new {@code Signature} per call, as a verifier that keeps no per-thread state must do. */
  static boolean verify(RSAPublicKey key, byte[] signingInput, byte[] signature)
      throws GeneralSecurityException {
    Signature verifier = Signature.getInstance("SHA256withRSA");
    verifier.initVerify(key);
    verifier.update(signingInput);
    return verifier.verify(signature);
  }
}
