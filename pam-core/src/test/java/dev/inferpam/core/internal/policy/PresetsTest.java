package dev.inferpam.core.internal.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class PresetsTest {

  /** The first rule of {@code preset} that blocks {@code method path}, if any. */
  private static Optional<String> blockedBy(String preset, String method, String path) {
    for (Policy.BlockRule r : Presets.rules(preset)) {
      boolean methodMatches = r.methods().contains("*") || r.methods().contains(method);
      if (methodMatches && Glob.matchesAny(r.paths(), path)) return Optional.of(r.name());
    }
    return Optional.empty();
  }

  private static void assertBlocked(String preset, String method, String path, String rule) {
    assertThat(blockedBy(preset, method, path))
        .as("%s %s under %s", method, path, preset)
        .contains(rule);
  }

  private static void assertNotBlocked(String preset, String method, String path) {
    assertThat(blockedBy(preset, method, path))
        .as("%s %s under %s", method, path, preset)
        .isEmpty();
  }

  @Test
  void namesAreTheFiveDocumentedPresetsInOrder() {
    assertThat(Presets.names())
        .containsExactly(
            "ollama-admin", "vllm-admin", "triton-admin", "torchserve-admin", "openai-admin");
  }

  @Test
  void unknownPresetIsRefusedListingTheKnownOnes() {
    assertThatThrownBy(() -> Presets.rules("foo-admin"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "unknown preset \"foo-admin\" (known: ollama-admin, vllm-admin, triton-admin, "
                + "torchserve-admin, openai-admin)");
    assertThatThrownBy(() -> Presets.rules(null)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Presets.rules("Ollama-Admin"))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void everyRuleIsNamedPresetColonFirstPathAndNamesAreUnique() {
    for (String preset : Presets.names()) {
      List<Policy.BlockRule> rules = Presets.rules(preset);
      assertThat(rules).isNotEmpty();
      assertThat(rules).extracting(Policy.BlockRule::name).doesNotHaveDuplicates();
      for (Policy.BlockRule r : rules) {
        assertThat(r.name()).isEqualTo(preset + ":" + r.paths().get(0).pattern());
        assertThat(r.methods()).isNotEmpty();
        assertThat(r.paths()).allSatisfy(g -> assertThat(g.pattern()).startsWith("/"));
      }
    }
  }

  @Test
  void rulesAreImmutable() {
    List<Policy.BlockRule> rules = Presets.rules("ollama-admin");
    assertThatThrownBy(rules::clear).isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> Presets.names().add("x"))
        .isInstanceOf(UnsupportedOperationException.class);
  }

  @Test
  void ollamaAdminBlocksModelManagementButNotInference() {
    assertBlocked("ollama-admin", "POST", "/api/pull", "ollama-admin:/api/pull");
    assertBlocked("ollama-admin", "POST", "/api/push", "ollama-admin:/api/push");
    assertBlocked("ollama-admin", "POST", "/api/create", "ollama-admin:/api/create");
    assertBlocked("ollama-admin", "POST", "/api/copy", "ollama-admin:/api/copy");
    assertBlocked("ollama-admin", "DELETE", "/api/delete", "ollama-admin:/api/delete");
    assertBlocked(
        "ollama-admin",
        "POST",
        "/api/blobs/sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2",
        "ollama-admin:/api/blobs/**");
    assertBlocked("ollama-admin", "HEAD", "/api/blobs/sha256:abc", "ollama-admin:/api/blobs/**");
    assertBlocked("ollama-admin", "POST", "/api/signout", "ollama-admin:/api/signout");
    assertBlocked("ollama-admin", "DELETE", "/api/user/keys/abc", "ollama-admin:/api/user/keys/**");
    // admin-only paths are blocked whatever the method
    assertBlocked("ollama-admin", "GET", "/api/pull", "ollama-admin:/api/pull");

    assertNotBlocked("ollama-admin", "POST", "/api/chat");
    assertNotBlocked("ollama-admin", "POST", "/api/generate");
    assertNotBlocked("ollama-admin", "POST", "/api/embed");
    assertNotBlocked("ollama-admin", "GET", "/api/tags");
    assertNotBlocked("ollama-admin", "POST", "/api/show");
    assertNotBlocked("ollama-admin", "GET", "/api/ps");
    assertNotBlocked("ollama-admin", "POST", "/api/pullx");
    assertNotBlocked("ollama-admin", "POST", "/v1/chat/completions");
  }

  @Test
  void vllmAdminBlocksControlEndpointsWhateverTheMethod() {
    for (String path :
        List.of(
            "/v1/load_lora_adapter",
            "/v1/unload_lora_adapter",
            "/pause",
            "/resume",
            "/is_paused",
            "/sleep",
            "/wake_up",
            "/is_sleeping",
            "/collective_rpc",
            "/update_weights",
            "/init_weight_transfer",
            "/init_weight_transfer_engine",
            "/start_weight_update",
            "/finish_weight_update",
            "/update_weight_version",
            "/weight_checker",
            "/start_profile",
            "/stop_profile",
            "/reset_prefix_cache",
            "/reset_mm_cache",
            "/reset_encoder_cache",
            "/scale_elastic_ep",
            "/is_scaling_elastic_ep",
            "/abort_requests",
            "/server_info",
            "/get_world_size")) {
      assertBlocked("vllm-admin", "POST", path, "vllm-admin:" + path);
      assertBlocked("vllm-admin", "GET", path, "vllm-admin:" + path);
    }
    assertNotBlocked("vllm-admin", "POST", "/v1/chat/completions");
    assertNotBlocked("vllm-admin", "POST", "/v1/completions");
    assertNotBlocked("vllm-admin", "GET", "/v1/models");
    assertNotBlocked("vllm-admin", "GET", "/health");
    assertNotBlocked("vllm-admin", "GET", "/metrics");
    assertNotBlocked("vllm-admin", "POST", "/tokenize");
    assertNotBlocked("vllm-admin", "POST", "/pause/extra");
  }

  @Test
  void tritonAdminBlocksRepositoryControlAndSettingWrites() {
    assertBlocked("triton-admin", "POST", "/v2/repository/index", "triton-admin:/v2/repository/**");
    assertBlocked(
        "triton-admin",
        "POST",
        "/v2/repository/models/resnet/load",
        "triton-admin:/v2/repository/**");
    assertBlocked(
        "triton-admin",
        "POST",
        "/v2/repository/models/resnet/unload",
        "triton-admin:/v2/repository/**");
    assertBlocked(
        "triton-admin",
        "POST",
        "/v2/repository/other_repo/index",
        "triton-admin:/v2/repository/**");
    assertBlocked("triton-admin", "GET", "/v2/repository", "triton-admin:/v2/repository/**");
    assertBlocked("triton-admin", "POST", "/v2/logging", "triton-admin:/v2/logging");
    assertBlocked("triton-admin", "POST", "/v2/trace/setting", "triton-admin:/v2/trace/setting");
    assertBlocked(
        "triton-admin",
        "POST",
        "/v2/models/resnet/trace/setting",
        "triton-admin:/v2/models/*/trace/setting");
    assertBlocked(
        "triton-admin",
        "POST",
        "/v2/models/resnet/versions/3/trace/setting",
        "triton-admin:/v2/models/*/trace/setting");

    assertNotBlocked("triton-admin", "GET", "/v2/logging");
    assertNotBlocked("triton-admin", "GET", "/v2/trace/setting");
    assertNotBlocked("triton-admin", "GET", "/v2/models/resnet/trace/setting");
    assertNotBlocked("triton-admin", "POST", "/v2/models/resnet/infer");
    assertNotBlocked("triton-admin", "POST", "/v2/models/resnet/versions/3/infer");
    assertNotBlocked("triton-admin", "GET", "/v2/models/resnet/config");
    assertNotBlocked("triton-admin", "GET", "/v2/health/ready");
    assertNotBlocked("triton-admin", "GET", "/v2");
  }

  @Test
  void torchserveAdminBlocksModelWritesButKeepsListing() {
    assertBlocked("torchserve-admin", "POST", "/models", "torchserve-admin:/models/**");
    assertBlocked("torchserve-admin", "PUT", "/models/resnet", "torchserve-admin:/models/**");
    assertBlocked(
        "torchserve-admin", "PUT", "/models/resnet/2.0/set-default", "torchserve-admin:/models/**");
    assertBlocked(
        "torchserve-admin", "DELETE", "/models/resnet/1.0", "torchserve-admin:/models/**");
    assertBlocked("torchserve-admin", "POST", "/workflows", "torchserve-admin:/workflows/**");
    assertBlocked("torchserve-admin", "GET", "/workflows", "torchserve-admin:/workflows/**");
    assertBlocked("torchserve-admin", "DELETE", "/workflows/wf", "torchserve-admin:/workflows/**");
    assertBlocked("torchserve-admin", "GET", "/token", "torchserve-admin:/token");

    assertNotBlocked("torchserve-admin", "GET", "/models");
    assertNotBlocked("torchserve-admin", "GET", "/models/resnet");
    assertNotBlocked("torchserve-admin", "POST", "/predictions/resnet");
    assertNotBlocked("torchserve-admin", "GET", "/ping");
    assertNotBlocked("torchserve-admin", "POST", "/modelsx");
  }

  @Test
  void openaiAdminBlocksFilesFineTuningBatchesUploadsOrganizationAndModelDeletion() {
    assertBlocked(
        "openai-admin",
        "DELETE",
        "/v1/models/ft:gpt-4o-mini:acme::abc",
        "openai-admin:/v1/models/**");
    assertBlocked(
        "openai-admin", "POST", "/v1/fine_tuning/jobs", "openai-admin:/v1/fine_tuning/**");
    assertBlocked(
        "openai-admin",
        "GET",
        "/v1/fine_tuning/jobs/ftjob-1/events",
        "openai-admin:/v1/fine_tuning/**");
    assertBlocked("openai-admin", "GET", "/v1/files", "openai-admin:/v1/files/**");
    assertBlocked("openai-admin", "GET", "/v1/files/file-abc/content", "openai-admin:/v1/files/**");
    assertBlocked("openai-admin", "POST", "/v1/batches", "openai-admin:/v1/batches/**");
    assertBlocked(
        "openai-admin", "POST", "/v1/uploads/upload_1/parts", "openai-admin:/v1/uploads/**");
    assertBlocked(
        "openai-admin", "GET", "/v1/organization/users", "openai-admin:/v1/organization/**");
    assertBlocked(
        "openai-admin",
        "POST",
        "/v1/organization/admin_api_keys",
        "openai-admin:/v1/organization/**");

    assertNotBlocked("openai-admin", "GET", "/v1/models");
    assertNotBlocked("openai-admin", "GET", "/v1/models/gpt-4o-mini");
    assertNotBlocked("openai-admin", "POST", "/v1/chat/completions");
    assertNotBlocked("openai-admin", "POST", "/v1/embeddings");
    assertNotBlocked("openai-admin", "GET", "/v1/filesystem");
  }
}
