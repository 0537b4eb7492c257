package actionstate.interop;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.api.configuration.AgentConfigOptions;
import org.apache.flink.agents.plan.AgentConfiguration;
import org.apache.flink.agents.plan.actions.Action;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.KafkaActionStateStore;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

/**
 * {@code store-write} and {@code store-rebuild}: the real {@link KafkaActionStateStore} against a
 * broker. Options: {@code --bootstrap HOST:PORT --topic NAME [--partitions N]}.
 *
 * <p>store-write reads JSON lines {agentKey, seq, action, event, value: b64 seder record} and puts
 * each through the store; it prints the state keys it wrote. store-rebuild runs {@code
 * rebuildState} from offset 0 of every partition and prints the states the store holds, plus a
 * plain scan of the topic (key, partition, offset) and the partition the upstream partitioner
 * assigns to each key.
 */
final class StoreCommand {
    private StoreCommand() {}

    /** Parsed {@code --name value} options. */
    static Map<String, String> options(List<String> args) {
        Map<String, String> out = new HashMap<>();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (!a.startsWith("--") || i + 1 >= args.size()) {
                throw new IllegalArgumentException("expected --name value, got " + a);
            }
            out.put(a.substring(2), args.get(++i));
        }
        return out;
    }

    static String required(Map<String, String> opts, String name) {
        String v = opts.get(name);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + name);
        }
        return v;
    }

    static KafkaActionStateStore open(String bootstrap, String topic, int partitions) throws InterruptedException {
        AgentConfiguration config = new AgentConfiguration();
        config.set(AgentConfigOptions.KAFKA_BOOTSTRAP_SERVERS, bootstrap);
        config.set(AgentConfigOptions.KAFKA_ACTION_STATE_TOPIC, topic);
        config.set(AgentConfigOptions.KAFKA_ACTION_STATE_TOPIC_NUM_PARTITIONS, partitions);
        // Upstream lists topics with a 100 ms deadline when it starts, which a cold admin client
        // can miss; a new store is the only way to try again.
        RuntimeException last = null;
        for (int attempt = 0; attempt < 20; attempt++) {
            try {
                return new KafkaActionStateStore(config);
            } catch (RuntimeException e) {
                last = e;
                System.err.println("KafkaActionStateStore did not start, retrying: " + CheckCommand.describe(e));
                Thread.sleep(250);
            }
        }
        throw last;
    }

    /** One record to put: the inputs of {@code KafkaActionStateStore.put}. */
    static final class Put {
        final String agentKey;
        final long seq;
        final Action action;
        final org.apache.flink.agents.api.Event event;
        final ActionState state;

        Put(JsonNode spec) {
            this.agentKey = spec.path("agentKey").asText();
            this.seq = spec.path("seq").asLong();
            this.action = Upstream.action(spec.path("action").asText());
            this.event = Upstream.event(spec.path("event"));
            this.state = Upstream.decode(Base64.getDecoder().decode(spec.path("value").asText()));
        }
    }

    static List<Put> readPuts() throws Exception {
        List<Put> out = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (!line.isBlank()) {
                out.add(new Put(Upstream.JSON.readTree(line)));
            }
        }
        return out;
    }

    static int write(List<String> args) throws Exception {
        Map<String, String> opts = options(args);
        String bootstrap = required(opts, "bootstrap");
        String topic = required(opts, "topic");
        int partitions = Integer.parseInt(opts.getOrDefault("partitions", "8"));
        List<Put> puts = readPuts();
        ObjectNode out = Upstream.object();
        ArrayNode written = out.putArray("written");
        try (KafkaActionStateStore store = open(bootstrap, topic, partitions)) {
            int actual = partitionCount(bootstrap, topic);
            for (Put p : puts) {
                store.put(p.agentKey, p.seq, p.action, p.event, p.state);
                String key = Upstream.generateKey(p.agentKey, p.seq, p.action, p.event);
                ObjectNode item = written.addObject();
                item.put("key", key);
                item.put("actionHashCode", p.action.hashCode());
                item.put("partition", Upstream.partition(key, actual));
            }
        }
        System.out.println(Upstream.JSON.writeValueAsString(out));
        return 0;
    }

    static int rebuild(List<String> args) throws Exception {
        Map<String, String> opts = options(args);
        String bootstrap = required(opts, "bootstrap");
        String topic = required(opts, "topic");
        int partitions = partitionCount(bootstrap, topic);
        ObjectNode out = Upstream.object();
        out.put("numPartitions", partitions);
        try (KafkaActionStateStore store = open(bootstrap, topic, partitions)) {
            long start = System.nanoTime();
            store.rebuildState(List.of(fromStart(partitions)));
            out.put("seconds", (System.nanoTime() - start) / 1e9);
            ArrayNode states = out.putArray("states");
            for (Map.Entry<String, ActionState> e : new TreeMap<>(heldStates(store)).entrySet()) {
                ObjectNode item = states.addObject();
                item.put("key", e.getKey());
                ActionState state = e.getValue();
                item.set("dump", state == null ? Upstream.JSON.nullNode() : Dump.state(state));
                item.put("reserialized", state == null ? null : Dump.b64(Upstream.encode(state)));
            }
        }
        out.set("records", scan(bootstrap, topic, partitions));
        System.out.println(Upstream.JSON.writeValueAsString(out));
        return 0;
    }

    /** A recovery marker that makes {@code rebuildState} read every partition from offset 0. */
    static Map<Integer, Long> fromStart(int partitions) {
        Map<Integer, Long> marker = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            marker.put(p, 0L);
        }
        return marker;
    }

    /** The store keeps what it rebuilt in a private map; reading it is the only way to list it. */
    @SuppressWarnings("unchecked")
    static Map<String, ActionState> heldStates(KafkaActionStateStore store) throws ReflectiveOperationException {
        Field f = KafkaActionStateStore.class.getDeclaredField("actionStates");
        f.setAccessible(true);
        return (Map<String, ActionState>) f.get(store);
    }

    static int partitionCount(String bootstrap, String topic) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (AdminClient admin = AdminClient.create(props)) {
            return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
        }
    }

    /** Every record of the topic up to the end offsets taken at the start, as raw bytes. */
    static ArrayNode scan(String bootstrap, String topic, int partitions) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        ArrayNode out = Upstream.JSON.createArrayNode();
        try (KafkaConsumer<String, byte[]> consumer =
                new KafkaConsumer<>(props, new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps);
            Map<TopicPartition, Long> next = new HashMap<>();
            for (TopicPartition tp : tps) {
                next.put(tp, consumer.position(tp));
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while (tps.stream().anyMatch(tp -> next.get(tp) < end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("topic scan did not reach the end offsets in 120 s");
                }
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    ObjectNode item = out.addObject();
                    item.put("key", r.key());
                    item.put("partition", r.partition());
                    item.put("offset", r.offset());
                    item.put("tombstone", r.value() == null);
                    try {
                        item.put("expectedPartition", Upstream.partition(r.key(), partitions));
                    } catch (IllegalArgumentException e) {
                        item.putNull("expectedPartition");
                    }
                }
                // positions, not record offsets: compaction and control records leave gaps
                for (TopicPartition tp : tps) {
                    next.put(tp, consumer.position(tp));
                }
            }
        }
        return out;
    }
}
