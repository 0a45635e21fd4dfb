package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Per built-in detector: true positives in varied formats and contexts, and near misses. */
class DetectorsTest {

  /** The values {@code detector} finds in {@code text}. */
  static List<String> found(String detector, String text) {
    List<String> out = new ArrayList<>();
    Detectors.builtIn(detector).find(text, m -> out.add(text.substring(m.start(), m.end())));
    return out;
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "john.doe@example.com",
        "a+tag@mail.co.uk",
        "X_Y%z@sub-domain.example.org",
        "o'neil@x.io"
      })
  void findsEmails(String email) {
    String value = email.startsWith("o'") ? "neil@x.io" : email; // ' is not a local-part char here
    assertThat(found("email", "Contact: " + email + ".")).containsExactly(value);
    assertThat(found("email", "<" + email + ">")).containsExactly(value);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "a@b",
        "user@localhost",
        "x@y.c",
        "a@b.c0m",
        "john..doe@example.com",
        "@example.com",
        "name@-bad.com",
        "1.2@3.4"
      })
  void ignoresEmailNearMisses(String text) {
    assertThat(found("email", "see " + text + " now")).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "+14155552671",
        "+44 20 7946 0958",
        "+49-30-1234567",
        "+33.1.23.45.67.89",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "+1 415 555 2671",
        "1-415-555-2671",
        "+1 (415) 555-2671"
      })
  void findsPhones(String phone) {
    assertThat(found("phone", "Call " + phone + ", thanks")).containsExactly(phone);
    assertThat(found("phone", phone)).containsExactly(phone);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "v415.555.2671",
        "2024-01-15",
        "12.05.2024",
        "order 41555526710001",
        "1.2.3.4",
        "415-555-2671-99",
        "9415-555-2671",
        "build 415.555.26710",
        "+123",
        "115-555-2671",
        "415-155-2671",
        "ISBN 978-3-16-148410-0"
      })
  void ignoresPhoneNearMisses(String text) {
    assertThat(found("phone", text)).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500 0000 0000 0004",
        "378282246310005",
        "3782 822463 10005",
        "4222222222222",
        "6011 0009 9013 9424"
      })
  void findsCardsPassingLuhn(String card) {
    assertThat(found("credit-card", "paid with " + card + ".")).containsExactly(card);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "4111 1111 1111 1112",
        "4111111111111121",
        "1234567890123",
        "order 12345678901234567890123",
        "4111  1111 1111 1111",
        "A4111111111111111",
        "4111111111111111X",
        "call 415-555-2671"
      })
  void ignoresCardNearMisses(String text) {
    assertThat(found("credit-card", text)).isEmpty();
  }

  @Test
  void cardFollowedByAnotherGroupIsStillFound() {
    assertThat(found("credit-card", "4111 1111 1111 1111 2025"))
        .containsExactly("4111 1111 1111 1111");
  }

  @ParameterizedTest
  @ValueSource(strings = {"123-45-6789", "078-05-1120", "665-01-0001", "899-99-9999"})
  void findsSsns(String ssn) {
    assertThat(found("us-ssn", "SSN: " + ssn + ".")).containsExactly(ssn);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "999-12-3456",
        "123-00-4567",
        "123-45-0000",
        "123456789",
        "123 45 6789",
        "1123-45-6789",
        "123-45-67890",
        "123-45-6789-1",
        "A123-45-6789"
      })
  void ignoresSsnNearMisses(String text) {
    assertThat(found("us-ssn", text)).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
        "CH93 0076 2011 6238 5295 7",
        "BE68 5390 0754 7034",
        "ES91 2100 0418 4502 0005 1332",
        "IT60 X054 2811 1010 0000 0123 456"
      })
  void findsIbans(String iban) {
    assertThat(found("iban", "IBAN: " + iban + ", ok")).containsExactly(iban);
    assertThat(found("iban", iban + " AND MORE")).containsExactly(iban);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "DE89 3704 0044 0532 0130 01",
        "DE88370400440532013000",
        "DE8937040044053201300",
        "DE893704004405320130000",
        "XX89370400440532013000",
        "DE89 37040044 0532 0130 00",
        "ADE89370400440532013000"
      })
  void ignoresIbanNearMisses(String text) {
    assertThat(found("iban", text)).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(strings = {"192.168.1.1", "10.0.0.255", "8.8.8.8", "255.255.255.255", "0.0.0.0"})
  void findsIpv4(String ip) {
    assertThat(found("ipv4", "host " + ip + " is up.")).containsExactly(ip);
    assertThat(found("ipv4", "http://" + ip + ":8080/")).containsExactly(ip);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "v1.2.3.4",
        "version 1.2.3.4",
        "Version: 10.0.0.1",
        "ver=1.2.3.4",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.04",
        "build1.2.3.4",
        "1.2.3.4a"
      })
  void ignoresIpv4NearMisses(String text) {
    assertThat(found("ipv4", text)).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "2001:db8::1",
        "::1",
        "fe80::1ff:fe23:4567:890a",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "::ffff:192.0.2.1",
        "2001:db8:85a3::8a2e:370:7334",
        "fe80::"
      })
  void findsIpv6(String ip) {
    assertThat(found("ipv6", "addr " + ip + ".")).containsExactly(ip);
    assertThat(found("ipv6", "[" + ip + "]:443")).containsExactly(ip);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "10:30:00",
        "std::vector",
        "00:1A:2B:3C:4D:5E",
        "1:2:3:4:5:6:7",
        "1::2::3",
        "::",
        "12345::1",
        "1:2:3:4:5:6:7:8:9",
        "::ffff:999.0.2.1",
        "a:::b"
      })
  void ignoresIpv6NearMisses(String text) {
    assertThat(found("ipv6", "x " + text + " y")).isEmpty();
  }

  @Test
  void findsAwsAccessKeys() {
    assertThat(found("aws-access-key", "key=AKIAIOSFODNN7EXAMPLE;"))
        .containsExactly("AKIAIOSFODNN7EXAMPLE");
    assertThat(found("aws-access-key", "ASIAY34FZKBOKMUTVV7A"))
        .containsExactly("ASIAY34FZKBOKMUTVV7A");
    assertThat(found("aws-access-key", "AROAIOSFODNN7EXAMPLE"))
        .containsExactly("AROAIOSFODNN7EXAMPLE");
    assertThat(found("aws-access-key", "XAKIAIOSFODNN7EXAMPLE")).isEmpty();
    assertThat(found("aws-access-key", "AKIAIOSFODNN7EXAMPLEX")).isEmpty();
    assertThat(found("aws-access-key", "AKIAIOSFODNN1EXAMPLE")).isEmpty(); // 1 is not base32
    assertThat(found("aws-access-key", "AKIAIOSFODNN7EXAMPL")).isEmpty();
  }

  static final String JWT =
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

  @Test
  void findsJwts() {
    assertThat(found("jwt", "Authorization: Bearer " + JWT + "\n")).containsExactly(JWT);
    assertThat(found("jwt", "\"" + JWT + "\"")).containsExactly(JWT);
    String unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    assertThat(found("jwt", unsigned + " done")).containsExactly(unsigned);
    assertThat(found("jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0 no second dot")).isEmpty();
    assertThat(found("jwt", "eyJhbGciOiJub25lIn0.abc.def")).isEmpty();
    assertThat(found("jwt", "xeyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")).isEmpty();
  }

  @Test
  void findsJwtsAnywhereInShortAndLongTexts() {
    for (int pad : new int[] {0, 1, 2, 3, 100, 253, 254, 255, 256, 300, 1000}) {
      String before = "a".repeat(pad).replaceAll("a$", " ");
      assertThat(found("jwt", JWT)).containsExactly(JWT);
      assertThat(found("jwt", before + JWT)).as("after %d chars", pad).containsExactly(JWT);
      assertThat(found("jwt", before + JWT + " " + before))
          .as("between %d chars", pad)
          .containsExactly(JWT);
      assertThat(found("jwt", before + JWT + " " + before + JWT))
          .as("twice, %d chars", pad)
          .containsExactly(JWT, JWT);
    }
    // one that continues a base64url run is not a token of its own, however long the text
    assertThat(found("jwt", " ".repeat(400) + "x" + JWT)).isEmpty();
    assertThat(found("jwt", "y".repeat(400) + "eyJ")).isEmpty();
  }

  static final String PEM =
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7\n"
          + "-----END RSA PRIVATE KEY-----";

  @Test
  void findsPrivateKeyBlocks() {
    assertThat(found("private-key", "key:\n" + PEM + "\nbye")).containsExactly(PEM);
    String pkcs8 =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----";
    assertThat(found("private-key", pkcs8)).containsExactly(pkcs8);
    assertThat(found("private-key", "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----"))
        .isEmpty();
    assertThat(found("private-key", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"))
        .isEmpty();
  }

  @Test
  void unterminatedPrivateKeyIsMaskedToTheEndOrTheBound() {
    String cut = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB";
    assertThat(found("private-key", "here: " + cut)).containsExactly(cut);
    String mismatched = "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END RSA PRIVATE KEY-----";
    assertThat(found("private-key", mismatched)).containsExactly(mismatched);
    String longText = "-----BEGIN PRIVATE KEY-----\n" + "A".repeat(20_000);
    List<String> values = found("private-key", longText);
    assertThat(values).hasSize(1);
    assertThat(values.get(0)).hasSize(PrivateKeyDetector.MAX_LENGTH);
  }

  @Test
  void unknownDetectorNamesTheKnownOnes() {
    assertThatThrownBy(() -> Detectors.builtIn("emial"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "unknown detector \"emial\" (known: email, phone, credit-card, us-ssn, iban, ipv4, ipv6, "
                + "aws-access-key, jwt, private-key)");
  }

  @Test
  void everyMatchIsWithinTheStatedMaximum() {
    String text =
        "a "
            + String.join(
                " | ",
                "john.doe@example.com",
                "+44 20 7946 0958",
                "4111 1111 1111 1111",
                "123-45-6789",
                "GB82 WEST 1234 5698 7654 32",
                "10.0.0.1",
                "2001:db8::1",
                "AKIAIOSFODNN7EXAMPLE",
                JWT,
                PEM);
    for (Detector d : Detectors.all()) {
      List<Match> matches = new ArrayList<>();
      d.find(text, matches::add);
      assertThat(matches).as(d.name()).hasSize(1);
      assertThat(matches.get(0).length()).isLessThanOrEqualTo(d.maxMatchLength());
    }
  }
}
