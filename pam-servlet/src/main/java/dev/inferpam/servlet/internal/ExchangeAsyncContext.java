package dev.inferpam.servlet.internal;

import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.ServletContext;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import java.io.IOException;

/**
 * The container's {@link AsyncContext}, except that {@link #complete()} first finishes the
 * exchange's response ({@link ExchangeResponse#finish()}): the masker's held-back tail must be
 * written while the response is still open, and the container's listeners run only after it
 * closed. A failure to write it (the client went away, the masker failed) marks the response
 * incomplete; the cycle still completes. A {@code dispatch} is noted on the response: the
 * response then ends when that dispatch returns, where the filter writes the tail (the filter
 * must be mapped to {@code DispatcherType.ASYNC} to see it).
 *
 * <p>Listeners added here see this context in their events ({@link AsyncEvent#getAsyncContext()}),
 * not the container's, so that an application completing the cycle from its {@code onTimeout}
 * (the usual pattern) writes the tail too.
 *
 * <p>Thread-safety: that of the container's context.
 */
final class ExchangeAsyncContext implements AsyncContext {
  private final AsyncContext delegate;
  private final ExchangeResponse response;

  ExchangeAsyncContext(AsyncContext delegate, ExchangeResponse response) {
    this.delegate = delegate;
    this.response = response;
  }

  /** Whether this wraps {@code context}. */
  boolean wraps(AsyncContext context) {
    return delegate == context;
  }

  @Override
  public void complete() {
    response.asyncEnding(false);
    try {
      response.finish();
    } catch (IOException e) {
      response.reportDeliveryFailed();
    }
    delegate.complete();
  }

  @Override
  public ServletRequest getRequest() {
    return delegate.getRequest();
  }

  @Override
  public ServletResponse getResponse() {
    return delegate.getResponse();
  }

  @Override
  public boolean hasOriginalRequestAndResponse() {
    return delegate.hasOriginalRequestAndResponse();
  }

  @Override
  public void dispatch() {
    response.asyncEnding(true);
    delegate.dispatch();
  }

  @Override
  public void dispatch(String path) {
    response.asyncEnding(true);
    delegate.dispatch(path);
  }

  @Override
  public void dispatch(ServletContext context, String path) {
    response.asyncEnding(true);
    delegate.dispatch(context, path);
  }

  @Override
  public void start(Runnable run) {
    delegate.start(run);
  }

  @Override
  public void addListener(AsyncListener listener) {
    delegate.addListener(new Listener(listener, response));
  }

  @Override
  public void addListener(
      AsyncListener listener, ServletRequest servletRequest, ServletResponse servletResponse) {
    delegate.addListener(new Listener(listener, response), servletRequest, servletResponse);
  }

  @Override
  public <T extends AsyncListener> T createListener(Class<T> clazz) throws ServletException {
    return delegate.createListener(clazz);
  }

  @Override
  public void setTimeout(long timeout) {
    delegate.setTimeout(timeout);
  }

  @Override
  public long getTimeout() {
    return delegate.getTimeout();
  }

  /** An application's listener, given events that carry this exchange's context. */
  private static final class Listener implements AsyncListener {
    private final AsyncListener listener;
    private final ExchangeResponse response;

    Listener(AsyncListener listener, ExchangeResponse response) {
      this.listener = listener;
      this.response = response;
    }

    private AsyncEvent event(AsyncEvent event) {
      AsyncContext context = event.getAsyncContext();
      if (context == null || context instanceof ExchangeAsyncContext) return event;
      return new AsyncEvent(
          new ExchangeAsyncContext(context, response),
          event.getSuppliedRequest(),
          event.getSuppliedResponse(),
          event.getThrowable());
    }

    @Override
    public void onComplete(AsyncEvent event) throws IOException {
      listener.onComplete(event(event));
    }

    @Override
    public void onTimeout(AsyncEvent event) throws IOException {
      listener.onTimeout(event(event));
    }

    @Override
    public void onError(AsyncEvent event) throws IOException {
      listener.onError(event(event));
    }

    @Override
    public void onStartAsync(AsyncEvent event) throws IOException {
      listener.onStartAsync(event(event));
    }
  }
}
