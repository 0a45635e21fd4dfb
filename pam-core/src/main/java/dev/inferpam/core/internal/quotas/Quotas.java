package dev.inferpam.core.internal.quotas;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Decision;
import dev.inferpam.api.Principal;
import dev.inferpam.api.QuotaStore;
import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.approval.ApprovalRules;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The policy's {@code limits}, enforced against a {@link QuotaStore}. Immutable and thread-safe.
 *
 * <p><b>Which entries apply.</b> An entry applies to an inference request (one with an operation
 * and a model; other requests, such as those an {@code allow} rule lets through, are not
 * limited) when the principal is in one of its {@code groups}, the model matches its
 * {@code models} and the operation is in its {@code operations} (either empty: any). Each entry
 * is one budget per principal (by subject), shared by every request it applies to; a request must
 * fit every entry that applies, so the tightest wins. A principal is who the identity resolver
 * said (how, by which issuer, which subject): an API key and an OIDC login with the same subject
 * have separate budgets.
 *
 * <p><b>Windows.</b> Fixed UTC windows: {@code requests-per-minute} and {@code tokens-per-minute}
 * count per calendar minute, {@code tokens-per-day} per UTC day, read from the injected clock. A
 * refusal's {@code Retry-After} is the time until the window that ran out ends (whole seconds,
 * at least 1). As with any fixed window, up to twice a per-minute bound can pass within one
 * minute that straddles a window boundary.
 *
 * <p><b>Admission</b> ({@link #admit}): refused 429 {@code quota_exceeded} when a token budget is
 * used up, when the request's own output bound ({@code max_tokens} or its other spellings) is
 * larger than what is left of a token budget, or when a request budget is used up; requests are
 * counted atomically at admission, so {@code requests-per-minute} is never passed.
 *
 * <p><b>Accounting</b> ({@link #charge}): when the exchange ends, its tokens are added to every
 * token budget it was admitted under: {@code prompt_tokens + completion_tokens} from the
 * response's usage (JSON {@code usage}, the final SSE usage chunk, Ollama counts; or
 * {@code total_tokens}, which covers the whole exchange when reported), and for a part the
 * upstream did not report, an estimate of one token per
 * {@value #BYTES_PER_TOKEN} bytes (of the request body for the prompt, of the response as
 * delivered for the completion, none for an embedding's vector; framing included, so the
 * estimate errs high). Since tokens are
 * known only afterwards, requests admitted while a token budget still had room can take it past
 * its bound by what they use: at most the tokens of the requests in flight when it ran out.
 */
public final class Quotas {
  private static final Logger log = LoggerFactory.getLogger(Quotas.class);

  /** Bytes per token of the estimate used when the upstream reports no usage. */
  public static final int BYTES_PER_TOKEN = 4;

  private static final long MINUTE_SECONDS = 60;
  private static final long DAY_SECONDS = 86_400;

  /** The bounds of a limit entry, with their policy and record names. */
  public enum Bound {
    REQUESTS_PER_MINUTE("requests-per-minute", "requests_per_minute", MINUTE_SECONDS),
    TOKENS_PER_MINUTE("tokens-per-minute", "tokens_per_minute", MINUTE_SECONDS),
    TOKENS_PER_DAY("tokens-per-day", "tokens_per_day", DAY_SECONDS);

    private final String policyName;
    private final String recordName;
    private final long windowSeconds;

    Bound(String policyName, String recordName, long windowSeconds) {
      this.policyName = policyName;
      this.recordName = recordName;
      this.windowSeconds = windowSeconds;
    }

    /** As written in the policy, e.g. {@code tokens-per-day}. */
    public String policyName() {
      return policyName;
    }

    /** As written in records and the quota endpoint, e.g. {@code tokens_per_day}. */
    public String recordName() {
      return recordName;
    }

    Long of(Policy.Limit limit) {
      return switch (this) {
        case REQUESTS_PER_MINUTE -> limit.requestsPerMinute();
        case TOKENS_PER_MINUTE -> limit.tokensPerMinute();
        case TOKENS_PER_DAY -> limit.tokensPerDay();
      };
    }

    long window(long epochSecond) {
      return Math.floorDiv(epochSecond, windowSeconds);
    }

    Instant windowEnd(long window) {
      return Instant.ofEpochSecond((window + 1) * windowSeconds);
    }
  }

  private static final Bound[] BOUNDS = Bound.values();
  private static final Bound[] TOKEN_BOUNDS = {Bound.TOKENS_PER_MINUTE, Bound.TOKENS_PER_DAY};

  /** {@link ApprovalRules#OUTPUT_BOUNDS}, each split at its dots once rather than per request. */
  /** What {@link #outputBound} gives for a bound that does not bound the output. */
  private static final long UNBOUNDED = Long.MAX_VALUE;

  private static final String[][] OUTPUT_BOUND_PATHS =
      ApprovalRules.OUTPUT_BOUNDS.stream().map(p -> p.split("\\.")).toArray(String[][]::new);

  /** Slots of {@link #recentPrincipals} and of {@link #recentKeys}; a power of two. */
  private static final int RECENT_SLOTS = 256;

  private final List<Policy.Limit> limits;
  private final QuotaStore store;
  private final Clock clock;

  /*
   * The store names each counter by a key string (principal key, entry, bound). Built afresh, a
   * request would build seven strings (its principal key, then six counter keys) and the store
   * would hash each. These two tables keep the strings of recent principals instead, so that a
   * returning principal reuses the same strings, their hashes already computed. Direct-mapped
   * (one slot per hash; a newcomer takes over its slot), at most RECENT_SLOTS entries each, a few
   * hundred bytes apiece. Read and written without locks: a slot holds an immutable object (final
   * fields, so safely published), and losing a race only means building a string again.
   */
  private final KnownPrincipal[] recentPrincipals = new KnownPrincipal[RECENT_SLOTS];
  private final EntryKeys[] recentKeys = new EntryKeys[RECENT_SLOTS];

  /** A principal as {@link #principalKey(Principal)} reads it, and its key. */
  private record KnownPrincipal(String via, String issuer, String subject, String key) {}

  /** The counter keys of one principal key under one entry, per bound ({@link Bound#ordinal()}). */
  private static final class EntryKeys {
    final String principalKey;
    final int entry;
    final String[] byBound = new String[BOUNDS.length];

    EntryKeys(String principalKey, int entry) {
      this.principalKey = principalKey;
      this.entry = entry;
      for (Bound b : BOUNDS) byBound[b.ordinal()] = key(principalKey, entry, b);
    }
  }

  /**
   * A request let through: the entries it counts against, to charge its tokens to at the end.
   *
   * @param principalKey whose budgets ({@link #principalKey})
   * @param embedding    whether it is an embedding, whose answer holds no generated tokens
   */
  public record Admission(String principalKey, List<Integer> entries, boolean embedding) {}

  /** The outcome of {@link #admit}: a refusal, or an admission ({@code null} when no entry applies). */
  public record Check(Decision.Deny refusal, Admission admission) {}

  /**
   * What a charge left, per bound ({@link Bound#recordName()}): the least amount left over the
   * entries that apply, and the least fraction of a bound left (0 to 1). Both empty when there was
   * no admission or the store could not say.
   */
  public record Charged(Map<String, Long> left, Map<String, Double> fractionLeft) {
    public static final Charged NONE = new Charged(Map.of(), Map.of());

    public Charged {
      left = Collections.unmodifiableMap(new LinkedHashMap<>(left));
      fractionLeft = Collections.unmodifiableMap(new LinkedHashMap<>(fractionLeft));
    }
  }

  /** One bound of one entry as the quota endpoint shows it. */
  public record BoundStatus(Bound bound, long limit, long used, Instant resets) {
    public long remaining() {
      return Math.max(0, limit - used);
    }
  }

  /** One entry that applies to a principal, with the state of each of its bounds. */
  public record EntryStatus(String rule, Policy.Limit limit, List<BoundStatus> bounds) {}

  public Quotas(List<Policy.Limit> limits, QuotaStore store, Clock clock) {
    this.limits = List.copyOf(limits);
    this.store = Objects.requireNonNull(store, "store");
    this.clock = Objects.requireNonNull(clock, "clock");
  }

  /** The rule name of entry {@code i}, as decisions and records show it. */
  public static String rule(int i) {
    return "limits[" + i + "]";
  }

  private static String key(String principalKey, int entry, Bound bound) {
    return principalKey + '\n' + entry + '\n' + bound.policyName();
  }

  /**
   * Whose budget: the principal as identified (how, by which issuer, which subject), so that an
   * API key and an OIDC login that share a subject, or two issuers' users with the same subject,
   * cannot use up each other's budget.
   */
  static String principalKey(Principal p) {
    return p.via() + '\n' + (p.issuer() == null ? "" : p.issuer()) + '\n' + p.subject();
  }

  private static int recentSlot(int hash) {
    return (hash ^ (hash >>> 16)) & (RECENT_SLOTS - 1);
  }

  /** {@link #principalKey(Principal)}: for a recent principal, the same string as before. */
  private String recentPrincipalKey(Principal p) {
    int slot = recentSlot(p.subject().hashCode() * 31 + Objects.hashCode(p.issuer()));
    KnownPrincipal known = recentPrincipals[slot];
    if (known == null
        || !known.subject().equals(p.subject())
        || !known.via().equals(p.via())
        || !Objects.equals(known.issuer(), p.issuer())) {
      recentPrincipals[slot] =
          known = new KnownPrincipal(p.via(), p.issuer(), p.subject(), principalKey(p));
    }
    return known.key();
  }

  /** {@link #key}: for a recent principal key and entry, the same string as before. */
  private String recentKey(String principalKey, int entry, Bound bound) {
    int slot = recentSlot(principalKey.hashCode() * 31 + entry);
    EntryKeys known = recentKeys[slot];
    if (known == null || known.entry != entry || !known.principalKey.equals(principalKey)) {
      recentKeys[slot] = known = new EntryKeys(principalKey, entry);
    }
    return known.byBound[bound.ordinal()];
  }

  private boolean applies(Policy.Limit l, Principal p, String operation, String model) {
    if (!inGroups(p, l.groups())) return false;
    if (!l.operations().isEmpty() && !l.operations().contains(operation)) return false;
    return l.models().isEmpty() || Glob.matchesAny(l.models(), model);
  }

  private static boolean inGroups(Principal p, Set<String> groups) {
    if (groups.contains("*")) return true;
    for (String g : groups) {
      if (p.inGroup(g)) return true;
    }
    return false;
  }

  /**
   * Checks and counts one request.
   *
   * @param body the parsed request body (for its output bound), or {@code null}
   * @throws RuntimeException what the store throws; the engine refuses the request then
   */
  public Check admit(Principal principal, String operation, String model, JsonNode body) {
    if (limits.isEmpty() || operation == null || model == null || principal == null)
      return new Check(null, null);
    List<Integer> entries = new ArrayList<>(2);
    for (int i = 0; i < limits.size(); i++) {
      if (applies(limits.get(i), principal, operation, model)) entries.add(i);
    }
    if (entries.isEmpty()) return new Check(null, null);
    String subject = recentPrincipalKey(principal);
    long now = clock.instant().getEpochSecond();
    Long outputBound = outputBound(body);
    // One call to the store: the token budgets must have room for the request's output bound (at
    // least one token), then one more request is counted in each requests-per-minute bound.
    List<QuotaStore.Step> steps = new ArrayList<>();
    List<int[]> of = new ArrayList<>(); // per step: the entry and the bound's ordinal
    for (int i : entries) {
      Policy.Limit l = limits.get(i);
      for (Bound b : TOKEN_BOUNDS) {
        Long bound = b.of(l);
        if (bound == null) continue;
        long window = b.window(now);
        long need = outputBound == null ? 1 : Math.max(1, outputBound);
        steps.add(
            new QuotaStore.Step(
                recentKey(subject, i, b), window, need, bound, b.windowEnd(window), false));
        of.add(new int[] {i, b.ordinal()});
      }
    }
    for (int i : entries) {
      Long bound = Bound.REQUESTS_PER_MINUTE.of(limits.get(i));
      if (bound == null) continue;
      long window = Bound.REQUESTS_PER_MINUTE.window(now);
      steps.add(
          new QuotaStore.Step(
              recentKey(subject, i, Bound.REQUESTS_PER_MINUTE),
              window,
              1,
              bound,
              Bound.REQUESTS_PER_MINUTE.windowEnd(window),
              true));
      of.add(new int[] {i, Bound.REQUESTS_PER_MINUTE.ordinal()});
    }
    if (!steps.isEmpty()) {
      QuotaStore.Admission admitted = store.admit(List.copyOf(steps));
      if (!admitted.admitted()) {
        int failed = admitted.failed();
        int i = of.get(failed)[0];
        Bound b = Bound.values()[of.get(failed)[1]];
        long bound = steps.get(failed).limit();
        long used = admitted.totals()[failed];
        long window = steps.get(failed).window();
        if (b == Bound.REQUESTS_PER_MINUTE) {
          return refuse(
              i,
              b,
              window,
              now,
              "the " + bound + " requests of " + rule(i) + " requests-per-minute are used up");
        }
        if (used >= bound) {
          return refuse(
              i,
              b,
              window,
              now,
              "the " + bound + " tokens of " + rule(i) + " " + b.policyName() + " are used up");
        }
        String asked =
            outputBound == UNBOUNDED
                ? "an unbounded output (a negative or non-numeric output bound)"
                : "the requested output bound of " + outputBound + " tokens";
        return refuse(
            i,
            b,
            window,
            now,
            asked
                + " is more than the "
                + (bound - used)
                + " left of "
                + rule(i)
                + " "
                + b.policyName()
                + " ("
                + bound
                + ")");
      }
    }
    return new Check(
        null, new Admission(subject, List.copyOf(entries), "embedding".equals(operation)));
  }

  private static Check refuse(int entry, Bound bound, long window, long now, String why) {
    long retry = Math.max(1, bound.windowEnd(window).getEpochSecond() - now);
    Decision.Deny deny =
        new Decision.Deny(
            429,
            "quota_exceeded",
            "quota exceeded: " + why + "; retry in " + retry + "s",
            rule(entry) + "." + bound.policyName(),
            Map.of("Retry-After", Long.toString(retry)));
    return new Check(deny, null);
  }

  /**
   * Charges an admitted exchange's tokens and says what is left.
   *
   * @param usage         the response's token usage as read ({@code prompt_tokens},
   *                      {@code completion_tokens}, {@code total_tokens}), possibly empty
   * @param forwarded     whether the request reached the upstream (only then are tokens charged)
   * @param requestBytes  the request body's size, for the prompt estimate
   * @param responseBytes the size of the response as delivered, for the completion estimate
   * @return per bound ({@link Bound#recordName()}), the least left over the entries and the least
   *     fraction left; {@link Charged#NONE} when there is no admission
   */
  public Charged charge(
      Admission admission,
      boolean forwarded,
      Map<String, Long> usage,
      long requestBytes,
      long responseBytes) {
    if (admission == null) return Charged.NONE;
    long tokens =
        forwarded ? tokens(usage, requestBytes, admission.embedding() ? 0 : responseBytes) : 0;
    long now = clock.instant().getEpochSecond();
    // One call to the store: the tokens added to every token bound, every other bound read.
    List<QuotaStore.Step> steps = new ArrayList<>();
    List<Bound> bounds = new ArrayList<>();
    List<Long> limitsOf = new ArrayList<>();
    for (int i : admission.entries()) {
      Policy.Limit l = limits.get(i);
      for (Bound b : BOUNDS) {
        Long bound = b.of(l);
        if (bound == null) continue;
        long window = b.window(now);
        boolean add = b != Bound.REQUESTS_PER_MINUTE && tokens > 0;
        steps.add(
            new QuotaStore.Step(
                recentKey(admission.principalKey(), i, b),
                window,
                add ? tokens : 1,
                bound,
                b.windowEnd(window),
                add));
        bounds.add(b);
        limitsOf.add(bound);
      }
    }
    if (steps.isEmpty()) return Charged.NONE;
    long[] totals;
    try {
      totals = store.charge(List.copyOf(steps));
    } catch (RuntimeException e) {
      log.error(
          "inferpam: quota store failed while charging {} tokens: {}",
          tokens,
          e.getClass().getName());
      return Charged.NONE; // nothing is known of what is left
    }
    Map<String, Long> left = new LinkedHashMap<>();
    Map<String, Double> fraction = new LinkedHashMap<>();
    for (int k = 0; k < steps.size(); k++) {
      String name = bounds.get(k).recordName();
      long limit = limitsOf.get(k);
      long rest = Math.max(0, limit - totals[k]);
      left.merge(name, rest, Math::min);
      fraction.merge(name, limit <= 0 ? 0.0 : (double) rest / limit, Math::min);
    }
    return new Charged(left, fraction);
  }

  /**
   * Tokens of one exchange: a reported {@code total_tokens} covers the whole exchange (an
   * embedding reports only prompt and total); else prompt plus completion as reported, with an
   * estimate for a part that was not.
   *
   * @param responseBytes the response's size for the completion estimate; 0 for an embedding,
   *                      whose answer (a vector) holds no generated tokens
   */
  static long tokens(Map<String, Long> usage, long requestBytes, long responseBytes) {
    Long total = usage.get(UsageExtractor.TOTAL_TOKENS);
    Long prompt = usage.get(UsageExtractor.PROMPT_TOKENS);
    Long completion = usage.get(UsageExtractor.COMPLETION_TOKENS);
    long reported =
        (prompt != null && prompt >= 0 ? prompt : 0)
            + (completion != null && completion >= 0 ? completion : 0);
    if (total != null && total >= 0) return Math.max(total, reported);
    long p = prompt != null && prompt >= 0 ? prompt : estimate(requestBytes);
    long c = completion != null && completion >= 0 ? completion : estimate(responseBytes);
    return p + c;
  }

  private static long estimate(long bytes) {
    return (Math.max(0, bytes) + BYTES_PER_TOKEN - 1) / BYTES_PER_TOKEN;
  }

  /** The largest numeric output bound in the body, or {@code null} when it sets none. */
  private static Long outputBound(JsonNode body) {
    if (body == null || !body.isObject()) return null;
    Long max = null;
    for (String[] path : OUTPUT_BOUND_PATHS) {
      JsonNode n = body;
      for (String part : path) n = n == null || !n.isObject() ? null : n.get(part);
      if (n == null || n.isNull()) continue;
      // A bound the upstream may read as "no limit" or coerce (Ollama's -1 and -2, a string
      // "100000" that pydantic reads as a number, a boolean) asks for an unbounded output: with
      // a token budget in force it is more than is left, as the approval rule counts it as over.
      if (!n.isNumber()) return UNBOUNDED;
      double v = n.doubleValue();
      if (v < 0) return UNBOUNDED;
      if (v == 0) continue;
      long bound = v >= Long.MAX_VALUE ? Long.MAX_VALUE : (long) Math.ceil(v);
      max = max == null ? bound : Math.max(max, bound);
    }
    return max;
  }

  /** The entries that apply to {@code principal} by group (any model or operation), with their state now. */
  public List<EntryStatus> status(Principal principal) {
    List<EntryStatus> out = new ArrayList<>();
    long now = clock.instant().getEpochSecond();
    for (int i = 0; i < limits.size(); i++) {
      Policy.Limit l = limits.get(i);
      if (!inGroups(principal, l.groups())) continue;
      List<BoundStatus> bounds = new ArrayList<>();
      for (Bound b : BOUNDS) {
        Long bound = b.of(l);
        if (bound == null) continue;
        long window = b.window(now);
        bounds.add(
            new BoundStatus(
                b,
                bound,
                store.get(recentKey(recentPrincipalKey(principal), i, b), window),
                b.windowEnd(window)));
      }
      out.add(new EntryStatus(rule(i), l, List.copyOf(bounds)));
    }
    return out;
  }

  /** Whether any entry exists. */
  public boolean isEmpty() {
    return limits.isEmpty();
  }
}
