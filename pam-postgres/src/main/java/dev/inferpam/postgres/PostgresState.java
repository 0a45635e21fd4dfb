package dev.inferpam.postgres;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.net.URI;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Properties;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;
import org.flywaydb.core.api.MigrationInfo;
import org.flywaydb.core.api.MigrationVersion;

/**
 * One PostgreSQL database that the replicas of a fleet share: a HikariCP pool of PostgreSQL's own
 * JDBC driver, the inferpam schema checked (and migrated with Flyway when allowed) at start, and
 * this replica's id. The approval service and the recorder of a replica are made from one
 * instance and share its pool; close them first, then this.
 *
 * <p><b>Schema.</b> Tables live in the schema {@value #SCHEMA}; Flyway keeps its history there in
 * {@code schema_history}. With {@code migrate} the migrations this code knows are applied at
 * start (by a role that may create tables); without it the schema must already be at this code's
 * version ({@link #SCHEMA_VERSION}). A schema newer than the code is refused either way, with a
 * message that says so, rather than written by code that does not know its tables.
 *
 * <p><b>Secrets.</b> The password is handed to the driver only; messages name the host, port and
 * database, never the URL's parameters or the password.
 *
 * <p>Thread-safe.
 */
public final class PostgresState implements AutoCloseable {
  /** The schema inferpam's tables live in. */
  public static final String SCHEMA = "inferpam";

  /** The schema version this code reads and writes: its newest migration. */
  public static final int SCHEMA_VERSION = 2;

  private static final SecureRandom RANDOM = new SecureRandom();

  private final HikariDataSource pool;
  private final String location;
  private final Duration timeout;
  private final String replicaId;
  private final String url;
  private final String user;
  private final String password;
  private final java.util.concurrent.atomic.AtomicInteger writers =
      new java.util.concurrent.atomic.AtomicInteger();

  private PostgresState(
      HikariDataSource pool,
      String location,
      Duration timeout,
      String url,
      String user,
      String password) {
    this.pool = pool;
    this.location = location;
    this.timeout = timeout;
    this.url = url;
    this.user = user;
    this.password = password;
    byte[] id = new byte[8];
    RANDOM.nextBytes(id);
    this.replicaId = "r-" + HexFormat.of().formatHex(id);
  }

  /**
   * Connects to the database at {@code url} and checks (or, with {@code migrate}, brings up to
   * date) its inferpam schema.
   *
   * @param url      {@code jdbc:postgresql://host[:port]/database[?parameters]}; may carry
   *     {@code user} and {@code password} parameters
   * @param user     the role, or {@code null} when the URL names it
   * @param password its password, or {@code null} when the URL holds it or none is needed
   * @param timeout  connecting, and one statement, at most
   * @param migrate  apply the migrations this code knows at start
   * @throws IllegalArgumentException when {@code url} is not a PostgreSQL JDBC URL
   * @throws IllegalStateException    when the database cannot be reached, refuses the credentials,
   *     or holds a schema this code cannot use
   */
  public static PostgresState connect(
      String url, String user, String password, Duration timeout, boolean migrate) {
    Objects.requireNonNull(url, "url");
    Objects.requireNonNull(timeout, "timeout");
    String location = location(url);
    HikariConfig config = new HikariConfig();
    config.setPoolName("inferpam-postgres");
    config.setJdbcUrl(url);
    if (user != null) config.setUsername(user);
    if (password != null) config.setPassword(password);
    config.setMaximumPoolSize(16);
    config.setMinimumIdle(2);
    long millis = Math.max(250, timeout.toMillis());
    config.setConnectionTimeout(millis);
    config.setValidationTimeout(Math.max(250, Math.min(millis, 5_000)));
    config.setInitializationFailTimeout(-1); // checked below, with a message of ours
    int seconds = (int) Math.max(1, (millis + 999) / 1000);
    config.addDataSourceProperty("connectTimeout", seconds);
    config.addDataSourceProperty("loginTimeout", seconds);
    config.addDataSourceProperty("ApplicationName", "inferpam");
    config.addDataSourceProperty("options", "-c statement_timeout=" + millis);
    HikariDataSource pool = new HikariDataSource(config);
    try {
      try (Connection c = pool.getConnection()) {
        c.isValid(seconds);
      } catch (SQLException e) {
        throw new IllegalStateException(
            "cannot reach PostgreSQL at "
                + location
                + ": "
                + describe(e)
                + (connectionFailure(e)
                    ? " (connecting may take state.postgres.timeout, "
                        + millis
                        + " ms; a database still starting may need more)"
                    : ""),
            e);
      }
      schema(pool, location, migrate);
      return new PostgresState(pool, location, timeout, url, user, password);
    } catch (RuntimeException e) {
      pool.close();
      throw e;
    }
  }

