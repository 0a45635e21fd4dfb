package dev.inferpam.core.internal.policy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Decision;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.AbstractMap.SimpleEntry;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;

/**
 * Differential property: whenever the engine lets a body through, every decoder that an inference
 * server uses reads the same model and the same governed parameters as the engine did, and reads
 * no denied parameter as used and no capped parameter outside {@code 0..max}.
 *
 * <p>Bodies are built from the governed names in many spellings (case variants, long s for
 * {@code s}, the Kelvin sign for {@code k}, the {@code ﬅ} ligature for {@code st}, escapes),
 * with duplicates, {@code options} objects, and values of every kind (numbers in fraction,
 * exponent and out-of-range forms, numeric strings, lone surrogates, control characters).
 *
 * <p>The oracle reads the raw key/value sequence itself (Jackson's streaming parser, which keeps
 * duplicates), never the engine's tree, and models each decoder by its documented rules:
 * <ul>
 *   <li>Go {@code encoding/json} into structs: a key matches a field exactly or else by
 *       {@code bytes.EqualFold} (Unicode simple folding, {@code unicode.SimpleFold} orbits); the
 *       last match wins; {@code null} leaves a field as it was; an int field takes only an
 *       integer literal in range; a lone surrogate reads as U+FFFD;</li>
 *   <li>Python {@code json} + pydantic (lax): exact keys, the last duplicate wins; an int field
 *       takes integers, floats with no fraction and numeric strings; a bool field takes booleans,
 *       0/1 and the usual words;</li>
 *   <li>Rust {@code serde_json}: exact keys, a duplicate field is an error, a lone surrogate
 *       anywhere is an error, a {@code u32} takes only a non-negative integer literal;</li>
 *   <li>JavaScript {@code JSON.parse}: exact keys, the last duplicate wins, numbers are
 *       doubles;</li>
 *   <li>Jackson (default, as a Java server has it): exact keys, the last duplicate wins.</li>
 * </ul>
 * A decoder that refuses a body reads nothing, so it cannot disagree.
 */
class DecoderDifferentialProperties {

  private static final BigDecimal MAX = BigDecimal.valueOf(100);
  private static final Policy POLICY =
      Policy.parse(
          """
      version: 1
      entitlements:
        - groups: [ml]
          models: ["llama3.1*"]
          operations: [chat]
      parameters:
        deny: [logprobs, top_logprobs]
        max: {max_tokens: 100}
      """);
  private static final Principal ALICE = Principal.of("alice", Set.of("ml"), Principal.VIA_API_KEY);
  private static final Decider DECIDER = new Decider(POLICY, List.of(r -> Optional.of(ALICE)));

  private enum Kind {
    STRING,
    BOOL,
    INT,
    OBJECT
  }

  /** The fields a server's request type has, with their types: what the decoders read. */
  private static final Map<String, Kind> TOP_FIELDS =
      Map.of(
          "model",
          Kind.STRING,
          "logprobs",
          Kind.BOOL,
          "top_logprobs",
          Kind.INT,
          "max_tokens",
          Kind.INT,
          "max_completion_tokens",
          Kind.INT,
          "options",
          Kind.OBJECT);

  private static final Map<String, Kind> OPTION_FIELDS =
      Map.of("num_predict", Kind.INT, "logprobs", Kind.BOOL, "top_logprobs", Kind.INT);
  private static final List<String> DENIED =
      List.of("logprobs", "top_logprobs", "options.logprobs", "options.top_logprobs");
  private static final List<String> CAPPED =
      List.of("max_tokens", "max_completion_tokens", "options.num_predict");
  private static final List<String> PATHS =
      List.of(
          "model",
          "logprobs",
          "top_logprobs",
          "max_tokens",
          "max_completion_tokens",
          "options.num_predict",
          "options.logprobs",
          "options.top_logprobs");

  // --- generation -------------------------------------------------------------------------------

