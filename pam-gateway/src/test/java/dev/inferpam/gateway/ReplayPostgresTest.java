package dev.inferpam.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.Policies;
import dev.inferpam.testsupport.PostgresServer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code replay list|show|verify --policy FILE} on a policy whose {@code recording.store} is
 * {@code postgres}: the records two engines (two writers) wrote into a real PostgreSQL are listed
 * and shown, and verify checks each writer's chain and names an altered and a missing row by
 * writer and sequence number.
 */
class ReplayPostgresTest {
  private static final String KEY = "alice-key-0123";

  @TempDir Path dir;
  private PostgresServer pg;
  private Path policyFile;

  @BeforeEach
  void start() throws Exception {
    pg = PostgresServer.start();
    Path url = Files.writeString(dir.resolve("pg-url"), pg.jdbcUrl() + "\n");
    Path password =
        Files.writeString(dir.resolve("pg-password"), PostgresServer.SUPERUSER_PASSWORD);
    policyFile =
        Files.writeString(
            dir.resolve("policy.yaml"),
            "version: 1\n"
                + "identity:\n  api-keys:\n"
                + Policies.apiKey("alice", KEY, "ml")
                + "entitlements:\n  - groups: [ml]\n    models: [\"*\"]\n    operations: [chat]\n"
                + "state:\n  postgres:\n    url-from-file: "
                + Policies.quoted(url.toString())
                + "\n    user: "
                + PostgresServer.SUPERUSER
                + "\n    password-from-file: "
                + Policies.quoted(password.toString())
                + "\nrecording:\n  store: postgres\n  durability: batched\n");
  }

  @AfterEach
  void stop() throws Exception {
    if (pg != null) pg.close();
  }

  private record Result(int status, String stdout, String stderr) {
    List<String> out() {
      return stdout.lines().toList();
    }
  }

  private static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        GatewayMain.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(
        status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  /** Three allowed chat calls through one engine (one writer), closed after: all committed. */
  private void threeCalls() {
    try (PamEngine engine = PamEngine.builder().policy(Policy.load(policyFile)).build()) {
      byte[] body = Policies.chat("llama-3.1-8b", "").getBytes(StandardCharsets.UTF_8);
      for (int i = 0; i < 3; i++) {
        Verdict v =
            engine.begin(
                new RequestHead(
                    "POST",
                    "/v1/chat/completions",
                    null,
                    Map.of(
                        "Authorization", List.of("Bearer " + KEY),
                        "Content-Type", List.of("application/json")),
                    "127.0.0.1"),
                new ByteArrayInputStream(body),
                body.length);
        Verdict.Allowed a = (Verdict.Allowed) v;
        a.respond(200, Map.of("Content-Type", List.of("application/json")));
        a.end(true);
      }
    }
  }

  @Test
  void listsShowsAndVerifiesEveryWritersChain() throws Exception {
    threeCalls();
    threeCalls();
    List<String> writers =
        pg.sql("postgres", "SELECT DISTINCT writer FROM inferpam.records ORDER BY writer")
            .lines()
            .toList();
    assertThat(writers).hasSize(2);

    Result list = run("replay", "list", "--policy", policyFile.toString());
    assertThat(list.status).isZero();
    assertThat(list.out())
        .hasSize(6)
        .allSatisfy(
            l -> assertThat(l).contains(" alice POST /v1/chat/completions llama-3.1-8b allow 200"));
    String id = list.out().get(0).split(" ")[1];
    Result show = run("replay", "show", "--policy", policyFile.toString(), id);
    assertThat(show.status).isZero();
    assertThat(show.out()).contains("  \"id\": \"" + id + "\",");

    Result ok = run("replay", "verify", "--policy", policyFile.toString());
    assertThat(ok.status).isZero();
    assertThat(ok.stdout).isEqualTo("OK 6 records" + System.lineSeparator());

    // as the superuser: the gateway role could neither update nor delete a record
    pg.sql(
        "postgres",
        "UPDATE inferpam.records SET line = replace(line, '\"alice\"', '\"mallory\"')"
            + " WHERE writer = '"
            + writers.get(0)
            + "' AND seq = 2");
    pg.sql(
        "postgres",
        "DELETE FROM inferpam.records WHERE writer = '" + writers.get(1) + "' AND seq = 2");

    Result broken = run("replay", "verify", "--policy", policyFile.toString());
    assertThat(broken.status).isEqualTo(1);
    assertThat(broken.out())
        .containsExactly(
            "BROKEN writer " + writers.get(0) + " seq 2: hash mismatch",
            "BROKEN writer " + writers.get(1) + " seq 2: missing");
    assertThat(broken.stderr).isEmpty();
  }

  @Test
  void anUnknownIdOrAnUnreachableDatabaseSaySoWithoutThePassword() throws Exception {
    threeCalls();
    Result unknown = run("replay", "show", "--policy", policyFile.toString(), "ex-404");
    assertThat(unknown.status).isEqualTo(1);
    assertThat(unknown.stderr)
        .isEqualTo(
            "inferpam: no exchange ex-404 in PostgreSQL 127.0.0.1:"
                + pg.port
                + "/postgres"
                + System.lineSeparator());

    pg.stop();
    Result down = run("replay", "verify", "--policy", policyFile.toString());
    assertThat(down.status).isEqualTo(2);
    assertThat(down.stderr)
        .startsWith("inferpam: " + policyFile + ": state.postgres: cannot reach PostgreSQL at")
        .doesNotContain(PostgresServer.SUPERUSER_PASSWORD);
  }
}
