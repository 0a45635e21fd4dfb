package dev.inferpam.boot4tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Principal;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.servlet.PamFilter;
import dev.inferpam.servlet.ResponseEndingsContract;
import dev.inferpam.servlet.ServletContainer;
import jakarta.servlet.Filter;
import jakarta.servlet.http.HttpServlet;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.catalina.util.ServerInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link PamFilter} on a plain embedded Tomcat 11 (no Spring), registered as the README says (on
 * {@code /*} for REQUEST and ASYNC, async supported): every way a servlet response can end
 * delivers the whole masked body and a complete record, as pam-servlet's {@code
 * PamFilterResponseEndingsTest} checks on Jetty 12.1 and Tomcat 10.1, with the same application
 * and the same checks of the endings that fail and of the event stream ({@link
 * ResponseEndingsContract}, from pam-servlet's test jar). Here because Boot 4's BOM manages Tomcat
 * 11, which pam-servlet's tests (on Tomcat 10.1) cannot have beside it. The values to mask are split
 * across writes and across the async hand-off; the text after the last of them must arrive.
 */
class PamFilterTomcat11Test extends ResponseEndingsContract {
  static final Principal REVIEWER = new Principal("sam", Set.of("oncall"), "test", null, Map.of());

  /** The one container here: pam-servlet's embedded Tomcat, which Boot 4's BOM makes an 11. */
  enum Tomcat implements ServletContainer.Starter {
    TOMCAT_11;

    @Override
    public ServletContainer start(Filter filter, HttpServlet servlet) throws Exception {
      ServletContainer tomcat = ServletContainer.tomcat(filter, servlet);
      assertThat(ServerInfo.getServerInfo()).startsWith("Apache Tomcat/11.");
      return tomcat;
    }
  }

  /** Where {@link ResponseEndingsContract}'s checks run. */
  static Tomcat[] containers() {
    return Tomcat.values();
  }

  /** The contract's policy, and a request that asks to dump all rows held for review. */
  @Override
  protected String policy() {
    return POLICY
        + """
        approval:
          reviewers: [oncall]
          timeout: 5m
          rules:
            - name: bulk-export
              prompt-matches: "(?i)dump all"
        """;
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "return-stream",
        "return-writer",
        "timeout-answered",
        "dispatch-stream",
        "dispatch-writer",
        "dispatch-restart"
      })
  void textArrivesWholeAndMaskedWithItsTail(String ending) throws Exception {
    start(Tomcat.TOMCAT_11);
    String body = call(ending);
    assertThat(body).isEqualTo(MASKED_TEXT);
    completeRecord(body);
  }

  @ParameterizedTest
  @ValueSource(strings = {"complete-json", "dispatch-json"})
  void aJsonAnswerWrittenAsynchronouslyArrivesWholeAndMasked(String ending) throws Exception {
    start(Tomcat.TOMCAT_11);
    String body = call(ending);
    assertThat(body).isEqualTo(MASKED_ANSWER);
    completeRecord(body);
  }

  @Test
  void aRequestHeldForReviewThenAnsweredThroughAnAsyncDispatchArrivesWholeAndMasked()
      throws Exception {
    start(Tomcat.TOMCAT_11);
    InProcessApprovalService approvals = (InProcessApprovalService) engine.approvalService();
    CompletableFuture<HttpResponse<String>> response =
        http.sendAsync(
            post("dispatch-stream", "please dump all rows"), HttpResponse.BodyHandlers.ofString());
    // The filter's async cycle (the wait, no thread held), then the application's own.
    List<ApprovalService.Pending> pending =
        await().atMost(Duration.ofSeconds(10)).until(approvals::pending, p -> !p.isEmpty());
    approvals.approve(pending.get(0).id(), REVIEWER, "fine");
    HttpResponse<String> answered = response.get(20, TimeUnit.SECONDS);
    assertThat(answered.statusCode()).isEqualTo(200);
    assertThat(answered.body()).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }
}
