package actionstate.interop;

import org.apache.flink.agents.api.Event;
import org.apache.flink.agents.api.InputEvent;
import org.apache.flink.agents.api.OutputEvent;
import org.apache.flink.agents.api.context.MemoryUpdate;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.CallResult;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.function.Supplier;

/** The golden corpus: states, key samples and partition samples. Deterministic by construction. */
final class Corpus {
    private Corpus() {}

    /** One golden state: a file name, what it covers, and the state itself. */
    static final class Sample {
        final String name;
        final String description;
        final ActionState state;

        Sample(String name, String description, ActionState state) {
            this.name = name;
            this.description = description;
            this.state = state;
        }
    }

    /** One key sample: inputs of {@code ActionStateUtil.generateKey}. */
    static final class KeySample {
        final String agentKey;
        final long seq;
        final String action;
        final String eventClass;
        final String attributesJson;

        KeySample(String agentKey, long seq, String action, String eventClass, String attributesJson) {
            this.agentKey = agentKey;
            this.seq = seq;
            this.action = action;
            this.eventClass = eventClass;
            this.attributesJson = attributesJson;
        }
    }

    static UUID id(String seed) {
        return UUID.nameUUIDFromBytes(("interop-" + seed).getBytes(StandardCharsets.UTF_8));
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Attribute values of every JSON type, in insertion order. */
    static Map<String, Object> everyType() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("string", "text");
        m.put("empty", "");
        m.put("int", 42);
        m.put("negative", -7);
        m.put("long", 9007199254740993L);
        m.put("bigint", new BigInteger("123456789012345678901234567890"));
        m.put("double", 3.25);
        m.put("tiny", 1.0e-9);
        m.put("huge", 1.0e21);
        m.put("whole_double", 2.0);
        m.put("true", true);
        m.put("false", false);
        m.put("null", null);
        m.put("list", new ArrayList<>(Arrays.asList(1, "two", 3.5, null, false)));
        m.put("empty_list", new ArrayList<>());
        Map<String, Object> nested = new LinkedHashMap<>();
        nested.put("z", 1);
        nested.put("a", new ArrayList<>(List.of(new LinkedHashMap<>(Map.of("deep", "yes")))));
        nested.put("empty_object", new LinkedHashMap<>());
        m.put("object", nested);
        return m;
    }

