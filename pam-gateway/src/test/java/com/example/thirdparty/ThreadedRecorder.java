package com.example.thirdparty;

import dev.inferpam.api.PendingRecord;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link Recorder} as an application might write its own, against {@code pam-api} alone: it
 * builds every record on its own writer thread (the lazy path the engine's JSONL recorder uses)
 * and keeps them in memory, in the order they were handed over.
 */
public final class ThreadedRecorder implements Recorder {
  public static final String THREAD = "thirdparty-recorder";

  private final ExecutorService writer =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, THREAD);
            t.setDaemon(true);
            return t;
          });
  private final List<SessionRecord> records = new CopyOnWriteArrayList<>();
  private final List<String> builtOn = new CopyOnWriteArrayList<>();
  private final AtomicInteger failedBuilds = new AtomicInteger();

  @Override
  public void record(SessionRecord record) throws IOException {
    Objects.requireNonNull(record);
    submit(() -> records.add(record));
  }

  @Override
  public void recordLater(PendingRecord record) throws IOException {
    Objects.requireNonNull(record);
    submit(
        () -> {
          try {
            SessionRecord built = record.build();
            builtOn.add(Thread.currentThread().getName());
            records.add(built);
          } catch (RuntimeException e) {
            failedBuilds
                .incrementAndGet(); // a real recorder would log e.getClass(), never the message
          }
        });
  }

  @Override
  public void intent(SessionRecord record) throws IOException {
    record(record);
    flush();
  }

  @Override
  public void flush() throws IOException {
    Future<?> marker;
    try {
      marker = writer.submit(() -> {});
    } catch (RejectedExecutionException e) {
      return; // closed: everything was written
    }
    try {
      marker.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while flushing");
    } catch (ExecutionException e) {
      throw new IOException("writer failed", e.getCause());
    }
  }

  @Override
  public void close() throws IOException {
    flush();
    writer.shutdown();
  }

  private void submit(Runnable write) throws IOException {
    try {
      writer.execute(write);
    } catch (RejectedExecutionException e) {
      throw new IOException("recorder closed");
    }
  }

  /** The records stored so far, oldest first. */
  public List<SessionRecord> records() {
    return List.copyOf(records);
  }

  /** The threads records handed over unbuilt were built on. */
  public List<String> builtOn() {
    return List.copyOf(builtOn);
  }

  public int failedBuilds() {
    return failedBuilds.get();
  }
}
