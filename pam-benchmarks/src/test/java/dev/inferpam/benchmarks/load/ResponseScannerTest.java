package dev.inferpam.benchmarks.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ResponseScannerTest {

  private static final String CHUNKED_HEAD =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

  private static String chunk(String data) {
    return Integer.toHexString(data.getBytes(StandardCharsets.UTF_8).length)
        + "\r\n"
        + data
        + "\r\n";
  }

  private static void feedByteByByte(ResponseScanner s, String text) throws ProtocolException {
    for (byte b : text.getBytes(StandardCharsets.UTF_8)) s.feed(ByteBuffer.wrap(new byte[] {b}));
  }

  @Test
  void countsEventsOfAChunkedStreamFedOneByteAtATime() throws Exception {
    ResponseScanner s = new ResponseScanner();
    feedByteByByte(
        s,
        CHUNKED_HEAD
            + chunk("data: {\"a\":1}\n\n")
            + chunk("data: {\"a\":2}\n\n")
            + chunk("data: {\"a\":3}\n\n")
            + chunk("data: [DONE]\n\n")
            + "0\r\n\r\n");

    assertThat(s.status()).isEqualTo(200);
    assertThat(s.events()).isEqualTo(3);
    assertThat(s.done()).isTrue();
    assertThat(s.bodyComplete()).isTrue();
    assertThat(s.errorSample()).isEmpty();
  }

  @Test
  void findsDoneAndEventsSplitAcrossChunksAndReadsWithChunkExtensionsAndTrailers()
      throws Exception {
    ResponseScanner s = new ResponseScanner();
    String body =
        "5;ext=1\r\ndata:\r\n"
            + chunk(" {\"x\":1}\r\n\r\nda")
            + chunk("ta: [DO")
            + chunk("NE]\r\n\r\n")
            + "0\r\nX-Trailer: y\r\n\r\n";
    ByteBuffer all = ByteBuffer.wrap((CHUNKED_HEAD + body).getBytes(StandardCharsets.UTF_8));
    // in two pieces cut inside the head
    ByteBuffer first = all.duplicate().limit(20);
    s.feed(first);
    assertThat(s.headComplete()).isFalse();
    s.feed(all.position(20));

    assertThat(s.events()).isEqualTo(1);
    assertThat(s.done()).isTrue();
    assertThat(s.bodyComplete()).isTrue();
  }

  @Test
  void keepsTheBodyOfAnErrorResponseDelimitedByItsLength() throws Exception {
    String json = "{\"error\":{\"code\":\"unauthenticated\"}}";
    ResponseScanner s = new ResponseScanner();
    s.feed(
        ByteBuffer.wrap(
            ("HTTP/1.1 401 Unauthorized\r\nContent-Length: " + json.length() + "\r\n\r\n" + json)
                .getBytes(StandardCharsets.UTF_8)));

    assertThat(s.status()).isEqualTo(401);
    assertThat(s.bodyComplete()).isTrue();
    assertThat(s.done()).isFalse();
    assertThat(s.errorSample()).isEqualTo(json);
  }

  @Test
  void aBodyWithoutLengthEndsWithTheConnection() throws Exception {
    ResponseScanner s = new ResponseScanner();
    s.feed(
        ByteBuffer.wrap(
            "HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\ndata: 1\n\ndata: 2\n\n"
                .getBytes(StandardCharsets.UTF_8)));
    assertThat(s.events()).isEqualTo(2);
    assertThat(s.bodyComplete()).isFalse();

    s.endOfInput();

    assertThat(s.bodyComplete()).isTrue();
    assertThat(s.done()).isFalse();
  }

  @Test
  void doesNotCountLinesThatAreNotData() throws Exception {
    ResponseScanner s = new ResponseScanner();
    feedByteByByte(
        s,
        CHUNKED_HEAD
            + chunk(": keep-alive\n\nevent: x\nid: 1\ndata:[DONE]x\ndata:[DONE]\n\n")
            + "0\r\n\r\n");
    assertThat(s.events()).isEqualTo(1); // "data:[DONE]x" is an event, not the end
    assertThat(s.done()).isTrue();
  }

  @Test
  void refusesWhatIsNotAnHttpResponse() {
    assertThatThrownBy(
            () ->
                new ResponseScanner()
                    .feed(
                        ByteBuffer.wrap(
                            "SSH-2.0-OpenSSH\r\n\r\n".getBytes(StandardCharsets.UTF_8))))
        .isInstanceOf(ProtocolException.class)
        .hasMessageContaining("not an HTTP/1.x status line: SSH-2.0-OpenSSH");
    assertThatThrownBy(
            () ->
                new ResponseScanner()
                    .feed(
                        ByteBuffer.wrap(
                            (CHUNKED_HEAD + "zz\r\n").getBytes(StandardCharsets.UTF_8))))
        .isInstanceOf(ProtocolException.class)
        .hasMessageContaining("bad chunk size");
    assertThatThrownBy(
            () ->
                new ResponseScanner()
                    .feed(
                        ByteBuffer.wrap(
                            (CHUNKED_HEAD + "2\r\nabc\r\n").getBytes(StandardCharsets.UTF_8))))
        .isInstanceOf(ProtocolException.class)
        .hasMessageContaining("chunk longer than its size");
  }
}
