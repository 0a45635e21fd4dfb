package dev.inferpam.core.internal.recording;

import dev.inferpam.api.Decision;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Masker;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.internal.Sha256;
import dev.inferpam.core.internal.http.GovernedBody;
import dev.inferpam.core.internal.masking.BlockMasker;
import dev.inferpam.core.internal.masking.CredentialScrubber;
import dev.inferpam.core.internal.quotas.UsageExtractor;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Collects what one exchange asked and delivered and builds its {@link SessionRecord}s (the
 * {@code intent} and the {@code exchange} record).
 *
 * <p>Bodies follow {@code recording.bodies}:
 * <ul>
 *   <li>{@code FULL}: request and response bodies as UTF-8 text;</li>
 *   <li>{@code MASKED}: the same text run through the {@link Masker} (one session for the request,
 *       one for the response); the response session's counts become {@code response.masked}.
 *       A response that was already masked on its way to the client
 *       ({@link #maskedOnDelivery}) is stored as delivered, not masked twice;</li>
 *   <li>{@code NONE}: no body text; {@code bodySha256} holds the lower-case hex SHA-256 of the
 *       whole body instead, the response's computed as the bytes pass, so nothing is held for
 *       it.</li>
 * </ul>
 * The engine's own error answer to a denied request is stored as sent (it holds no upstream
 * data, so there is nothing to mask), or as its hash with {@code NONE}. In every mode the response
 * is the one <em>as delivered</em>: when it was masked for the client, the masked bytes are what
 * is captured, and the counts of that masking become {@code response.masked}.
 *
 * <p>Request headers are those the caller sent, credentials stored as {@code [REDACTED]}; when
 * the engine decoded a compressed body ({@link GovernedBody}), the record holds the decoded body
 * and so not the {@code Content-Encoding} and {@code Content-Length} that described the encoded
 * one ({@code bytes} is the decoded size).
 *
 * <p>Credentials: with {@link #scrubCredentials}, the exchange's credential values are replaced
 * in everything the record keeps as text (request header values, path and body, and the response
 * body, which normally arrives scrubbed already); the number replaced on delivery
 * ({@link #credentialsScrubbed}) is counted in {@code response.masked} as {@code credential}.
 *
 * <p>Bounded: at most {@link #MAX_CAPTURE} bytes of each body are kept for the record (the rest
 * is counted but not stored, and {@code bytes} is always the exact size, so a shortened body is
 * visible as {@code bytes} larger than the stored text); hashes always cover the whole body.
 * Token usage is read from the response by a {@link UsageExtractor}: from the captured body when
 * asked (so on the recorder's writer thread when nothing needs it sooner), or as the bytes pass
 * when bodies are not kept or the body outgrows the capture.
 *
 * <p>Used by one request at a time (calls may come from different threads one after another).
 */
public final class RecordBuilder {
  private static final Logger log = LoggerFactory.getLogger(RecordBuilder.class);

  /** Most bytes of each body (request, response) kept for the record; sizes are still exact. */
  public static final int MAX_CAPTURE = 4 * 1024 * 1024;

  static final Set<String> SENSITIVE_HEADERS =
      Set.of("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key");
  static final String REDACTED = "[REDACTED]";

  private final RequestHead head;
  private final InferenceRequest request;
  private final long declaredLength;
  private Set<String> secretHeaders;
  private final Policy.Bodies bodies;
  private final Masker masker;
  private SessionRecord.Request recordedRequest;

  private final Capture captured;
  private final MessageDigest responseDigest;
  private UsageExtractor usage = UsageExtractor.forContentType(null);

  /**
   * Bytes of {@code captured} that {@code usage} has read. While the body fits the capture, usage
   * is read from it only when asked ({@link #usage()}, {@link #build}, usually on the recorder's
   * writer thread) rather than as the bytes pass; past the capture it reads as they pass.
   */
  private int usageRead;

  private boolean usageLive;

  /** Nothing more will be reported: the capture is read for usage for the last time. */
  private boolean over;

  /** False when nothing needs the usage (no record is kept and no limit counts tokens). */
  private final boolean readsUsage;

  private int status;
  private boolean streamed;
  private boolean ownResponse;
  private long responseBytes;
  private Map<String, Integer> deliveryCounts;

  /** The exchange's credentials, replaced in the kept text; {@code null} for none. */
  private CredentialScrubber credentials;

  private int credentialsScrubbed;

  /** The response was scrubbed of the credentials on delivery ({@link #responseScrubbedOnDelivery}). */
  private boolean scrubbedOnDelivery;

  /**
   * @param head           the request as received
   * @param request        the canonical request with its body, or {@code null} when it was
   *                       refused before the body was read
   * @param declaredLength the declared body length, or -1; the recorded size of a body that was
   *                       never read
   * @param secretHeaders  lower-case names of further headers to store as {@code [REDACTED]}
   *                       (the injected credential's header)
   * @param bodies         what of the bodies to keep
   * @param masker         runs over the stored bodies with {@code MASKED}
   */
  public RecordBuilder(
      RequestHead head,
      InferenceRequest request,
      long declaredLength,
      Set<String> secretHeaders,
      Policy.Bodies bodies,
      Masker masker) {
    this(head, request, declaredLength, secretHeaders, bodies, masker, true, true);
  }

  private RecordBuilder(
      RequestHead head,
      InferenceRequest request,
      long declaredLength,
      Set<String> secretHeaders,
      Policy.Bodies bodies,
      Masker masker,
      boolean keepsBodies,
      boolean readsUsage) {
    this.head = Objects.requireNonNull(head, "head");
    this.request = request;
    this.declaredLength = declaredLength;
    this.secretHeaders = Set.copyOf(secretHeaders);
    this.bodies = Objects.requireNonNull(bodies, "bodies");
    this.masker = Objects.requireNonNull(masker, "masker");
    this.captured = keepsBodies && bodies != Policy.Bodies.NONE ? new Capture() : null;
    this.responseDigest = keepsBodies && bodies == Policy.Bodies.NONE ? Sha256.newDigest() : null;
    this.readsUsage = readsUsage;
  }

  /**
   * A builder for an exchange whose record nobody keeps (the engine records nothing): it holds no
   * response bytes and hashes none, and reads token usage as the bytes pass only when
   * {@code readsUsage} (the policy's {@code limits} count tokens). Sizes are still counted. Its
   * records, should one be built, carry neither body text nor hash for the response.
   */
  public static RecordBuilder unrecorded(
      RequestHead head, InferenceRequest request, long declaredLength, boolean readsUsage) {
    return new RecordBuilder(
        head,
        request,
        declaredLength,
        Set.of(),
        Policy.Bodies.NONE,
        Masker.IDENTITY,
        false,
        readsUsage);
  }

  /**
   * The upstream's (or application's) response begins.
   *
   * @param contentType its {@code Content-Type}, or {@code null}; decides whether it counts as
   *                    streamed (server-sent events, NDJSON) and where usage is looked for
   */
  public void responseStarted(int status, String contentType) {
    this.status = status;
    this.streamed = UsageExtractor.isStreamingType(contentType);
    newUsage(contentType);
  }

  /** A fresh extractor, for the bytes from now on. */
  private void newUsage(String contentType) {
    this.usage = UsageExtractor.forContentType(contentType);
    this.usageRead = captured == null ? 0 : captured.size();
  }

  /** The engine answered itself (a denial): {@code body} is the error JSON that was sent. */
  public void ownResponse(int status, byte[] body) {
    this.status = status;
    this.streamed = false;
    this.ownResponse = true;
    newUsage(null);
    responseBytes(body, 0, body.length);
  }

  /**
   * The response was masked on its way to the client: the bytes reported are already masked, so
   * they are stored as they are (never masked twice), and {@code counts} (values masked per
   * detector) become {@code response.masked} in every {@code bodies} mode.
   */
  public void maskedOnDelivery(Map<String, Integer> counts) {
    this.deliveryCounts = counts == null ? Map.of() : Map.copyOf(counts);
  }

  /** Bytes as they are delivered to the client. */
  public void responseBytes(byte[] b, int off, int len) {
    if (len <= 0) return;
    responseBytes += len;
    if (responseDigest != null) responseDigest.update(b, off, len);
    if (captured != null && !usageLive) {
      int room = MAX_CAPTURE - captured.size();
      if (len <= room) {
        captured.write(b, off, len); // usage is read from the capture later
        return;
      }
      readCapturedUsage(); // the capture ends here: usage reads on as the bytes pass
      usageLive = true;
      if (room > 0) captured.write(b, off, room);
    } else if (captured != null) {
      int room = MAX_CAPTURE - captured.size();
      if (room > 0) captured.write(b, off, Math.min(room, len));
    }
    if (readsUsage) usage.accept(b, off, len);
  }

  private void readCapturedUsage() {
    if (captured == null || usageLive) return;
    int size = captured.size();
    if (usageRead < size) {
      if (over) {
        // The last read, with nothing after it, skips what cannot hold usage; in one piece, which
        // the record's text is then taken from.
        usage.acceptLast(captured.whole(), usageRead, size - usageRead);
      } else {
        captured.feed(usage, usageRead);
      }
    }
    usageRead = size;
  }

  /**
   * The bytes of a body kept for the record, in chunks of {@value #CHUNK} bytes (a small first
   * one): a stream held open holds what arrived and at most a chunk more, not the up to twice as
   * much of a doubling array, and nothing is copied while it grows. Used by one thread at a time,
   * as the whole builder is (handed on through the recorder's queue).
   */
  private static final class Capture {
    static final int FIRST = 512;
    static final int CHUNK = 2048;

    private final java.util.ArrayList<byte[]> chunks = new java.util.ArrayList<>(4);
    private byte[] last;
    private int lastUsed;
    private int size;

    int size() {
      return size;
    }

    void write(byte[] b, int off, int len) {
      while (len > 0) {
        if (last == null || lastUsed == last.length) {
          last = new byte[last == null ? FIRST : CHUNK];
          lastUsed = 0;
          chunks.add(last);
        }
        int n = Math.min(len, last.length - lastUsed);
        System.arraycopy(b, off, last, lastUsed, n);
        lastUsed += n;
        size += n;
        off += n;
        len -= n;
      }
    }

    /**
     * All the bytes as one array of their exact size, which from then on is the capture's only
     * chunk (so a second call costs nothing). The array is not to be changed.
     */
    byte[] whole() {
      if (chunks.size() == 1 && lastUsed == last.length) return last;
      byte[] out = new byte[size];
      int o = 0;
      for (byte[] c : chunks) {
        int used = c == last ? lastUsed : c.length;
        System.arraycopy(c, 0, out, o, used);
        o += used;
      }
      chunks.clear();
      chunks.add(out);
      last = out;
      lastUsed = out.length;
      return out;
    }

    /** Feeds the bytes from {@code from} on to {@code usage}, chunk by chunk. */
    void feed(UsageExtractor usage, int from) {
      int at = 0;
      for (byte[] c : chunks) {
        int used = c == last ? lastUsed : c.length;
        int start = Math.max(from - at, 0);
        if (start < used) usage.accept(c, start, used - start);
        at += used;
      }
    }
  }

  /**
   * Replaces the values {@code scrubber} looks for in everything the record keeps as text
   * ({@code null}: nothing to replace). Call before the request is first built.
   */
  public void scrubCredentials(CredentialScrubber scrubber) {
    if (recordedRequest != null) throw new IllegalStateException("the request is already built");
    this.credentials = scrubber;
  }

  /**
   * The response went to the client through the credential replacement: the bytes reported are
   * free of the exchange's credentials already and are stored without another pass.
   */
  public void responseScrubbedOnDelivery() {
    this.scrubbedOnDelivery = true;
  }

  /** {@code n} credentials were replaced in the response on its way to the client. */
  public void credentialsScrubbed(int n) {
    this.credentialsScrubbed = n;
  }

  /** {@code text} with the exchange's credentials replaced. */
  private String scrub(String text) {
    return credentials == null ? text : credentials.scrub(text);
  }

  /**
   * Adds lower-case header names to store as {@code [REDACTED]}: the header of a credential known
   * only once the decision is final. Call before the request is first built.
   */
  public void redactHeaders(Set<String> more) {
    if (recordedRequest != null) throw new IllegalStateException("the request is already built");
    Set<String> all = new java.util.HashSet<>(secretHeaders);
    all.addAll(more);
    secretHeaders = Set.copyOf(all);
  }

  /** The request as recorded (redacted headers, body per {@code bodies}); built once. */
  public SessionRecord.Request request() {
    if (recordedRequest == null) recordedRequest = buildRequest();
    return recordedRequest;
  }

  private SessionRecord.Request buildRequest() {
    String path = scrub(request != null ? request.path() : head.rawPath());
    Map<String, List<String>> headers = redact(head.headers());
    // The record holds the decoded body: headers that describe the encoded one would mislabel
    // it (a replay would send plain JSON as gzip).
    if (GovernedBody.decoded(head.headers(), request))
      headers.keySet().removeAll(GovernedBody.ENCODED_BODY_HEADERS);
    if (request == null) {
      // Refused before the body was read (bad path, declared body too large, unauthenticated, body
      // too slow): only the declared size is known.
      return new SessionRecord.Request(
          head.method(), path, null, null, headers, Math.max(0, declaredLength), null, null);
    }
    byte[] body = request.body();
    String text = null;
    String hash = null;
    switch (bodies) {
      case NONE -> hash = hex(Sha256.newDigest().digest(body));
      case FULL -> text = scrub(capped(body, body.length));
      case MASKED -> {
        Masked m = mask(scrub(capped(body, body.length)));
        text = m.text();
      }
    }
    return new SessionRecord.Request(
        head.method(), path, null, null, headers, body.length, text, hash);
  }

  /** The {@code intent} record of {@code recording.durability: strict}: no decision, no response. */
  public SessionRecord intent(
      String id, Instant time, Principal principal, String operation, String model) {
    return new SessionRecord(
        SessionRecord.TYPE_INTENT,
        id,
        time,
        0,
        principal,
        withClassification(operation, model),
        null,
        null,
        null);
  }

  /** The {@code exchange} record. */
  public SessionRecord build(
      String id,
      Instant time,
      long durationMs,
      Principal principal,
      String operation,
      String model,
      Decision decision,
      boolean complete) {
    return build(
        id, time, durationMs, principal, operation, model, decision, complete, null, Map.of());
  }

  /**
   * The exchange record. With a review ({@code approval} not {@code null}), the decision's
   * {@code outcome} is {@code approved}, {@code rejected} or {@code expired} when the review
   * decided it, and {@code deny} when a later step refused an approved request (recording, the
   * upstream credential).
   */
  public SessionRecord build(
      String id,
      Instant time,
      long durationMs,
      Principal principal,
      String operation,
      String model,
      Decision decision,
      boolean complete,
      SessionRecord.Approval approval,
      Map<String, Long> quotaRemaining) {
    SessionRecord.DecisionSummary ds;
    if (decision instanceof Decision.Deny d) {
      String outcome = "deny";
      if (approval != null && d.code().equals("approval_rejected")) outcome = "rejected";
      if (approval != null && d.code().equals("approval_expired")) outcome = "expired";
      ds = new SessionRecord.DecisionSummary(outcome, d.rule(), d.code(), d.message());
    } else {
      ds =
          new SessionRecord.DecisionSummary(
              approval != null ? "approved" : "allow", decision.rule(), null, null);
    }
    String text = null;
    String hash = null;
    boolean deliveredMasked = deliveryCounts != null && !ownResponse;
    Map<String, Integer> maskedCounts = deliveredMasked ? deliveryCounts : Map.of();
    if (responseDigest != null) {
      hash = hex(responseDigest.digest());
    } else if (captured != null) {
      byte[] bytes = captured.whole();
      text = capped(bytes, bytes.length);
      if (!scrubbedOnDelivery || ownResponse) text = scrub(text);
      if (bodies == Policy.Bodies.MASKED && !ownResponse && !deliveredMasked) {
        Masked m = mask(text);
        text = m.text();
        maskedCounts = m.counts();
      }
    }
    if (credentialsScrubbed > 0 && !ownResponse) {
      maskedCounts = new java.util.TreeMap<>(maskedCounts);
      maskedCounts.merge("credential", credentialsScrubbed, Integer::sum);
    }
    SessionRecord.Response resp =
        new SessionRecord.Response(
            status, streamed, responseBytes, complete, text, maskedCounts, finalUsage(), hash);
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        time,
        durationMs,
        principal,
        withClassification(operation, model),
        ds,
        approval,
        resp,
        quotaRemaining);
  }

  /**
   * The exchange record as {@link #build} would give it, built when the returned supplier is
   * called: by the recorder's writer thread, so that assembling the record and masking the
   * request body for it (with {@code bodies: masked}) happen off the request's path. Call once
   * nothing more will be reported to this builder; the supplier may then run on any thread, once.
   */
  public java.util.function.Supplier<SessionRecord> buildLater(
      String id,
      Instant time,
      long durationMs,
      Principal principal,
      String operation,
      String model,
      Decision decision,
      boolean complete,
      SessionRecord.Approval approval,
      Map<String, Long> quotaRemaining) {
    return () ->
        build(
            id,
            time,
            durationMs,
            principal,
            operation,
            model,
            decision,
            complete,
            approval,
            quotaRemaining);
  }

  /** Token usage read from the response so far ({@code prompt_tokens}, ...), possibly empty. */
  public Map<String, Long> usage() {
    readCapturedUsage();
    return usage.usage();
  }

  /**
   * Token usage of the whole response, once nothing more will be reported to this builder (the
   * exchange ended): as {@link #usage()}, read faster.
   */
  public Map<String, Long> finalUsage() {
    over = true;
    return usage();
  }

  /** Bytes of the response reported so far (as delivered). */
  public long responseBytes() {
    return responseBytes;
  }

  private SessionRecord.Request withClassification(String operation, String model) {
    SessionRecord.Request r = request();
    return new SessionRecord.Request(
        r.method(), r.path(), operation, model, r.headers(), r.bytes(), r.body(), r.bodySha256());
  }

  private record Masked(String text, Map<String, Integer> counts) {}

  /**
   * Masks {@code text} whole (the engine's {@link BlockMasker} directly, another masker through one
   * session). A masker that fails leaves no body rather than an
   * unmasked one: the record must not hold what masking was meant to remove.
   */
  private Masked mask(String text) {
    try {
      if (masker instanceof BlockMasker block) {
        // The whole text is at hand: masked in one go, as a session given it in one push would
        // (without the session's streaming work or its hold-back limit).
        Map<String, Integer> counts = new LinkedHashMap<>();
        return new Masked(block.mask(text, counts), counts);
      }
      Masker.Session session = masker.open();
      String out = session.push(text) + session.finish();
      Map<String, Integer> counts = session.counts();
      return new Masked(out, counts == null ? Map.of() : counts);
    } catch (RuntimeException e) {
      log.error(
          "inferpam: masker failed while recording, body not stored: {}", e.getClass().getName());
      return new Masked(null, Map.of());
    }
  }

  private static String capped(byte[] body, int length) {
    return new String(body, 0, Math.min(length, MAX_CAPTURE), StandardCharsets.UTF_8);
  }

  private Map<String, List<String>> redact(Map<String, List<String>> headers) {
    Map<String, List<String>> out = new LinkedHashMap<>();
    headers.forEach(
        (name, values) -> {
          boolean secret = SENSITIVE_HEADERS.contains(name) || secretHeaders.contains(name);
          out.put(
              name,
              secret
                  ? List.of(REDACTED)
                  : credentials == null ? values : values.stream().map(this::scrub).toList());
        });
    return out;
  }

  private static String hex(byte[] digest) {
    return HexFormat.of().formatHex(digest);
  }
}
