package dev.inferpam.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.Policy;
import dev.inferpam.core.StoredRecords;
import dev.inferpam.testsupport.Policies;
import dev.inferpam.testsupport.PostgresServer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code pam-gateway.jar} as shaded, after the package phase (the {@code shaded-jar} execution of
 * pam-gateway's pom runs this class only): the service files the shade plugin merges keep the
 * state backends of pam-redis and pam-postgres and Flyway's PostgreSQL plugin, the migrations are
 * in the jar, and the jar itself reads a PostgreSQL record store ({@code replay verify --policy}).
 */
class ShadedJarCheck {
  private static final Path JAR =
      Path.of(System.getProperty("pam.gateway.jar", "target/pam-gateway.jar"));

  @TempDir Path dir;

  private static String entry(ZipFile jar, String name) throws IOException {
    ZipEntry e = jar.getEntry(name);
    assertThat(e).as("%s in %s", name, JAR).isNotNull();
    try (InputStream in = jar.getInputStream(e)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  @Test
  void theMergedServiceFilesKeepEveryBackendAndFlywaysPostgresqlPlugin() throws Exception {
    try (ZipFile jar = new ZipFile(JAR.toFile())) {
      assertThat(entry(jar, "META-INF/services/dev.inferpam.core.StateBackend").lines())
          .contains(
              "dev.inferpam.redis.internal.RedisStateBackend",
              "dev.inferpam.postgres.internal.PostgresStateBackend");
      assertThat(entry(jar, "META-INF/services/org.flywaydb.core.extensibility.Plugin").lines())
          .contains("org.flywaydb.database.postgresql.PostgreSQLDatabaseType");
      assertThat(entry(jar, "dev/inferpam/postgres/migration/V2__records.sql"))
          .contains("CREATE TABLE records");
      assertThat(entry(jar, "dev/inferpam/postgres/gateway-role.sql")).contains("inferpam_gateway");
    }
  }

  @Test
  void theJarVerifiesAPostgresqlRecordStore() throws Exception {
    try (PostgresServer pg = PostgresServer.start()) {
      Path url = Files.writeString(dir.resolve("pg-url"), pg.jdbcUrl());
      Path password = Files.writeString(dir.resolve("pg-pw"), PostgresServer.SUPERUSER_PASSWORD);
      Path policy =
          Files.writeString(
              dir.resolve("policy.yaml"),
              "version: 1\nstate:\n  postgres:\n    url-from-file: "
                  + Policies.quoted(url.toString())
                  + "\n    user: "
                  + PostgresServer.SUPERUSER
                  + "\n    password-from-file: "
                  + Policies.quoted(password.toString())
                  + "\nrecording:\n  store: postgres\n");
      // the schema, migrated from the class path (replay never migrates)
      try (dev.inferpam.core.PamEngine engine =
          dev.inferpam.core.PamEngine.builder().policy(Policy.load(policy)).build()) {
        assertThat(engine).isNotNull();
      }
      try (StoredRecords records = StoredRecords.of(Policy.load(policy))) {
        assertThat(records.verify().ok()).isTrue();
      }

      Path out = dir.resolve("out.txt");
      Path err = dir.resolve("err.txt");
      Process p =
          new ProcessBuilder(
                  List.of(
                      Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                      "-jar",
                      JAR.toString(),
                      "replay",
                      "verify",
                      "--policy",
                      policy.toString()))
              .redirectOutput(out.toFile())
              .redirectError(err.toFile())
              .start();
      assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
      assertThat(p.exitValue()).as("stderr: %s", Files.readString(err)).isZero();
      assertThat(Files.readString(out)).isEqualTo("OK 0 records" + System.lineSeparator());
    }
  }
}
