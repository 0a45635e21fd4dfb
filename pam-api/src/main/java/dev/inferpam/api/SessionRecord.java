package dev.inferpam.api;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The record of one exchange, as specified in {@code docs/recording.md}. Immutable.
 *
 * <p>Header values the spec lists as sensitive are already {@code [REDACTED]} when a record is
 * built; bodies already follow {@code recording.bodies}. A {@link Recorder} stores what it is
 * given.
 *
 * @param type       {@code exchange} or {@code intent}
 * @param id         unique, sortable exchange id (also the {@code request_id} of error bodies)
 * @param time       when the request arrived
 * @param durationMs from arrival to the end of the response
 * @param principal  the caller, or {@code null} when unidentified
 * @param request    what was asked
 * @param decision   what was decided
 * @param approval   the review, or {@code null} when none happened
 * @param response   what was delivered, or {@code null} for an intent
 * @param quotaRemaining what the principal has left after this exchange, per bound of the
 *                   policy's {@code limits} ({@code requests_per_minute},
 *                   {@code tokens_per_minute}, {@code tokens_per_day}; the least over the limit
 *                   entries that applied), empty when none applied (an inferpam extension of the
 *                   format, member {@code quota_remaining})
 */
public record SessionRecord(
    String type,
    String id,
    Instant time,
    long durationMs,
    Principal principal,
    Request request,
    DecisionSummary decision,
    Approval approval,
    Response response,
    Map<String, Long> quotaRemaining) {

  /** A record without quota figures. */
  public SessionRecord(
      String type,
      String id,
      Instant time,
      long durationMs,
      Principal principal,
      Request request,
      DecisionSummary decision,
      Approval approval,
      Response response) {
    this(type, id, time, durationMs, principal, request, decision, approval, response, Map.of());
  }

  public static final String TYPE_EXCHANGE = "exchange";
  public static final String TYPE_INTENT = "intent";

  public SessionRecord {
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(time, "time");
    Objects.requireNonNull(request, "request");
    quotaRemaining = quotaRemaining == null ? Map.of() : Map.copyOf(quotaRemaining);
  }

  /**
   * The request as recorded. {@code body} is {@code null} when bodies are not kept
   * ({@code recording.bodies: none}); {@code bodySha256} (lower-case hex of the body as received)
   * is then set instead, and may be set in any mode.
   */
  public record Request(
      String method,
      String path,
      String operation,
      String model,
      Map<String, List<String>> headers,
      long bytes,
      String body,
      String bodySha256) {
    public Request {
      headers = headers == null ? Map.of() : Map.copyOf(headers);
    }

    public Request(
        String method,
        String path,
        String operation,
        String model,
        Map<String, List<String>> headers,
        long bytes,
        String body) {
      this(method, path, operation, model, headers, bytes, body, null);
    }
  }

  /** {@code outcome}: allow, deny, approved, rejected, expired. */
  public record DecisionSummary(String outcome, String rule, String code, String message) {}

  /** A human review. */
  public record Approval(
      String id, String rule, String reviewer, Instant decided, String outcome, String reason) {}

  /**
   * The response as delivered. {@code usage} holds token counts when known
   * ({@code prompt_tokens}, {@code completion_tokens}); {@code masked} counts masked values per
   * detector; {@code body} is {@code null} when bodies are not kept, {@code bodySha256} is then
   * the hex SHA-256 of the delivered bytes.
   */
  public record Response(
      int status,
      boolean streamed,
      long bytes,
      boolean complete,
      String body,
      Map<String, Integer> masked,
      Map<String, Long> usage,
      String bodySha256) {
    public Response {
      masked = masked == null ? Map.of() : Map.copyOf(masked);
      usage = usage == null ? Map.of() : Map.copyOf(usage);
    }

    public Response(
        int status,
        boolean streamed,
        long bytes,
        boolean complete,
        String body,
        Map<String, Integer> masked,
        Map<String, Long> usage) {
      this(status, streamed, bytes, complete, body, masked, usage, null);
    }
  }
}
