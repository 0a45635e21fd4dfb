package dev.inferpam.core.internal.http;

import dev.inferpam.api.Decision.Deny;
import dev.inferpam.api.InferenceRequest;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * What the engine makes of a request body before the policy reads it, so that the policy checks
 * exactly what the upstream gets and nothing it cannot read reaches a model.
 *
 * <p><b>Content codings.</b> A body sent with {@code Content-Encoding} {@code gzip} (or
 * {@code x-gzip}; several members allowed) or {@code deflate} (zlib-wrapped, or raw as some
 * clients send it) is decoded, codings in the reverse of the order listed, at most
 * {@value #MAX_CODINGS} of them; {@code identity} is nothing. Decoding is bounded: it stops, and
 * the request is refused 413 {@code body_too_large}, the moment the decoded bytes exceed
 * {@code request.max-body}, so a decompression bomb costs at most that much memory. Data that is
 * not what its coding says (bad header, bad checksum, truncated, trailing bytes) is 400
 * {@code bad_request}. The decoded request has no {@code Content-Encoding} and, if it had one,
 * a {@code Content-Length} of the decoded size: it is what adapters forward. Any other coding
 * ({@code br}, {@code zstd}, {@code compress}, ...) is refused 415 {@code unsupported_encoding}
 * on an inference operation, whose body the policy must read; on other requests (let through by
 * an {@code allow} rule, whose body no rule reads) the body passes as it came, still encoded.
 *
 * <p><b>KServe binary tensor data.</b> An {@code infer} body is JSON, or, with the binary data
 * extension, a JSON header of {@code Inference-Header-Content-Length} bytes followed by raw
 * tensor bytes: the policy reads that header (parsed as strictly as any body). An {@code infer}
 * body that is not JSON without that header, or with a header value that is not a length within
 * the body, is refused 400 {@code bad_request}: nothing the engine cannot read passes.
 *
 * <p>Stateless.
 */
public final class GovernedBody {
  /** Most content codings undone on one body. */
  static final int MAX_CODINGS = 3;

  private static final String INFERENCE_HEADER_LENGTH = "inference-header-content-length";
  private static final Pattern LENGTH = Pattern.compile("[0-9]{1,10}");

  /** An HTTP token short enough to be named in an error message. */
  private static final Pattern TOKEN = Pattern.compile("[a-z0-9!#$%&'*+.^_`|~-]{1,40}");

  private GovernedBody() {}

  /**
   * A request whose body is decoded, and the part of that body the policy reads.
   *
   * @param request the request to decide on and forward (its body decoded)
   * @param json    the bytes to classify: the whole body, or the JSON header of a KServe binary body
   */
  public record Prepared(InferenceRequest request, byte[] json) {}

  /**
   * Decodes {@code request}'s body and picks the part the policy reads.
   *
   * @param operation the operation its method and path name (whatever the body), or {@code null}
   * @param limit     {@code request.max-body}: the largest decoded body
   * @return a {@link Prepared}, or the {@link Deny} to answer
   */
  public static Object prepare(InferenceRequest request, String operation, long limit) {
    InferenceRequest decoded = request;
    List<String> codings = codings(request.headers().get("content-encoding"));
    if (!codings.isEmpty() && request.body().length > 0) {
      String unsupported = unsupported(codings);
      if (unsupported == null) {
        byte[] body = request.body();
        try {
          for (int i = codings.size() - 1; i >= 0; i--) body = decode(codings.get(i), body, limit);
        } catch (BoundedBody.TooLargeException e) {
          return new Deny(413, "body_too_large", "decoded " + e.getMessage(), "request.max-body");
        } catch (DataFormatException e) {
          return new Deny(
              400,
              "bad_request",
              "request body is not valid " + e.getMessage() + " data",
              "request");
        }
        decoded = withBody(request, body);
      } else if (operation != null) {
        return new Deny(
            415,
            "unsupported_encoding",
            "Content-Encoding "
                + unsupported
                + " is not supported on "
                + operation
                + " requests; send gzip, deflate or identity",
            "request");
      }
    }
    if (!RequestClassifier.INFER.equals(operation)) return new Prepared(decoded, decoded.body());
    Object json = inferJson(decoded);
    return json instanceof Deny ? json : new Prepared(decoded, (byte[]) json);
  }

  /**
   * Headers that describe a body as the caller sent it, and so no longer hold once
   * {@link #prepare} decoded it: {@code Content-Encoding} and {@code Content-Length}.
   */
  public static final Set<String> ENCODED_BODY_HEADERS =
      Set.of("content-encoding", "content-length");

  /**
   * Whether {@code prepared} (what {@link #prepare} made of a request with {@code received}
   * headers, lower-case names) has a decoded body: the caller named a content coding and the
   * prepared request no longer does.
   */
  public static boolean decoded(Map<String, List<String>> received, InferenceRequest prepared) {
    return prepared != null
        && received.containsKey("content-encoding")
        && !prepared.headers().containsKey("content-encoding");
  }

  /** The content codings named, lower-case, without {@code identity}. */
  private static List<String> codings(List<String> values) {
    if (values == null) return List.of();
    List<String> out = new ArrayList<>();
    for (String value : values) {
      for (String token : value.split(",", -1)) {
        String t = token.strip().toLowerCase(Locale.ROOT);
        if (!t.isEmpty() && !t.equals("identity")) out.add(t);
      }
    }
    return out;
  }

  /** The first coding that cannot be decoded, as it can be shown in a message; {@code null} for none. */
  private static String unsupported(List<String> codings) {
    if (codings.size() > MAX_CODINGS) return "with more than " + MAX_CODINGS + " codings";
    for (String c : codings) {
      if (!c.equals("gzip") && !c.equals("x-gzip") && !c.equals("deflate")) {
        return TOKEN.matcher(c).matches() ? "\"" + c + "\"" : "(unknown)";
      }
    }
    return null;
  }

  private static byte[] decode(String coding, byte[] in, long limit)
      throws BoundedBody.TooLargeException, DataFormatException {
    Output out = new Output(limit);
    if (coding.equals("deflate")) {
      // RFC 9110 deflate is zlib-wrapped; some clients send raw deflate. A zlib header is two
      // bytes: method 8 with a window of at most 32 KiB, no preset dictionary, a multiple of 31.
      boolean zlib =
          in.length >= 2
              && (in[0] & 0x0F) == 8
              && (in[0] & 0xF0) <= 0x70
              && (in[1] & 0x20) == 0
              && ((in[0] & 0xFF) << 8 | (in[1] & 0xFF)) % 31 == 0;
      int used = inflate(in, 0, !zlib, out, null, "deflate");
      if (used != in.length) throw new DataFormatException("deflate");
      return out.toByteArray();
    }
    int pos = 0;
    do {
      pos = gzipHeader(in, pos);
      CRC32 crc = new CRC32();
      long before = out.size();
      pos += inflate(in, pos, true, out, crc, "gzip");
      if (in.length - pos < 8) throw new DataFormatException("gzip");
      if (le32(in, pos) != crc.getValue()
          || le32(in, pos + 4) != ((out.size() - before) & 0xFFFFFFFFL)) {
        throw new DataFormatException("gzip");
      }
      pos += 8;
    } while (pos < in.length); // another member
    return out.toByteArray();
  }

  /**
   * Inflates one deflate stream starting at {@code from} into {@code out}.
   *
   * @return how many input bytes the stream took
   */
  private static int inflate(byte[] in, int from, boolean raw, Output out, CRC32 crc, String coding)
      throws BoundedBody.TooLargeException, DataFormatException {
    Inflater inflater = new Inflater(raw);
    try {
      inflater.setInput(in, from, in.length - from);
      byte[] buf = new byte[8192];
      boolean padded = false;
      while (!inflater.finished()) {
        long read = inflater.getBytesRead();
        int n = inflater.inflate(buf, 0, out.room(buf.length));
        if (n > 0) {
          if (crc != null) crc.update(buf, 0, n);
          out.write(buf, n);
        } else if (inflater.needsDictionary()) {
          throw new DataFormatException(coding);
        } else if (inflater.needsInput()) {
          // A raw stream may need one byte past its end to finish (see Inflater); more is
          // truncated.
          if (!raw || padded) throw new DataFormatException(coding);
          padded = true;
          inflater.setInput(new byte[1]);
        } else if (inflater.getBytesRead() == read) {
          throw new DataFormatException(coding); // no progress at all: never loop on it
        }
      }
      long used = inflater.getBytesRead();
      if (padded) used = Math.min(used, in.length - from);
      return (int) used;
    } catch (DataFormatException e) {
      throw new DataFormatException(coding);
    } finally {
      inflater.end();
    }
  }

  /** Checks a gzip member header (RFC 1952) at {@code pos}; returns where its deflate data starts. */
  private static int gzipHeader(byte[] in, int pos) throws DataFormatException {
    if (in.length - pos < 10
        || (in[pos] & 0xFF) != 0x1f
        || (in[pos + 1] & 0xFF) != 0x8b
        || in[pos + 2] != 8
        || (in[pos + 3] & 0xE0) != 0) {
      throw new DataFormatException("gzip");
    }
    int flags = in[pos + 3];
    int p = pos + 10;
    if ((flags & 4) != 0) { // FEXTRA
      if (in.length - p < 2) throw new DataFormatException("gzip");
      p += 2 + ((in[p] & 0xFF) | (in[p + 1] & 0xFF) << 8);
    }
    if ((flags & 8) != 0) p = afterZero(in, p); // FNAME
    if ((flags & 16) != 0) p = afterZero(in, p); // FCOMMENT
    if ((flags & 2) != 0) p += 2; // FHCRC
    if (p > in.length) throw new DataFormatException("gzip");
    return p;
  }

  private static int afterZero(byte[] in, int p) throws DataFormatException {
    while (p < in.length && in[p] != 0) p++;
    if (p >= in.length) throw new DataFormatException("gzip");
    return p + 1;
  }

  private static long le32(byte[] in, int p) {
    return (in[p] & 0xFFL)
        | (in[p + 1] & 0xFFL) << 8
        | (in[p + 2] & 0xFFL) << 16
        | (in[p + 3] & 0xFFL) << 24;
  }

  /** The request with the decoded body: no {@code Content-Encoding}, the new {@code Content-Length}. */
  private static InferenceRequest withBody(InferenceRequest request, byte[] body) {
    Map<String, List<String>> headers = new LinkedHashMap<>(request.headers());
    headers.remove("content-encoding");
    if (headers.containsKey("content-length"))
      headers.put("content-length", List.of(Integer.toString(body.length)));
    return new InferenceRequest(
        request.method(), request.path(), request.query(), headers, body, request.remoteAddress());
  }

  /** The JSON part of an {@code infer} body, or the {@link Deny} when there is none the engine can read. */
  private static Object inferJson(InferenceRequest request) {
    byte[] body = request.body();
    List<String> lengths = request.headers().get(INFERENCE_HEADER_LENGTH);
    byte[] json = body;
    if (lengths != null && !lengths.isEmpty()) {
      String value = lengths.size() == 1 ? lengths.get(0).strip() : "";
      long n = LENGTH.matcher(value).matches() ? Long.parseLong(value) : -1;
      if (n <= 0 || n > body.length) {
        return badRequest("Inference-Header-Content-Length must be one length within the body");
      }
      json = Arrays.copyOf(body, (int) n);
    }
    if (json.length == 0) return badRequest("request body is empty");
    if (!startsWithBrace(json)) {
      return badRequest(
          json == body
              ? "infer request body is not JSON (binary tensor data needs Inference-Header-Content-Length)"
              : "the Inference-Header-Content-Length part of the body is not a JSON object");
    }
    return json;
  }

  private static Deny badRequest(String message) {
    return new Deny(400, "bad_request", message, "request");
  }

  private static boolean startsWithBrace(byte[] body) {
    for (byte b : body) {
      if (b == ' ' || b == '\t' || b == '\n' || b == '\r') continue;
      return b == '{';
    }
    return false;
  }

  /** Decoded bytes, never more than the limit plus what one read adds before it is noticed. */
  private static final class Output extends ByteArrayOutputStream {
    private final long limit;

    Output(long limit) {
      super((int) Math.min(8192, limit + 1));
      this.limit = limit;
    }

    /** How much the next read may add: at most {@code max}, and at most one byte past the limit. */
    int room(int max) {
      return (int) Math.min(max, limit + 1 - count);
    }

    void write(byte[] b, int n) throws BoundedBody.TooLargeException {
      write(b, 0, n);
      if (count > limit) throw new BoundedBody.TooLargeException(limit);
    }
  }
}
