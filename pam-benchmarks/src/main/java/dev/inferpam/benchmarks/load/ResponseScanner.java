package dev.inferpam.benchmarks.load;

import java.io.ByteArrayOutputStream;
import java.net.ProtocolException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * Reads one HTTP/1.1 response to a streamed chat call as its bytes arrive, in whatever pieces the
 * socket hands over: the status line and headers, then the body (chunked, {@code Content-Length}
 * or up to the end of the connection) decoded, and in the body the server-sent-event lines: it
 * counts {@code data:} lines and notices {@code data: [DONE]}.
 *
 * <p>Holds a few dozen bytes per stream once the head is read, so thousands can be open at once.
 * The body of a response whose status is not 200 is kept (its first {@value #SAMPLE_BYTES} bytes)
 * so a report can show what the server said.
 *
 * <p><b>Thread-safety:</b> none; one stream's bytes, fed by one thread.
 */
final class ResponseScanner {

  static final int MAX_HEAD_BYTES = 32 * 1024;
  static final int SAMPLE_BYTES = 300;

  private static final byte[] DONE = "[DONE]".getBytes(StandardCharsets.US_ASCII);
  private static final int PREFIX = 16;

  private enum Framing {
    CHUNKED,
    LENGTH,
    UNTIL_CLOSE
  }

  private enum Chunk {
    SIZE,
    SIZE_EXTENSION,
    DATA,
    DATA_END,
    TRAILER,
    END
  }

  private ByteArrayOutputStream head = new ByteArrayOutputStream(512);
  private int tail; // the last four bytes of the head, to find the blank line that ends it
  private int status = -1;
  private Framing framing;
  private long remaining; // LENGTH: body bytes still to come; CHUNKED: of the current chunk
  private Chunk chunk = Chunk.SIZE;
  private boolean sizeDigits;
  private int trailerLineLength;
  private boolean bodyComplete;

  private final byte[] line = new byte[PREFIX];
  private int lineLength;
  private int events;
  private boolean done;
  private ByteArrayOutputStream sample;

  /**
   * Consumes every remaining byte of {@code bytes}.
   *
   * @throws ProtocolException when the bytes are not an HTTP/1.1 response: a head over {@value
   *     #MAX_HEAD_BYTES} bytes, a malformed status line, a bad chunk size, data after the end
   */
  void feed(ByteBuffer bytes) throws ProtocolException {
    while (bytes.hasRemaining()) {
      if (status < 0) {
        readHead(bytes);
      } else if (bodyComplete) {
        throw new ProtocolException("bytes after the end of the response");
      } else {
        readBody(bytes);
      }
    }
  }

  /** Whether the status line and headers are in. */
  boolean headComplete() {
    return status >= 0;
  }

  /** The status code, or -1 before the head is complete. */
  int status() {
    return status;
  }

  /** The {@code data:} lines so far, {@code data: [DONE]} not counted. */
  int events() {
    return events;
  }

  /** Whether a {@code data: [DONE]} line has been read. */
  boolean done() {
    return done;
  }

  /** Whether the body is complete by its own framing (last chunk, or all of its length). */
  boolean bodyComplete() {
    return bodyComplete;
  }

  /** The start of the body of a response that is not 200, for a report; empty otherwise. */
  String errorSample() {
    return sample == null ? "" : sample.toString(StandardCharsets.UTF_8);
  }

  /** The connection has closed: a body delimited by the close is complete. */
  void endOfInput() {
    if (framing == Framing.UNTIL_CLOSE) bodyComplete = true;
  }

  private void readHead(ByteBuffer bytes) throws ProtocolException {
    while (bytes.hasRemaining()) {
      byte b = bytes.get();
      head.write(b);
      tail = (tail << 8) | (b & 0xff);
      int n = head.size();
      if (n > MAX_HEAD_BYTES) throw new ProtocolException("response head over " + n + " bytes");
      if ((tail & 0xffff) == 0x0a0a || tail == 0x0d0a0d0a) {
        parseHead(head.toString(StandardCharsets.ISO_8859_1));
        head = null;
        return;
      }
    }
  }

  private void parseHead(String text) throws ProtocolException {
    String[] lines = text.split("\r?\n");
    String[] statusLine = lines[0].split(" ", 3);
    if (statusLine.length < 2 || !statusLine[0].startsWith("HTTP/1.")) {
      throw new ProtocolException("not an HTTP/1.x status line: " + lines[0]);
    }
    int code;
    try {
      code = Integer.parseInt(statusLine[1]);
    } catch (NumberFormatException e) {
      throw new ProtocolException("bad status code: " + lines[0]);
    }
    Framing f = Framing.UNTIL_CLOSE;
    long length = -1;
    for (int i = 1; i < lines.length; i++) {
      int colon = lines[i].indexOf(':');
      if (colon <= 0) continue;
      String name = lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT);
      String value = lines[i].substring(colon + 1).trim();
      if (name.equals("transfer-encoding") && value.toLowerCase(Locale.ROOT).contains("chunked")) {
        f = Framing.CHUNKED;
      } else if (name.equals("content-length") && f != Framing.CHUNKED) {
        try {
          length = Long.parseLong(value);
        } catch (NumberFormatException e) {
          throw new ProtocolException("bad Content-Length: " + value);
        }
        f = Framing.LENGTH;
      }
    }
    framing = f;
    status = code;
    if (code != 200) sample = new ByteArrayOutputStream();
    if (f == Framing.LENGTH) {
      remaining = length;
      if (length == 0) bodyComplete = true;
    }
  }

  private void readBody(ByteBuffer bytes) throws ProtocolException {
    switch (framing) {
      case UNTIL_CLOSE -> content(bytes, bytes.remaining());
      case LENGTH -> {
        int n = (int) Math.min(remaining, bytes.remaining());
        content(bytes, n);
        remaining -= n;
        if (remaining == 0) bodyComplete = true;
      }
      case CHUNKED -> chunked(bytes);
    }
  }

  private void chunked(ByteBuffer bytes) throws ProtocolException {
    while (bytes.hasRemaining() && !bodyComplete) {
      switch (chunk) {
        case SIZE -> {
          byte b = bytes.get();
          int digit = Character.digit(b, 16);
          if (digit >= 0) {
            if (remaining > (Long.MAX_VALUE >> 4)) throw new ProtocolException("chunk too large");
            remaining = remaining * 16 + digit;
            sizeDigits = true;
          } else if (b == '\n') {
            endSizeLine();
          } else if (b == ';' || b == '\r' || b == ' ' || b == '\t') {
            chunk = Chunk.SIZE_EXTENSION;
          } else {
            throw new ProtocolException("bad chunk size byte 0x" + Integer.toHexString(b & 0xff));
          }
        }
        case SIZE_EXTENSION -> {
          if (bytes.get() == '\n') endSizeLine();
        }
        case DATA -> {
          int n = (int) Math.min(remaining, bytes.remaining());
          content(bytes, n);
          remaining -= n;
          if (remaining == 0) chunk = Chunk.DATA_END;
        }
        case DATA_END -> {
          byte b = bytes.get();
          if (b == '\n') {
            chunk = Chunk.SIZE;
          } else if (b != '\r') {
            throw new ProtocolException("chunk longer than its size");
          }
        }
        case TRAILER -> {
          byte b = bytes.get();
          if (b == '\n') {
            if (trailerLineLength == 0) {
              chunk = Chunk.END;
              bodyComplete = true;
            }
            trailerLineLength = 0;
          } else if (b != '\r') {
            trailerLineLength++;
          }
        }
        case END -> throw new ProtocolException("bytes after the last chunk");
      }
    }
  }

  private void endSizeLine() throws ProtocolException {
    if (!sizeDigits) throw new ProtocolException("empty chunk size");
    sizeDigits = false;
    chunk = remaining == 0 ? Chunk.TRAILER : Chunk.DATA;
  }

  /** {@code n} bytes of decoded body. */
  private void content(ByteBuffer bytes, int n) {
    if (sample != null) {
      int keep = Math.min(n, SAMPLE_BYTES - sample.size());
      for (int i = 0; i < keep; i++) sample.write(bytes.get(bytes.position() + i));
    }
    int end = bytes.position() + n;
    for (int i = bytes.position(); i < end; i++) {
      byte b = bytes.get(i);
      if (b == '\n' || b == '\r') {
        endLine();
      } else {
        if (lineLength < PREFIX) line[lineLength] = b;
        lineLength++;
      }
    }
    bytes.position(end);
  }

  private void endLine() {
    if (lineLength >= 5
        && line[0] == 'd'
        && line[1] == 'a'
        && line[2] == 't'
        && line[3] == 'a'
        && line[4] == ':') {
      if (isDone()) {
        done = true;
      } else {
        events++;
      }
    }
    lineLength = 0;
  }

  /** {@code data: [DONE]} or {@code data:[DONE]}. */
  private boolean isDone() {
    int start = lineLength > 5 && line[5] == ' ' ? 6 : 5;
    if (lineLength - start != DONE.length) return false;
    for (int i = 0; i < DONE.length; i++) {
      if (line[start + i] != DONE[i]) return false;
    }
    return true;
  }
}
