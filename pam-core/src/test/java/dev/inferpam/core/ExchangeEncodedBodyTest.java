package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Decision;
import dev.inferpam.core.adapter.Verdict;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Compressed and binary request bodies: the policy reads what the upstream gets. Bodies sent with
 * {@code Content-Encoding} gzip or deflate are decoded (bounded by {@code request.max-body}) and
 * checked; other codings are refused on inference operations; a KServe binary body is governed
 * through its JSON header.
 */
class ExchangeEncodedBodyTest {
  static final String KEY = "svc-key-1";
  static final String CHAT = "/v1/chat/completions";
  static final String INFER = "/v2/models/resnet50/infer";

  private final PamEngine engine;

  ExchangeEncodedBodyTest() throws Exception {
    engine =
        PamEngine.builder()
            .policy(
                Policy.parse(
                    """
        version: 1
        identity:
          api-keys:
            - {name: svc, sha256: %s, groups: [ml]}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
          - groups: [ml]
            models: ["resnet*"]
            operations: [infer]
        allow:
          - groups: [ml]
            methods: [POST]
            paths: ["/v1/files"]
        parameters:
          deny: [logprobs]
        request:
          max-body: 1MiB
        """
                        .formatted(PamEngineTest.sha256(KEY))))
            .build();
  }

  // --- decoding, then the policy
  // ------------------------------------------------------------------

  @Test
  void aGzipChatBodyIsDecodedCheckedAndForwardedDecoded() throws Exception {
    byte[] plain = utf8("{\"model\":\"llama-3\",\"messages\":[]}");
    byte[] sent = gzip(plain);
    Verdict ex =
        call(
            CHAT,
            sent,
            "Content-Encoding",
            "gzip",
            "Content-Length",
            Integer.toString(sent.length));
    assertThat(ex).isInstanceOf(Verdict.Allowed.class);
    assertThat(ex.model()).isEqualTo("llama-3");
    assertThat(Verdicts.allowed(ex).forward().body()).isEqualTo(plain);
    assertThat(Verdicts.allowed(ex).forward().removeHeaders())
        .contains(
            "content-encoding",
            "content-length",
            "authorization",
            "x-api-key",
            "proxy-authorization");
  }

  @Test
  void aGzipChatBodyWithAForbiddenModelIsRefused() throws Exception {
    Verdict ex =
        call(
            CHAT, gzip(utf8("{\"model\":\"gpt-4o\",\"messages\":[]}")), "Content-Encoding", "gzip");
    assertThat(code(ex)).isEqualTo("not_entitled");
    assertThat(Verdicts.error(ex).status()).isEqualTo(403);
  }

  @Test
  void aGzipInferBodyWithADeniedParameterIsRefused() throws Exception {
    Verdict ex =
        call(INFER, gzip(utf8("{\"inputs\":[],\"logprobs\":true}")), "Content-Encoding", "gzip");
    assertThat(code(ex)).isEqualTo("parameter_denied");
    assertThat(call(INFER, gzip(utf8("{\"inputs\":[]}")), "Content-Encoding", "gzip"))
        .isInstanceOf(Verdict.Allowed.class);
  }