  private static void schema(DataSource pool, String location, boolean migrate) {
    Flyway flyway =
        Flyway.configure(PostgresState.class.getClassLoader())
            .dataSource(pool)
            .schemas(SCHEMA)
            .table("schema_history")
            .locations("classpath:dev/inferpam/postgres/migration")
            .load();
    try {
      MigrationInfo current = flyway.info().current();
      MigrationVersion ours = MigrationVersion.fromVersion(Integer.toString(SCHEMA_VERSION));
      MigrationVersion theirs = current == null ? null : current.getVersion();
      if (theirs != null && theirs.compareTo(ours) > 0) {
        throw new IllegalStateException(
            "the inferpam schema at "
                + location
                + " is at version "
                + theirs
                + ", newer than this inferpam's ("
                + ours
                + "): upgrade inferpam on this replica, or point it at another database");
      }
      if (migrate) {
        flyway.migrate();
      } else if (theirs == null || theirs.compareTo(ours) < 0) {
        throw new IllegalStateException(
            "the inferpam schema at "
                + location
                + " is at version "
                + (theirs == null ? "none" : theirs)
                + ", this inferpam needs "
                + ours
                + ": apply the migrations as the schema's owner (state.postgres.migrate: true)");
      }
    } catch (FlywayException e) {
      throw new IllegalStateException(
          "cannot check or migrate the inferpam schema at " + location + ": " + firstLine(e), e);
    }
  }

  /** The pool; connections are returned by closing them. */
  public DataSource dataSource() {
    return pool;
  }

  /**
   * A connection of its own, outside the pool, for a listener that holds it (LISTEN): the
   * caller closes it.
   */
  public Connection dedicatedConnection() throws SQLException {
    Properties p = new Properties();
    if (user != null) p.setProperty("user", user);
    if (password != null) p.setProperty("password", password);
    int seconds = (int) Math.max(1, (timeout.toMillis() + 999) / 1000);
    p.setProperty("connectTimeout", Integer.toString(seconds));
    p.setProperty("loginTimeout", Integer.toString(seconds));
    p.setProperty("ApplicationName", "inferpam-listener");
    p.setProperty("tcpKeepAlive", "true");
    return new org.postgresql.Driver().connect(url, p);
  }

  /** {@code host:port/database}, for messages. */
  public String location() {
    return location;
  }

  /** How long connecting, or one statement, may take. */
  public Duration timeout() {
    return timeout;
  }

  /** This replica's id: random, new at each start; names its reviews' holder and its writer. */
  public String replicaId() {
    return replicaId;
  }

  /**
   * A writer id for a recorder made from this state: {@link #replicaId()} for the first, then
   * {@code <replicaId>-2}, {@code -3}...: two recorders never share a chain.
   */
  String claimWriter() {
    int n = writers.incrementAndGet();
    return n == 1 ? replicaId : replicaId + "-" + n;
  }

  /** Closes the pool. */
  @Override
  public void close() {
    pool.close();
  }

  @Override
  public String toString() {
    return "PostgresState[" + location + ", replica " + replicaId + "]";
  }

  /** A JDBC exception's message without what could hold a credential (its first line). */
  /**
   * Whether {@code e} says the connection could not be made in time or at all (the pool's timeout,
   * SQLState class 08), rather than that the database refused it (credentials, a missing
   * database): only then is the timeout worth naming.
   */
  static boolean connectionFailure(SQLException e) {
    // the pool's timeout wraps the driver's reason, when there is one: judge by that
    while (e.getCause() instanceof SQLException cause) e = cause;
    String state = e.getSQLState();
    return state != null ? state.startsWith("08") : e instanceof java.sql.SQLTransientException;
  }

  static String describe(SQLException e) {
    // the pool's "connection is not available" wraps the driver's reason: show that
    while (e.getCause() instanceof SQLException cause) e = cause;
    String state = e.getSQLState();
    String msg = firstLine(e);
    return state == null ? msg : msg + " (SQLState " + state + ")";
  }

  private static String firstLine(Exception e) {
    String m = e.getMessage();
    if (m == null) return e.getClass().getSimpleName();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }

  /** {@code host:port/database} of a JDBC URL, without its parameters. */
  static String location(String url) {
    if (!url.startsWith("jdbc:postgresql://"))
      throw new IllegalArgumentException(
          "not a PostgreSQL JDBC URL (expected jdbc:postgresql://host:port/database)");
    try {
      URI u = URI.create(url.substring("jdbc:".length()));
      String host = u.getHost() == null ? "localhost" : u.getHost();
      int port = u.getPort() < 0 ? 5432 : u.getPort();
      String path = u.getPath() == null || u.getPath().isEmpty() ? "/" : u.getPath();
      return host + ":" + port + path;
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "not a PostgreSQL JDBC URL (expected jdbc:postgresql://host:port/database)");
    }
  }
}
