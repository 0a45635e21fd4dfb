package dev.inferpam.core.internal.credentials;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import dev.inferpam.testsupport.MutableClock;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileCredentialProviderTest {

  private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

  @TempDir Path dir;
  final MutableClock clock = new MutableClock(T0);

  /** Lets the interval pass, so that the next call looks at the file again. */
  private void nextLook() {
    clock.advance(FileCredentialProvider.CHECK_INTERVAL);
  }

  private Path write(String name, String content, Instant modified) throws IOException {
    Path file = dir.resolve(name);
    Files.writeString(file, content, UTF_8);
    Files.setLastModifiedTime(file, FileTime.from(modified));
    return file;
  }

  @Test
  void readsTheSecretAndStripsTheTrailingNewline() throws Exception {
    Path file = write("key", "sk-file-secret\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);

    assertThat(provider.current())
        .isEqualTo(new Credential("Authorization", "Bearer sk-file-secret"));
  }

  @Test
  void usesTheBareSecretWithAnEmptyScheme() throws Exception {
    Path file = write("key", "  raw-value \r\n\n", T0);
    assertThat(new FileCredentialProvider("X-Api-Key", "", file, clock).current())
        .isEqualTo(new Credential("X-Api-Key", "raw-value"));
  }

  @Test
  void picksUpARewrittenFile() throws Exception {
    Path file = write("key", "first-secret\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    assertThat(provider.current().value()).isEqualTo("Bearer first-secret");

    // Same size, so only the modification time tells the versions apart.
    write("key", "other-secret\n", T0.plusSeconds(1));
    nextLook();

    assertThat(provider.current().value()).isEqualTo("Bearer other-secret");
  }

  @Test
  void picksUpAChangeOfSizeEvenWithTheSameModificationTime() throws Exception {
    Path file = write("key", "short\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    assertThat(provider.current().value()).isEqualTo("Bearer short");

    write("key", "much-longer-secret\n", T0);
    nextLook();

    assertThat(provider.current().value()).isEqualTo("Bearer much-longer-secret");
  }

  @Test
  void picksUpAnAtomicReplaceLikeASecretMountRotation() throws Exception {
    Path file = write("key", "version-1\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    assertThat(provider.current().value()).isEqualTo("Bearer version-1");

    Path staged = write("key.tmp", "version-2\n", T0.plusSeconds(30));
    Files.move(staged, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    nextLook();

    assertThat(provider.current().value()).isEqualTo("Bearer version-2");
  }

  @Test
  void followsSymbolicLinks() throws Exception {
    Path target = write("v1", "linked-secret\n", T0);
    Path link;
    try {
      link = Files.createSymbolicLink(dir.resolve("link"), target);
    } catch (UnsupportedOperationException | IOException e) {
      assumeTrue(false, "symbolic links not supported here");
      return;
    }
    assertThat(new FileCredentialProvider("Authorization", "Bearer", link, clock).current().value())
        .isEqualTo("Bearer linked-secret");
  }

  @Test
  void servesTheCachedValueWhileTheFileIsUnchanged() throws Exception {
    Path file = write("key", "cached-secret\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    Credential first = provider.current();

    assertThat(provider.current()).isSameAs(first);
  }

  @Test
  void aRewrittenFileIsInUseFromTheFirstCallASecondAfterTheLastLookNotBefore() throws Exception {
    Path file = write("key", "first-secret\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    assertThat(provider.current().value()).isEqualTo("Bearer first-secret");

    write("key", "second-secret\n", T0.plusSeconds(1));
    clock.advance(FileCredentialProvider.CHECK_INTERVAL.minusMillis(1));
    assertThat(provider.current().value())
        .as("within the interval")
        .isEqualTo("Bearer first-secret");

    clock.advance(java.time.Duration.ofMillis(1));
    assertThat(provider.current().value()).isEqualTo("Bearer second-secret");
  }

  @Test
  void withinTheIntervalTheValueHeldIsUsedWithoutLookingAtTheFile() throws Exception {
    Path file = write("key", "held-secret\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    provider.current();

    Files.delete(file);
    assertThat(provider.current().value()).isEqualTo("Bearer held-secret");

    nextLook();
    assertThatThrownBy(provider::current).hasMessage("credential file " + file + " does not exist");
  }

  @Test
  void aClockThatWentBackMakesTheNextCallLook() throws Exception {
    clock.advance(java.time.Duration.ofHours(1));
    Path file = write("key", "before\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    provider.current();
    write("key", "after-the-step\n", T0.plusSeconds(1));

    clock.advance(java.time.Duration.ofMinutes(-5));

    assertThat(provider.current().value()).isEqualTo("Bearer after-the-step");
  }

  @Test
  void refusesAMissingFileNamingThePath() {
    Path missing = dir.resolve("absent");
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", missing, clock);

    assertThatThrownBy(provider::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessage("credential file " + missing + " does not exist");
  }

  @Test
  void recoversOnceTheFileAppears() throws Exception {
    Path file = dir.resolve("later");
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    assertThatThrownBy(provider::current).isInstanceOf(CredentialUnavailableException.class);

    write("later", "arrived\n", T0);

    assertThat(provider.current().value()).isEqualTo("Bearer arrived");
  }

  @Test
  void refusesAnEmptyFileAndRecoversWhenItIsFilled() throws Exception {
    Path file = write("key", " \n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    assertThatThrownBy(provider::current).hasMessage("credential file " + file + " is empty");

    write("key", "now-set\n", T0.plusSeconds(5));

    // No clock advance: while the file gives no secret every call looks again (a rewrite that
    // truncates first can be caught empty), so the filled file is in use at once.
    assertThat(provider.current().value()).isEqualTo("Bearer now-set");
  }

  @Test
  void refusesAFileThatBecomesEmpty() throws Exception {
    Path file = write("key", "secret\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    provider.current();

    write("key", "", T0.plusSeconds(5));
    nextLook();

    assertThatThrownBy(provider::current).hasMessage("credential file " + file + " is empty");
  }

  @Test
  void refusesADirectory() {
    assertThatThrownBy(new FileCredentialProvider("Authorization", "Bearer", dir, clock)::current)
        .hasMessage("credential file " + dir + " is not a regular file");
  }

  @Test
  void refusesAnUnreadableFileWithoutQuotingIt() throws Exception {
    Path file = write("key", "hidden-secret\n", T0);
    try {
      Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("---------"));
    } catch (UnsupportedOperationException e) {
      assumeTrue(false, "no POSIX permissions here");
    }
    assumeTrue(!Files.isReadable(file), "running as a user who reads everything (root)");

    assertThatThrownBy(new FileCredentialProvider("Authorization", "Bearer", file, clock)::current)
        .hasMessageStartingWith("credential file " + file + " is not readable");
  }

  @Test
  void refusesContentThatCannotBeAHeaderWithoutQuotingIt() throws Exception {
    Path file = write("key", "line-one\nX-Injected: secret-two\n", T0);

    assertThatThrownBy(new FileCredentialProvider("Authorization", "Bearer", file, clock)::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessage("credential file " + file + " holds a character not allowed in a header value")
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain("line-one", "secret-two"));
  }

  @Test
  void refusesInvalidUtf8() throws Exception {
    Path file = dir.resolve("key");
    Files.write(file, new byte[] {'s', 'k', (byte) 0xC0, (byte) 0xAF});
    assertThatThrownBy(new FileCredentialProvider("Authorization", "Bearer", file, clock)::current)
        .hasMessage("credential file " + file + " is not valid UTF-8");
  }

  @Test
  void refusesOversizedFiles() throws Exception {
    Path file = write("key", "a".repeat(FileCredentialProvider.MAX_BYTES + 1), T0);
    assertThatThrownBy(new FileCredentialProvider("Authorization", "Bearer", file, clock)::current)
        .hasMessage("credential file " + file + " is larger than 65536 bytes");
  }

  @Test
  void neverShowsTheSecret() throws Exception {
    Path file = write("key", "sk-do-not-print\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);

    assertThat(provider.toString())
        .isEqualTo("FileCredentialProvider[Authorization from file " + file + "]");
    assertThat(provider.current().toString()).doesNotContain("sk-do-not-print");
  }

  @Test
  void isSafeUnderConcurrentCallsAndRotation() throws Exception {
    Path file = write("key", "secret-0000\n", T0);
    FileCredentialProvider provider =
        new FileCredentialProvider("Authorization", "Bearer", file, clock);
    Set<String> valid = Set.of("Bearer secret-0000", "Bearer secret-0001", "Bearer secret-0002");
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        futures.add(
            pool.submit(
                (Callable<Void>)
                    () -> {
                      for (int i = 0; i < 2_000; i++) {
                        try {
                          assertThat(provider.current().value()).isIn(valid);
                        } catch (CredentialUnavailableException e) {
                          // A reader may catch the file half-written (truncated) during a rewrite.
                          assertThat(e.getMessage()).doesNotContain("secret-");
                        }
                      }
                      return null;
                    }));
      }
      for (int v = 1; v <= 2; v++) {
        write("key", "secret-000" + v + "\n", T0.plusSeconds(v));
      }
      for (Future<?> f : futures) f.get();
    } finally {
      pool.shutdownNow();
    }
    nextLook();
    assertThat(provider.current().value()).isEqualTo("Bearer secret-0002");
  }

  @Test
  void refusesBadConfiguration() {
    assertThatThrownBy(() -> new FileCredentialProvider(" ", "Bearer", dir.resolve("k"), clock))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(
            () -> new FileCredentialProvider("Authorization", "Bearer\n", dir.resolve("k"), clock))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
