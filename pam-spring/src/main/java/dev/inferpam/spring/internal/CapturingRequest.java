package dev.inferpam.spring.internal;

import dev.inferpam.core.adapter.BodyCapture;
import java.net.URI;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.reactivestreams.Publisher;
import org.springframework.core.io.buffer.DataBuffer;
import org.springframework.core.io.buffer.DataBufferFactory;
import org.springframework.core.io.buffer.DataBufferUtils;
import org.springframework.core.io.buffer.DefaultDataBufferFactory;
import org.springframework.http.HttpCookie;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpMethod;
import org.springframework.http.client.reactive.ClientHttpRequest;
import org.springframework.util.LinkedMultiValueMap;
import org.springframework.util.MultiValueMap;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * A request that goes nowhere: a {@code WebClient} body inserter writes into it, and what it
 * wrote (bytes, and headers its encoder set, such as {@code Content-Type}) is what the engine
 * decides on and what is then sent. Not API.
 */
public final class CapturingRequest implements ClientHttpRequest {
  private final HttpMethod method;
  private final URI uri;
  private final HttpHeaders headers = new HttpHeaders();
  private final MultiValueMap<String, HttpCookie> cookies = new LinkedMultiValueMap<>();
  private final Map<String, Object> attributes = new HashMap<>();
  private final List<Supplier<? extends Mono<Void>>> beforeCommit = new ArrayList<>();
  private final BodyCapture body;
  private final java.util.concurrent.locks.ReentrantLock lock =
      new java.util.concurrent.locks.ReentrantLock();
  private volatile boolean committed;

  /** @param limit the engine's {@code maxBodyBytes()}: at most that and one byte more is kept */
  public CapturingRequest(HttpMethod method, URI uri, HttpHeaders headers, long limit) {
    this.body = new BodyCapture(limit);
    this.method = method;
    this.uri = uri;
    Exchanges.copy(headers, this.headers);
  }

  /** What the inserter wrote, kept up to the limit, and its whole size. */
  public BodyCapture body() {
    lock.lock();
    try {
      return body;
    } finally {
      lock.unlock();
    }
  }

  @Override
  public HttpMethod getMethod() {
    return method;
  }

  @Override
  public URI getURI() {
    return uri;
  }

  @Override
  public MultiValueMap<String, HttpCookie> getCookies() {
    return cookies;
  }

  @Override
  public Map<String, Object> getAttributes() {
    return attributes;
  }

  @Override
  @SuppressWarnings("unchecked")
  public <T> T getNativeRequest() {
    return (T) this;
  }

  @Override
  public HttpHeaders getHeaders() {
    return headers;
  }

  @Override
  public DataBufferFactory bufferFactory() {
    return DefaultDataBufferFactory.sharedInstance;
  }

  @Override
  public void beforeCommit(Supplier<? extends Mono<Void>> action) {
    beforeCommit.add(action);
  }

  @Override
  public boolean isCommitted() {
    return committed;
  }

  private Mono<Void> commit() {
    if (committed) return Mono.empty();
    committed = true;
    return Flux.fromIterable(beforeCommit).concatMap(Supplier::get).then();
  }

  @Override
  public Mono<Void> writeWith(Publisher<? extends DataBuffer> publisher) {
    return commit()
        .thenMany(Flux.from(publisher))
        .doOnNext(
            buffer -> {
              try {
                byte[] b = new byte[buffer.readableByteCount()];
                buffer.read(b);
                lock.lock();
                try {
                  body.write(b, 0, b.length);
                } finally {
                  lock.unlock();
                }
              } finally {
                DataBufferUtils.release(buffer);
              }
            })
        .then();
  }

  @Override
  public Mono<Void> writeAndFlushWith(
      Publisher<? extends Publisher<? extends DataBuffer>> publisher) {
    return writeWith(Flux.from(publisher).concatMap(Flux::from));
  }

  @Override
  public Mono<Void> setComplete() {
    return commit();
  }
}
