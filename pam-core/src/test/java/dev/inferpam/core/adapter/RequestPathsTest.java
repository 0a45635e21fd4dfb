package dev.inferpam.core.adapter;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.ErrorResponse;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The engine's path check as endpoints next to it see it: what they refuse, and the answer. */
class RequestPathsTest {

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/",
        "/pam/approvals",
        "/pam/approvals/a1b2",
        "/v1/chat/completions",
        "/api/caf%C3%A9"
      })
  void canonicalPathsPass(String path) {
    assertThat(RequestPaths.refusal(path)).isEmpty();
    assertThat(RequestPaths.endpointRefusal(path)).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/pam/%2e%2e/approvals",
        "/pam/approvals;x",
        "//pam/quota",
        "/pam/./quota",
        "/pam%2Fquota",
        "/pam/%zz",
        "pam/quota",
        "",
        "/pam/approvals//"
      })
  void ambiguousPathsAreBadPath(String path) {
    for (Optional<ErrorResponse> refused :
        List.of(RequestPaths.refusal(path), RequestPaths.endpointRefusal(path))) {
      assertThat(refused)
          .get()
          .satisfies(
              e -> {
                assertThat(e.status()).isEqualTo(400);
                assertThat(e.headers()).containsEntry("Content-Type", "application/json");
                assertThat(e.bodyText())
                    .contains(
                        "\"type\":\"pam_error\"", "\"code\":\"bad_path\"", "\"request_id\":null")
                    .contains("ambiguous request path");
              });
    }
  }

  @Test
  void anEndpointLetsOneTrailingSlashThroughTheEngineDoesNot() {
    assertThat(RequestPaths.endpointRefusal("/pam/approvals/")).isEmpty();
    assertThat(RequestPaths.refusal("/pam/approvals/"))
        .get()
        .extracting(ErrorResponse::status)
        .isEqualTo(400);
  }

  @Test
  void noPathIsRefusedAsEmpty() {
    assertThat(RequestPaths.refusal(null))
        .get()
        .extracting(ErrorResponse::bodyText)
        .asString()
        .contains("bad_path", "empty path");
    assertThat(RequestPaths.endpointRefusal(null))
        .get()
        .extracting(ErrorResponse::status)
        .isEqualTo(400);
  }
}
