package dev.inferpam.core.adapter;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Masker;
import dev.inferpam.core.internal.approval.ApprovalRules;
import dev.inferpam.core.internal.http.BadRequestException;
import dev.inferpam.core.internal.http.RequestClassifier;
import java.util.List;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a reviewer is shown of a held request, in the reviewer endpoints and in notifications:
 * its model, operation and a masked excerpt of its prompt. Never headers, credentials or the raw
 * body. Immutable and thread-safe.
 */
public final class ReviewSummaries {
  private static final Logger log = LoggerFactory.getLogger(ReviewSummaries.class);

  /** Longest excerpt shown, in code points, before the ellipsis. */
  public static final int EXCERPT_CODE_POINTS = 200;

  private final Masker masker;
  private final RequestClassifier classifier;

  /** Model, operation and masked prompt excerpt of one request; each may be {@code null}. */
  public record Summary(String model, String operation, String excerpt) {}

  /**
   * @param masker   masks the prompt excerpt
   * @param basePath the policy's {@code request.base-path}, so that model and operation are read
   *                 as the engine read them
   */
  public ReviewSummaries(Masker masker, String basePath) {
    this.masker = Objects.requireNonNull(masker, "masker");
    this.classifier = new RequestClassifier(Objects.requireNonNull(basePath, "basePath"));
  }

  /** Summarises a request the engine classified before holding it; never throws for its content. */
  public Summary summarize(InferenceRequest request) {
    RequestClassifier.Classification c;
    try {
      c = classifier.classify(request.method(), request.path(), request.body());
    } catch (BadRequestException | RuntimeException e) {
      // The engine classified the request before holding it; this cannot normally happen.
      return new Summary(null, null, null);
    }
    return new Summary(c.model(), c.operation(), excerpt(c.body()));
  }

  /**
   * The prompt text, masked whole (so that a value cut by the limit is still found), then cut to
   * {@link #EXCERPT_CODE_POINTS}; {@code null} when the body has no prompt text or masking
   * failed (fail closed: no unmasked text).
   */
  private String excerpt(JsonNode body) {
    List<String> pieces = ApprovalRules.promptTexts(body);
    if (pieces.isEmpty()) return null;
    String masked;
    try {
      masked = masker.mask(String.join("\n", pieces));
    } catch (RuntimeException e) {
      log.warn("inferpam: masker failed on an approval excerpt: {}", e.getClass().getName());
      return null;
    }
    if (masked == null) return null;
    if (masked.codePointCount(0, masked.length()) <= EXCERPT_CODE_POINTS) return masked;
    return masked.substring(0, masked.offsetByCodePoints(0, EXCERPT_CODE_POINTS)) + "\u2026";
  }
}
