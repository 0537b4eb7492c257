package actionstate.interop;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.KafkaActionStateStore;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * {@code bench seder|put|rebuild}: the JVM side of bench/vs_java.py. Prints one JSON object.
 *
 * <ul>
 *   <li>{@code seder [--warmup S] [--seconds S]}: stdin holds one base64 record per line; decode
 *       and encode rates of the upstream seder, measured after a warm-up of the same loop.
 *   <li>{@code put --bootstrap B --topic T [--partitions N] [--warmup N]}: stdin as for
 *       store-write; the first N records are put to {@code T-warmup} first, then every record is
 *       put to T through {@code KafkaActionStateStore.put} (acks=all, one flush per put).
 *   <li>{@code rebuild --bootstrap B --topic T}: {@code rebuildState} from offset 0 of every
 *       partition, once to warm up and once measured, each with a fresh store.
 * </ul>
 */
final class BenchCommand {
    private BenchCommand() {}

    static int run(List<String> args) throws Exception {
        if (args.isEmpty()) {
            throw new IllegalArgumentException("usage: bench seder|put|rebuild [options]");
        }
        Map<String, String> opts = StoreCommand.options(args.subList(1, args.size()));
        ObjectNode out;
        switch (args.get(0)) {
            case "seder":
                out = seder(opts);
                break;
            case "put":
                out = put(opts);
                break;
            case "rebuild":
                out = rebuild(opts);
                break;
            default:
                throw new IllegalArgumentException("unknown bench " + args.get(0));
        }
        System.out.println(Upstream.JSON.writeValueAsString(out));
        return 0;
    }

    private static ObjectNode seder(Map<String, String> opts) throws Exception {
        double warmup = Double.parseDouble(opts.getOrDefault("warmup", "3"));
        double seconds = Double.parseDouble(opts.getOrDefault("seconds", "3"));
        List<byte[]> values = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        long bytes = 0;
        while ((line = in.readLine()) != null) {
            if (!line.isBlank()) {
                byte[] v = Base64.getDecoder().decode(line.trim());
                values.add(v);
                bytes += v.length;
            }
        }
        if (values.isEmpty()) {
            throw new IllegalArgumentException("no records on stdin");
        }
        List<ActionState> states = new ArrayList<>();
        for (byte[] v : values) {
            states.add(Upstream.decode(v));
        }
        decodeLoop(values, warmup);
        encodeLoop(states, warmup);
        ObjectNode out = Upstream.object();
        out.put("records", values.size());
        out.put("bytes", bytes);
        out.set("decode", rate(decodeLoop(values, seconds), values.size(), bytes));
        out.set("encode", rate(encodeLoop(states, seconds), values.size(), bytes));
        return out;
    }

    /** Runs whole passes over the records for at least {@code seconds}; returns {passes, nanos}. */
    private static long[] decodeLoop(List<byte[]> values, double seconds) {
        long sink = 0;
        long start = System.nanoTime();
        long limit = (long) (seconds * 1e9);
        long passes = 0;
        do {
            for (byte[] v : values) {
                sink += Upstream.decode(v).getCallResults().size();
            }
            passes++;
        } while (System.nanoTime() - start < limit);
        long nanos = System.nanoTime() - start;
        return new long[] {passes, nanos, sink};
    }

    private static long[] encodeLoop(List<ActionState> states, double seconds) {
        long sink = 0;
        long start = System.nanoTime();
        long limit = (long) (seconds * 1e9);
        long passes = 0;
        do {
            for (ActionState s : states) {
                sink += Upstream.encode(s).length;
            }
            passes++;
        } while (System.nanoTime() - start < limit);
        long nanos = System.nanoTime() - start;
        return new long[] {passes, nanos, sink};
    }

    private static ObjectNode rate(long[] loop, int records, long bytes) {
        double secs = loop[1] / 1e9;
        ObjectNode out = Upstream.object();
        out.put("passes", loop[0]);
        out.put("seconds", secs);
        out.put("recordsPerSecond", loop[0] * records / secs);
        out.put("bytesPerSecond", loop[0] * bytes / secs);
        return out;
    }

    private static ObjectNode put(Map<String, String> opts) throws Exception {
        String bootstrap = StoreCommand.required(opts, "bootstrap");
        String topic = StoreCommand.required(opts, "topic");
        int partitions = Integer.parseInt(opts.getOrDefault("partitions", "8"));
        int warmup = Integer.parseInt(opts.getOrDefault("warmup", "100"));
        List<StoreCommand.Put> puts = StoreCommand.readPuts();
        try (KafkaActionStateStore store = StoreCommand.open(bootstrap, topic + "-warmup", partitions)) {
            for (StoreCommand.Put p : puts.subList(0, Math.min(warmup, puts.size()))) {
                store.put(p.agentKey, p.seq, p.action, p.event, p.state);
            }
        }
        ObjectNode out = Upstream.object();
        try (KafkaActionStateStore store = StoreCommand.open(bootstrap, topic, partitions)) {
            long start = System.nanoTime();
            for (StoreCommand.Put p : puts) {
                store.put(p.agentKey, p.seq, p.action, p.event, p.state);
            }
            double secs = (System.nanoTime() - start) / 1e9;
            out.put("records", puts.size());
            out.put("seconds", secs);
            out.put("recordsPerSecond", puts.size() / secs);
        }
        out.put("warmupTopic", topic + "-warmup");
        return out;
    }

    private static ObjectNode rebuild(Map<String, String> opts) throws Exception {
        String bootstrap = StoreCommand.required(opts, "bootstrap");
        String topic = StoreCommand.required(opts, "topic");
        int partitions = StoreCommand.partitionCount(bootstrap, topic);
        ObjectNode out = Upstream.object();
        for (String phase : List.of("warmup", "measured")) {
            try (KafkaActionStateStore store = StoreCommand.open(bootstrap, topic, partitions)) {
                long start = System.nanoTime();
                store.rebuildState(List.of(StoreCommand.fromStart(partitions)));
                double secs = (System.nanoTime() - start) / 1e9;
                ObjectNode item = out.putObject(phase);
                item.put("seconds", secs);
                item.put("states", StoreCommand.heldStates(store).size());
            }
        }
        return out;
    }
}
