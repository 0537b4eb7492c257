/*
 * Known vectors for actionstate.serde's key functions, computed with the real JVM functions:
 * String.hashCode, Flink's MathUtils.murmurHash, UUID.nameUUIDFromBytes, Double.toString and
 * Jackson with ORDER_MAP_ENTRIES_BY_KEYS (configured like Flink Agents' ActionStateUtil).
 * Prints one JSON document (ASCII only) on stdout. Run it through regen.sh.
 */

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import org.apache.flink.util.MathUtils;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;

public class KeyVectors {

    /** Same configuration as ActionStateUtil's MAPPER in Flink Agents 0.3.0. */
    static final JsonMapper SORTED =
            JsonMapper.builder()
                    .configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true)
                    .configure(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY, true)
                    .build();

    static final ObjectMapper PLAIN = new ObjectMapper();

    static final int[] PARTITION_COUNTS = {
        1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32, 50, 64, 100, 128, 255, 256, 1000, 1024,
        Integer.MAX_VALUE
    };

    static List<Integer> units(String s) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < s.length(); i++) {
            out.add((int) s.charAt(i));
        }
        return out;
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x & 0xff));
        }
        return sb.toString();
    }

    static String randomString(Random r, int maxLen) {
        int len = r.nextInt(maxLen + 1);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < len; i++) {
            switch (r.nextInt(4)) {
                case 0: sb.append((char) (0x20 + r.nextInt(0x5f))); break;
                case 1: sb.append((char) r.nextInt(0x800)); break;
                case 2: sb.append((char) r.nextInt(0x10000)); break; // lone surrogates too
                default: sb.appendCodePoint(0x10000 + r.nextInt(0x100000)); break;
            }
        }
        return sb.toString();
    }

    static Map<String, Object> stringVector(String s) {
        Map<String, Object> v = new LinkedHashMap<>();
        int hash = s.hashCode();
        int murmur = MathUtils.murmurHash(hash);
        v.put("units", units(s));
        v.put("hash", hash);
        v.put("murmur", murmur);
        Map<String, Integer> parts = new LinkedHashMap<>();
        for (int n : PARTITION_COUNTS) {
            parts.put(Integer.toString(n), murmur % n);
        }
        v.put("partitions", parts);
        return v;
    }

    public static void main(String[] args) throws Exception {
        Random r = new Random(20260523L);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("java_version", System.getProperty("java.version"));
        out.put("partition_counts", PARTITION_COUNTS);

        // --- String.hashCode, murmurHash and partition ---
        List<String> strings = new ArrayList<>(List.of(
                "", "a", "A", "0", "1", "42", "-1", "user-1", "order-42", "customer:alice",
                "Aa", "BB", "polygenelubricants", "hello world", "\u00e9t\u00e9", "\u00fcber",
                "\u4f60\u597d", "\u65e5\u672c\u8a9e\u30ad\u30fc", "\uD83D\uDE00", "a\uD83D\uDE80b",
                "\uD834\uDD1E", "\uD800", "\uDC00", "x\uDBFFy", "\uFFFF", "\u0000",
                "\u0000\u0001\u001f", "tab\tnew\nline", "\u200B", "e\u0301", "\u2028\u2029",
                "key with spaces", "UPPER", "MiXeD-123", "very.dotted.key.name"));
        strings.add("x".repeat(1000));
        strings.add("\u00e9".repeat(333) + "\uD83D\uDE00".repeat(100));
        for (int i = 0; i < 100; i++) {
            strings.add(Integer.toString(i));
        }
        for (int i = 0; i < 150; i++) {
            strings.add(randomString(r, 40));
        }
        List<Map<String, Object>> sv = new ArrayList<>();
        for (String s : strings) {
            sv.add(stringVector(s));
        }
        out.put("strings", sv);

        // --- murmurHash over ints ---
        List<Integer> ints = new ArrayList<>(List.of(
                0, 1, -1, 2, 4, 31, 42, 127, 128, 255, 256, 65535, 65536, 1 << 30, -(1 << 30),
                Integer.MAX_VALUE, Integer.MIN_VALUE, Integer.MAX_VALUE - 1,
                Integer.MIN_VALUE + 1, 0xcc9e2d51, 0x1b873593, 0xe6546b64));
        for (int i = 0; i < 300; i++) {
            ints.add(r.nextInt());
        }
        // Search for inputs whose finalized hash is Integer.MIN_VALUE is hopeless; instead
        // record many values so the abs() branch is exercised both ways.
        List<Map<String, Object>> mv = new ArrayList<>();
        for (int code : ints) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("code", code);
            v.put("murmur", MathUtils.murmurHash(code));
            mv.add(v);
        }
        out.put("murmur", mv);

        // --- UUID.nameUUIDFromBytes ---
        List<byte[]> blobs = new ArrayList<>();
        blobs.add(new byte[0]);
        blobs.add("a".getBytes(StandardCharsets.UTF_8));
        blobs.add("{}".getBytes(StandardCharsets.UTF_8));
        blobs.add("12345".getBytes(StandardCharsets.UTF_8));
        byte[] all = new byte[256];
        for (int i = 0; i < 256; i++) {
            all[i] = (byte) i;
        }
        blobs.add(all);
        for (int i = 0; i < 60; i++) {
            byte[] b = new byte[r.nextInt(200)];
            r.nextBytes(b);
            blobs.add(b);
        }
        List<Map<String, Object>> uv = new ArrayList<>();
        for (byte[] b : blobs) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("hex", hex(b));
            v.put("uuid", UUID.nameUUIDFromBytes(b).toString());
            uv.add(v);
        }
        out.put("name_uuids", uv);

        // --- action UUIDs: nameUUIDFromBytes of a name's UTF-8 bytes ---
        List<Map<String, Object>> av = new ArrayList<>();
        for (String name : List.of("process_order", "charge", "a", "123456789",
                "\u00e9v\u00e9nement", "\uD83D\uDE00-action", "module.Class.method")) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("units", units(name));
            v.put("uuid", UUID.nameUUIDFromBytes(name.getBytes(StandardCharsets.UTF_8)).toString());
            av.add(v);
        }
        out.put("action_uuids", av);

        // --- Double.toString ---
        List<Double> doubles = new ArrayList<>(List.of(
                0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 100.0, 12.5, 1e-3, 1e-4,
                0.00099999, 0.001000001, 9999999.0, 9999999.999, 1e7, 1.0000001e7, 12345678.9,
                1e15, 1e16, 1e17, 1e21, 1e22, 1e23, 2e23, 1e100, 1.7976931348623157e308,
                Double.MIN_VALUE, 2 * Double.MIN_VALUE, 3 * Double.MIN_VALUE, 9.8e-322,
                Double.MIN_NORMAL, 2.2250738585072009e-308, 5e-324 * 1000, Math.PI, Math.E,
                123456.789, 0.000123, 4.35, 2.675, 1.005, 1e-7, 5e-5, 2.5e-3,
                Math.pow(2, -44), Math.pow(2, 63), Math.pow(2, 64), 9007199254740993.0,
                1.1e-3, 3.0e10, 6.02214076e23));
        for (int i = 0; i < 400; i++) {
            double d = Double.longBitsToDouble(r.nextLong());
            if (Double.isFinite(d)) {
                doubles.add(d);
            }
        }
        for (int i = 0; i < 300; i++) {
            // decimal-looking numbers of every magnitude, the common case in real data
            int digits = 1 + r.nextInt(17);
            long m = (long) (r.nextDouble() * Math.pow(10, digits));
            doubles.add(Double.parseDouble(m + "e" + (r.nextInt(60) - 30)));
        }
        List<Map<String, Object>> dv = new ArrayList<>();
        for (double d : doubles) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("bits", Long.toHexString(Double.doubleToRawLongBits(d)));
            v.put("text", Double.toString(d));
            dv.add(v);
        }
        out.put("doubles", dv);

        // --- event attributes: Jackson with sorted map keys, and the event UUID ---
        List<String> inputs = new ArrayList<>(List.of(
                "{}",
                "{\"input\":\"test input\"}",
                "{\"input\":{\"order_id\":\"o-42\",\"amount\":12.5,\"items\":[1,2,3]}}",
                "{\"b\":1,\"a\":2,\"c\":{\"z\":[{\"y\":1,\"x\":2}],\"a\":null}}",
                "{\"int\":1,\"neg\":-7,\"long\":9223372036854775807,\"minlong\":-9223372036854775808,"
                        + "\"big\":123456789012345678901234567890,\"bigneg\":-98765432109876543210}",
                "{\"f\":1.0,\"g\":-0.0,\"h\":0.1,\"i\":1e7,\"j\":1E-4,\"k\":123456.789,\"l\":1e300,"
                        + "\"m\":2.5e-3,\"n\":9999999.0,\"o\":0.001,\"p\":4.9e-324,\"q\":1e22}",
                "{\"t\":true,\"f\":false,\"n\":null,\"e\":\"\",\"l\":[],\"o\":{}}",
                "{\"\u00e9\":1,\"e\":2,\"E\":3,\"_\":4,\"\":5,\"aa\":6,\"a\":7,\"a_b\":8,\"A\":9}",
                "{\"\uD83D\uDE00\":1,\"\uFFFD\":2,\"\uFF21\":3,\"\u00ff\":4,\"\uD800\uDC00\":5}",
                "{\"s\":\"\u00e9t\u00e9 \u4f60\u597d \uD83D\uDE00 \uD834\uDD1E\"}",
                "{\"ctl\":\"\\u0000\\u0001\\u001f\\b\\t\\n\\f\\r\\\"\\\\/\\u007f\\u2028\\u2029\"}",
                "{\"lone\":\"a\\ud800b\",\"low\":\"\\udc00\"}",
                "{\"nested\":{\"deep\":{\"deeper\":{\"k2\":[{\"b\":[{\"d\":1,\"c\":2}],\"a\":0}],\"k1\":1}}}}",
                "{\"list\":[1,\"two\",3.0,true,null,{\"b\":2,\"a\":1},[[]]]}",
                "{\"input\":[\"x\",{\"\u00e9l\u00e8ve\":\"caf\u00e9\",\"Zebra\":1,\"apple\":2}]}"));
        for (int i = 0; i < 40; i++) {
            inputs.add(PLAIN.writeValueAsString(randomValue(r, 0)));
        }
        // 1e23 is left out here: JDK 17 prints it 9.999999999999999E22 (see "doubles").
        List<Map<String, Object>> ev = new ArrayList<>();
        for (String text : inputs) {
            @SuppressWarnings("unchecked")
            Map<String, Object> attrs = PLAIN.readValue(text, HashMap.class);
            byte[] sorted = SORTED.writeValueAsBytes(attrs);
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("input", text);
            v.put("jackson_hex", hex(sorted));
            v.put("uuid", UUID.nameUUIDFromBytes(sorted).toString());
            ev.add(v);
        }
        out.put("events", ev);

        ObjectMapper printer =
                JsonMapper.builder()
                        .enable(JsonWriteFeature.ESCAPE_NON_ASCII)
                        .enable(SerializationFeature.INDENT_OUTPUT)
                        .build();
        System.out.println(printer.writeValueAsString(out));
    }

    /** A random attribute map: every JSON type, nested, with unicode keys. */
    static Object randomValue(Random r, int depth) {
        int kind = depth == 0 ? 6 : r.nextInt(depth > 3 ? 5 : 8);
        switch (kind) {
            case 0: return null;
            case 1: return r.nextBoolean();
            case 2: return r.nextInt(3) == 0 ? (Object) r.nextLong() : (Object) r.nextInt();
            case 3: return r.nextInt(4) == 0
                    ? (Object) new BigInteger(100, r).negate()
                    : (Object) ((r.nextDouble() - 0.5) * Math.pow(10, r.nextInt(40) - 20));
            case 4: return randomString(r, 12).replace("\uD800", "x");
            case 5:
            case 7: {
                List<Object> l = new ArrayList<>();
                int n = r.nextInt(4);
                for (int i = 0; i < n; i++) {
                    l.add(randomValue(r, depth + 1));
                }
                return l;
            }
            default: {
                Map<String, Object> m = new HashMap<>();
                int n = 1 + r.nextInt(5);
                for (int i = 0; i < n; i++) {
                    m.put(randomString(r, 6), randomValue(r, depth + 1));
                }
                return m;
            }
        }
    }
}
