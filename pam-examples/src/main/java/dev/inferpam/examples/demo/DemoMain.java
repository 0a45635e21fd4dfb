package dev.inferpam.examples.demo;

import java.io.IOException;
import java.io.PrintStream;
import java.util.List;

/**
 * The command line of {@code pam-demo.jar}, built by this module:
 *
 * <pre>
 * java -jar pam-examples/target/pam-demo.jar [--port N]
 * </pre>
 *
 * <p>Runs the {@link Demo} and exits: 0 when every step went as narrated, 1 when one did not or
 * the demo could not start, 2 for a usage error (one line on standard error starting
 * {@code inferpam: }). The narration goes to standard output, logs to standard error.
 */
public final class DemoMain {

  static final int EXIT_OK = 0;
  static final int EXIT_FAILURE = 1;
  static final int EXIT_USAGE = 2;

  static final String USAGE = String.join("\n",
      "usage: java -jar pam-demo.jar [--port N]",
      "",
      "  start a mock model server, a demo OIDC identity provider and the gateway on",
      "  127.0.0.1, drive narrated traffic that shows each control, then exit.",
      "  --port N  the gateway's port, 0 for a free one (default: free)",
      "",
      "options may also be written --name=value. Exit status: 0 ok, 1 failure, 2 usage error.");

  private DemoMain() {}

  /** Runs the demo and exits with its status. */
  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs the demo with the command line {@code args}, narrating on {@code out}.
   *
   * @return the exit status
   */
  static int run(String[] args, PrintStream out, PrintStream err) {
    List<String> list = List.of(args);
    if (list.contains("--help") || list.contains("-h")) {
      out.println(USAGE);
      out.flush();
      return EXIT_OK;
    }
    int port;
    try {
      port = port(list);
    } catch (IllegalArgumentException e) {
      return error(err, EXIT_USAGE, e.getMessage() + " (see --help)");
    }
    try {
      return Demo.run(out, port);
    } catch (IOException e) {
      return error(err, EXIT_FAILURE, "demo failed: " + e.getMessage());
    }
  }

  /** The {@code --port} value, 0 when it is not given. */
  private static int port(List<String> args) {
    String value = null;
    for (int i = 0; i < args.size(); i++) {
      String arg = args.get(i);
      String v;
      if (arg.startsWith("--port=")) {
        v = arg.substring("--port=".length());
      } else if (arg.equals("--port")) {
        if (i + 1 >= args.size() || args.get(i + 1).startsWith("--")) {
          throw new IllegalArgumentException("--port needs a value");
        }
        v = args.get(++i);
      } else if (arg.startsWith("--") && arg.length() > 2) {
        throw new IllegalArgumentException("unknown option " + arg.split("=", 2)[0]);
      } else {
        throw new IllegalArgumentException("unexpected argument \"" + arg + "\"");
      }
      if (value != null) throw new IllegalArgumentException("--port given twice");
      value = v;
    }
    if (value == null) return 0;
    try {
      int port = Integer.parseInt(value);
      if (port >= 0 && port <= 65535) return port;
    } catch (NumberFormatException e) {
      // reported below with the value
    }
    throw new IllegalArgumentException("--port: must be a number from 0 to 65535, was \"" + value + "\"");
  }

  private static int error(PrintStream err, int status, String message) {
    err.println("inferpam: " + message.strip().replaceAll("\\s*\\R\\s*", " "));
    err.flush();
    return status;
  }
}