  @Test
  void everySupportedCodingAndCombinationIsDecoded() throws Exception {
    byte[] denied = utf8("{\"model\":\"llama-3\",\"logprobs\":true}");
    Map<String, byte[]> cases = new LinkedHashMap<>();
    cases.put("gzip", gzip(denied));
    cases.put("x-gzip", gzip(denied));
    cases.put("GZip", gzip(denied));
    cases.put("deflate", deflate(denied, false));
    cases.put("Deflate", deflate(denied, true)); // raw deflate, as some clients send it
    cases.put("gzip, identity", gzip(denied));
    cases.put("deflate, gzip", gzip(deflate(denied, false)));
    cases.put("gzip,gzip", gzip(gzip(denied)));
    ByteArrayOutputStream members = new ByteArrayOutputStream();
    members.write(gzip(Arrays.copyOf(denied, 10)));
    members.write(gzip(Arrays.copyOfRange(denied, 10, denied.length)));
    cases.put("gzip ", members.toByteArray()); // two gzip members
    for (Map.Entry<String, byte[]> c : cases.entrySet()) {
      Verdict ex = call(CHAT, c.getValue(), "Content-Encoding", c.getKey());
      assertThat(code(ex)).as(c.getKey()).isEqualTo("parameter_denied");
    }
    // The coding may also come as two header lines.
    assertThat(
            code(
                call(
                    CHAT,
                    gzip(deflate(denied, false)),
                    "Content-Encoding",
                    "deflate",
                    "Content-Encoding",
                    "gzip")))
        .isEqualTo("parameter_denied");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "br",
        "zstd",
        "compress",
        "gzip, br",
        "x-custom",
        "gzip, gzip, gzip, gzip",
        "\"quoted\""
      })
  void anyOtherCodingOnAnInferenceOperationIs415(String coding) throws Exception {
    byte[] body = utf8("{\"model\":\"llama-3\"}");
    for (String path : List.of(CHAT, INFER)) {
      Verdict ex = call(path, body, "Content-Encoding", coding);
      assertThat(code(ex)).as("%s on %s", coding, path).isEqualTo("unsupported_encoding");
      assertThat(Verdicts.error(ex).status()).isEqualTo(415);
      assertThat(((Decision.Deny) ex.decision()).message()).contains("gzip, deflate or identity");
    }
  }

  @Test
  void anUnknownCodingOnARequestNoRuleReadsPassesAsItCame() throws Exception {
    byte[] body = {1, 2, 3, 4};
    Verdict ex = call("/v1/files", body, "Content-Encoding", "br");
    assertThat(ex).isInstanceOf(Verdict.Allowed.class);
    assertThat(Verdicts.allowed(ex).forward().body()).isEqualTo(body);
    assertThat(Verdicts.allowed(ex).forward().removeHeaders()).doesNotContain("content-encoding");
  }

  @Test
  void identityIsNoCoding() throws Exception {
    byte[] body = utf8("{\"model\":\"llama-3\"}");
    Verdict ex = call(CHAT, body, "Content-Encoding", "identity");
    assertThat(ex).isInstanceOf(Verdict.Allowed.class);
    assertThat(Verdicts.allowed(ex).forward().body()).isEqualTo(body);
  }

  @Test
  void malformedCompressedDataIs400() throws Exception {
    byte[] body = utf8("{\"model\":\"llama-3\"}");
    byte[] gz = gzip(body);
    byte[] badCrc = gz.clone();
    badCrc[gz.length - 8] ^= 1;
    byte[] badSize = gz.clone();
    badSize[gz.length - 1] ^= 1;
    byte[] trailing = Arrays.copyOf(gz, gz.length + 3);
    Map<String, byte[]> cases = new LinkedHashMap<>();
    cases.put("plain text called gzip", body);
    cases.put("truncated", Arrays.copyOf(gz, gz.length - 5));
    cases.put("header only", Arrays.copyOf(gz, 10));
    cases.put("bad crc", badCrc);
    cases.put("bad size", badSize);
    cases.put("trailing bytes", trailing);
    for (Map.Entry<String, byte[]> c : cases.entrySet()) {
      Verdict ex = call(CHAT, c.getValue(), "Content-Encoding", "gzip");
      assertThat(code(ex)).as(c.getKey()).isEqualTo("bad_request");
      assertThat(((Decision.Deny) ex.decision()).message())
          .as(c.getKey())
          .isEqualTo("request body is not valid gzip data");
    }
    byte[] zlib = deflate(body, false);
    assertThat(
            code(call(CHAT, Arrays.copyOf(zlib, zlib.length - 2), "Content-Encoding", "deflate")))
        .isEqualTo("bad_request");
    assertThat(
            code(call(CHAT, Arrays.copyOf(zlib, zlib.length + 1), "Content-Encoding", "deflate")))
        .isEqualTo("bad_request");
    assertThat(code(call(CHAT, body, "Content-Encoding", "deflate"))).isEqualTo("bad_request");
  }

  @Test
  void aDecompressionBombIs413WithoutInflatingPastTheLimit() throws Exception {
    long inflated = 64L << 20; // 64 MiB of zeros, about 64 KiB gzipped
    byte[] bomb = gzipZeros(inflated);
    assertThat(bomb.length).isLessThan(1 << 20); // within max-body as sent

    com.sun.management.ThreadMXBean threads =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long before = threads.getCurrentThreadAllocatedBytes();
    Verdict ex = call(CHAT, bomb, "Content-Encoding", "gzip");
    long allocated = threads.getCurrentThreadAllocatedBytes() - before;

    assertThat(code(ex)).isEqualTo("body_too_large");
    assertThat(Verdicts.error(ex).status()).isEqualTo(413);
    assertThat(((Decision.Deny) ex.decision()).message())
        .isEqualTo("decoded request body is larger than 1048576 bytes");
    // Reading the body and inflating up to the 1 MiB limit, not the 64 MiB it would become.
    assertThat(allocated).isLessThan(16L << 20);
    // A body just at the limit passes.
    assertThat(
            call(CHAT, gzip(padded("{\"model\":\"llama-3\"}", 1 << 20)), "Content-Encoding", "gzip")
                instanceof Verdict.Allowed)
        .isTrue();
    assertThat(
            code(
                call(
                    CHAT,
                    gzip(padded("{\"model\":\"llama-3\"}", (1 << 20) + 1)),
                    "Content-Encoding",
                    "gzip")))
        .isEqualTo("body_too_large");
  }

  @Test
  void anUnauthenticatedBombIsRefusedBeforeAnythingIsInflated() throws Exception {
    byte[] bomb = gzipZeros(4L << 20);
    Verdict ex =
        engine.begin(
            new RequestHead("POST", CHAT, null, Map.of("Content-Encoding", List.of("gzip")), null),
            new ByteArrayInputStream(bomb),
            bomb.length);
    assertThat(code(ex)).isEqualTo("unauthenticated");
  }

  // --- KServe binary tensor data
  // ------------------------------------------------------------------

  @Test
  void aKServeBinaryBodyIsGovernedThroughItsJsonHeader() throws Exception {
    byte[] header =
        utf8(
            "{\"inputs\":[{\"name\":\"x\",\"shape\":[4],\"datatype\":\"UINT8\","
                + "\"parameters\":{\"binary_data_size\":4}}]}");
    byte[] body = concat(header, new byte[] {(byte) 0xff, 0, 1, (byte) 0x80});
    Verdict ok =
        call(INFER, body, "Inference-Header-Content-Length", Integer.toString(header.length));
    assertThat(ok).isInstanceOf(Verdict.Allowed.class);
    assertThat(Verdicts.allowed(ok).forward().body()).as("forwarded whole").isEqualTo(body);

    byte[] denied = utf8("{\"inputs\":[],\"logprobs\":true}");
    assertThat(
            code(
                call(
                    INFER,
                    concat(denied, new byte[] {0, 1}),
                    "Inference-Header-Content-Length",
                    Integer.toString(denied.length))))
        .isEqualTo("parameter_denied");
    // Compressed: the length is that of the decoded header.
    assertThat(
            code(
                call(
                    INFER,
                    gzip(concat(denied, new byte[] {0, 1})),
                    "Content-Encoding",
                    "gzip",
                    "Inference-Header-Content-Length",
                    Integer.toString(denied.length))))
        .isEqualTo("parameter_denied");
    // The JSON header is parsed as strictly as any body.
    byte[] duplicate = utf8("{\"inputs\":[],\"inputs\":[]}");
    assertThat(
            code(
                call(
                    INFER,
                    concat(duplicate, new byte[] {0}),
                    "Inference-Header-Content-Length",
                    Integer.toString(duplicate.length))))
        .isEqualTo("bad_request");
  }

  @Test
  void anInferBodyTheEngineCannotReadIsRefused() throws Exception {
    byte[] header = utf8("{\"inputs\":[]}");
    byte[] body = concat(header, new byte[] {0, 1, 2});
    byte[] binary = {(byte) 0x89, 'P', 'N', 'G', 0, 1};
    List<Verdict> refused = new ArrayList<>();
    refused.add(call(INFER, binary));
    refused.add(call(INFER, new byte[0]));
    refused.add(call(INFER, body)); // JSON then bytes, without the header: not one JSON value
    for (String bad :
        List.of("0", "-1", "+13", "13.0", "0x0d", "", "99", "99999999999999", "1 3")) {
      refused.add(call(INFER, body, "Inference-Header-Content-Length", bad));
    }
    refused.add(
        call(
            INFER,
            body,
            "Inference-Header-Content-Length",
            "13",
            "Inference-Header-Content-Length",
            "13"));
    refused.add(call(INFER, concat(binary, header), "Inference-Header-Content-Length", "6"));
    for (Verdict ex : refused) {
      assertThat(code(ex)).as(ex.toString()).isEqualTo("bad_request");
    }
    assertThat(
            call(INFER, body, "Inference-Header-Content-Length", " 13 ") instanceof Verdict.Allowed)
        .isTrue();
  }

  // --- helpers
  // ------------------------------------------------------------------------------------

  private Verdict call(String path, byte[] body, String... headerPairs) {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    headers.put("Authorization", List.of("Bearer " + KEY));
    for (int i = 0; i < headerPairs.length; i += 2) {
      headers.computeIfAbsent(headerPairs[i], k -> new ArrayList<>()).add(headerPairs[i + 1]);
    }
    return engine.begin(
        new RequestHead("POST", path, null, headers, "127.0.0.1"),
        new ByteArrayInputStream(body),
        body.length);
  }

  private static String code(Verdict ex) {
    return ex.decision() instanceof Decision.Deny d ? d.code() : "allowed";
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /** {@code json} padded with spaces to exactly {@code size} bytes. */
  static byte[] padded(String json, int size) {
    byte[] out = new byte[size];
    Arrays.fill(out, (byte) ' ');
    byte[] j = utf8(json);
    System.arraycopy(j, 0, out, 0, j.length);
    return out;
  }

  static byte[] gzip(byte[] data) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (OutputStream gz = new GZIPOutputStream(out)) {
      gz.write(data);
    }
    return out.toByteArray();
  }

  static byte[] gzipZeros(long n) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] zeros = new byte[1 << 16];
    try (OutputStream gz = new GZIPOutputStream(out, 1 << 16)) {
      for (long left = n; left > 0; left -= zeros.length)
        gz.write(zeros, 0, (int) Math.min(zeros.length, left));
    }
    return out.toByteArray();
  }

  static byte[] deflate(byte[] data, boolean raw) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (OutputStream d =
        new DeflaterOutputStream(out, new Deflater(Deflater.DEFAULT_COMPRESSION, raw))) {
      d.write(data);
    }
    return out.toByteArray();
  }
}
