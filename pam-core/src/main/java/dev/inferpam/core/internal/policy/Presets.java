package dev.inferpam.core.internal.policy;

import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Block presets: the administrative endpoints of common model servers, which no caller of an
 * inference gateway should reach (pulling, deleting or re-weighting models, pausing the engine,
 * remote procedure calls). Stateless and thread-safe; the rules are built once and shared.
 *
 * <p>Rule names are {@code preset:path}, e.g. {@code ollama-admin:/api/pull}. Paths are globs
 * (see {@link Glob}; a trailing {@code /**} also matches the path without it). Where a path only
 * ever serves an administrative action, every method is blocked, so that neither a lenient router
 * nor a method-override header can reach it with another verb; where the same path also serves
 * reads that callers need (TorchServe's model list, Triton's log settings), only writes
 * (POST, PUT, PATCH, DELETE) are blocked.
 *
 * <p>Sources, checked against each server's own route table or reference:
 * <ul>
 *   <li>{@code ollama-admin}: Ollama {@code server/routes.go} (pull, push, create, copy, delete,
 *       blobs, and the ollama.com account endpoints signout and user/keys).
 *   <li>{@code vllm-admin}: vLLM's security guide and {@code entrypoints/serve} routers: LoRA
 *       loading, pause/resume, sleep/wake, {@code collective_rpc}, the RLHF weight-transfer
 *       lifecycle, cache resets, profiler, elastic EP scaling, server info.
 *   <li>{@code triton-admin}: Triton's model-repository, logging and trace protocol extensions.
 *   <li>{@code torchserve-admin}: TorchServe's management API (models, workflows) and its token
 *       API, which issues new keys even on GET.
 *   <li>{@code openai-admin}: OpenAI's files, fine-tuning, batches, uploads and organization
 *       (admin) APIs, and model deletion.
 * </ul>
 *
 * <p>Bad input: {@link #rules(String)} throws {@link IllegalArgumentException} naming the known
 * presets for an unknown name.
 */
final class Presets {
  private static final Set<String> ANY = Set.of("*");
  private static final Set<String> WRITES = Set.of("POST", "PUT", "PATCH", "DELETE");

  private static final Map<String, List<Policy.BlockRule>> PRESETS = build();

  private Presets() {}

  /** Preset names in documentation order. */
  public static Set<String> names() {
    return PRESETS.keySet();
  }

  /**
   * The block rules of {@code preset}.
   *
   * @throws IllegalArgumentException e.g. {@code unknown preset "foo-admin" (known:
   *     ollama-admin, vllm-admin, triton-admin, torchserve-admin, openai-admin)}
   */
  public static List<Policy.BlockRule> rules(String preset) {
    List<Policy.BlockRule> rules = preset == null ? null : PRESETS.get(preset);
    if (rules == null) {
      throw new IllegalArgumentException(
          "unknown preset "
              + (preset == null ? "null" : PolicyText.quote(preset))
              + " (known: "
              + String.join(", ", names())
              + ")");
    }
    return rules;
  }

  private static Map<String, List<Policy.BlockRule>> build() {
    Map<String, List<Policy.BlockRule>> m = new LinkedHashMap<>();

    m.put(
        "ollama-admin",
        new Builder("ollama-admin")
            .any("/api/pull")
            .any("/api/push")
            .any("/api/create")
            .any("/api/copy")
            .any("/api/delete")
            .any("/api/blobs/**")
            // signs the server out of its ollama.com account / revokes its key
            .any("/api/signout")
            .any("/api/user/keys/**")
            .rules());

    Builder vllm =
        new Builder("vllm-admin")
            .any("/v1/load_lora_adapter")
            .any("/v1/unload_lora_adapter")
            .any("/pause")
            .any("/resume")
            .any("/is_paused")
            .any("/sleep")
            .any("/wake_up")
            .any("/is_sleeping")
            .any("/collective_rpc")
            .any("/abort_requests")
            .any("/scale_elastic_ep")
            .any("/is_scaling_elastic_ep")
            .any("/start_profile")
            .any("/stop_profile")
            .any("/reset_prefix_cache")
            .any("/reset_mm_cache")
            .any("/reset_encoder_cache")
            .any("/server_info")
            .any("/get_world_size");
    // RLHF weight transfer: the current names, plus /init_weight_transfer which some versions
    // and forks use; blocking a path a server lacks costs nothing.
    for (String p :
        List.of(
            "/init_weight_transfer",
            "/init_weight_transfer_engine",
            "/start_weight_update",
            "/start_draft_weight_update",
            "/update_weights",
            "/finish_weight_update",
            "/update_weight_version",
            "/weight_info",
            "/weight_checker")) {
      vllm.any(p);
    }
    m.put("vllm-admin", vllm.rules());

    m.put(
        "triton-admin",
        new Builder("triton-admin")
            .any("/v2/repository/**")
            // GET reads the settings and stays reachable; POST changes them
            .writes("/v2/logging")
            .writes("/v2/trace/setting")
            .writes("/v2/models/*/trace/setting", "/v2/models/*/versions/*/trace/setting")
            .rules());

    m.put(
        "torchserve-admin",
        new Builder("torchserve-admin")
            // GET /models (list) and GET /models/{name} (describe) stay reachable
            .writes("/models/**")
            .any("/workflows/**")
            .any("/token")
            .rules());

    m.put(
        "openai-admin",
        new Builder("openai-admin")
            .methods(Set.of("DELETE"), "/v1/models/**")
            .any("/v1/fine_tuning/**")
            .any("/v1/files/**")
            .any("/v1/batches/**")
            .any("/v1/uploads/**")
            .any("/v1/organization/**")
            .rules());

    return Collections.unmodifiableMap(m);
  }

  private static final class Builder {
    private final String preset;
    private final List<Policy.BlockRule> rules = new ArrayList<>();

    Builder(String preset) {
      this.preset = preset;
    }

    Builder any(String path) {
      return methods(ANY, path);
    }

    Builder writes(String... paths) {
      return methods(WRITES, paths);
    }

    Builder methods(Set<String> methods, String... paths) {
      List<Glob> globs = new ArrayList<>();
      for (String p : paths) globs.add(Glob.compile(p));
      rules.add(new Policy.BlockRule(preset + ":" + paths[0], methods, globs));
      return this;
    }

    List<Policy.BlockRule> rules() {
      return List.copyOf(rules);
    }
  }
}