  private static final List<String> NUMBERS =
      List.of(
          "0",
          "1",
          "100",
          "101",
          "-1",
          "-0",
          "-0.0",
          "100.0",
          "99.5",
          "0.5",
          "1e2",
          "1E1",
          "1e3",
          "100000",
          "9007199254740993",
          "1e400",
          "\"100000\"",
          "\"50\"",
          "true",
          "null");
  private static final List<String> SWITCHES =
      List.of("true", "false", "null", "0", "1", "5", "\"true\"", "\"false\"");
  private static final List<String> MODELS =
      List.of(
          "\"llama3.1\"",
          "\"llama3.1\"",
          "\"llama3.1\"",
          "\"gpt-4\"",
          "\"llama3.\\u0031\"",
          "\"llama3.1\\ud800\"",
          "\"llama3.1\\udc00x\"",
          "\"llama3.1 \"",
          "\"llama3.1\\u0000\"",
          "\"\\u00a0llama3.1\"",
          "42",
          "null");

  @Provide
  Arbitrary<String> bodies() {
    Arbitrary<String> member =
        Combinators.combine(
                Arbitraries.frequency(
                    Tuple.of(4, "model"),
                    Tuple.of(2, "logprobs"),
                    Tuple.of(2, "top_logprobs"),
                    Tuple.of(3, "max_tokens"),
                    Tuple.of(1, "max_completion_tokens"),
                    Tuple.of(3, "options"),
                    Tuple.of(1, "messages"),
                    Tuple.of(1, "stream")),
                spellings(),
                options())
            .as(
                (base, spell, opts) ->
                    key(spell.apply(base)) + ":" + value(base, spell.seed, opts));
    return Combinators.combine(
            member.list().ofMaxSize(5),
            Arbitraries.integers().between(0, 5),
            Arbitraries.integers().between(0, 9))
        .as(
            (members, at, plain) -> {
              List<String> all = new ArrayList<>(members);
              // mostly one exact model among the variants, so that many bodies reach the parameter
              // check
              if (plain > 0) all.add(Math.min(at, all.size()), "\"model\":\"llama3.1\"");
              return "{" + String.join(",", all) + "}";
            });
  }

  private Arbitrary<String> options() {
    Arbitrary<String> member =
        Combinators.combine(
                Arbitraries.of("num_predict", "logprobs", "top_logprobs", "seed"), spellings())
            .as((base, spell) -> key(spell.apply(base)) + ":" + value(base, spell.seed, null));
    return member.list().ofMaxSize(3).map(m -> "{" + String.join(",", m) + "}");
  }

  /** A way to spell a name: as it is, or a case, long-s, Kelvin, ligature or escape variant. */
  private record Spelling(int variant, int seed) {
    String apply(String name) {
      return switch (variant) {
        case 0, 1, 2, 3, 4, 5 -> name;
        case 6 -> name.toUpperCase(Locale.ROOT);
        case 7 -> Character.toUpperCase(name.charAt(0)) + name.substring(1);
        case 8 -> name.replaceFirst("s", "\u017f");
        case 9 -> name.replace('k', '\u212a');
        case 10 -> name.replace("st", "\ufb05");
        case 11 -> name.replace('i', '\u0131');
        default -> {
          StringBuilder b = new StringBuilder(name);
          for (int i = 0; i < b.length(); i++) {
            if ((seed >> (i % 31) & 1) == 1) b.setCharAt(i, Character.toUpperCase(b.charAt(i)));
          }
          yield b.toString();
        }
      };
    }
  }

  private Arbitrary<Spelling> spellings() {
    return Combinators.combine(Arbitraries.integers().between(0, 12), Arbitraries.integers())
        .as(Spelling::new);
  }

