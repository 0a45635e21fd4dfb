package dev.inferpam.gateway.demo;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The demo with colours on, as the command line runs it on a terminal that shows them. */
class DemoColourTest {
  @TempDir Path recording;

  @Test
  void coloursStepTitlesAndOutcomesAndNothingElse() throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    int status = Demo.run(new PrintStream(bytes, true, StandardCharsets.UTF_8), 0, recording, true);

    String text = bytes.toString(StandardCharsets.UTF_8);
    assertThat(status).as("demo output:%n%s", text).isZero();
    List<String> lines = text.lines().toList();
    assertThat(lines)
        .contains(
            "\u001b[1m\u001b[36m[2] carol signs in with the demo identity provider; the gateway checks her OIDC access"
                + " token\u001b[0m",
            "    \u001b[32m-> 200 allowed\u001b[0m",
            "    \u001b[31m-> 401 unauthenticated: authentication failed: signature invalid\u001b[0m",
            "      \u001b[32mOK 10 records\u001b[0m");
    assertThat(lines)
        .anyMatch(
            l -> l.startsWith("    \u001b[33m-> 429 quota_exceeded: ") && l.endsWith("\u001b[0m"));
    assertThat(lines).anyMatch(l -> l.startsWith("    \u001b[31m-> 403 not_entitled: "));
    // titles, outcomes and the verification only; every colour is reset on its line
    assertThat(lines.stream().filter(l -> l.contains("\u001b")).count()).isEqualTo(10 + 10 + 1);
    assertThat(lines).filteredOn(l -> l.contains("\u001b")).allMatch(l -> l.endsWith("\u001b[0m"));
    // without the escapes, the same text as the plain demo
    String plain = text.replaceAll("\u001b\\[[0-9;]*m", "");
    assertThat(plain.lines().map(String::strip).filter(l -> l.startsWith("-> ")).count())
        .isEqualTo(10);
  }
}
