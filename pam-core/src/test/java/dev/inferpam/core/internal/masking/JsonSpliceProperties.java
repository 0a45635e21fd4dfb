package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.inferpam.core.Policy.MaskStrategy;
import java.nio.charset.StandardCharsets;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Reading JSON in place ({@link JsonSpans}) and masking it by splicing ({@link JsonSplice}) agree
 * with the tree they replace in the SSE and NDJSON maskers: the same documents are JSON (the rest
 * is masked as text), the masked document reads as the tree {@link BodyMaskerJson#maskTree}
 * makes, with the same counts, and a document with nothing to mask comes out byte for byte as
 * it went in. Documents as models send them and the same damaged (see {@link
 * QuietJsonProperties}).
 */
class JsonSpliceProperties {
  private static final BlockMasker MASKER =
      new BlockMasker(Detectors.all(), MaskStrategy.REDACT, null);
  private static final JsonMapper STRICT =
      JsonMapper.builder().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).build();

  @Provide
  Arbitrary<String> documents() {
    return new QuietJsonProperties().documents();
  }

  @Provide
  Arbitrary<byte[]> damaged() {
    return new QuietJsonProperties().damaged();
  }

  @Property(tries = 3000)
  void documentsAreReadAsJacksonReadsThem(@ForAll("documents") String doc) {
    assertReadAlike(doc.getBytes(StandardCharsets.UTF_8));
  }

  @Property(tries = 4000)
  void damagedDocumentsToo(@ForAll("damaged") byte[] doc) {
    assertReadAlike(doc);
  }

  @Property(tries = 3000)
  void splicedMaskingReadsAsTheMaskedTree(@ForAll("documents") String doc) {
    assertMasksAlike(doc.getBytes(StandardCharsets.UTF_8));
  }

  @Property(tries = 3000)
  void onDamagedDocumentsToo(@ForAll("damaged") byte[] doc) {
    assertMasksAlike(doc);
  }

  /** Found by {@link #onDamagedDocumentsToo}: a repeated key, and masked keys that collide. */
  @org.junit.jupiter.api.Test
  void repeatedKeysThatMaskAlikeLeaveNothingUnmasked() {
    assertMasksAlike(
        "{\"a@b.com\":[],\"0a@b.com\":[],\"a@b.com\":{}}".getBytes(StandardCharsets.UTF_8));
  }

  @org.junit.jupiter.api.Test
  void numbersWhoseScaleJacksonCannotHoldAreNotJsonEither() {
    for (String n :
        new String[] {
          "4e11111111111111",
          "1e2147483647",
          "1e2147483648",
          "1.5e-2147483647",
          "1e-2147483648",
          "1e-2147483647",
          "1.0e2147483647",
          "-2.25E+0000000000000012",
          "1e00000000002147483648",
          "0.5e-2147483646"
        }) {
      assertReadAlike(("{\"content\":[[" + n + "]]}").getBytes(StandardCharsets.UTF_8));
    }
  }

  /** JsonSpans takes a document for JSON exactly when Jackson does (on the text it decodes to). */
  private static void assertReadAlike(byte[] doc) {
    String text = new String(doc, StandardCharsets.UTF_8);
    byte[] clean = text.getBytes(StandardCharsets.UTF_8);
    int read = new JsonSpans().parse(doc, 0, doc.length);
    if (read == JsonSpans.BAD_UTF8) read = new JsonSpans().parse(clean, 0, clean.length);
    assertThat(read == JsonSpans.OK)
        .as("read as JSON: %s", text)
        .isEqualTo(BodyMaskerJson.parse(text) != null);
  }

  private static void assertMasksAlike(byte[] doc) {
    String text = new String(doc, StandardCharsets.UTF_8);
    JsonNode tree = BodyMaskerJson.parse(text);
    if (tree == null) return; // masked as text
    byte[] clean = text.getBytes(StandardCharsets.UTF_8);
    JsonSpans json = new JsonSpans();
    assertThat(json.parse(clean, 0, clean.length)).as(text).isEqualTo(JsonSpans.OK);
    JsonSplice splice = new JsonSplice(json);
    splice.reset();
    BodyMaskerValues spliced = new BodyMaskerValues(MASKER);
    splice.maskAll(spliced);
    ByteSink out = new ByteSink();
    splice.writeTo(out, false);
    String written = new String(out.toByteArray(), StandardCharsets.UTF_8);

    BodyMaskerValues treeCounts = new BodyMaskerValues(MASKER);
    JsonNode masked = BodyMaskerJson.maskTree(tree.deepCopy(), treeCounts);
    if (hasDuplicateKeys(text)) {
      // The tree keeps the last of repeated keys where the splice keeps them all, and masked keys
      // can then collide differently ({"a@b.com":[],"0a@b.com":[],"a@b.com":{}}): the two need
      // not read alike. What must hold: nothing the masker finds is left in what was written.
      BodyMaskerValues again = new BodyMaskerValues(MASKER);
      JsonNode reread = BodyMaskerJson.parse(written);
      assertThat(BodyMaskerJson.maskTree(reread.deepCopy(), again))
          .as("%s masked as %s, masked again", text, written)
          .isEqualTo(reread);
      assertThat(again.counts()).as("%s masked as %s, masked again", text, written).isEmpty();
      return;
    }
    assertThat(BodyMaskerJson.parse(written))
        .as("%s masked as %s", text, written)
        .isEqualTo(masked);
    if (!hasDuplicateKeys(text)) { // the tree keeps only the last of repeated keys
      assertThat(spliced.counts()).as(text).isEqualTo(treeCounts.counts());
    }
    if (masked.equals(tree) && treeCounts.counts().isEmpty() && !hasDuplicateKeys(text)) {
      assertThat(out.toByteArray()).as("nothing to mask in %s", text).isEqualTo(clean);
    }
    // and compact, on one line
    ByteSink compact = new ByteSink();
    splice.writeTo(compact, true);
    String one = new String(compact.toByteArray(), StandardCharsets.UTF_8);
    assertThat(one).doesNotContain("\n", "\r");
    assertThat(BodyMaskerJson.parse(one)).as(one).isEqualTo(masked);
  }

  private static boolean hasDuplicateKeys(String text) {
    try {
      STRICT.readTree(text);
      return false;
    } catch (java.io.IOException e) {
      return true;
    }
  }
}
