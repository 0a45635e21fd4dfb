package dev.inferpam.examples.quickstart;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import dev.inferpam.core.Policy;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The documentation a newcomer navigates holds together: every relative link and {@code #anchor}
 * in {@code README.md}, {@code SECURITY.md} and {@code docs/*.md} resolves (anchors as GitHub
 * makes them from headings), every page in {@code docs/} is linked from the README, and the
 * policy examples of {@code docs/policy.md} load.
 */
class DocumentationTest {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  private static final Pattern LINK =
      Pattern.compile("!?\\[[^\\]]*\\]\\(([^)\\s]+)(?:\\s+\"[^\"]*\")?\\)");
  private static final Pattern HEADING = Pattern.compile("^(#{1,6})\\s+(.*?)\\s*#*\\s*$");

  @Test
  void everyRelativeLinkAndAnchorResolves() throws IOException {
    List<String> broken = new ArrayList<>();
    int checked = 0;
    for (Path page : pages()) {
      for (String target : links(Files.readString(page))) {
        if (target.matches("(?i)(https?|mailto):.*")) continue;
        checked++;
        int hash = target.indexOf('#');
        String file = hash < 0 ? target : target.substring(0, hash);
        String anchor = hash < 0 ? null : target.substring(hash + 1);
        Path resolved = file.isEmpty() ? page : page.getParent().resolve(file).normalize();
        String where = ROOT.relativize(page) + ": (" + target + ")";
        if (!resolved.startsWith(ROOT)) {
          broken.add(where + " leaves the repository");
        } else if (!Files.exists(resolved)) {
          broken.add(where + " names no file");
        } else if (anchor != null) {
          if (!resolved.toString().endsWith(".md")) {
            broken.add(where + " has an anchor into a file that is not Markdown");
          } else if (!anchors(Files.readString(resolved)).contains(anchor)) {
            broken.add(where + " names no heading of " + ROOT.relativize(resolved));
          }
        }
      }
    }
    assertThat(checked).as("relative links checked").isGreaterThan(50);
    assertThat(broken).isEmpty();
  }

  @Test
  void everyPageOfTheDocsIsLinkedFromTheReadme() throws IOException {
    Set<String> linked = new LinkedHashSet<>();
    for (String target : links(Files.readString(ROOT.resolve("README.md")))) {
      linked.add(target.replaceFirst("#.*", ""));
    }
    List<String> pages = new ArrayList<>();
    try (var files = Files.list(ROOT.resolve("docs"))) {
      files
          .filter(f -> f.toString().endsWith(".md"))
          .sorted()
          .forEach(f -> pages.add(ROOT.relativize(f).toString().replace('\\', '/')));
    }
    assertThat(pages)
        .contains(
            "docs/policy.md",
            "docs/recording.md",
            "docs/gateway.md",
            "docs/spi.md",
            "docs/security.md",
            "docs/operations.md",
            "docs/performance.md");
    assertThat(linked).containsAll(pages);
  }

  @Test
  void thePolicyExamplesLoad() throws IOException {
    List<String> examples = new ArrayList<>();
    for (String block :
        QuickstartTest.codeBlocksVerbatim(
            Files.readString(ROOT.resolve("docs/policy.md")), "yaml")) {
      if (block.startsWith("version: 1")) examples.add(block);
    }
    assertThat(examples).as("whole policy files in docs/policy.md").isNotEmpty();
    for (String example : examples) {
      assertThatCode(() -> Policy.parse(example))
          .as("docs/policy.md example:%n%s", example)
          .doesNotThrowAnyException();
    }
  }

  @Test
  void anchorsAreMadeAsGitHubMakesThem() {
    Set<String> anchors =
        anchors(
            """
        # Policy file (version 1)
        ## OIDC access tokens: `identity.oidc`
        ## web.xml: Tomcat, Jetty, Undertow
        ```bash
        # a comment in a code block
        ```
        ## Masking
        ## Masking
        """);
    assertThat(anchors)
        .containsExactlyInAnyOrder(
            "policy-file-version-1",
            "oidc-access-tokens-identityoidc",
            "webxml-tomcat-jetty-undertow",
            "masking",
            "masking-1");
    assertThat(
            links("see [a](a.md#x), `[not](code.md)`, ![img](i.png)\n```\n[no](block.md)\n```\n"))
        .containsExactly("a.md#x", "i.png");
  }

  /** README.md, SECURITY.md and every Markdown page under docs/. */
  private static List<Path> pages() throws IOException {
    List<Path> pages =
        new ArrayList<>(List.of(ROOT.resolve("README.md"), ROOT.resolve("SECURITY.md")));
    try (var files = Files.walk(ROOT.resolve("docs"))) {
      files.filter(f -> f.toString().endsWith(".md")).sorted().forEach(pages::add);
    }
    return pages;
  }

  /** Link targets outside code blocks and code spans, in order. */
  static List<String> links(String markdown) {
    List<String> targets = new ArrayList<>();
    for (String line : prose(markdown)) {
      Matcher m = LINK.matcher(line.replaceAll("`[^`]*`", ""));
      while (m.find()) targets.add(m.group(1));
    }
    return targets;
  }

  /** The anchors GitHub gives the headings of a page (duplicates numbered -1, -2, ...). */
  static Set<String> anchors(String markdown) {
    Set<String> anchors = new LinkedHashSet<>();
    Map<String, Integer> seen = new HashMap<>();
    for (String line : prose(markdown)) {
      Matcher m = HEADING.matcher(line);
      if (!m.matches()) continue;
      String text =
          m.group(2)
              .replaceAll("!?\\[([^\\]]*)\\]\\([^)]*\\)", "$1") // a link counts by its text
              .toLowerCase(Locale.ROOT)
              .replaceAll("[^\\p{L}\\p{M}\\p{Nd}\\p{Pc} -]", "")
              .replace(' ', '-');
      int n = seen.merge(text, 1, Integer::sum);
      anchors.add(n == 1 ? text : text + "-" + (n - 1));
    }
    return anchors;
  }

  /** The lines of a Markdown text that are not inside fenced code blocks. */
  private static List<String> prose(String markdown) {
    List<String> lines = new ArrayList<>();
    boolean inCode = false;
    for (String line : markdown.split("\n", -1)) {
      if (line.strip().startsWith("```")) {
        inCode = !inCode;
      } else if (!inCode) {
        lines.add(line);
      }
    }
    return lines;
  }
}
