package dev.inferpam.testsupport;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real PostgreSQL server for the tests: Debian's {@code postgresql} package (installed by
 * {@code .ci/run}), a fresh cluster in a temporary directory, listening on a free port of
 * 127.0.0.1 with password authentication, stopped (fast) and deleted by {@link #close()}. PostgreSQL
 * refuses to run as root: as root, the cluster belongs to the {@code postgres} user the package
 * creates, and its programs run as that user ({@code setpriv}). A machine without it fails the
 * test, saying how to get it.
 *
 * <p>The superuser is {@link #SUPERUSER} with password {@link #SUPERUSER_PASSWORD}; database
 * {@code postgres}. Tests create the roles they connect as.
 */
public final class PostgresServer implements AutoCloseable {
  /** The cluster's superuser. */
  public static final String SUPERUSER = "inferpam_admin";

  /** Its password (a test cluster on loopback only). */
  public static final String SUPERUSER_PASSWORD = "admin-secret";

  private static final String INSTALL =
      " Install it with `apt-get install -y postgresql` (Debian), as .ci/run does.";

  /**
   * The settings every cluster starts with (a few connections' worth of memory: the suite starts
   * many clusters); {@link #start(Map)} overrides them.
   */
  public static final Map<String, String> DEFAULT_SETTINGS =
      Map.of("max_connections", "200", "shared_buffers", "32MB");

  private final Path bin;
  private final Path dir;
  private final boolean asPostgresUser;
  private final Map<String, String> settings;
  private Process process;

  /** The port it listens on, on 127.0.0.1. */
  public final int port;

  private PostgresServer(
      Path bin, Path dir, boolean asPostgresUser, int port, Map<String, String> settings) {
    this.bin = bin;
    this.dir = dir;
    this.asPostgresUser = asPostgresUser;
    this.port = port;
    this.settings = settings;
  }

  /** Creates a cluster and starts it on a free port, with {@link #DEFAULT_SETTINGS}. */
  public static PostgresServer start() throws IOException, InterruptedException {
    return start(Map.of());
  }

  /**
   * Creates a cluster and starts it on a free port, with {@link #DEFAULT_SETTINGS} and then
   * {@code settings} (server parameters, each passed as {@code -c name=value}: {@code
   * shared_buffers}, {@code max_wal_size}...). {@code listen_addresses} and {@code
   * unix_socket_directories} are the fixture's own.
   */
  public static PostgresServer start(Map<String, String> settings)
      throws IOException, InterruptedException {
    Map<String, String> all = new TreeMap<>(DEFAULT_SETTINGS);
    for (Map.Entry<String, String> e : settings.entrySet()) {
      String name = e.getKey();
      if (name.equals("listen_addresses") || name.equals("unix_socket_directories"))
        throw new IllegalArgumentException(name + " is the fixture's own");
      all.put(name, e.getValue());
    }
    Path bin = binaries();
    boolean root = "root".equals(System.getProperty("user.name"));
    Path dir = Files.createTempDirectory("inferpam-pg");
    PostgresServer server = new PostgresServer(bin, dir, root, freePort(), Map.copyOf(all));
    try {
      server.initdb();
      server.startProcess();
      return server;
    } catch (IOException | RuntimeException | InterruptedException e) {
      server.close();
      throw e;
    }
  }

  /** {@code jdbc:postgresql://127.0.0.1:PORT/postgres}. */
  public String jdbcUrl() {
    return jdbcUrl("postgres");
  }

  /** {@code jdbc:postgresql://127.0.0.1:PORT/DATABASE}. */
  public String jdbcUrl(String database) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + database;
  }

  /**
   * Runs SQL as the superuser through {@code psql} (stops at the first error) and returns what it
   * printed (unaligned, tuples only).
   *
   * @throws IllegalStateException when psql fails
   */
  public String sql(String database, String sql) throws IOException, InterruptedException {
    Path psql = bin.resolve("psql");
    if (!Files.isExecutable(psql)) psql = Path.of("/usr/bin/psql");
    ProcessBuilder pb =
        new ProcessBuilder(
            psql.toString(),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            Integer.toString(port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-c",
            sql);
    pb.environment().put("PGPASSWORD", SUPERUSER_PASSWORD);
    pb.redirectErrorStream(true);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0)
      throw new IllegalStateException("psql failed: " + out.strip());
    return out.strip();
  }

  /**
   * Stops the server at once (fast shutdown: sessions are ended) and keeps its data; {@link
   * #restart()} starts it again on the same port.
   */
  public void stop() throws InterruptedException, IOException {
    if (process == null) return;
    // SIGINT is PostgreSQL's fast shutdown; SIGTERM (Process.destroy) would wait for every session
    new ProcessBuilder("kill", "-INT", Long.toString(process.pid())).start().waitFor();
    if (!process.waitFor(20, TimeUnit.SECONDS)) process.destroyForcibly().waitFor();
    process = null;
  }

  /** Starts it again after {@link #stop()}, on the same port and data. */
  public void restart() throws IOException, InterruptedException {
    if (process != null) return;
    startProcess();
  }

  @Override
  public void close() throws IOException {
    try {
      stop();
    } catch (InterruptedException e) {
      if (process != null) process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    }
  }

  private void initdb() throws IOException, InterruptedException {
    Path pw = dir.resolve("pw");
    Files.writeString(pw, SUPERUSER_PASSWORD);
    Path data = dir.resolve("data");
    if (asPostgresUser) run(List.of("chown", "-R", "postgres:postgres", dir.toString()));
    run(
        command(
            bin.resolve("initdb").toString(),
            "-D",
            data.toString(),
            "-U",
            SUPERUSER,
            "--pwfile=" + pw,
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync"));
  }

  private void startProcess() throws IOException, InterruptedException {
    Path log = dir.resolve("postgres.log");
    Files.deleteIfExists(log);
    List<String> args =
        new ArrayList<>(
            List.of(
                bin.resolve("postgres").toString(),
                "-D",
                dir.resolve("data").toString(),
                "-p",
                Integer.toString(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=" + dir));
    for (Map.Entry<String, String> e : new TreeMap<>(settings).entrySet()) {
      args.add("-c");
      args.add(e.getKey() + "=" + e.getValue());
    }
    process =
        new ProcessBuilder(command(args.toArray(String[]::new)))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (System.nanoTime() < deadline) {
      String text = Files.exists(log) ? Files.readString(log) : "";
      if (text.contains("ready to accept connections")) return;
      if (!process.isAlive())
        throw new IllegalStateException("postgres exited at start: " + text.strip());
      process.waitFor(20, TimeUnit.MILLISECONDS);
    }
    process.destroyForcibly();
    throw new IllegalStateException("postgres was not ready on port " + port + " within 30 s");
  }

  /** The command, as the postgres user when this runs as root. */
  private List<String> command(String... args) {
    List<String> cmd = new ArrayList<>();
    if (asPostgresUser) {
      cmd.addAll(List.of("setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"));
    }
    cmd.addAll(List.of(args));
    return cmd;
  }

  private void run(List<String> cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0)
      throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out.strip());
  }

  /** The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin). */
  private static Path binaries() throws IOException {
    Path debian = Path.of("/usr/lib/postgresql");
    if (Files.isDirectory(debian)) {
      try (Stream<Path> versions = Files.list(debian)) {
        Path newest =
            versions
                .filter(v -> Files.isExecutable(v.resolve("bin/postgres")))
                .max(
                    Comparator.comparingInt(
                        v -> {
                          try {
                            return Integer.parseInt(v.getFileName().toString());
                          } catch (NumberFormatException e) {
                            return -1;
                          }
                        }))
                .orElse(null);
        if (newest != null) return newest.resolve("bin");
      }
    }
    throw new IllegalStateException(
        "PostgreSQL is not installed (no /usr/lib/postgresql/N/bin/postgres): the PostgreSQL tests"
            + " run a real server."
            + INSTALL);
  }

  private static int freePort() throws IOException {
    try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return probe.getLocalPort();
    }
  }
}
