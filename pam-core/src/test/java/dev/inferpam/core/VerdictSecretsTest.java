package dev.inferpam.core;

import static dev.inferpam.core.PamEngineTest.KEY;
import static dev.inferpam.core.PamEngineTest.call;
import static dev.inferpam.core.PamEngineTest.policy;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.Verdict;
import org.junit.jupiter.api.Test;

/** What an adapter might log of a verdict never shows the upstream credential or the caller's key. */
class VerdictSecretsTest {
  static final String SECRET = "sk-upstream-0123456789abcdef";

  @Test
  void anAllowedVerdictAndItsForwardNameTheCredentialHeaderButNeverItsValue() throws Exception {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy("")))
            .credentialProvider(() -> new Credential("Authorization", "Bearer " + SECRET))
            .build();
    Verdict verdict = call(engine, "POST", "/v1/chat/completions", KEY, "{\"model\":\"llama-3\"}");
    assertThat(verdict).isInstanceOf(Verdict.Allowed.class);
    Forward forward = ((Verdict.Allowed) verdict).forward();

    assertThat(forward.setHeaders()).containsEntry("Authorization", "Bearer " + SECRET);
    for (String shown :
        new String[] {verdict.toString(), forward.toString(), forward.setHeaders().toString()}) {
      assertThat(shown).doesNotContain(SECRET).doesNotContain(KEY);
    }
    assertThat(forward.toString()).contains("Authorization");
    ((Verdict.Allowed) verdict).end(true);
    engine.close();
  }
}
