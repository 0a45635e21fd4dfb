package dev.inferpam.spring.boot;

import dev.inferpam.core.PamEngine;

/**
 * Changes the engine the starter builds from {@code inferpam.policy} before it is built: a bean of
 * this type is applied to the {@link PamEngine.Builder}, in the beans' order. The starter's own
 * registers {@code PamMetrics} when the application has a Micrometer {@code MeterRegistry} or
 * {@code ObservationRegistry} (Actuator). Not applied to an engine the application defines itself.
 */
@FunctionalInterface
public interface PamEngineCustomizer {
  /** Changes the builder; called once, on the thread creating the engine bean. */
  void customize(PamEngine.Builder builder);
}
