package dev.inferpam.postgres;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.testsupport.PostgresServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code state.postgres} in a policy: the engine's reviews live in the database; what cannot be
 * used — no server, refused credentials, a schema newer than the code or not migrated — stops the
 * start with a message that names the place and never the password.
 */
class PostgresStatePolicyTest {
  private static Databases db;
  @TempDir Path dir;

  @BeforeAll
  static void startDatabase() throws Exception {
    db = Databases.start();
  }

  @AfterAll
  static void stopDatabase() throws Exception {
    if (db != null) db.close();
  }

  private String policy(String url, String password, String extra) throws IOException {
    Path urlFile = dir.resolve("pg-url");
    Files.writeString(urlFile, url + "\n");
    Path pw = dir.resolve("pg-password");
    Files.writeString(pw, password);
    return "version: 1\n"
        + "approval:\n  reviewers: [oncall]\n  rules:\n"
        + "    - {name: bulk, groups: [\"*\"], prompt-matches: \"dump all\"}\n"
        + "state:\n  postgres:\n"
        + "    url-from-file: \""
        + urlFile
        + "\"\n"
        + "    user: "
        + Databases.ROLE
        + "\n    password-from-file: \""
        + pw
        + "\"\n    timeout: 1s\n"
        + extra;
  }

  @Test
  void anEngineWithStatePostgresKeepsItsReviewsInTheDatabase() throws Exception {
    Policy p =
        Policy.parse(policy(db.server.jdbcUrl(), Databases.ROLE_PASSWORD, "    migrate: false\n"));
    assertThat(p.state().postgres())
        .isEqualTo(
            new Policy.Postgres(
                null,
                dir.resolve("pg-url"),
                Databases.ROLE,
                null,
                null,
                dir.resolve("pg-password"),
                Duration.ofSeconds(1),
                false,
                null));
    try (PamEngine engine = PamEngine.builder().policy(p).build()) {
      assertThat(engine.approvalService()).isInstanceOf(PostgresApprovalService.class);
      assertThat(engine.decidesWithoutWaiting()).isFalse();
    }
  }

  @Test
  void aWrongPasswordStopsTheStartWithoutShowingIt() throws Exception {
    Policy p = Policy.parse(policy(db.server.jdbcUrl(), "not-the-pw-77", ""));
    assertThatThrownBy(() -> PamEngine.builder().policy(p).build())
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith(
            "state.postgres: cannot reach PostgreSQL at 127.0.0.1:"
                + db.server.port
                + "/postgres: ")
        .hasMessageContaining("password authentication failed")
        .hasMessageNotContaining("state.postgres.timeout")
        .hasMessageNotContaining("not-the-pw-77");
  }

  @Test
  void aPasswordInTheUrlIsNeverShown() throws Exception {
    int closed;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      closed = s.getLocalPort();
    }
    Policy p =
        Policy.parse(
            policy(
                "jdbc:postgresql://127.0.0.1:" + closed + "/db?password=url-pw-55",
                "file-pw-1",
                ""));
    assertThatThrownBy(() -> PamEngine.builder().policy(p).build())
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith(
            "state.postgres: cannot reach PostgreSQL at 127.0.0.1:" + closed + "/db")
        .hasMessageContaining("(connecting may take state.postgres.timeout, ")
        .hasMessageNotContaining("url-pw-55");
    Policy bad = Policy.parse(policy("postgres://127.0.0.1/db", "file-pw-1", ""));
    assertThatThrownBy(() -> PamEngine.builder().policy(bad).build())
        .hasMessage(
            "state.postgres: not a PostgreSQL JDBC URL (expected"
                + " jdbc:postgresql://host:port/database)");
  }

  @Test
  void aSchemaNewerThanTheCodeIsRefusedAndAnUnmigratedOneNeedsMigrate() throws Exception {
    try (PostgresServer other = PostgresServer.start()) {
      String url = other.jdbcUrl();
      assertThatThrownBy(
              () ->
                  PostgresState.connect(
                      url,
                      PostgresServer.SUPERUSER,
                      PostgresServer.SUPERUSER_PASSWORD,
                      Duration.ofSeconds(5),
                      false))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage(
              "the inferpam schema at 127.0.0.1:"
                  + other.port
                  + "/postgres is at version none, this inferpam needs "
                  + PostgresState.SCHEMA_VERSION
                  + ": apply the migrations as the schema's owner (state.postgres.migrate: true)");
      PostgresState.connect(
              url,
              PostgresServer.SUPERUSER,
              PostgresServer.SUPERUSER_PASSWORD,
              Duration.ofSeconds(5),
              true)
          .close();
      // a newer inferpam migrated this database
      other.sql(
          "postgres",
          "INSERT INTO inferpam.schema_history (installed_rank, version, description, type,"
              + " script, checksum, installed_by, execution_time, success) VALUES (99, '99',"
              + " 'from the future', 'SQL', 'V99__future.sql', 0, 'someone', 1, true)");
      for (boolean migrate : new boolean[] {true, false}) {
        assertThatThrownBy(
                () ->
                    PostgresState.connect(
                        url,
                        PostgresServer.SUPERUSER,
                        PostgresServer.SUPERUSER_PASSWORD,
                        Duration.ofSeconds(5),
                        migrate))
            .isInstanceOf(IllegalStateException.class)
            .hasMessage(
                "the inferpam schema at 127.0.0.1:"
                    + other.port
                    + "/postgres is at version 99, newer than this inferpam's ("
                    + PostgresState.SCHEMA_VERSION
                    + "): upgrade inferpam on this replica, or point it at another database");
      }
    }
  }

  @Test
  void theStateSectionSaysWhatIsWrong() {
    assertThatThrownBy(() -> Policy.parse("version: 1\nstate:\n  postgres: {user: x}\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessage("state.postgres: exactly one of url-from-env / url-from-file");
    assertThatThrownBy(
            () ->
                Policy.parse(
                    "version: 1\nstate:\n  postgres: {url-from-env: U, user: a, user-from-env: B}\n"))
        .hasMessage("state.postgres: at most one of user / user-from-env");
    assertThatThrownBy(
            () ->
                Policy.parse(
                    "version: 1\nstate:\n  postgres: {url-from-env: U, password-from-env: P,"
                        + " password-from-file: /f}\n"))
        .hasMessage("state.postgres: at most one of password-from-env / password-from-file");
    assertThatThrownBy(
            () ->
                Policy.parse("version: 1\nstate:\n  postgres: {url-from-env: U, migrate: maybe}\n"))
        .hasMessage("state.postgres.migrate: expected true or false");
    assertThatThrownBy(
            () -> Policy.parse("version: 1\nstate:\n  postgres: {url-from-env: U, timeout: 1m}\n"))
        .hasMessage("state.postgres.timeout: expected at most 30s, was 1m");
    assertThatThrownBy(
            () -> Policy.parse("version: 1\nstate:\n  postgres: {url-from-env: U, url: x}\n"))
        .hasMessage("state.postgres.url: unknown key");
    assertThatThrownBy(() -> Policy.parse("version: 1\nstate: {}\n"))
        .hasMessage("state: expected redis or postgres");
  }
}
