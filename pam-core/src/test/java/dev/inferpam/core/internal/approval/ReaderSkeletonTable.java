package dev.inferpam.core.internal.approval;

import com.ibm.icu.lang.UCharacter;
import com.ibm.icu.lang.UCharacterCategory;
import com.ibm.icu.lang.UProperty;
import com.ibm.icu.text.Normalizer2;
import com.ibm.icu.text.SpoofChecker;
import com.ibm.icu.util.VersionInfo;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Generates {@link ReaderText}'s table {@code reader-skeleton.txt} from ICU (test scope only: ICU
 * is not a runtime dependency). {@code ReaderTextTest} checks that the committed table is what
 * this generates; after an ICU upgrade, regenerate it with
 * {@code java -cp <test classpath> dev.inferpam.core.internal.approval.ReaderSkeletonTable [file]} (by
 * default {@code pam-core/src/main/resources/dev/inferpam/core/internal/reader-skeleton.txt}).
 */
final class ReaderSkeletonTable {
  /** The Unicode version of Java 17's {@code Character} and {@code Normalizer}, the oldest the library runs on. */
  static final VersionInfo BASE = VersionInfo.getInstance(13, 0);

  private static final SpoofChecker SPOOF = new SpoofChecker.Builder().build();
  private static final Normalizer2 NFKC_CASEFOLD = Normalizer2.getNFKCCasefoldInstance();
  private static final Normalizer2 NFD = Normalizer2.getNFDInstance();
  private static final Normalizer2 NFKD = Normalizer2.getNFKDInstance();
  private static final Normalizer2 NFKC = Normalizer2.getNFKCInstance();

  private ReaderSkeletonTable() {}

  /**
   * The case-folded TS #39 skeleton of {@code s}, per ICU: {@code skeleton(NFKC_Casefold(skeleton(s)))}
   * (NFD), repeated until it no longer changes; empty for a format character.
   */
  static String icuSkeleton(String s) {
    String t = s;
    for (int round = 0; round < 8; round++) {
      String next = NFD.normalize(SPOOF.getSkeleton(NFKC_CASEFOLD.normalize(SPOOF.getSkeleton(t))));
      if (next.equals(t)) return t;
      t = next;
    }
    throw new IllegalStateException("no fixed point for " + s);
  }

  /** Format, control (other than whitespace) or default-ignorable, per ICU. */
  static boolean icuInvisible(int cp) {
    int type = UCharacter.getType(cp);
    return type == UCharacterCategory.FORMAT
        || (type == UCharacterCategory.CONTROL && !ReaderText.whitespace(cp))
        || UCharacter.hasBinaryProperty(cp, UProperty.DEFAULT_IGNORABLE_CODE_POINT);
  }

  /**
   * Whether {@link ReaderText#skeleton} can meet {@code cp} on every supported JDK: not removed
   * or collapsed before, and left alone by the JDK's NFD of an NFKC text (true of any code point
   * newer than {@link #BASE}, which an older JDK does not decompose).
   */
  private static boolean reachesTable(int cp) {
    boolean known = UCharacter.getAge(cp).compareTo(BASE) <= 0;
    if (ReaderText.whitespace(cp)) return false;
    if (known && (icuInvisible(cp))) return false;
    return !known || NFKD.isNormalized(new String(Character.toChars(cp)));
  }

  /** The table's text. */
  static String generate() {
    StringBuilder out = new StringBuilder();
    out.append(
            "# inferpam reader skeleton: code point -> skeleton(NFKC_Casefold(skeleton(NFKC(cp)))), Unicode TS #39,\n")
        .append(
            "# in hexadecimal, for the code points that map to something else (no value: to nothing).\n")
        .append("# Generated from ICU4J ")
        .append(VersionInfo.ICU_VERSION)
        .append(" (Unicode ")
        .append(UCharacter.getUnicodeVersion())
        .append(") by ReaderSkeletonTable; do not edit.\n");
    for (int cp = 0; cp <= Character.MAX_CODE_POINT; cp++) {
      if (Character.isSurrogate((char) cp) && cp <= 0xFFFF) continue;
      if (!reachesTable(cp)) continue;
      String s = new String(Character.toChars(cp));
      // NFKC: the JDK's reader form has done it for the code points it knows, not for newer ones.
      String skeleton = icuInvisible(cp) ? "" : icuSkeleton(NFKC.normalize(s));
      if (skeleton.equals(s)) continue;
      out.append(Integer.toHexString(cp));
      skeleton.codePoints().forEach(m -> out.append(' ').append(Integer.toHexString(m)));
      out.append('\n');
    }
    return out.toString();
  }

  public static void main(String[] args) throws IOException {
    Path file =
        Path.of(
            args.length > 0
                ? args[0]
                : "pam-core/src/main/resources/dev/inferpam/core/internal/" + ReaderText.TABLE);
    Files.writeString(file, generate(), StandardCharsets.US_ASCII);
    System.out.println("wrote " + file);
  }
}
