package dev.inferpam.core;

import dev.inferpam.api.Principal;
import java.util.Objects;

/**
 * Who called an endpoint next to the engine, as {@link PamEngine#authenticate} found: the
 * {@link Authenticated caller}, or the {@link Refused answer} to send instead. Immutable.
 */
public sealed interface Authentication
    permits Authentication.Authenticated, Authentication.Refused {

  /** The caller was identified. */
  record Authenticated(Principal principal) implements Authentication {
    /** @throws NullPointerException when {@code principal} is null */
    public Authenticated {
      Objects.requireNonNull(principal, "principal");
    }
  }

  /** The caller was not identified: send {@code error} as it is (status, headers, body). */
  record Refused(ErrorResponse error) implements Authentication {
    /** @throws NullPointerException when {@code error} is null */
    public Refused {
      Objects.requireNonNull(error, "error");
    }
  }
}
