package dev.inferpam.core.adapter;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Masker;
import dev.inferpam.api.Principal;
import dev.inferpam.core.QuotaStatus;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.TreeSet;

/**
 * The JSON of the endpoints: the pending list, a decision, the optional {@code {"reason":"..."}}
 * body, and the quota answer. Immutable and thread-safe.
 */
final class EndpointJson {
  private static final ObjectMapper JSON =
      JsonMapper.builder()
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
          .build();

  private final ReviewSummaries summaries;

  /**
   * @param masker   masks the prompt excerpt
   * @param basePath the policy's {@code request.base-path}, so that model and operation are read
   *                 as the engine read them
   */
  EndpointJson(Masker masker, String basePath) {
    this.summaries = new ReviewSummaries(masker, basePath);
  }

  /** {@code {"approvals":[...]}}: never headers, credentials, digests or raw bodies. */
  byte[] list(List<ApprovalService.Pending> pending) {
    ObjectNode root = JSON.createObjectNode();
    ArrayNode items = root.putArray("approvals");
    for (ApprovalService.Pending p : pending) {
      ObjectNode item = items.addObject();
      item.put("id", p.id());
      item.put("principal", p.principal().subject());
      item.put("rule", p.rule());
      ReviewSummaries.Summary s = summaries.summarize(p.request());
      item.put("model", s.model());
      item.put("operation", s.operation());
      item.put("excerpt", s.excerpt());
      item.put("created", p.created().toString());
      item.put("expires", p.expires().toString());
    }
    return write(root);
  }

  /**
   * {@code {"id","status","reviewer","reason","decided"}} of one decision; {@code status} as
   * {@link #status} names it.
   */
  static byte[] decision(ApprovalService.Outcome o) {
    ObjectNode root = JSON.createObjectNode();
    root.put("id", o.approvalId());
    root.put("status", status(o.status()));
    root.put("reviewer", o.reviewer());
    root.put("reason", o.reason());
    Instant decided = o.decided();
    root.put("decided", decided == null ? null : decided.toString());
    return write(root);
  }

  /**
   * How an end state is shown to reviewers, as it is recorded: {@code approved},
   * {@code rejected} or {@code expired} (withdrawn and closed reviews are recorded expired).
   */
  static String status(ApprovalService.Status status) {
    return switch (status) {
      case APPROVED -> "approved";
      case REJECTED -> "rejected";
      case EXPIRED, WITHDRAWN, CLOSED -> "expired";
    };
  }

  /**
   * The {@code reason} of a decision body: empty body, {@code {}} or {@code "reason": null} give
   * {@code null}.
   *
   * @throws IllegalArgumentException with a message safe to show when the body is not strict
   *     UTF-8 JSON, not an object, has a {@code reason} that is not a string, or one longer than
   *     {@link ApprovalService#MAX_REASON_CHARS}
   */
  static String reason(byte[] body) {
    if (body.length == 0) return null;
    String text = strictUtf8(body);
    if (text == null) throw new IllegalArgumentException("request body is not valid UTF-8");
    if (text.isBlank()) return null;
    JsonNode json;
    try {
      json = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("request body is not valid JSON");
    }
    if (json == null || !json.isObject()) {
      throw new IllegalArgumentException(
          "request body must be a JSON object like {\"reason\":\"...\"}");
    }
    JsonNode reason = json.get("reason");
    if (reason == null || reason.isNull()) return null;
    if (!reason.isTextual()) throw new IllegalArgumentException("\"reason\" must be a string");
    String r = reason.textValue();
    if (r.length() > ApprovalService.MAX_REASON_CHARS) {
      throw new IllegalArgumentException(
          "\"reason\" is longer than " + ApprovalService.MAX_REASON_CHARS + " chars");
    }
    return r.isEmpty() ? null : r;
  }

  /** {@code {"principal":...,"limits":[...]}} of the quota endpoint. */
  static byte[] quota(Principal caller, List<QuotaStatus> status) {
    ObjectNode root = JSON.createObjectNode();
    root.put("principal", caller.subject());
    ArrayNode limits = root.putArray("limits");
    for (QuotaStatus s : status) {
      ObjectNode item = limits.addObject();
      item.put("rule", s.rule());
      ArrayNode models = item.putArray("models");
      s.models().forEach(models::add);
      ArrayNode operations = item.putArray("operations");
      // A set, so sorted for a stable answer.
      new TreeSet<>(s.operations()).forEach(operations::add);
      for (QuotaStatus.Budget b : s.budgets()) {
        ObjectNode budget = item.putObject(b.bound());
        budget.put("limit", b.limit());
        budget.put("used", b.used());
        budget.put("remaining", b.remaining());
        budget.put("resets", b.resets().toString());
      }
    }
    return write(root);
  }

  /**
   * {@code bytes} decoded, or {@code null} when they are not valid UTF-8: malformed input is
   * refused, never replaced, as the engine reads request bodies.
   */
  static String strictUtf8(byte[] bytes) {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes))
          .toString();
    } catch (CharacterCodingException e) {
      return null;
    }
  }

  private static byte[] write(ObjectNode root) {
    try {
      return JSON.writeValueAsBytes(root);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise endpoint JSON", e);
    }
  }
}
