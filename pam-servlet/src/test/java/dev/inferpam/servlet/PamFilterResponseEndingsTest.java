package dev.inferpam.servlet;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every way a servlet response can end delivers the whole masked body and a complete record, on
 * Jetty 12.1 and Tomcat 10.1 with the filter registered as the README says (REQUEST and ASYNC):
 * the application returns; it starts async and completes from another thread; it starts async and
 * dispatches, the async dispatch writing the rest and returning (how Spring MVC ends every async
 * answer); its listener answers an async timeout; it streams server-sent events with flushes. The
 * values to mask are split across writes and across the async hand-off, and the text after the
 * last of them must arrive. The application, and the checks of the event stream and of the
 * endings that fail, are {@link ResponseEndingsContract}'s (pam-spring-boot4-tests runs them on
 * Tomcat 11); the endings that deliver are checked here one by one.
 */
class PamFilterResponseEndingsTest extends ResponseEndingsContract {
  /** Where {@link ResponseEndingsContract}'s checks run: Jetty 12.1 and Tomcat 10.1. */
  static ServletContainer.Kind[] containers() {
    return ServletContainer.Kind.values();
  }

  // --- synchronous -------------------------------------------------------------------------------

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anApplicationThatReturnsAfterWritingToItsStreamDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("return-stream")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anApplicationThatReturnsAfterWritingToItsWriterDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("return-writer")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  // --- async, completed --------------------------------------------------------------------------

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncAnswerCompletedFromAnotherThreadDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("complete-json")).isEqualTo(MASKED_ANSWER);
    completeRecord(MASKED_ANSWER);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncTimeoutTheApplicationAnswersDeliversAll(ServletContainer.Kind kind) throws Exception {
    start(kind);
    assertThat(call("timeout-answered")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  // --- async, dispatched (Spring MVC's way) ------------------------------------------------------

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncAnswerWrittenWhollyInTheAsyncDispatchDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    // Spring MVC's Callable, CompletableFuture, DeferredResult: a JSON document the masker holds
    // until the end, written in the dispatch; before the fix, 200 with an empty body.
    assertThat(call("dispatch-json")).isEqualTo(MASKED_ANSWER);
    completeRecord(MASKED_ANSWER);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void textSplitAcrossTheAsyncHandOffArrivesMaskedWithItsTail(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("dispatch-stream")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void aWriterAcrossTheAsyncHandOffDeliversAll(ServletContainer.Kind kind) throws Exception {
    start(kind);
    assertThat(call("dispatch-writer")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void asyncStartedAgainInTheAsyncDispatchThenCompletedDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("dispatch-restart")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }
}
