package dev.inferpam.core.internal.masking;

import dev.inferpam.api.Masker;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The masker of one {@link BodyMasker} and the counts of every session it opened: sessions that
 * ended are merged into a total, open ones (text streams) are added when asked.
 */
final class BodyMaskerValues {
  private final Masker masker;
  private final Map<String, Integer> ended = new TreeMap<>();
  private final Set<Masker.Session> open = Collections.newSetFromMap(new IdentityHashMap<>());

  BodyMaskerValues(Masker masker) {
    this.masker = masker;
  }

  /** The masker when it is a {@link BlockMasker} (whose matches can be asked for), else {@code null}. */
  BlockMasker block() {
    return masker instanceof BlockMasker b ? b : null;
  }

  /** A fresh, empty tally on the same masker; {@link #addAll} it once its work is kept. */
  BodyMaskerValues fork() {
    return new BodyMaskerValues(masker);
  }

  /** Opens a streaming session whose counts are included until it is {@linkplain #finish ended}. */
  Masker.Session open() {
    Masker.Session session = masker.open();
    open.add(session);
    return session;
  }

  /** Ends a session from {@link #open()}; returns its held tail. */
  String finish(Masker.Session session) {
    String tail = session.finish();
    open.remove(session);
    add(ended, session.counts());
    return tail;
  }

  /** Masks one whole value in a fresh session. */
  String mask(String value) {
    if (value.isEmpty()) return value;
    if (masker instanceof BlockMasker block)
      return block.mask(value, ended); // whole: no session needed
    Masker.Session session = masker.open();
    String masked = session.push(value) + session.finish();
    add(ended, session.counts());
    return masked;
  }

  /** Adds the counts of a {@link #fork()} (its open sessions must have ended). */
  void addAll(BodyMaskerValues other) {
    add(ended, other.ended);
  }

  Map<String, Integer> counts() {
    Map<String, Integer> all = new TreeMap<>(ended);
    for (Masker.Session session : open) add(all, session.counts());
    return Collections.unmodifiableMap(all);
  }

  private static void add(Map<String, Integer> into, Map<String, Integer> counts) {
    if (counts == null) return;
    counts.forEach(
        (name, n) -> {
          if (name != null && n != null && n != 0) into.merge(name, n, Integer::sum);
        });
  }
}
