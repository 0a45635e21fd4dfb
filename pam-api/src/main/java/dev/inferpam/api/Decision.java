package dev.inferpam.api;

import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What the engine decided for a request. Closed: {@link Allow}, {@link Deny} or
 * {@link RequireApproval}. Values are immutable and thread-safe.
 */
public sealed interface Decision permits Decision.Allow, Decision.Deny, Decision.RequireApproval {

  /** The policy rule that decided, e.g. {@code entitlements[0]} or {@code block.presets.ollama-admin}. */
  String rule();

  /** What the adapter must do for an allowed request. */
  enum Obligation {
    /** Replace the caller's credential with the upstream credential. */
    INJECT_CREDENTIAL,
    /** Run the response through the masker. */
    MASK_RESPONSE,
    /** Record the exchange. */
    RECORD
  }

  /** The request may go on to the model, with these obligations. */
  record Allow(String rule, Set<Obligation> obligations) implements Decision {
    public Allow {
      Objects.requireNonNull(rule, "rule");
      obligations = Set.copyOf(obligations);
    }
  }

  /**
   * The request is refused.
   *
   * @param status  HTTP status to answer with
   * @param code    stable machine-readable code (see the policy reference), e.g. {@code not_entitled}
   * @param message human-readable reason naming the deciding rule; never a secret
   * @param rule    the deciding rule, or the check (e.g. {@code path}, {@code identity})
   * @param headers extra response headers, e.g. {@code WWW-Authenticate} or {@code Retry-After}
   */
  record Deny(int status, String code, String message, String rule, Map<String, String> headers)
      implements Decision {
    public Deny {
      if (status < 400 || status > 599)
        throw new IllegalArgumentException("status must be 4xx or 5xx, was " + status);
      Objects.requireNonNull(code, "code");
      Objects.requireNonNull(message, "message");
      Objects.requireNonNull(rule, "rule");
      headers = headers == null ? Map.of() : Map.copyOf(headers);
    }

    public Deny(int status, String code, String message, String rule) {
      this(status, code, message, rule, Map.of());
    }
  }

  /** A human reviewer must approve the request before it goes on; {@code rule} names the approval rule. */
  record RequireApproval(String rule) implements Decision {
    public RequireApproval {
      Objects.requireNonNull(rule, "rule");
    }
  }
}
