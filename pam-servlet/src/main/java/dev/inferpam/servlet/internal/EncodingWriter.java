package dev.inferpam.servlet.internal;

import java.io.IOException;
import java.io.OutputStream;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.Charset;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;

/**
 * A writer that encodes every call straight into the stream, unlike
 * {@link java.io.OutputStreamWriter}, which keeps up to 8 KiB in its own buffer. Text written by
 * the application must reach the exchange and the container at once: a flush of the container's
 * stream could not push out bytes held here, and the container never closes a writer it did not
 * create. Only the high half of a surrogate pair split between two calls waits for the next call.
 *
 * <p>Unmappable and malformed characters are replaced, as {@code OutputStreamWriter} does. Used by
 * one thread at a time ({@link java.io.PrintWriter} serialises its calls).
 */
final class EncodingWriter extends Writer {
  private final OutputStream out;
  private final CharsetEncoder encoder;
  private final ByteBuffer bytes = ByteBuffer.allocate(8192);
  private char pendingHigh;
  private boolean pending;
  private boolean closed;

  EncodingWriter(OutputStream out, Charset charset) {
    this.out = out;
    this.encoder =
        charset
            .newEncoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
  }

  @Override
  public void write(char[] cbuf, int off, int len) throws IOException {
    if (closed) throw new IOException("writer closed");
    if (len == 0) return;
    CharBuffer in;
    if (pending) {
      in = CharBuffer.allocate(len + 1);
      in.put(pendingHigh).put(cbuf, off, len).flip();
      pending = false;
    } else {
      in = CharBuffer.wrap(cbuf, off, len);
    }
    encode(in, false);
    if (in.hasRemaining()) {
      // The encoder leaves only a trailing high surrogate unconsumed, awaiting its low half.
      pendingHigh = in.get();
      pending = true;
    }
  }

  @Override
  public void write(String str, int off, int len) throws IOException {
    char[] chars = new char[len];
    str.getChars(off, off + len, chars, 0);
    write(chars, 0, len);
  }

  private void encode(CharBuffer in, boolean endOfInput) throws IOException {
    while (true) {
      CoderResult result = encoder.encode(in, bytes, endOfInput);
      drain();
      if (result.isUnderflow()) return;
      if (result.isError()) result.throwException(); // unreachable with REPLACE
    }
  }

  private void drain() throws IOException {
    if (bytes.position() > 0) {
      out.write(bytes.array(), 0, bytes.position());
      bytes.clear();
    }
  }

  @Override
  public void flush() throws IOException {
    if (closed) return;
    out.flush();
  }

  @Override
  public void close() throws IOException {
    if (closed) return;
    CharBuffer rest = pending ? CharBuffer.wrap(new char[] {pendingHigh}) : CharBuffer.allocate(0);
    pending = false;
    encode(rest, true);
    while (encoder.flush(bytes).isOverflow()) drain();
    drain();
    closed = true;
    out.close();
  }
}