  /** A JSON key: raw UTF-8, or with a seed-chosen character written as an escape. */
  private static String key(String name) {
    StringBuilder b = new StringBuilder("\"");
    int escapeAt = Math.floorMod(name.hashCode(), name.length() + 2);
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c > 0x7e || i == escapeAt) {
        b.append(String.format("\\u%04x", (int) c));
      } else {
        b.append(c);
      }
    }
    return b.append('"').toString();
  }

  private static String value(String base, int seed, String options) {
    int i = Math.floorMod(seed, 1 << 16);
    return switch (base) {
      case "model" -> MODELS.get(i % MODELS.size());
      case "logprobs", "top_logprobs" -> SWITCHES.get(i % SWITCHES.size());
      case "max_tokens", "max_completion_tokens", "num_predict" -> NUMBERS.get(i % NUMBERS.size());
      case "options" -> i % 7 == 0 ? "null" : options;
      case "messages" -> "[{\"role\":\"user\",\"content\":\"hi\"}]";
      default -> i % 2 == 0 ? "true" : "5";
    };
  }

  // --- the property -----------------------------------------------------------------------------

  @Property(tries = 2000)
  void whatTheEngineLetsThroughEveryDecoderReadsAsTheEngineDid(@ForAll("bodies") String body)
      throws Exception {
    byte[] raw = body.getBytes(StandardCharsets.UTF_8);
    Decider.Verdict v =
        DECIDER.decide(new InferenceRequest("POST", "/api/chat", null, Map.of(), raw, "127.0.0.1"));
    if (!(v.decision() instanceof Decision.Allow)) {
      assertThat(((Decision.Deny) v.decision()).code())
          .isIn("bad_request", "not_entitled", "parameter_denied");
      return;
    }
    Map<String, Object> engine = new HashMap<>();
    for (String p : PATHS) engine.put(p, normal(ParameterRules.lookup(v.body(), p)));
    RObj top = (RObj) readRaw(raw);
    Map<String, Map<String, Object>> readings = new LinkedHashMap<>();
    readings.put("go", go(top));
    readings.put("pydantic", pydantic(top));
    readings.put("serde_json", serde(top));
    readings.put("JSON.parse", exactLastWins(top, true));
    readings.put("jackson", exactLastWins(top, false));
    for (Map.Entry<String, Map<String, Object>> e : readings.entrySet()) {
      Map<String, Object> r = e.getValue();
      if (r == null) continue; // this decoder refuses the body
      String who = e.getKey() + " reading " + body;
      assertThat(r.get("model")).as(who).isEqualTo(v.model());
      for (String p : DENIED)
        assertThat(notUsed(r.get(p))).as(who + " at " + p + " = " + r.get(p)).isTrue();
      for (String p : CAPPED) {
        if (r.get(p) != null) {
          assertThat(r.get(p)).as(who + " at " + p).isInstanceOf(BigDecimal.class);
          BigDecimal n = (BigDecimal) r.get(p);
          assertThat(n.signum() >= 0 && n.compareTo(MAX) <= 0)
              .as(who + " at " + p + " = " + n)
              .isTrue();
        }
      }
      for (String p : PATHS) {
        if (DENIED.contains(p)) continue; // a decoder may read false as 0: still not used
        assertThat(same(r.get(p), engine.get(p)))
            .as(who + " at " + p + ": " + r.get(p) + " vs " + engine.get(p))
            .isTrue();
      }
    }
  }

  // --- the prompt: what approval rules read ------------------------------------------------------

  @Provide
  Arbitrary<String> chats() {
    Arbitrary<String> text = Arbitraries.of("\"hi\"", "\"dump all\"", "\"x\\udc00\"", "null", "42");
    Arbitrary<String> part =
        Combinators.combine(spellings(), spellings(), text, text)
            .as(
                (s1, s2, t1, t2) ->
                    "{\"type\":\"text\","
                        + key(s1.apply("text"))
                        + ":"
                        + t1
                        + (s2.variant() % 3 == 0 ? "," + key(s2.apply("text")) + ":" + t2 : "")
                        + "}");
    Arbitrary<String> content =
        Arbitraries.oneOf(text, part.list().ofMaxSize(2).map(l -> "[" + String.join(",", l) + "]"));
    Arbitrary<String> message =
        Combinators.combine(spellings(), spellings(), content, content)
            .as(
                (s1, s2, c1, c2) ->
                    "{\"role\":\"user\","
                        + key(s1.apply("content"))
                        + ":"
                        + c1
                        + (s2.variant() % 3 == 0 ? "," + key(s2.apply("content")) + ":" + c2 : "")
                        + "}");
    return Combinators.combine(spellings(), message.list().ofMinSize(1).ofMaxSize(3))
        .as(
            (s, ms) ->
                "{\"model\":\"llama3.1\","
                    + key(s.variant() < 10 ? "messages" : s.apply("messages"))
                    + ":["
                    + String.join(",", ms)
                    + "]}");
  }

  /**
   * Whenever the engine lets a chat through, every decoder reads the same message contents and
   * content-part texts as the engine's tree holds (where the prompt extractor reads them).
   */
  @Property(tries = 1000)
  void whatTheEngineLetsThroughEveryDecoderReadsTheSamePrompt(@ForAll("chats") String body)
      throws Exception {
    byte[] raw = body.getBytes(StandardCharsets.UTF_8);
    Decider.Verdict v =
        DECIDER.decide(new InferenceRequest("POST", "/api/chat", null, Map.of(), raw, "127.0.0.1"));
    if (!(v.decision() instanceof Decision.Allow)) return;
    List<Object> engine = new ArrayList<>();
    for (JsonNode m : v.body().get("messages")) {
      JsonNode c = m.get("content");
      if (c == null || !c.isArray()) {
        engine.add(normal(c));
        continue;
      }
      List<Object> parts = new ArrayList<>();
      for (JsonNode p : c) parts.add(normal(p.get("text")));
      engine.add(parts);
    }
    RObj top = (RObj) readRaw(raw);
    Map<String, List<Object>> readings = new LinkedHashMap<>();
    readings.put("go", prompt(top, true));
    readings.put("pydantic", prompt(top, false));
    readings.put("serde_json", anyLoneSurrogate(top) ? null : prompt(top, false));
    readings.put("JSON.parse", prompt(top, false));
    for (Map.Entry<String, List<Object>> e : readings.entrySet()) {
      if (e.getValue() == null) continue;
      assertThat(e.getValue()).as(e.getKey() + " reading " + body).isEqualTo(engine);
    }
  }

  /** The contents and part texts, read by Go's rules (fold, last wins, null no-op) or exactly (last wins). */
  private static List<Object> prompt(RObj top, boolean go) {
    Raw messages = member(top, "messages", go);
    if (!(messages instanceof RArr list)) return null;
    List<Object> out = new ArrayList<>();
    for (Raw m : list.items()) {
      if (!(m instanceof RObj message)) return null;
      Raw c = member(message, "content", go);
      if (c instanceof RArr parts) {
        List<Object> texts = new ArrayList<>();
        for (Raw p : parts.items()) {
          if (!(p instanceof RObj part)) return null;
          Raw t = member(part, "text", go);
          texts.add(
              t instanceof RStr ts
                  ? (go ? replaceLoneSurrogates(ts.s()) : ts.s())
                  : t == null ? null : plain(t, false));
        }
        out.add(texts);
      } else {
        out.add(
            c instanceof RStr cs
                ? (go ? replaceLoneSurrogates(cs.s()) : cs.s())
                : c == null ? null : plain(c, false));
      }
    }
    return out;
  }

  /** The value a decoder takes for field {@code name}: the last member matching it. */
  private static Raw member(RObj o, String name, boolean go) {
    Raw found = null;
    for (Map.Entry<String, Raw> e : o.members()) {
      boolean match = go ? goField(e.getKey(), Set.of(name)) != null : e.getKey().equals(name);
      if (match && !(go && e.getValue() instanceof RNull)) found = e.getValue();
    }
    return found;
  }

  @Example
  void theIssuesExamplesAreRefusedAndAnOrdinaryBodyPasses() {
    for (String body :
        List.of(
            "{\"model\":\"llama3.1\",\"MODEL\":\"gpt-4\"}",
            "{\"model\":\"llama3.1\",\"LogProbs\":true}",
            "{\"model\":\"llama3.1\",\"TOP_LOGPROBS\":5}",
            "{\"model\":\"llama3.1\",\"logprob\\u017f\":true}")) {
      Decider.Verdict v =
          DECIDER.decide(
              new InferenceRequest(
                  "POST",
                  "/api/chat",
                  null,
                  Map.of(),
                  body.getBytes(StandardCharsets.UTF_8),
                  null));
      assertThat(v.decision()).as(body).isInstanceOf(Decision.Deny.class);
      assertThat(((Decision.Deny) v.decision()).code()).as(body).isEqualTo("bad_request");
    }
    Decider.Verdict ok =
        DECIDER.decide(
            new InferenceRequest(
                "POST",
                "/api/chat",
                null,
                Map.of(),
                "{\"model\":\"llama3.1\",\"options\":{\"num_predict\":100},\"logprobs\":false}"
                    .getBytes(StandardCharsets.UTF_8),
                null));
    assertThat(ok.decision()).isInstanceOf(Decision.Allow.class);
  }

  /** A denied switch is off when absent, null, false or zero (pydantic reads false as 0 for an int). */
  private static boolean notUsed(Object v) {
    return v == null || Boolean.FALSE.equals(v) || (v instanceof BigDecimal n && n.signum() == 0);
  }

  private static boolean same(Object a, Object b) {
    if (a instanceof BigDecimal x && b instanceof BigDecimal y) return x.compareTo(y) == 0;
    return a == null ? b == null : a.equals(b);
  }

  /** The engine's value as the oracle writes values: strings, BigDecimal, Boolean, or null. */
  private static Object normal(JsonNode n) {
    if (n == null || n.isNull()) return null;
    if (n.isTextual()) return n.textValue();
    if (n.isBoolean()) return n.booleanValue();
    if (n.isIntegralNumber()) return new BigDecimal(n.bigIntegerValue());
    if (n.isNumber())
      return Double.isFinite(n.doubleValue()) ? new BigDecimal(n.doubleValue()) : "Infinity";
    return n.toString();
  }

  // --- the raw reading --------------------------------------------------------------------------

  private sealed interface Raw permits RStr, RNum, RBool, RNull, RObj, RArr {}

  private record RStr(String s) implements Raw {}

  private record RNum(String text, boolean integral) implements Raw {}

  private record RBool(boolean b) implements Raw {}

  private record RNull() implements Raw {}

  private record RObj(List<Map.Entry<String, Raw>> members) implements Raw {}

  private record RArr(List<Raw> items) implements Raw {}

  /** Jackson's streaming parser without duplicate detection: every member, in order. */
  private static final JsonFactory STREAMING = new JsonFactory();

  private static Raw readRaw(byte[] raw) throws IOException {
    try (JsonParser p = STREAMING.createParser(raw)) {
      p.nextToken();
      return readValue(p);
    }
  }

  private static Raw readValue(JsonParser p) throws IOException {
    JsonToken t = p.currentToken();
    switch (t) {
      case START_OBJECT -> {
        List<Map.Entry<String, Raw>> members = new ArrayList<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          String name = p.currentName();
          p.nextToken();
          members.add(new SimpleEntry<>(name, readValue(p)));
        }
        return new RObj(members);
      }
      case START_ARRAY -> {
        List<Raw> items = new ArrayList<>();
        while (p.nextToken() != JsonToken.END_ARRAY) items.add(readValue(p));
        return new RArr(items);
      }
      case VALUE_STRING -> {
        return new RStr(p.getText());
      }
      case VALUE_NUMBER_INT -> {
        return new RNum(p.getText(), true);
      }
      case VALUE_NUMBER_FLOAT -> {
        return new RNum(p.getText(), false);
      }
      case VALUE_TRUE, VALUE_FALSE -> {
        return new RBool(t == JsonToken.VALUE_TRUE);
      }
      case VALUE_NULL -> {
        return new RNull();
      }
      default -> throw new IOException("unexpected " + t);
    }
  }

  /** A decoder refuses the body. */
  private static final class Refused extends Exception {
    private static final long serialVersionUID = 1L;
  }

  // --- Go encoding/json -------------------------------------------------------------------------

  private static Map<String, Object> go(RObj top) {
    Map<String, Object> out = new HashMap<>();
    try {
      for (Map.Entry<String, Raw> m : top.members()) {
        String field = goField(m.getKey(), TOP_FIELDS.keySet());
        if (field == null) continue;
        if (field.equals("options")) {
          if (m.getValue() instanceof RNull) continue;
          if (!(m.getValue() instanceof RObj opts)) throw new Refused();
          for (Map.Entry<String, Raw> o : opts.members()) {
            String f = goField(o.getKey(), OPTION_FIELDS.keySet());
            if (f != null) goSet(out, "options." + f, OPTION_FIELDS.get(f), o.getValue());
          }
        } else {
          goSet(out, field, TOP_FIELDS.get(field), m.getValue());
        }
      }
    } catch (Refused e) {
      return null;
    }
    return out;
  }

  private static void goSet(Map<String, Object> out, String path, Kind kind, Raw v) throws Refused {
    if (v instanceof RNull) return; // null leaves a Go field as it was
    switch (kind) {
      case STRING -> {
        if (!(v instanceof RStr s)) throw new Refused();
        out.put(path, replaceLoneSurrogates(s.s()));
      }
      case BOOL -> {
        if (!(v instanceof RBool b)) throw new Refused();
        out.put(path, b.b());
      }
      case INT -> {
        if (!(v instanceof RNum n) || !n.integral()) throw new Refused();
        BigInteger i = new BigInteger(n.text());
        if (i.bitLength() > 63) throw new Refused();
        out.put(path, new BigDecimal(i));
      }
      default -> throw new Refused();
    }
  }

  /** Go's field lookup: the exact name, else the first field equal under {@code bytes.EqualFold}. */
  private static String goField(String key, Set<String> fields) {
    if (fields.contains(key)) return key;
    for (String f : fields) {
      if (goEqualFold(key, f)) return f;
    }
    return null;
  }

  /** {@code bytes.EqualFold}: rune by rune, equal when one is in the other's SimpleFold orbit. */
  private static boolean goEqualFold(String a, String b) {
    int[] x = a.codePoints().toArray();
    int[] y = b.codePoints().toArray();
    if (x.length != y.length) return false;
    for (int i = 0; i < x.length; i++) {
      if (x[i] == y[i]) continue;
      boolean found = false;
      for (int r = goSimpleFold(x[i]); r != x[i]; r = goSimpleFold(r)) {
        if (r == y[i]) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
    return true;
  }

  /** Go's {@code unicode.SimpleFold} orbits for the characters generated here. */
  private static final Map<Integer, Integer> CASE_ORBIT =
      Map.of(
          0x4B, 0x6B, 0x6B, 0x212A, 0x212A, 0x4B, // K k K
          0x53, 0x73, 0x73, 0x17F, 0x17F, 0x53, // S s ſ
          0x130, 0x130, 0x131, 0x131); // İ and ı fold only to themselves

  private static int goSimpleFold(int r) {
    Integer o = CASE_ORBIT.get(r);
    if (o != null) return o;
    int lower = Character.toLowerCase(r);
    return lower != r ? lower : Character.toUpperCase(r);
  }

  private static String replaceLoneSurrogates(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c)
          && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        b.append(c).append(s.charAt(++i));
      } else {
        b.append(Character.isSurrogate(c) ? '\ufffd' : c);
      }
    }
    return b.toString();
  }

  // --- Python json + pydantic -------------------------------------------------------------------

  private static Map<String, Object> pydantic(RObj top) {
    Map<String, Object> out = new HashMap<>();
    try {
      Map<String, Raw> dict = lastWins(top);
      for (Map.Entry<String, Kind> f : TOP_FIELDS.entrySet()) {
        Raw v = dict.get(f.getKey());
        if (v == null || v instanceof RNull) continue;
        if (f.getValue() == Kind.OBJECT) {
          if (!(v instanceof RObj opts)) throw new Refused();
          Map<String, Raw> od = lastWins(opts);
          for (Map.Entry<String, Kind> o : OPTION_FIELDS.entrySet()) {
            Raw ov = od.get(o.getKey());
            if (ov != null && !(ov instanceof RNull))
              out.put("options." + o.getKey(), pydanticValue(o.getValue(), ov));
          }
        } else {
          out.put(f.getKey(), pydanticValue(f.getValue(), v));
        }
      }
    } catch (Refused e) {
      return null;
    }
    return out;
  }

  private static Object pydanticValue(Kind kind, Raw v) throws Refused {
    switch (kind) {
      case STRING -> {
        if (v instanceof RStr s) return s.s();
        throw new Refused();
      }
      case BOOL -> {
        if (v instanceof RBool b) return b.b();
        if (v instanceof RNum n && n.integral() && (n.text().equals("0") || n.text().equals("1"))) {
          return n.text().equals("1");
        }
        if (v instanceof RStr s) {
          String w = s.s().strip().toLowerCase(Locale.ROOT);
          if (List.of("1", "true", "t", "yes", "y", "on").contains(w)) return true;
          if (List.of("0", "false", "f", "no", "n", "off").contains(w)) return false;
        }
        throw new Refused();
      }
      case INT -> {
        if (v instanceof RBool b) return b.b() ? BigDecimal.ONE : BigDecimal.ZERO; // lax mode
        if (v instanceof RNum n) {
          if (n.integral()) return new BigDecimal(new BigInteger(n.text()));
          double d = Double.parseDouble(n.text());
          if (Double.isFinite(d) && d == Math.rint(d)) return new BigDecimal(d);
          throw new Refused();
        }
        if (v instanceof RStr s && s.s().strip().matches("[+-]?[0-9]+")) {
          return new BigDecimal(new BigInteger(s.s().strip()));
        }
        throw new Refused();
      }
      default -> throw new Refused();
    }
  }

  // --- serde_json -------------------------------------------------------------------------------

  private static Map<String, Object> serde(RObj top) {
    if (anyLoneSurrogate(top)) return null;
    Map<String, Object> out = new HashMap<>();
    try {
      Map<String, Raw> fields = unique(top);
      for (Map.Entry<String, Kind> f : TOP_FIELDS.entrySet()) {
        Raw v = fields.get(f.getKey());
        if (v == null || v instanceof RNull) continue;
        if (f.getValue() == Kind.OBJECT) {
          if (!(v instanceof RObj opts)) throw new Refused();
          Map<String, Raw> of = unique(opts);
          for (Map.Entry<String, Kind> o : OPTION_FIELDS.entrySet()) {
            Raw ov = of.get(o.getKey());
            if (ov != null && !(ov instanceof RNull))
              out.put("options." + o.getKey(), serdeValue(o.getValue(), ov));
          }
        } else {
          out.put(f.getKey(), serdeValue(f.getValue(), v));
        }
      }
    } catch (Refused e) {
      return null;
    }
    return out;
  }

  private static Map<String, Raw> unique(RObj o) throws Refused {
    Map<String, Raw> m = new HashMap<>();
    for (Map.Entry<String, Raw> e : o.members()) {
      if (m.put(e.getKey(), e.getValue()) != null) throw new Refused(); // "duplicate field"
    }
    return m;
  }

  private static Object serdeValue(Kind kind, Raw v) throws Refused {
    switch (kind) {
      case STRING -> {
        if (v instanceof RStr s) return s.s();
        throw new Refused();
      }
      case BOOL -> {
        if (v instanceof RBool b) return b.b();
        throw new Refused();
      }
      case INT -> {
        if (v instanceof RNum n && n.integral()) {
          BigInteger i = new BigInteger(n.text());
          if (i.signum() >= 0 && i.bitLength() <= 32) return new BigDecimal(i);
        }
        throw new Refused();
      }
      default -> throw new Refused();
    }
  }

  private static boolean anyLoneSurrogate(Raw r) {
    if (r instanceof RStr s) return !replaceLoneSurrogates(s.s()).equals(s.s());
    if (r instanceof RArr a)
      return a.items().stream().anyMatch(DecoderDifferentialProperties::anyLoneSurrogate);
    if (r instanceof RObj o) {
      for (Map.Entry<String, Raw> e : o.members()) {
        if (!replaceLoneSurrogates(e.getKey()).equals(e.getKey()) || anyLoneSurrogate(e.getValue()))
          return true;
      }
    }
    return false;
  }

  // --- JSON.parse and Jackson -------------------------------------------------------------------

  private static Map<String, Object> exactLastWins(RObj top, boolean doubles) {
    Map<String, Object> out = new HashMap<>();
    Map<String, Raw> dict = lastWins(top);
    for (String f : TOP_FIELDS.keySet()) {
      Raw v = dict.get(f);
      if (v == null) continue;
      if (f.equals("options")) {
        if (v instanceof RObj opts) {
          Map<String, Raw> od = lastWins(opts);
          for (String o : OPTION_FIELDS.keySet()) {
            if (od.containsKey(o)) out.put("options." + o, plain(od.get(o), doubles));
          }
        }
      } else {
        out.put(f, plain(v, doubles));
      }
    }
    return out;
  }

  private static Object plain(Raw v, boolean doubles) {
    if (v instanceof RStr s) return s.s();
    if (v instanceof RBool b) return b.b();
    if (v instanceof RNull) return null;
    if (v instanceof RNum n) {
      if (n.integral() && !doubles) return new BigDecimal(new BigInteger(n.text()));
      double d = Double.parseDouble(n.text());
      return Double.isFinite(d) ? new BigDecimal(d) : "Infinity";
    }
    return v.toString();
  }

  private static Map<String, Raw> lastWins(RObj o) {
    Map<String, Raw> m = new HashMap<>();
    for (Map.Entry<String, Raw> e : o.members()) m.put(e.getKey(), e.getValue());
    return m;
  }
}
