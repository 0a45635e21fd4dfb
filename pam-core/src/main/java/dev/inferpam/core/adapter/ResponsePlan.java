package dev.inferpam.core.adapter;

import dev.inferpam.core.ErrorResponse;

/**
 * How an allowed exchange's response goes to the caller, given its status and headers
 * ({@link Verdict.Allowed#respond}): {@link Refused} (deliver an error instead) or {@link Relay}
 * (deliver it, with header edits and, where needed, a body transformation).
 */
public sealed interface ResponsePlan permits ResponsePlan.Refused, ResponsePlan.Relay {

  /**
   * The response cannot be delivered as the policy requires: it must be masked (or scanned for
   * the exchange's credentials) but arrived with a {@code Content-Encoding} other than
   * {@code identity} (502 {@code masking_unavailable}, the message naming the encoding), or the
   * masker failed to start. Deliver {@link #error()} in place of the response's status, headers
   * and body, which are discarded; the record already holds the error as the response.
   */
  non-sealed interface Refused extends ResponsePlan {
    ErrorResponse error();
  }

  /**
   * Deliver the response: every header through {@link #header}, without {@code Content-Length}
   * when {@link #dropContentLength()}, the body through {@link #masking()} when there is one, and
   * every chunk that reaches the caller reported with {@link #delivered}.
   */
  non-sealed interface Relay extends ResponsePlan {

    /**
     * A header as it may reach the caller: {@code value} with the exchange's credentials replaced,
     * or {@code null} to drop it (its name holds one).
     */
    String header(String name, String value);

    /** Whether to drop the response's {@code Content-Length}: the body is masked and may change length. */
    boolean dropContentLength();

    /**
     * All of a response's headers as they may reach the caller: each value through {@link
     * #header}, dropped ones left out, {@code Content-Length} left out when {@link
     * #dropContentLength()}; names as given, in their order. For adapters whose client hands over
     * the headers at once.
     */
    default java.util.Map<String, java.util.List<String>> shownHeaders(
        java.util.Map<String, java.util.List<String>> headers) {
      java.util.Map<String, java.util.List<String>> out = new java.util.LinkedHashMap<>();
      if (headers == null) return out;
      headers.forEach(
          (name, values) -> {
            if (dropContentLength() && "content-length".equalsIgnoreCase(name)) return;
            java.util.List<String> kept = new java.util.ArrayList<>(values.size());
            for (String value : values) {
              String v = header(name, value);
              if (v != null) kept.add(v);
            }
            if (!kept.isEmpty()) out.put(name, kept);
          });
      return out;
    }

    /**
     * The body transformation to stream through, or {@code null} when the bytes pass as they are
     * (nothing to mask or scrub for this content type, or the response has no body). Taking it
     * commits the adapter to deliver, and report, only what it returns. The same instance on every
     * call.
     */
    ResponseMasking masking();

    /**
     * Reports bytes as they reach the caller (masked ones when {@link #masking()} applies): what
     * the record stores, and where token usage is read. Ignored after the exchange ended.
     */
    void delivered(byte[] b, int off, int len);
  }
}
