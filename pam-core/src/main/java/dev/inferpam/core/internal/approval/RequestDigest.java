package dev.inferpam.core.internal.approval;

import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.internal.Sha256;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Objects;

/**
 * The digest an approval is bound to: lower-case hex SHA-256 over the exact request a reviewer
 * approves. Stateless and thread-safe.
 *
 * <p>Input, in this order, each field framed as a 4-byte big-endian length followed by its
 * bytes (UTF-8 for text), so that no two different requests give the same input (moving bytes
 * from the path into the body changes the lengths); an absent field ({@code null} issuer or
 * query) is framed as length {@code -1}, unlike an empty one:
 * <ol>
 *   <li>the label {@code inferpam-approval-v1} (domain separation, versioning);</li>
 *   <li>the method (upper-case, as {@link InferenceRequest} holds it);</li>
 *   <li>the canonical path;</li>
 *   <li>the raw query string (a different query is a different request);</li>
 *   <li>the principal's {@code via}, {@code issuer} and {@code subject};</li>
 *   <li>the exact body bytes (not a re-serialisation: what the model would receive).</li>
 * </ol>
 * Headers are not part of it: they carry the caller's credential, which is replaced before the
 * request goes on. Groups are not either: they decide whether review is needed, not what is
 * reviewed.
 */
public final class RequestDigest {
  private static final byte[] LABEL = "inferpam-approval-v1".getBytes(StandardCharsets.UTF_8);

  private RequestDigest() {}

  /**
   * The digest of {@code request} from {@code principal}.
   *
   * @param request a request whose path is canonical (as the engine hands it on)
   * @throws NullPointerException when an argument is null
   */
  public static String of(Principal principal, InferenceRequest request) {
    Objects.requireNonNull(principal, "principal");
    Objects.requireNonNull(request, "request");
    MessageDigest sha = Sha256.newDigest();
    field(sha, LABEL);
    field(sha, text(request.method()));
    field(sha, text(request.path()));
    field(sha, text(request.query()));
    field(sha, text(principal.via()));
    field(sha, text(principal.issuer()));
    field(sha, text(principal.subject()));
    field(sha, request.body());
    return HexFormat.of().formatHex(sha.digest());
  }

  private static byte[] text(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  private static void field(MessageDigest sha, byte[] bytes) {
    sha.update(ByteBuffer.allocate(4).putInt(bytes == null ? -1 : bytes.length).array());
    if (bytes != null) sha.update(bytes);
  }
}
