package dev.inferpam.servlet.internal;

import jakarta.servlet.AsyncContext;
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
 * incomplete; the cycle still completes. An async cycle that ends otherwise (a dispatch, a
 * timeout) cannot write the tail: its record says incomplete.
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
    delegate.dispatch();
  }

  @Override
  public void dispatch(String path) {
    delegate.dispatch(path);
  }

  @Override
  public void dispatch(ServletContext context, String path) {
    delegate.dispatch(context, path);
  }

  @Override
  public void start(Runnable run) {
    delegate.start(run);
  }

  @Override
  public void addListener(AsyncListener listener) {
    delegate.addListener(listener);
  }

  @Override
  public void addListener(
      AsyncListener listener, ServletRequest servletRequest, ServletResponse servletResponse) {
    delegate.addListener(listener, servletRequest, servletResponse);
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
}
