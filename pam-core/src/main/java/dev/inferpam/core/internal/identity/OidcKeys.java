package dev.inferpam.core.internal.identity;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSVerifier;
import com.nimbusds.jose.KeySourceException;
import com.nimbusds.jose.crypto.ECDSAVerifier;
import com.nimbusds.jose.crypto.RSASSAVerifier;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKMatcher;
import com.nimbusds.jose.jwk.JWKSelector;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyConverter;
import com.nimbusds.jose.jwk.OctetKeyPair;
import com.nimbusds.jose.jwk.source.JWKSetCacheRefreshEvaluator;
import com.nimbusds.jose.jwk.source.JWKSetSource;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jose.util.Base64URL;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.Key;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.EdECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The verification keys of one issuer of {@link OidcResolver}, and a verifier per key made once.
 *
 * <p><b>Where keys come from.</b> Only the issuer's JWK set, through Nimbus's key source chain
 * (URL, outage tolerance, rate limit, cache with refresh-ahead), asked on every token on the
 * injected clock so that expiry, refresh-ahead and the rate limit work as configured. A token's
 * {@code jku}, {@code x5u}, {@code jwk} and {@code x5c} headers are never read; which keys of the
 * set may verify a token is what Nimbus's {@link JWKMatcher#forJWSHeader} says for its
 * {@code alg}, {@code kid} and {@code x5t#S256} (key type, key use {@code sig} or none, key
 * {@code alg} equal or none, EdDSA curves). When the set holds no such key, the set is fetched
 * once more (a key may have been rotated in since), at most once per refetch interval for all
 * unknown keys together: the key source's own rate limit lets two fetches through per window
 * (it counts refreshes too), which made-up {@code kid}s alone could use up every window.
 *
 * <p><b>What is cached.</b> Per JWK set seen last: the Java keys and verifiers of its JWKs, made
 * when a token first needs them (converting a JWK was a third of a token's cost), and which of
 * them each {@code (alg, kid, x5t#S256)} selects, for selections that found keys (so tokens with
 * made-up {@code kid}s add nothing; at most {@value #MAX_SELECTIONS} in all). All of it is
 * dropped as soon as the key source hands out another set (a refresh, a rotation): a key
 * removed from the set is never used again once the cached set expired.
 *
 * <p><b>Verifiers.</b> RS256, RS384 and RS512 on the JDK's {@link Signature} directly, as Nimbus's
 * {@link RSASSAVerifier} does it; PS* with {@link RSASSAVerifier} and ES* with
 * {@link ECDSAVerifier} (which checks curve, signature length and the zero-signature attack), one
 * per key; EdDSA on the JDK (see {@link OidcEdDsa}). A key that cannot verify the token's
 * algorithm throws {@link JOSEException}, as Nimbus's verifier factory did.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use; a new {@link Signature} per verification.
 */
final class OidcKeys {

  /** Bound on cached selections per key set; only selections that found a key are kept. */
  static final int MAX_SELECTIONS = 256;

  /** Verifies a token's signature with one key. */
  interface KeyVerifier {
    /**
     * @return whether the signature verifies with this key
     * @throws JOSEException when this key cannot verify the token's algorithm
     */
    boolean verify(OidcToken token) throws JOSEException;
  }

  private final Set<JWSAlgorithm> algorithms;
  private final JWKSetSource<SecurityContext> source;
  private final Clock clock;
  private final long refetchMillis;

  /** When the next fetch for an unknown key may happen, in {@link #clock} millis. */
  private final AtomicLong nextRefetch = new AtomicLong(Long.MIN_VALUE);

  /** Keys of the JWK set the source last handed out; replaced, never updated, for another set. */
  private volatile Table table = new Table(new JWKSet());

  /**
   * @param algorithms the issuer's algorithms; other algorithms select no key
   * @param source     the issuer's JWK set
   * @param clock      for the source's cache expiry and rate limit
   * @param refetchInterval at most one fetch for unknown keys per this interval
   */
  OidcKeys(
      Set<JWSAlgorithm> algorithms,
      JWKSetSource<SecurityContext> source,
      Clock clock,
      Duration refetchInterval) {
    this.algorithms = Set.copyOf(algorithms);
    this.source = source;
    this.clock = clock;
    this.refetchMillis = refetchInterval.toMillis();
  }

  /**
   * Verifiers of the issuer's keys that may have signed a token with {@code header}; empty when
   * the JWK set holds none, also after one more fetch.
   *
   * @throws KeySourceException when there are no keys at all: nothing cached and the endpoint
   *     down, slow or rate-limited
   */
  List<KeyVerifier> select(JWSHeader header) throws KeySourceException {
    if (!algorithms.contains(header.getAlgorithm())) return List.of();
    long now = clock.millis();
    JWKSet known = source.getJWKSet(JWKSetCacheRefreshEvaluator.noRefresh(), now, null);
    List<KeyVerifier> found = table(known).select(header);
    if (!found.isEmpty()) return found;
    // An unknown kid may be a key rotated in since the last fetch: ask once more, once per
    // interval for all unknown kids together, so tokens with made-up kids cannot make us fetch
    // more often (the first thread to claim the window fetches; the others find no key).
    long next = nextRefetch.get();
    if (now < next || !nextRefetch.compareAndSet(next, now + refetchMillis)) return List.of();
    JWKSet refetched;
    try {
      refetched =
          source.getJWKSet(JWKSetCacheRefreshEvaluator.referenceComparison(known), now, null);
    } catch (KeySourceException e) {
      return List.of(); // we have keys, just not this one
    }
    return table(refetched).select(header);
  }

  /** Closes the key source (Nimbus's chain, with its refresh executor); failures are only logged. */
  void close() {
    try {
      source.close();
    } catch (java.io.IOException | RuntimeException e) {
      org.slf4j.LoggerFactory.getLogger(OidcKeys.class)
          .debug("inferpam: closing an OIDC key source failed: {}", e.toString());
    }
  }

  /** How many JWKs of the current set have their verifiers made; for tests. */
  int convertedKeys() {
    Table t = table;
    t.lock.lock();
    try {
      return t.converted.size();
    } finally {
      t.lock.unlock();
    }
  }

  /** How many selections of the current set are cached; for tests. */
  int cachedSelections() {
    return table.selections.size();
  }

  private Table table(JWKSet set) {
    Table t = table;
    if (t.set == set) return t;
    t = new Table(set);
    table = t;
    return t;
  }

  /**
   * What a selection depends on: the inputs of {@link JWKMatcher#forJWSHeader}. Equality written
   * out: it runs on every token, and the generated one of a record goes through method handles.
   */
  private record Selection(JWSAlgorithm alg, String kid, Base64URL x5tS256) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Selection s
          && alg.equals(s.alg)
          && Objects.equals(kid, s.kid)
          && Objects.equals(x5tS256, s.x5tS256);
    }

    @Override
    public int hashCode() {
      return (alg.hashCode() * 31 + Objects.hashCode(kid)) * 31 + Objects.hashCode(x5tS256);
    }
  }

  /** The verifiers of one JWK set. */
  private static final class Table {
    final JWKSet set;

    /** Per JWK object of {@link #set}, by identity; guarded by {@link #lock}. */
    final Map<JWK, List<KeyVerifier>> converted = new IdentityHashMap<>();

    final ReentrantLock lock = new ReentrantLock();
    final Map<Selection, List<KeyVerifier>> selections = new ConcurrentHashMap<>();

    Table(JWKSet set) {
      this.set = set;
    }

    List<KeyVerifier> select(JWSHeader header) {
      Selection key =
          new Selection(
              header.getAlgorithm(), header.getKeyID(), header.getX509CertSHA256Thumbprint());
      List<KeyVerifier> cached = selections.get(key);
      if (cached != null) return cached;
      JWKMatcher matcher = JWKMatcher.forJWSHeader(header);
      if (matcher == null) return List.of();
      List<KeyVerifier> out = new ArrayList<>();
      for (JWK jwk : new JWKSelector(matcher).select(set)) out.addAll(verifiers(jwk));
      List<KeyVerifier> found = List.copyOf(out);
      if (!found.isEmpty() && selections.size() < MAX_SELECTIONS)
        selections.putIfAbsent(key, found);
      return found;
    }

    private List<KeyVerifier> verifiers(JWK jwk) {
      lock.lock();
      try {
        return converted.computeIfAbsent(jwk, Table::convert);
      } finally {
        lock.unlock();
      }
    }

    /** The JWK's public keys as Nimbus converts them (OKP ones as {@link OidcEdDsa} does), each with its verifier. */
    private static List<KeyVerifier> convert(JWK jwk) {
      List<KeyVerifier> out = new ArrayList<>();
      if (jwk instanceof OctetKeyPair okp) {
        PublicKey key = OidcEdDsa.publicKey(okp);
        if (key != null) out.add(verifier(key));
      } else {
        for (Key key : KeyConverter.toJavaKeys(List.of(jwk))) {
          if (key instanceof PublicKey || key instanceof javax.crypto.SecretKey)
            out.add(verifier(key));
        }
      }
      return List.copyOf(out);
    }
  }

  /** The verifier for a key, made once per key. */
  static KeyVerifier verifier(Key key) {
    if (key instanceof RSAPublicKey rsa) return new Rsa(rsa);
    if (key instanceof ECPublicKey ec) return ec(ec);
    if (key instanceof EdECPublicKey ed)
      return token -> {
        if (!JWSAlgorithm.EdDSA.equals(token.header().getAlgorithm())) throw wrongKeyType(token);
        return OidcEdDsa.verify(ed, token.bytes(), token.signingInputLength(), token.signature());
      };
    return token -> {
      throw wrongKeyType(token);
    };
  }

  private static JOSEException wrongKeyType(OidcToken token) {
    return new JOSEException("key cannot verify " + token.header().getAlgorithm());
  }

  /** RS* on the JDK; PS* through Nimbus, which knows the PSS parameters each provider wants. */
  private static final class Rsa implements KeyVerifier {
    private final RSAPublicKey key;
    private final RSASSAVerifier nimbus;

    Rsa(RSAPublicKey key) {
      this.key = key;
      this.nimbus = new RSASSAVerifier(key);
    }

    @Override
    public boolean verify(OidcToken token) throws JOSEException {
      JWSAlgorithm alg = token.header().getAlgorithm();
      String jdk =
          JWSAlgorithm.RS256.equals(alg)
              ? "SHA256withRSA"
              : JWSAlgorithm.RS384.equals(alg)
                  ? "SHA384withRSA"
                  : JWSAlgorithm.RS512.equals(alg) ? "SHA512withRSA" : null;
      if (jdk == null) {
        if (!JWSAlgorithm.Family.RSA.contains(alg)) throw wrongKeyType(token);
        return nimbus.verify(token.header(), token.signingInput(), token.signatureBase64());
      }
      try {
        Signature verifier = Signature.getInstance(jdk);
        verifier.initVerify(key);
        verifier.update(token.bytes(), 0, token.signingInputLength());
        return verifier.verify(token.signature());
      } catch (SignatureException e) {
        return false; // a malformed signature (wrong length) is a wrong one
      } catch (InvalidKeyException e) {
        throw new JOSEException("Invalid public RSA key: " + e.getMessage(), e);
      } catch (GeneralSecurityException e) {
        throw new JOSEException(jdk + " unavailable: " + e.getMessage(), e);
      }
    }
  }

  /** Nimbus's {@link ECDSAVerifier}, made once; a key it refuses (unsupported curve) cannot verify. */
  private static KeyVerifier ec(ECPublicKey key) {
    JWSVerifier nimbus;
    try {
      nimbus = new ECDSAVerifier(key);
    } catch (JOSEException e) {
      return token -> {
        throw new JOSEException(e.getMessage(), e);
      };
    }
    return token -> {
      if (!JWSAlgorithm.Family.EC.contains(token.header().getAlgorithm()))
        throw wrongKeyType(token);
      return nimbus.verify(token.header(), token.signingInput(), token.signatureBase64());
    };
  }
}
