package actionstate.interop;

import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.api.Event;
import org.apache.flink.agents.plan.actions.Action;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.util.MathUtils;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.UUID;

/**
 * {@code vectors <outdir>}: writes the golden records exactly as the upstream seder produced them
 * ({@code records/<name>.json}) and {@code index.json} with each record's Java field dump, key
 * samples from {@code ActionStateUtil.generateKey}, partitions from {@code
 * ActionStateKeyPartitioner} and name-based UUIDs. Output is byte-identical from run to run.
 */
final class VectorsCommand {
    private static final List<String> UUID_TEXTS =
            List.of("", "process", "charge_payment", "ünïcode action", "😀", "-1234567890", "a".repeat(1000));

    private static final int DUMP_LIMIT = 65536;

    private VectorsCommand() {}

    static int run(List<String> args) throws Exception {
        if (args.size() != 1) {
            throw new IllegalArgumentException("usage: vectors <outdir>");
        }
        Path outdir = Path.of(args.get(0));
        Path records = outdir.resolve("records");
        Files.createDirectories(records);
        try (var old = Files.list(records)) {
            for (Path p : (Iterable<Path>) old::iterator) {
                Files.delete(p);
            }
        }
        ObjectNode index = Upstream.object();
        index.put("format", 1);
        ObjectNode generator = index.putObject("generator");
        generator.put("command", "interop/regen-vectors.sh");
        generator.put("flinkAgents", "0.3.0");
        generator.put("jackson", com.fasterxml.jackson.databind.cfg.PackageVersion.VERSION.toString());
        // event UUIDs hash Double.toString output, which changed in JDK 19 for some doubles
        generator.put("javaFeatureVersion", Runtime.version().feature());
        index.set("records", records(records));
        index.set("keys", keys());
        index.set("partitions", partitions());
        index.set("uuids", uuids());
        DefaultPrettyPrinter printer = new DefaultPrettyPrinter();
        printer.indentArraysWith(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE);
        printer.indentObjectsWith(new DefaultIndenter("  ", "\n"));
        byte[] text = Upstream.JSON.writer(printer).writeValueAsBytes(index);
        Files.write(outdir.resolve("index.json"), concat(text, "\n".getBytes(StandardCharsets.UTF_8)));
        System.err.printf("wrote %d records and index.json to %s%n", index.get("records").size(), outdir);
        return 0;
    }

    private static ArrayNode records(Path dir) throws IOException, NoSuchAlgorithmException {
        ArrayNode out = Upstream.JSON.createArrayNode();
        for (Corpus.Sample sample : Corpus.states()) {
            byte[] value = Upstream.encode(sample.state);
            String file = "records/" + sample.name + ".json";
            Files.write(dir.resolve(sample.name + ".json"), value);
            ActionState back = Upstream.decode(value);
            ObjectNode item = out.addObject();
            item.put("name", sample.name);
            item.put("file", file);
            item.put("description", sample.description);
            item.put("size", value.length);
            item.put("sha256", HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(value)));
            item.put("javaRoundTripEqual", back.equals(sample.state));
            // a dump of the large record would only repeat its 400 KB in the index
            item.set("dump", value.length > DUMP_LIMIT ? Upstream.JSON.nullNode() : Dump.state(back));
        }
        return out;
    }

    private static ArrayNode keys() throws IOException {
        ArrayNode out = Upstream.JSON.createArrayNode();
        int n = 0;
        for (Corpus.KeySample sample : Corpus.keys()) {
            ObjectNode spec = Upstream.object();
            spec.put("@class", sample.eventClass);
            spec.put("id", Corpus.id("key-" + n++).toString());
            spec.put("type", "sample_event");
            spec.set("attributes", Upstream.JSON.readTree(sample.attributesJson));
            Event event = Upstream.event(spec);
            Action action = Upstream.action(sample.action);
            String key = Upstream.generateKey(sample.agentKey, sample.seq, action, event);
            String[] parts = key.split("_");
            String eventUuid = parts[parts.length - 2];
            String canonical = Upstream.canonicalAttributes(event, eventUuid);
            ObjectNode item = out.addObject();
            item.put("agentKey", sample.agentKey);
            item.put("seq", sample.seq);
            item.put("action", sample.action);
            item.put("actionHashCode", action.hashCode());
            item.put("eventClass", sample.eventClass);
            item.put("attributesJson", sample.attributesJson);
            item.put("canonicalAttributesJson", canonical);
            item.put("eventUuid", eventUuid);
            item.put("actionUuid", parts[parts.length - 1]);
            item.put("key", key);
        }
        return out;
    }

    private static ArrayNode partitions() {
        ArrayNode out = Upstream.JSON.createArrayNode();
        String tail = "_0_" + Corpus.id("p-event") + "_" + Corpus.id("p-action");
        for (String agentKey : Corpus.partitionKeys()) {
            ObjectNode item = out.addObject();
            item.put("agentKey", agentKey);
            item.put("stateKey", agentKey + tail);
            item.put("hashCode", agentKey.hashCode());
            item.put("murmurHash", MathUtils.murmurHash(agentKey.hashCode()));
            ObjectNode parts = item.putObject("partitions");
            for (int count : Corpus.PARTITION_COUNTS) {
                parts.put(Integer.toString(count), Upstream.partition(agentKey + tail, count));
            }
        }
        return out;
    }

    private static ArrayNode uuids() {
        ArrayNode out = Upstream.JSON.createArrayNode();
        for (String text : UUID_TEXTS) {
            ObjectNode item = out.addObject();
            item.put("text", text);
            item.put("uuid", UUID.nameUUIDFromBytes(text.getBytes(StandardCharsets.UTF_8)).toString());
        }
        return out;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
