package dev.inferpam.postgres;

import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.RecordFormat;
import dev.inferpam.core.Recordings;
import dev.inferpam.core.StoredRecords;
import java.io.IOException;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Reads the records {@link PostgresRecorder}s wrote into {@code inferpam.records}: lists and
 * finds exchanges, and verifies every writer's hash chain. Reading only: it needs {@code SELECT}
 * on {@code inferpam.records} and {@code inferpam.record_retention}.
 *
 * <h2>Verification</h2>
 * Each writer's rows are read in {@code seq} order and checked:
 * <ul>
 *   <li>the sequence runs without gaps from 1, or from {@code n + 1} when retention noted that it
 *       dropped that writer's rows up to {@code n} and the row's {@code prev} is the hash it
 *       noted: otherwise the rows before are reported {@code missing};</li>
 *   <li>the hash the line carries is the hash of its bytes ({@code hash mismatch} when a line was
 *       altered), and {@code prev} is the hash of the writer's row before ({@code prev does not
 *       match previous row});</li>
 *   <li>the columns {@code prev}, {@code hash}, {@code id}, {@code type}, {@code subject} and
 *       {@code time} say what the line says ({@code columns do not match the line}), and the
 *       line is a record line ({@code malformed line}).</li>
 * </ul>
 * Every break is reported, by writer and sequence number ({@code writer r-1a2b… seq 17}), at
 * most {@value #MAX_BREAKS}. As with any hash chain, rows removed from the end of a writer's
 * chain leave no trace in the chain itself.
 *
 * <p>Thread-safe; each call reads the table afresh.
 */
public final class PostgresRecords implements StoredRecords {
  /** Breaks reported at most; verification goes on counting rows. */
  static final int MAX_BREAKS = 1000;

  private final PostgresState state;

  private PostgresRecords(PostgresState state) {
    this.state = state;
  }

  /** The records of the database of {@code state}. Closing them leaves {@code state} open. */
  public static PostgresRecords of(PostgresState state) {
    return new PostgresRecords(Objects.requireNonNull(state, "state"));
  }

  @Override
  public List<Recordings.Entry> list(String subject, Instant since) throws IOException {
    StringBuilder sql =
        new StringBuilder(
            "SELECT writer, seq, line FROM inferpam.records WHERE type = '"
                + SessionRecord.TYPE_EXCHANGE
                + "'");
    if (subject != null) sql.append(" AND subject = ?");
    if (since != null) sql.append(" AND time >= ?");
    sql.append(" ORDER BY time, written, writer, seq");
    return query(
        sql.toString(),
        s -> {
          int i = 1;
          if (subject != null) s.setString(i++, subject);
          if (since != null) s.setObject(i, OffsetDateTime.ofInstant(since, ZoneOffset.UTC));
        });
  }

  @Override
  public Optional<Recordings.Entry> find(String id) throws IOException {
    Objects.requireNonNull(id, "id");
    return query(
            "SELECT writer, seq, line FROM inferpam.records WHERE id = ? AND type = '"
                + SessionRecord.TYPE_EXCHANGE
                + "' ORDER BY written, writer, seq LIMIT 1",
            s -> s.setString(1, id))
        .stream()
        .findFirst();
  }

  @Override
  public List<Recordings.Entry> lines(String id) throws IOException {
    Objects.requireNonNull(id, "id");
    return query(
        "SELECT writer, seq, line FROM inferpam.records WHERE id = ? ORDER BY written, writer, seq",
        s -> s.setString(1, id));
  }

  /** Checks every writer's chain; see the class comment. */
  @Override
  public Recordings.Verification verify() throws IOException {
    try (Connection c = state.dataSource().getConnection()) {
      Map<String, Map<Long, String>> retained = retention(c);
      c.setAutoCommit(false); // a cursor: rows are fetched a thousand at a time
      try (PreparedStatement s =
          c.prepareStatement(
              "SELECT writer, seq, prev, hash, id, type, subject, time, line"
                  + " FROM inferpam.records ORDER BY writer, seq")) {
        s.setFetchSize(1000);
        try (ResultSet r = s.executeQuery()) {
          Chains chains = new Chains(retained);
          while (r.next()) {
            OffsetDateTime time = r.getObject(8, OffsetDateTime.class);
            chains.row(
                r.getString(1),
                r.getLong(2),
                r.getString(3),
                r.getString(4),
                r.getString(5),
                r.getString(6),
                r.getString(7),
                time == null ? null : time.toInstant(),
                r.getString(9));
          }
          c.commit();
          return chains.result();
        }
      }
    } catch (SQLException e) {
      throw new IOException(
          "cannot read records at " + state.location() + ": " + PostgresState.describe(e), e);
    }
  }

  @Override
  public String location() {
    return "PostgreSQL " + state.location();
  }

  @Override
  public String toString() {
    return "PostgresRecords[" + state.location() + "]";
  }

  private static Map<String, Map<Long, String>> retention(Connection c) throws SQLException {
    Map<String, Map<Long, String>> out = new HashMap<>();
    try (PreparedStatement s =
            c.prepareStatement(
                "SELECT writer, through_seq, through_hash FROM inferpam.record_retention");
        ResultSet r = s.executeQuery()) {
      while (r.next())
        out.computeIfAbsent(r.getString(1), w -> new HashMap<>()).put(r.getLong(2), r.getString(3));
    }
    return out;
  }

  /** The chains of a verification, fed row by row in writer and seq order. */
  private static final class Chains {
    private final Map<String, Map<Long, String>> retained;
    private final MessageDigest sha = RecordFormat.digest();
    private final List<Recordings.Break> breaks = new ArrayList<>();
    private long rows;
    private long more; // breaks beyond MAX_BREAKS
    private String firstWriter;
    private long firstSeq;
    private String firstReason;

    private String writer;
    private long next; // the seq expected next
    private String prevHash; // the hash the next row's prev must be; null when unknown

    Chains(Map<String, Map<Long, String>> retained) {
      this.retained = retained;
    }

    void row(
        String w,
        long seq,
        String prev,
        String hash,
        String id,
        String type,
        String subject,
        Instant time,
        String line) {
      rows++;
      if (!w.equals(writer)) {
        writer = w;
        next = 1;
        prevHash = RecordFormat.GENESIS;
        if (seq > 1) {
          String through = retained.getOrDefault(w, Map.of()).get(seq - 1);
          if (through != null && through.equals(prev)) {
            next = seq;
            prevHash = through;
          }
        }
      }
      if (seq < next) {
        broken(w, seq, seq, "duplicate row");
        return;
      }
      if (seq > next) {
        broken(w, next, seq - 1, "missing");
        prevHash = null; // the row before is gone: its link cannot be checked
      }
      next = seq + 1;
      RecordFormat.Check check = RecordFormat.check(line, sha);
      if (check == null) {
        broken(w, seq, seq, "malformed line");
        prevHash = hash;
        return;
      }
      if (!check.intact()) {
        broken(w, seq, seq, "hash mismatch");
      } else if (prevHash != null && !prevHash.equals(check.prev())) {
        broken(w, seq, seq, "prev does not match previous row");
      } else if (!check.prev().equals(prev)
          || !check.hash().equals(hash)
          || !columnsMatch(line, id, type, subject, time)) {
        broken(w, seq, seq, "columns do not match the line");
      }
      prevHash = check.hash();
    }

    private static boolean columnsMatch(
        String line, String id, String type, String subject, Instant time) {
      SessionRecord r;
      try {
        r = RecordFormat.decode(line);
      } catch (IllegalArgumentException e) {
        return false;
      }
      String s = r.principal() == null ? null : r.principal().subject();
      return r.id().equals(id)
          && r.type().equals(type)
          && Objects.equals(s, subject)
          && RecordFormat.recordedTime(r.time()).equals(time);
    }

    private void broken(String w, long from, long to, String reason) {
      if (firstWriter == null) {
        firstWriter = w;
        firstSeq = from;
        firstReason = reason;
      }
      if (breaks.size() >= MAX_BREAKS) {
        more++;
        return;
      }
      String where = "writer " + w + " seq " + from + (to > from ? " to " + to : "");
      breaks.add(new Recordings.Break(where, reason));
    }

    Recordings.Verification result() {
      if (firstWriter == null) return new Recordings.Verification(true, rows, null, 0, null);
      List<Recordings.Break> all = new ArrayList<>(breaks);
      if (more > 0) all.add(new Recordings.Break(null, more + " more breaks not listed"));
      return new Recordings.Verification(false, rows, firstWriter, firstSeq, firstReason, all);
    }
  }

  private interface Binder {
    void bind(PreparedStatement s) throws SQLException;
  }

  private List<Recordings.Entry> query(String sql, Binder binder) throws IOException {
    List<Recordings.Entry> out = new ArrayList<>();
    try (Connection c = state.dataSource().getConnection();
        PreparedStatement s = c.prepareStatement(sql)) {
      binder.bind(s);
      try (ResultSet r = s.executeQuery()) {
        while (r.next()) {
          String line = r.getString(3);
          SessionRecord record;
          try {
            record = RecordFormat.decode(line);
          } catch (IllegalArgumentException e) {
            continue; // damage that verify() reports
          }
          out.add(new Recordings.Entry(r.getString(1), r.getLong(2), record, line));
        }
      }
    } catch (SQLException e) {
      throw new IOException(
          "cannot read records at " + state.location() + ": " + PostgresState.describe(e), e);
    }
    return out;
  }
}
