/**
 * Micrometer for inferpam: {@link dev.inferpam.micrometer.PamMetrics}, the engine's exchanges as
 * meters ({@code inferpam.*}) and, optionally, observations ({@code inferpam.exchange}). Micrometer
 * is the application's (an optional dependency of this module).
 */
package dev.inferpam.micrometer;
