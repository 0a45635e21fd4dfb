package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The rule that keeps virtual threads from pinning: no {@code synchronized} in the main code of
 * the library modules (every module of the build except examples and benchmarks). A monitor held
 * around blocking I/O pins a virtual thread to its carrier; rather than judge each block, the
 * library uses {@link java.util.concurrent.locks.ReentrantLock} everywhere.
 */
class NoPinningTest {
  /** Modules whose code is not a library: demos and measurements. */
  static final Set<String> NOT_LIBRARY = Set.of("pam-examples", "pam-benchmarks");

  static final Pattern SYNCHRONIZED = Pattern.compile("\\bsynchronized\\b");

  @Test
  void libraryMainCodeHasNoSynchronized() throws IOException {
    Path root = Path.of(System.getProperty("user.dir")).toAbsolutePath().getParent();
    List<Path> sources = new ArrayList<>();
    try (Stream<Path> modules = Files.list(root)) {
      for (Path module : modules.filter(m -> Files.isRegularFile(m.resolve("pom.xml"))).toList()) {
        Path main = module.resolve("src/main/java");
        if (NOT_LIBRARY.contains(module.getFileName().toString()) || !Files.isDirectory(main))
          continue;
        try (Stream<Path> files = Files.walk(main)) {
          files.filter(f -> f.toString().endsWith(".java")).forEach(sources::add);
        }
      }
    }
    assertThat(sources)
        .as("the core's own sources were found")
        .anyMatch(p -> p.endsWith("dev/inferpam/core/PamEngine.java"));

    List<String> offences = new ArrayList<>();
    for (Path source : sources) {
      String code = codeOnly(read(source));
      Matcher m = SYNCHRONIZED.matcher(code);
      while (m.find()) {
        int line = 1 + (int) code.substring(0, m.start()).chars().filter(c -> c == '\n').count();
        offences.add(root.relativize(source) + ":" + line);
      }
    }
    assertThat(offences).as("synchronized in library code (use a ReentrantLock)").isEmpty();
  }

  @Test
  void theCheckSeesSynchronizedInCodeButNotInCommentsOrStrings() {
    String code =
        codeOnly(
            """
        /** synchronized in a comment */
        class A {
          // synchronized here too
          String s = "synchronized \\" in a string";
          char c = '"';
          synchronized void m() {}
        }
        """);
    assertThat(SYNCHRONIZED.matcher(code).results().count()).isEqualTo(1);
  }

  private static String read(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** {@code source} with comments, string, text block and char literals blanked; line breaks kept. */
  static String codeOnly(String source) {
    StringBuilder out = new StringBuilder(source.length());
    int i = 0;
    int n = source.length();
    while (i < n) {
      char c = source.charAt(i);
      if (c == '/' && i + 1 < n && source.charAt(i + 1) == '/') {
        while (i < n && source.charAt(i) != '\n') i++;
      } else if (c == '/' && i + 1 < n && source.charAt(i + 1) == '*') {
        int end = source.indexOf("*/", i + 2);
        end = end < 0 ? n : end + 2;
        blank(source, i, end, out);
        i = end;
      } else if (source.startsWith("\"\"\"", i)) {
        int end = source.indexOf("\"\"\"", i + 3);
        end = end < 0 ? n : end + 3;
        blank(source, i, end, out);
        i = end;
      } else if (c == '"' || c == '\'') {
        int j = i + 1;
        while (j < n && source.charAt(j) != c && source.charAt(j) != '\n')
          j += source.charAt(j) == '\\' ? 2 : 1;
        i = Math.min(n, j + 1);
        out.append(' ');
      } else {
        out.append(c);
        i++;
      }
    }
    return out.toString();
  }

  private static void blank(String source, int from, int to, StringBuilder out) {
    for (int k = from; k < to; k++) out.append(source.charAt(k) == '\n' ? '\n' : ' ');
  }
}
