package dev.inferpam.core.internal.recording;

import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;

/** Shared test helpers for the recording tests. */
public final class RecordingFixtures {
  private RecordingFixtures() {}

  /** An exchange record of {@code subject} at {@code time}. */
  public static SessionRecord exchange(String id, Instant time, String subject) {
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        time,
        12,
        subject == null
            ? null
            : new Principal(subject, Set.of("ml"), Principal.VIA_API_KEY, null, Map.of()),
        new SessionRecord.Request(
            "POST",
            "/v1/chat/completions",
            "chat",
            "llama-3.1-8b",
            Map.of(
                "content-type",
                List.of("application/json"),
                "authorization",
                List.of("[REDACTED]")),
            40,
            "{\"model\":\"llama-3.1-8b\",\"messages\":[]}"),
        new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
        null,
        new SessionRecord.Response(
            200,
            false,
            27,
            true,
            "{\"choices\":[{\"text\":\"hi\"}]}",
            Map.of(),
            Map.of("prompt_tokens", 3L, "completion_tokens", 1L)));
  }

  /** An intent record for {@code id}. */
  public static SessionRecord intent(String id, Instant time, String subject) {
    SessionRecord e = exchange(id, time, subject);
    return new SessionRecord(
        SessionRecord.TYPE_INTENT, id, time, 0, e.principal(), e.request(), null, null, null);
  }

  /** The lines of a file, without line breaks. */
  public static List<String> lines(Path file) throws IOException {
    return Files.readAllLines(file, StandardCharsets.UTF_8);
  }

  /** The hash rule of recording.md, implemented independently of the codec. */
  public static String specHash(String line) {
    try {
      String upTo = line.substring(0, line.lastIndexOf(",\"hash\":")) + "}";
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(upTo.getBytes(StandardCharsets.UTF_8)));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** Collects log calls by level; hand {@link #logger()} to the code under test. */
  public static final class LogCapture {
    public final List<String> errors = new CopyOnWriteArrayList<>();
    public final List<String> warnings = new CopyOnWriteArrayList<>();
    public final List<String> infos = new CopyOnWriteArrayList<>();

    public Logger logger() {
      return (Logger)
          Proxy.newProxyInstance(
              Logger.class.getClassLoader(),
              new Class<?>[] {Logger.class},
              (proxy, method, args) -> {
                String name = method.getName();
                if (name.startsWith("is") && name.endsWith("Enabled")) return true;
                switch (name) {
                  case "getName":
                    return "test";
                  case "toString":
                    return "LogCapture";
                  case "hashCode":
                    return System.identityHashCode(proxy);
                  case "equals":
                    return proxy == args[0];
                  case "error":
                    errors.add(format(args));
                    return null;
                  case "warn":
                    warnings.add(format(args));
                    return null;
                  case "info":
                    infos.add(format(args));
                    return null;
                  default:
                    return null;
                }
              });
    }

    private static String format(Object[] args) {
      StringBuilder sb = new StringBuilder();
      for (Object a : args) {
        if (a instanceof Object[] more) {
          for (Object m : more) sb.append(m).append(' ');
        } else {
          sb.append(a).append(' ');
        }
      }
      return sb.toString();
    }
  }

  /**
   * Real segment files with faults on demand: while {@code failing}, creating a file fails and a
   * write puts half of its bytes on disk and then fails (a disk filling up mid-line). Gates hold
   * writes or fsyncs until opened. Records how many bytes each file's last fsync covered.
   */
  public static final class FaultyIo implements JsonlRecorder.SegmentIo {
    public volatile boolean failing;
    public volatile CountDownLatch writeGate;
    public volatile CountDownLatch forceGate;
    public final AtomicInteger createAttempts = new AtomicInteger();
    public final AtomicInteger forces = new AtomicInteger();
    public final Map<Path, Long> forcedBytes = new ConcurrentHashMap<>();

    @Override
    public JsonlRecorder.SegmentOutput create(Path file) throws IOException {
      createAttempts.incrementAndGet();
      if (failing) throw new IOException("No space left on device");
      JsonlRecorder.SegmentOutput real = JsonlRecorder.SegmentIo.FILES.create(file);
      return new JsonlRecorder.SegmentOutput() {
        long size;

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
          await(writeGate);
          if (failing) {
            real.write(b, off, len / 2);
            throw new IOException("No space left on device");
          }
          real.write(b, off, len);
          size += len;
        }

        @Override
        public void force() throws IOException {
          await(forceGate);
          if (failing) throw new IOException("Input/output error");
          real.force();
          forces.incrementAndGet();
          forcedBytes.put(file, size);
        }

        @Override
        public void truncate(long s) throws IOException {
          real.truncate(s);
          size = s;
        }

        @Override
        public void close() throws IOException {
          real.close();
        }
      };
    }

    private static void await(CountDownLatch gate) throws IOException {
      if (gate == null) return;
      try {
        gate.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException();
      }
    }
  }
}