    static byte[] pseudoRandom(int size, long seed) {
        byte[] bytes = new byte[size];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    static List<Sample> states() {
        List<Sample> out = new ArrayList<>();
        add(out, "empty", "no task event, every list empty, not completed", () -> new ActionState((Event) null));
        add(out, "input_event_only", "an InputEvent as task event, nothing else", () -> new ActionState(new InputEvent(id("in-1"), attrs("input", "hello"))));
        add(out, "legacy_succeeded", "call result without status, result payload only (effective SUCCEEDED)", () -> {
            ActionState s = new ActionState(new InputEvent(id("legacy-1"), attrs("input", 1)));
            s.addCallResult(Upstream.legacyCallResult("orders.charge", "0123456789abcdef", utf8("{\"ok\":true}"), null));
            return s;
        });
        add(out, "legacy_failed", "call result without status, exception payload set (effective FAILED)", () -> {
            ActionState s = new ActionState(new InputEvent(id("legacy-2"), attrs("input", 2)));
            s.addCallResult(Upstream.legacyCallResult("orders.charge", "0123456789abcdef", null, utf8("boom")));
            return s;
        });
        add(out, "legacy_both_null", "call result without status and without payloads (effective SUCCEEDED, never PENDING)", () -> {
            ActionState s = new ActionState(new InputEvent(id("legacy-3"), attrs("input", 3)));
            s.addCallResult(Upstream.legacyCallResult("tasks.noop", "", null, null));
            return s;
        });
        add(out, "pending", "one PENDING call (no payloads)", () -> {
            ActionState s = new ActionState(new InputEvent(id("pending"), attrs("input", "order-42")));
            s.addCallResult(CallResult.pending("payments.charge", "a1b2c3d4e5f60718"));
            return s;
        });
        add(out, "succeeded", "one SUCCEEDED call", () -> {
            ActionState s = new ActionState(new InputEvent(id("ok"), attrs("input", "order-43")));
            s.addCallResult(new CallResult("payments.charge", "a1b2c3d4e5f60718", utf8("\"receipt-9\"")));
            return s;
        });
        add(out, "failed", "one FAILED call", () -> {
            ActionState s = new ActionState(new InputEvent(id("failed"), attrs("input", "order-44")));
            s.addCallResult(new CallResult("payments.charge", "a1b2c3d4e5f60718", null, utf8("{\"error\":\"declined\"}")));
            return s;
        });
        add(out, "mixed_calls", "SUCCEEDED, FAILED, legacy, empty payload and PENDING calls in one list", () -> {
            ActionState s = new ActionState(new InputEvent(id("mixed"), attrs("input", List.of(1, 2, 3))));
            s.addCallResult(new CallResult("a.one", "1111111111111111", utf8("1")));
            s.addCallResult(new CallResult("a.two", "2222222222222222", null, utf8("err")));
            s.addCallResult(Upstream.legacyCallResult("a.three", "3333333333333333", utf8("3"), null));
            s.addCallResult(new CallResult("a.four", "4444444444444444", new byte[0]));
            s.addCallResult(CallResult.pending("a.five", "5555555555555555"));
            return s;
        });
        add(out, "events_every_type", "input and output events whose attributes hold every JSON type", () -> {
            ActionState s = new ActionState(new InputEvent(id("types-in"), attrs("input", everyType())));
            s.addEvent(new OutputEvent(id("types-out"), attrs("output", everyType())));
            Map<String, Object> attributes = everyType();
            attributes.put("extra", "value");
            s.addEvent(new Event(id("types-custom"), "my_custom_event", attributes));
            return s;
        });
        add(out, "hashmap_attributes", "attributes in a java.util.HashMap (Java's own iteration order)", () -> {
            Map<String, Object> m = new HashMap<>();
            for (String k : List.of("zeta", "alpha", "mid", "Beta", "_x", "10", "9")) {
                m.put(k, k.length());
            }
            return new ActionState(new Event(id("hashmap"), "plain", m));
        });
        add(out, "memory_updates", "sensory and short-term memory updates with values of every JSON type", () -> {
            ActionState s = new ActionState(new InputEvent(id("memory"), attrs("input", "m")));
            s.addSensoryMemoryUpdate(new MemoryUpdate("sensory.last_input", "m"));
            s.addSensoryMemoryUpdate(new MemoryUpdate("sensory.count", 3));
            s.addSensoryMemoryUpdate(new MemoryUpdate("sensory.none", null));
            s.addShortTermMemoryUpdate(new MemoryUpdate("stm.profile", everyType()));
            s.addShortTermMemoryUpdate(new MemoryUpdate("stm.list", List.of("a", 1, 2.5, true)));
            s.addShortTermMemoryUpdate(new MemoryUpdate("stm.flag", false));
            s.addShortTermMemoryUpdate(new MemoryUpdate("stm.ratio", 0.1));
            return s;
        });
        add(out, "unicode", "non-ASCII text, astral characters, control characters and escapes everywhere", () -> {
            String text = "héllo wörld ✓ 日本語 😀 \u0000\u0001\u001f\t\n\r\"\\/\u007f\u2028\u2029 </script>";
            Map<String, Object> a = new LinkedHashMap<>();
            a.put("input", text);
            a.put("ключ", "значение");
            a.put("😀", "emoji key");
            a.put("\uff61", "halfwidth");
            ActionState s = new ActionState(new InputEvent(id("unicode"), a));
            s.addEvent(new OutputEvent(id("unicode-out"), attrs("output", text)));
            s.addShortTermMemoryUpdate(new MemoryUpdate("stm.ünïcode.路径", text));
            s.addCallResult(new CallResult("módulo.función_😀", "ffffffffffffffff", utf8(text)));
            return s;
        });
        add(out, "large_payload", "a 256 KiB result payload and a 64 Ki-character attribute", () -> {
            StringBuilder big = new StringBuilder();
            for (int i = 0; big.length() < 65536; i++) {
                big.append("line ").append(i).append(" ✓\n");
            }
            ActionState s = new ActionState(new InputEvent(id("large"), attrs("input", big.toString())));
            s.addCallResult(new CallResult("blob.fetch", "0000000000000000", pseudoRandom(262144, 42)));
            return s;
        });
        add(out, "completed", "a completed action: output event kept, call results cleared", () -> {
            ActionState s = new ActionState(new InputEvent(id("done"), attrs("input", "x")));
            s.addEvent(new OutputEvent(id("done-out"), attrs("output", "y")));
            s.addShortTermMemoryUpdate(new MemoryUpdate("stm.done", true));
            s.addCallResult(new CallResult("f.g", "abcdefabcdefabcd", utf8("1")));
            s.markCompleted();
            return s;
        });
        add(out, "event_null_id", "a generic Event whose id is null", () -> new ActionState(new Event(null, "no_id", attrs("k", "v"))));
        add(out, "lone_surrogate", "a Java string holding a lone surrogate (Jackson escapes it as \\uD800)", () -> new ActionState(new InputEvent(id("surrogate"), attrs("input", "a\uD800b"))));
        add(out, "python_like", "what the Python client writes: module.qualname ids, 16-hex digests, pickle-looking payloads", () -> {
            ActionState s = new ActionState(new InputEvent(id("py"), attrs("input", Map.of("order", "o-1"))));
            s.addCallResult(new CallResult("shop.payments.charge", "9f86d081884c7d65", new byte[] {(byte) 0x80, 5, (byte) 0x95, 0, 0, 0, 0, 0, 0, 0, 0, 0x4e, 0x2e}));
            s.addCallResult(CallResult.pending("shop.mail.send", "60303ae22b998861"));
            return s;
        });
        return out;
    }

    private static void add(List<Sample> out, String name, String description, Supplier<ActionState> state) {
        out.add(new Sample(name, description, state.get()));
    }

    static Map<String, Object> attrs(String key, Object value) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(key, value);
        return m;
    }

