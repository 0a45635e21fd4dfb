package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyLoaderTest.asJson;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The {@code recording} section: every key, its default, and every error naming path and value. */
class PolicyLoaderRecordingTest {

  private static Policy.Recording recording(String section) {
    String yaml = "version: 1\nrecording:\n" + section;
    Policy fromYaml = PolicyLoader.parse(yaml, "policy");
    assertThat(PolicyLoader.parseJson(asJson(yaml), "policy")).isEqualTo(fromYaml);
    return fromYaml.recording();
  }

  @Test
  void queueFullWaitDefaultsToRefusingAtOnceAndIsBounded() {
    assertThat(recording("  directory: d\n").queueFullWait()).isZero();
    assertThat(recording("  directory: d\n  queue-full-wait: 250ms\n").queueFullWait())
        .isEqualTo(Duration.ofMillis(250));
    assertThatThrownBy(() -> recording("  directory: d\n  queue-full-wait: 1m\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessage("recording.queue-full-wait: must be at most 30s, was \"1m\"");
    assertThatThrownBy(() -> recording("  directory: d\n  queue-full-wait: 5\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith("recording.queue-full-wait: ");
  }

  @Test
  void absentSectionMeansNoRecordingSection() {
    assertThat(PolicyLoader.parse("version: 1", "policy").recording()).isNull();
  }

  @Test
  void directoryAloneTakesEveryDefault() {
    Policy.Recording r = recording("  directory: ./recordings\n");
    assertThat(r).isEqualTo(Policy.Recording.in(Path.of("./recordings")));
    assertThat(r.directory()).isEqualTo(Path.of("./recordings"));
    assertThat(r.bodies()).isEqualTo(Policy.Bodies.MASKED);
    assertThat(r.durability()).isEqualTo(Policy.Durability.STRICT);
    assertThat(r.retention()).isNull();
    assertThat(r.segmentBytes()).isEqualTo(Policy.Recording.DEFAULT_SEGMENT_BYTES);
    assertThat(r.queueCapacity()).isEqualTo(Policy.Recording.DEFAULT_QUEUE_CAPACITY);
    assertThat(r.batchInterval()).isEqualTo(Policy.Recording.DEFAULT_BATCH_INTERVAL);
    assertThat(r.batchSize()).isEqualTo(Policy.Recording.DEFAULT_BATCH_SIZE);
  }

  @Test
  void relativeDirectoryIsKeptAsWrittenSoItResolvesAgainstTheWorkingDirectory() {
    assertThat(recording("  directory: rec/here\n").directory()).isEqualTo(Path.of("rec/here"));
    assertThat(recording("  directory: /var/lib/inferpam\n").directory())
        .isEqualTo(Path.of("/var/lib/inferpam"));
  }

  @Test
  void everyKeyIsRead() {
    Policy.Recording r =
        recording(
            """
          directory: /var/lib/inferpam/recordings
          bodies: none
          durability: batched
          retention: 90d
          segment-size: 16MiB
          queue-capacity: 500
          batch-interval: 20ms
          batch-size: 64
        """);
    assertThat(r)
        .isEqualTo(
            new Policy.Recording(
                Path.of("/var/lib/inferpam/recordings"),
                Policy.Bodies.NONE,
                Policy.Durability.BATCHED,
                Duration.ofDays(90),
                16L * 1024 * 1024,
                500,
                Duration.ofMillis(20),
                64));
  }

  @Test
  void storePostgresTakesNoDirectoryAndNeedsStatePostgres() {
    Policy policy =
        PolicyLoader.parse(
            "version: 1\nstate:\n  postgres:\n    url-from-env: PG_URL\n"
                + "recording:\n  store: postgres\n  durability: batched\n  retention: 30d\n",
            "policy");
    assertThat(policy.recording().store()).isEqualTo(Policy.RecordingStore.POSTGRES);
    assertThat(policy.recording().directory()).isNull();
    assertThat(policy.recording().durability()).isEqualTo(Policy.Durability.BATCHED);
    assertThat(policy.recording().retention()).isEqualTo(Duration.ofDays(30));
    assertThat(recording("  store: directory\n  directory: d\n"))
        .isEqualTo(Policy.Recording.in(Path.of("d")));

    assertThatThrownBy(() -> PolicyLoader.parse("version: 1\nrecording: {store: postgres}", "p"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(
            "recording.store: postgres needs the database of state.postgres, which the policy"
                + " does not set");
  }

  @ParameterizedTest
  @MethodSource("bodiesValues")
  void bodiesValues(String written, Policy.Bodies expected) {
    assertThat(recording("  directory: d\n  bodies: " + written + "\n").bodies())
        .isEqualTo(expected);
  }

  static Stream<Arguments> bodiesValues() {
    return Stream.of(
        Arguments.of("masked", Policy.Bodies.MASKED),
        Arguments.of("full", Policy.Bodies.FULL),
        Arguments.of("none", Policy.Bodies.NONE));
  }

  @ParameterizedTest
  @MethodSource("durabilityValues")
  void durabilityValues(String written, Policy.Durability expected) {
    assertThat(recording("  directory: d\n  durability: " + written + "\n").durability())
        .isEqualTo(expected);
  }

  static Stream<Arguments> durabilityValues() {
    return Stream.of(
        Arguments.of("strict", Policy.Durability.STRICT),
        Arguments.of("batched", Policy.Durability.BATCHED),
        Arguments.of("async", Policy.Durability.ASYNC));
  }

  @Test
  void segmentSizeTakesBytesOrUnits() {
    assertThat(recording("  directory: d\n  segment-size: 1048576\n").segmentBytes())
        .isEqualTo(1L << 20);
    assertThat(recording("  directory: d\n  segment-size: 512KiB\n").segmentBytes())
        .isEqualTo(512L << 10);
    assertThat(recording("  directory: d\n  segment-size: 1GiB\n").segmentBytes())
        .isEqualTo(1L << 30);
  }

  @Test
  void durationsTakeEveryUnit() {
    assertThat(recording("  directory: d\n  retention: 36h\n").retention())
        .isEqualTo(Duration.ofHours(36));
    assertThat(recording("  directory: d\n  retention: 1m\n").retention())
        .isEqualTo(Duration.ofMinutes(1));
    assertThat(recording("  directory: d\n  batch-interval: 2s\n").batchInterval())
        .isEqualTo(Duration.ofSeconds(2));
    assertThat(recording("  directory: d\n  batch-interval: 1ms\n").batchInterval())
        .isEqualTo(Duration.ofMillis(1));
  }

  static Stream<Arguments> errors() {
    return Stream.of(
        Arguments.of(
            "recording: ./recordings", "recording: expected a mapping, was \"./recordings\""),
        Arguments.of("recording: []", "recording: expected a mapping, was a list"),
        Arguments.of("recording: {}", "recording.directory: required"),
        Arguments.of("recording: {bodies: full}", "recording.directory: required"),
        Arguments.of("recording: {directory: ''}", "recording.directory: must not be empty"),
        Arguments.of("recording: {directory: 5}", "recording.directory: expected a string, was 5"),
        Arguments.of(
            "recording: {directory: [a]}", "recording.directory: expected a string, was a list"),
        Arguments.of(
            "recording: {directory: \"a\\u0000b\"}",
            "recording.directory: invalid path \"a\\u0000b\""),
        Arguments.of("recording: {directory: d, dir: e}", "recording.dir: unknown key"),
        Arguments.of(
            "recording: {store: s3, directory: d}",
            "recording.store: expected one of directory, postgres, was \"s3\""),
        Arguments.of("recording: {store: directory}", "recording.directory: required"),
        Arguments.of(
            "recording: {store: postgres, directory: d}",
            "recording.directory: not with store: postgres (records go to the database of"
                + " state.postgres)"),
        Arguments.of(
            "recording: {store: postgres, segment-size: 1MiB}",
            "recording.segment-size: only with the directory store, not postgres"),
        Arguments.of(
            "recording: {directory: d, compress: true}", "recording.compress: unknown key"),
        Arguments.of(
            "recording: {directory: d, bodies: partial}",
            "recording.bodies: expected one of masked, full, none, was \"partial\""),
        Arguments.of(
            "recording: {directory: d, bodies: FULL}",
            "recording.bodies: expected one of masked, full, none, was \"FULL\""),
        Arguments.of(
            "recording: {directory: d, bodies: true}",
            "recording.bodies: expected one of masked, full, none, was true"),
        Arguments.of(
            "recording: {directory: d, durability: sync}",
            "recording.durability: expected one of strict, batched, async, was \"sync\""),
        Arguments.of(
            "recording: {directory: d, durability: 1}",
            "recording.durability: expected one of strict, batched, async, was 1"),
        Arguments.of(
            "recording: {directory: d, retention: 0d}",
            "recording.retention: must be > 0, was \"0d\""),
        Arguments.of(
            "recording: {directory: d, retention: 90}",
            "recording.retention: expected a duration such as 30s, was 90"),
        Arguments.of(
            "recording: {directory: d, retention: 3mo}",
            "recording.retention: invalid duration \"3mo\": "
                + "expected a whole number followed by ms, s, m, h or d, e.g. 30s"),
        Arguments.of(
            "recording: {directory: d, retention: -1d}",
            "recording.retention: invalid duration \"-1d\": "
                + "expected a whole number followed by ms, s, m, h or d, e.g. 30s"),
        Arguments.of(
            "recording: {directory: d, segment-size: 64MB}",
            "recording.segment-size: invalid size "
                + "\"64MB\": expected bytes or a whole number of KiB, MiB or GiB, e.g. 8MiB"),
        Arguments.of(
            "recording: {directory: d, segment-size: 0}",
            "recording.segment-size: must be > 0, was 0"),
        Arguments.of(
            "recording: {directory: d, segment-size: 0MiB}",
            "recording.segment-size: must be > 0, was \"0MiB\""),
        Arguments.of(
            "recording: {directory: d, segment-size: 1.5}",
            "recording.segment-size: expected a size such as 8MiB, was 1.5"),
        Arguments.of(
            "recording: {directory: d, queue-capacity: 0}",
            "recording.queue-capacity: must be > 0, was 0"),
        Arguments.of(
            "recording: {directory: d, queue-capacity: -5}",
            "recording.queue-capacity: must be > 0, was -5"),
        Arguments.of(
            "recording: {directory: d, queue-capacity: \"100\"}",
            "recording.queue-capacity: expected a whole number, was \"100\""),
        Arguments.of(
            "recording: {directory: d, queue-capacity: 2.5}",
            "recording.queue-capacity: expected a whole number, was 2.5"),
        Arguments.of(
            "recording: {directory: d, queue-capacity: 3000000000}",
            "recording.queue-capacity: too large, was 3000000000"),
        Arguments.of(
            "recording: {directory: d, batch-interval: 0ms}",
            "recording.batch-interval: must be > 0, was \"0ms\""),
        Arguments.of(
            "recording: {directory: d, batch-interval: 5}",
            "recording.batch-interval: expected a duration such as 30s, was 5"),
        Arguments.of(
            "recording: {directory: d, batch-interval: 5 ms}",
            "recording.batch-interval: invalid "
                + "duration \"5 ms\": expected a whole number followed by ms, s, m, h or d, e.g. 30s"),
        Arguments.of(
            "recording: {directory: d, batch-size: 0}", "recording.batch-size: must be > 0, was 0"),
        Arguments.of(
            "recording: {directory: d, batch-size: many}",
            "recording.batch-size: expected a whole number, was \"many\""));
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("errors")
  void yamlErrorNamesThePathAndValue(String section, String message) {
    assertThatThrownBy(() -> PolicyLoader.parse("version: 1\n" + section, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message)
        .hasNoCause();
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("errors")
  void jsonErrorNamesThePathAndValue(String section, String message) {
    String json = asJson("version: 1\n" + section);
    assertThatThrownBy(() -> PolicyLoader.parseJson(json, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
  }

  @Test
  void theFirstProblemInDocumentOrderIsReported() {
    assertThatThrownBy(
            () ->
                PolicyLoader.parse(
                    """
        version: 1
        recording: {directory: d, bodies: some}
        entitlementz: []
        """,
                    "policy"))
        .hasMessage("entitlementz: unknown key");
    assertThatThrownBy(
            () ->
                PolicyLoader.parse(
                    """
        version: 1
        recording: {directory: d, bodies: some, durability: never}
        """,
                    "policy"))
        .hasMessage("recording.bodies: expected one of masked, full, none, was \"some\"");
  }
}
