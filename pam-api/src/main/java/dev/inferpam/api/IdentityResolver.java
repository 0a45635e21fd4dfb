package dev.inferpam.api;

import java.util.Optional;

/**
 * Resolves the caller of a request to a {@link Principal}.
 *
 * <p><b>Thread-safety:</b> implementations are called concurrently from many request threads
 * and must be thread-safe. They must not block for long (cache remote key material).
 *
 * <p>Resolvers form a chain: the first resolver returning a principal wins. A resolver returns
 * {@link Optional#empty()} when the request carries no credential it understands, and throws
 * {@link AuthenticationException} when it carries one it is responsible for that is invalid;
 * either way the engine answers 401 when no resolver identifies the caller. Any other exception
 * is treated as a failure to identify (fail closed).
 *
 * <p>The engine identifies a caller from the request's head, before it reads any of the body, so
 * that an unauthenticated caller cannot make it wait for one: the request a resolver is given has
 * an empty {@link InferenceRequest#body()}. Resolve from headers (and method, path, address).
 */
@FunctionalInterface
public interface IdentityResolver {

  Optional<Principal> resolve(InferenceRequest request) throws AuthenticationException;
}
