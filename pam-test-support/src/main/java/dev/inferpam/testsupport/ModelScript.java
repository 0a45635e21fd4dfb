package dev.inferpam.testsupport;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Queue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * What a fake model answers, in order, and what it was asked: the part of a fake model that does
 * not depend on the server hosting it ({@link FakeModelServer}, or a servlet standing in for the
 * application a filter protects).
 *
 * <p>Each request takes the next scripted responder; when none is left, the fallback answers
 * (by default {@code 200 {}}, or {@link #otherwise(Function)}). Every request is kept, in the
 * order it arrived, for {@link #takeRequest()} and {@link #requestCount()}.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use: the test scripts on its thread while the
 * server answers on its own.
 */
public final class ModelScript implements Function<ModelRequest, ModelAnswer> {
  /** How long {@link #takeRequest()} waits. */
  public static final Duration TAKE_TIMEOUT = Duration.ofSeconds(10);

  private final Queue<Function<ModelRequest, ModelAnswer>> script = new ConcurrentLinkedQueue<>();
  private final BlockingQueue<ModelRequest> untaken = new LinkedBlockingQueue<>();
  private final List<ModelRequest> all = new CopyOnWriteArrayList<>();
  private volatile Function<ModelRequest, ModelAnswer> otherwise = r -> ModelAnswer.json("{}");

  /** An empty script: every request gets the fallback, {@code 200 {}}. */
  public ModelScript() {}

  /** Answers the next request with {@code answer}. */
  public ModelScript enqueue(ModelAnswer answer) {
    Objects.requireNonNull(answer, "answer");
    return enqueue(r -> answer);
  }

  /** Answers the next request with what {@code responder} makes of it (it may look at the request). */
  public ModelScript enqueue(Function<ModelRequest, ModelAnswer> responder) {
    script.add(Objects.requireNonNull(responder, "responder"));
    return this;
  }

  /** Answers every request the script does not cover with {@code fallback}, e.g. {@code ModelAnswer::echo}. */
  public ModelScript otherwise(Function<ModelRequest, ModelAnswer> fallback) {
    this.otherwise = Objects.requireNonNull(fallback, "fallback");
    return this;
  }

  /** Records {@code request} and answers it; called by the server hosting the model. */
  @Override
  public ModelAnswer apply(ModelRequest request) {
    all.add(request);
    untaken.add(request);
    Function<ModelRequest, ModelAnswer> next = script.poll();
    return (next != null ? next : otherwise).apply(request);
  }

  /**
   * The oldest request not taken yet, waiting up to {@link #TAKE_TIMEOUT} for one.
   *
   * @throws AssertionError when no request arrives in time
   */
  public ModelRequest takeRequest() throws InterruptedException {
    ModelRequest r = untaken.poll(TAKE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    if (r == null) throw new AssertionError("the model received no request within " + TAKE_TIMEOUT);
    return r;
  }

  /** How many requests the model has received in all. */
  public int requestCount() {
    return all.size();
  }

  /** Every request received so far, oldest first. */
  public List<ModelRequest> requests() {
    return List.copyOf(all);
  }

  /** Forgets the requests received and the answers not yet used; the fallback stays. */
  public void reset() {
    script.clear();
    untaken.clear();
    all.clear();
  }

  @Override
  public String toString() {
    return "ModelScript[" + all.size() + " received, " + script.size() + " scripted answers left]";
  }
}
