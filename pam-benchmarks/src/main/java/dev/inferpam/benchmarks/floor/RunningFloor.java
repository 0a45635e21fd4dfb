package dev.inferpam.benchmarks.floor;

import java.net.URI;

/** A floor that has started: where it listens, and how to stop it. */
interface RunningFloor extends AutoCloseable {

  /** {@code http://127.0.0.1:PORT}. */
  URI uri();

  /** Stops it; what is in flight is cut off. Called once, by the owner. */
  @Override
  void close();
}