    /** Attribute JSON texts for key samples: every JSON type and the number forms Java prints. */
    static final List<String> KEY_ATTRIBUTES =
            List.of(
                    "{}",
                    "{\"input\": \"hello\"}",
                    "{\"input\": 42}",
                    "{\"input\": null}",
                    "{\"input\": true, \"other\": false}",
                    "{\"input\": [1, \"two\", 3.5, null, [], {}]}",
                    "{\"b\": {\"z\": 1, \"a\": [3, 2, 1]}, \"a\": null, \"c\": true, \"d\": false, \"e\": \"\"}",
                    "{\"x\": 1.5}",
                    "{\"x\": 0.1}",
                    "{\"x\": 100.0}",
                    "{\"x\": 2.0, \"y\": -0.0}",
                    "{\"x\": 1e7, \"y\": 9999999.0, \"z\": 12345678.9}",
                    "{\"x\": 0.001, \"y\": 0.0001, \"z\": 1.5e-7}",
                    "{\"x\": 1e10, \"y\": 1e21, \"z\": 1e22}",
                    "{\"x\": 1e300, \"y\": 5e-324, \"z\": 1.7976931348623157e308}",
                    "{\"x\": 123456789012.5, \"y\": 0.30000000000000004}",
                    "{\"i\": 2147483647, \"j\": 2147483648, \"k\": -2147483649}",
                    "{\"i\": 9223372036854775807, \"j\": 9223372036854775808, \"k\": -9223372036854775809}",
                    "{\"msg\": \"héllo wörld ✓ 日本語 😀\"}",
                    "{\"\\uff61\": 1, \"😀\": 2, \"a\": 3, \"B\": 4, \"é\": 5, \"\": 6}",
                    "{\"s\": \"\\u0000\\u0001\\u001f\\t\\n\\r\\\"\\\\/\\u007f\\u2028</script>\"}",
                    "{\"input\": {\"order\": \"o-1\", \"items\": [{\"sku\": \"a\", \"qty\": 2}, {\"sku\": \"b\", \"qty\": 1}]}}");

    static List<KeySample> keys() {
        List<KeySample> out = new ArrayList<>();
        String[] agentKeys = {"user-1", "42", "ünïcode-ключ", "😀", "a b c", "-1", "x".repeat(300)};
        long[] seqs = {0, 1, 7, 2147483648L, Long.MAX_VALUE, 123456789};
        String[] actions = {"process", "charge_payment", "ünïcode action", ""};
        for (int i = 0; i < KEY_ATTRIBUTES.size(); i++) {
            String cls = i % 3 == 0 ? InputEvent.class.getName() : i % 3 == 1 ? OutputEvent.class.getName() : Event.class.getName();
            out.add(new KeySample(agentKeys[i % agentKeys.length], seqs[i % seqs.length], actions[i % actions.length], cls, KEY_ATTRIBUTES.get(i)));
        }
        return out;
    }

    static final int[] PARTITION_COUNTS = {1, 2, 3, 7, 8, 64, 100, 1000};

    /** Agent keys for partition samples: fixed ones, generated ones, and a MIN_VALUE edge case. */
    static List<String> partitionKeys() {
        List<String> out = new ArrayList<>(List.of(
                "user-1", "user-2", "42", "0", "-1", "a", "A", "ünïcode", "ключ", "日本語", "😀", "a😀b",
                "\uffff", "\u0080", "x".repeat(1000), "order-00042", "tenant:acme/user:7", " ", "a b"));
        Random random = new Random(1234);
        int[][] ranges = {{0x21, 0x7e}, {0xa0, 0x7ff}, {0x800, 0xd7ff}, {0xe000, 0xfffd}, {0x10000, 0x10ffff}};
        for (int i = 0; i < 40; i++) {
            int[] range = ranges[i % ranges.length];
            StringBuilder sb = new StringBuilder();
            int len = 1 + random.nextInt(24);
            while (sb.length() < len) {
                int cp = range[0] + random.nextInt(range[1] - range[0] + 1);
                if (cp != '_') {
                    sb.appendCodePoint(cp);
                }
            }
            out.add(sb.toString());
        }
        out.add(Murmur.keyHashingToMinValue());
        return out;
    }
}
