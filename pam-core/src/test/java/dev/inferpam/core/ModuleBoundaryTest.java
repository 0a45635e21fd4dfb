package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.module.ModuleDescriptor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The API boundary as the module descriptors draw it: every library module has one, and none
 * exports or opens a package named {@code internal} (not even to a named module) or the
 * gateway's demo. Reads every {@code module-info.java} of the build, so that a module other than
 * this one cannot slip past it, and the compiled descriptor of {@code dev.inferpam.core}.
 */
class ModuleBoundaryTest {
  /** The library modules: each must have a descriptor. */
  static final Set<String> LIBRARY_MODULES =
      Set.of(
          "pam-api",
          "pam-core",
          "pam-okhttp",
          "pam-servlet",
          "pam-testkit",
          "pam-test-support",
          "pam-gateway");

  private static final Pattern EXPORT =
      Pattern.compile("\\b(exports|opens)\\s+([\\w.]+)\\s*(to\\s+[^;]+)?;");

  /** Maven module directory to the {@code exports}/{@code opens} lines of its descriptor. */
  private static Map<String, List<Directive>> descriptors;

  record Directive(String kind, String pkg, String to) {}

  @BeforeAll
  static void readDescriptors() throws IOException {
    Path root = Path.of("").toAbsolutePath();
    while (root != null && !Files.isDirectory(root.resolve("pam-core"))) root = root.getParent();
    assertThat(root).as("the build's root directory, above pam-core").isNotNull();
    descriptors = new TreeMap<>();
    try (Stream<Path> modules = Files.list(root)) {
      for (Path dir : modules.filter(d -> Files.isRegularFile(d.resolve("pom.xml"))).toList()) {
        Path descriptor = dir.resolve("src/main/java/module-info.java");
        if (Files.isRegularFile(descriptor)) {
          descriptors.put(dir.getFileName().toString(), directives(Files.readString(descriptor)));
        }
      }
    }
  }

  static List<Directive> directives(String source) {
    String code = source.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\n]*", " ");
    Matcher m = EXPORT.matcher(code);
    List<Directive> out = new ArrayList<>();
    while (m.find()) out.add(new Directive(m.group(1), m.group(2), m.group(3)));
    return out;
  }

  @Test
  void everyLibraryModuleHasADescriptor() {
    assertThat(descriptors.keySet()).containsAll(LIBRARY_MODULES);
  }

  @Test
  void noDescriptorExportsOrOpensAnInternalPackage() {
    List<String> leaks =
        descriptors.entrySet().stream()
            .flatMap(
                e ->
                    e.getValue().stream()
                        .filter(
                            d ->
                                d.pkg().contains("internal")
                                    || d.pkg().startsWith("dev.inferpam.gateway.demo"))
                        .map(
                            d ->
                                e.getKey()
                                    + ": "
                                    + d.kind()
                                    + " "
                                    + d.pkg()
                                    + (d.to() == null ? "" : " " + d.to())))
            .collect(Collectors.toList());
    assertThat(leaks).as("packages that are not API, exported or opened").isEmpty();
  }

  @Test
  void theParserSeesTheExportsThatAreThere() {
    // Guards the check above against reading nothing.
    assertThat(descriptors.get("pam-core"))
        .extracting(Directive::pkg)
        .contains("dev.inferpam.core", "dev.inferpam.core.adapter");
    assertThat(
            directives(
                "module m { exports a.internal.b; /* exports c.internal; */ opens d.internal to x, y; }"))
        .containsExactly(
            new Directive("exports", "a.internal.b", null),
            new Directive("opens", "d.internal", "to x, y"));
  }

  @Test
  void theCompiledCoreModuleExportsItsApiPackagesOnly() {
    ModuleDescriptor core = PamEngine.class.getModule().getDescriptor();
    if (core == null) return; // tests on the class path: the source descriptors are checked above
    assertThat(core.name()).isEqualTo("dev.inferpam.core");
    assertThat(core.exports())
        .allSatisfy(e -> assertThat(e.isQualified()).isFalse())
        .extracting(ModuleDescriptor.Exports::source)
        .containsExactlyInAnyOrder(
            "dev.inferpam.core", "dev.inferpam.core.adapter", "dev.inferpam.core.stream");
    assertThat(core.opens()).isEmpty();
    assertThat(core.packages())
        .contains("dev.inferpam.core.internal.policy", "dev.inferpam.core.internal.recording");
  }
}
