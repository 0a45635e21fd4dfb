package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.choice;
import static dev.inferpam.core.internal.policy.PolicyNodes.duration;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.filePath;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.positiveDuration;
import static dev.inferpam.core.internal.policy.PolicyNodes.positiveInt;
import static dev.inferpam.core.internal.policy.PolicyNodes.required;
import static dev.inferpam.core.internal.policy.PolicyNodes.size;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Policy;
import java.util.Set;

/**
 * The {@code recording} section, as {@link #read} describes. Stateless; failures are
 * {@link dev.inferpam.core.PolicyException}s naming the key path.
 */
final class RecordingSection {
  private RecordingSection() {}

  /**
   * {@code recording}: {@code store} ({@code directory}, the default, or {@code postgres}),
   * {@code directory} (required with the directory store and refused with {@code postgres};
   * relative paths are taken against the working directory, as written), {@code bodies} ({@code masked | full | none}), {@code durability}
   * ({@code strict | batched | async}), {@code retention} (a duration > 0), and the inferpam
   * extensions {@code segment-size} (a size as for {@code request.max-body}),
   * {@code queue-capacity} and {@code batch-size} (whole numbers > 0), {@code batch-interval}
   * (a duration > 0) and {@code queue-full-wait} (0s..30s); {@code segment-size} only with the
   * directory store. Absent keys take the defaults of {@link Policy.Recording}. That
   * {@code store: postgres} has a {@code state.postgres} to write to is checked by {@link Policy}.
   */
  static Policy.Recording read(JsonNode n, String path) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of(
            "store",
            "directory",
            "bodies",
            "durability",
            "retention",
            "segment-size",
            "queue-capacity",
            "batch-interval",
            "batch-size",
            "queue-full-wait"),
        Set.of());
    Policy.RecordingStore store = Policy.RecordingStore.DIRECTORY;
    if (n.has("store"))
      store = choice(n.get("store"), child(path, "store"), Policy.RecordingStore.class);
    java.nio.file.Path directory = null;
    if (store == Policy.RecordingStore.POSTGRES) {
      if (n.has("directory")) {
        throw fail(
            child(path, "directory"),
            "not with store: postgres (records go to the database of state.postgres)");
      }
      if (n.has("segment-size")) {
        throw fail(child(path, "segment-size"), "only with the directory store, not postgres");
      }
    } else {
      directory = filePath(required(n, path, "directory"), child(path, "directory"));
    }
    Policy.Bodies bodies = null;
    if (n.has("bodies"))
      bodies = choice(n.get("bodies"), child(path, "bodies"), Policy.Bodies.class);
    Policy.Durability durability = null;
    if (n.has("durability")) {
      durability = choice(n.get("durability"), child(path, "durability"), Policy.Durability.class);
    }
    java.time.Duration retention = null;
    if (n.has("retention"))
      retention = positiveDuration(n.get("retention"), child(path, "retention"));
    long segmentBytes = 0; // 0: Policy.Recording applies the default
    if (n.has("segment-size"))
      segmentBytes = size(n.get("segment-size"), child(path, "segment-size"));
    int queueCapacity = 0;
    if (n.has("queue-capacity"))
      queueCapacity = positiveInt(n.get("queue-capacity"), child(path, "queue-capacity"));
    java.time.Duration batchInterval = null;
    if (n.has("batch-interval")) {
      batchInterval = positiveDuration(n.get("batch-interval"), child(path, "batch-interval"));
    }
    int batchSize = 0;
    if (n.has("batch-size"))
      batchSize = positiveInt(n.get("batch-size"), child(path, "batch-size"));
    java.time.Duration queueFullWait = null;
    if (n.has("queue-full-wait")) {
      String p = child(path, "queue-full-wait");
      queueFullWait = duration(n.get("queue-full-wait"), p);
      if (queueFullWait.compareTo(java.time.Duration.ofSeconds(30)) > 0) {
        throw fail(
            p, "must be at most 30s, was " + PolicyText.quote(n.get("queue-full-wait").asText()));
      }
    }
    return new Policy.Recording(
        directory,
        bodies,
        durability,
        retention,
        segmentBytes,
        queueCapacity,
        batchInterval,
        batchSize,
        queueFullWait,
        store);
  }
}
