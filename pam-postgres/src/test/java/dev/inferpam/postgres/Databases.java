package dev.inferpam.postgres;

import dev.inferpam.testsupport.PostgresServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * One real PostgreSQL for a test class: the schema migrated by its owner (the superuser), and the
 * role of {@code gateway-role.sql} (the file the docs give) that tests connect as.
 */
final class Databases implements AutoCloseable {
  static final String ROLE = "inferpam_gateway";
  static final String ROLE_PASSWORD = "gw-s3cret-pw";

  final PostgresServer server;

  private Databases(PostgresServer server) {
    this.server = server;
  }

  static Databases start() throws Exception {
    PostgresServer server = PostgresServer.start();
    try {
      // the schema's owner applies the migrations
      PostgresState.connect(
              server.jdbcUrl(),
              PostgresServer.SUPERUSER,
              PostgresServer.SUPERUSER_PASSWORD,
              Duration.ofSeconds(5),
              true)
          .close();
      server.sql("postgres", gatewayRoleSql().replace("'change-me'", "'" + ROLE_PASSWORD + "'"));
      return new Databases(server);
    } catch (Exception | Error e) {
      server.close();
      throw e;
    }
  }

  static String gatewayRoleSql() {
    try (InputStream in =
        PostgresState.class.getResourceAsStream("/dev/inferpam/postgres/gateway-role.sql")) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A state connected as the gateway role, without migrating. */
  PostgresState asGateway() {
    return asGateway(Duration.ofSeconds(5));
  }

  /** A state connected as the gateway role, {@code timeout} for connecting or a statement. */
  PostgresState asGateway(Duration timeout) {
    return PostgresState.connect(server.jdbcUrl(), ROLE, ROLE_PASSWORD, timeout, false);
  }

  /** A state connected as the schema's owner (the superuser), without migrating. */
  PostgresState asOwner() {
    return PostgresState.connect(
        server.jdbcUrl(),
        PostgresServer.SUPERUSER,
        PostgresServer.SUPERUSER_PASSWORD,
        Duration.ofSeconds(5),
        false);
  }

  /** Empties the records, their partitions and retention notes (as the owner). */
  void clearRecords() throws IOException, InterruptedException {
    server.sql(
        "postgres",
        "DO $$ DECLARE p text; BEGIN FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c"
            + " ON c.oid = i.inhrelid WHERE i.inhparent = 'inferpam.records'::regclass LOOP"
            + " EXECUTE format('DROP TABLE inferpam.%I', p); END LOOP; END $$;"
            + " TRUNCATE inferpam.record_retention");
  }

  /** Empties the review tables (as the owner: the gateway role may not delete reviews). */
  void clearReviews() throws IOException, InterruptedException {
    server.sql("postgres", "TRUNCATE inferpam.review_waiters, inferpam.reviews, inferpam.replicas");
  }

  @Override
  public void close() throws IOException {
    server.close();
  }
}
