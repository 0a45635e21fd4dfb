package dev.inferpam.gateway;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Many raw client connections held by one selector thread, so a test can hold a thousand of them
 * cheaply: each sends what it is given and then nothing more; the thread reads whatever the
 * server answers and notes when the server closed the connection. Closed by {@link #close()}.
 */
final class SlowClients implements AutoCloseable {
  /** One connection: what it received, when it opened and when the server closed it. */
  static final class Client {
    final SocketChannel channel;
    final long openedNanos;
    final StringBuilder received = new StringBuilder();
    volatile long closedNanos = -1;

    Client(SocketChannel channel) {
      this.channel = channel;
      this.openedNanos = System.nanoTime();
    }

    boolean closedByServer() {
      return closedNanos >= 0;
    }

    /** Milliseconds from opening to the server's close; -1 while open. */
    long openMillis() {
      return closedNanos < 0 ? -1 : (closedNanos - openedNanos) / 1_000_000;
    }

    synchronized String received() {
      return received.toString();
    }

    /** Sends more bytes (a test trickling its request). */
    void send(String text) throws IOException {
      ByteBuffer b = ByteBuffer.wrap(text.getBytes(StandardCharsets.ISO_8859_1));
      while (b.hasRemaining()) {
        if (channel.write(b) == 0) throw new IOException("send buffer full");
      }
    }
  }

  private final Selector selector = Selector.open();
  private final Queue<Client> toRegister = new ConcurrentLinkedQueue<>();
  private final List<Client> clients = new ArrayList<>();
  private final Thread reader;
  private volatile boolean running = true;

  SlowClients() throws IOException {
    reader = new Thread(this::readLoop, "slow-clients");
    reader.setDaemon(true);
    reader.start();
  }

  /** Opens a connection to {@code port} on 127.0.0.1 and sends {@code prefix} (ISO-8859-1). */
  Client open(int port, String prefix) throws IOException {
    SocketChannel channel = SocketChannel.open();
    channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
    channel.connect(new InetSocketAddress("127.0.0.1", port));
    channel.configureBlocking(false);
    Client client = new Client(channel);
    if (!prefix.isEmpty()) client.send(prefix);
    synchronized (clients) {
      clients.add(client);
    }
    toRegister.add(client);
    selector.wakeup();
    return client;
  }

  List<Client> clients() {
    synchronized (clients) {
      return List.copyOf(clients);
    }
  }

  private void readLoop() {
    ByteBuffer buffer = ByteBuffer.allocate(16 * 1024);
    try {
      while (running) {
        selector.select(100);
        for (Client c; (c = toRegister.poll()) != null; )
          c.channel.register(selector, SelectionKey.OP_READ, c);
        for (SelectionKey key : selector.selectedKeys()) {
          Client c = (Client) key.attachment();
          buffer.clear();
          int n;
          try {
            n = c.channel.read(buffer);
          } catch (IOException e) {
            n = -1; // reset by the server: closed as well
          }
          if (n < 0) {
            c.closedNanos = System.nanoTime();
            key.cancel();
          } else if (n > 0) {
            synchronized (c) {
              c.received.append(new String(buffer.array(), 0, n, StandardCharsets.ISO_8859_1));
            }
          }
        }
        selector.selectedKeys().clear();
      }
    } catch (IOException | RuntimeException e) {
      // the test sees the connections it expected closed stay open, and fails on that
    }
  }

  @Override
  public void close() throws IOException {
    running = false;
    selector.wakeup();
    try {
      reader.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    for (Client c : clients()) c.channel.close();
    selector.close();
  }
}
