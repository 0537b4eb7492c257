package actionstate.interop;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.api.Event;
import org.apache.flink.agents.api.InputEvent;
import org.apache.flink.agents.api.OutputEvent;
import org.apache.flink.agents.plan.PythonFunction;
import org.apache.flink.agents.plan.actions.Action;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.ActionStateKafkaSeder;
import org.apache.flink.agents.runtime.actionstate.ActionStateKeyPartitioner;
import org.apache.flink.agents.runtime.actionstate.ActionStateUtil;
import org.apache.flink.agents.runtime.actionstate.CallResult;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Thin access to Flink Agents' own action-state classes. Everything that decides bytes, keys or
 * partitions is delegated to the upstream class; this file only builds their inputs.
 */
final class Upstream {
    /** Plain Jackson mapper: parses harness inputs the way Jackson reads untyped JSON. */
    static final ObjectMapper JSON = new ObjectMapper();

    private static final ObjectMapper SORTED =
            com.fasterxml.jackson.databind.json.JsonMapper.builder()
                    .configure(com.fasterxml.jackson.databind.SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true)
                    .configure(com.fasterxml.jackson.databind.MapperFeature.SORT_PROPERTIES_ALPHABETICALLY, true)
                    .build();

    static final ActionStateKafkaSeder SEDER = new ActionStateKafkaSeder();
    private static final ActionStateKeyPartitioner PARTITIONER = new ActionStateKeyPartitioner();
    private static final Map<Integer, Cluster> CLUSTERS = new ConcurrentHashMap<>();
    private static final String TOPIC = "interop";

    /** Python-function descriptors hash by (module, qualname), so the action UUID is stable. */
    static final String ACTION_MODULE = "actionstate.interop";

    private Upstream() {}

    static byte[] encode(ActionState state) {
        return SEDER.serialize(TOPIC, state);
    }

    static ActionState decode(byte[] value) {
        return SEDER.deserialize(TOPIC, value);
    }

    /** An action whose hashCode (hence its UUID in state keys) is the same in every JVM. */
    static Action action(String name) {
        try {
            return new Action(
                    name,
                    new PythonFunction(ACTION_MODULE, name),
                    List.of(InputEvent.EVENT_TYPE));
        } catch (Exception e) {
            throw new IllegalStateException("cannot build action " + name, e);
        }
    }

    static String generateKey(String agentKey, long seq, Action action, Event event) {
        try {
            return ActionStateUtil.generateKey(agentKey, seq, action, event);
        } catch (java.io.IOException e) {
            throw new IllegalStateException("generateKey failed", e);
        }
    }

    /** Partition that the upstream producer partitioner picks for a state key. */
    static int partition(String stateKey, int numPartitions) {
        Cluster cluster = CLUSTERS.computeIfAbsent(numPartitions, Upstream::cluster);
        return PARTITIONER.partition(TOPIC, stateKey, null, null, null, cluster);
    }

    private static Cluster cluster(int numPartitions) {
        Node node = new Node(0, "127.0.0.1", 9092);
        Node[] nodes = {node};
        List<PartitionInfo> infos = new ArrayList<>(numPartitions);
        for (int p = 0; p < numPartitions; p++) {
            infos.add(new PartitionInfo(TOPIC, p, node, nodes, nodes));
        }
        return new Cluster(
                "interop", List.of(node), infos, Collections.emptySet(), Collections.emptySet());
    }

    /**
     * A call result without status, as written before the field existed. Upstream keeps this
     * factory package-private for its own compatibility tests, hence reflection.
     */
    static CallResult legacyCallResult(
            String functionId, String argsDigest, byte[] resultPayload, byte[] exceptionPayload) {
        try {
            Method m =
                    CallResult.class.getDeclaredMethod(
                            "ofNullStatus", String.class, String.class, byte[].class, byte[].class);
            m.setAccessible(true);
            return (CallResult) m.invoke(null, functionId, argsDigest, resultPayload, exceptionPayload);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("CallResult.ofNullStatus not reachable", e);
        }
    }

    /** The persisted status field as written (null for legacy records). */
    static String rawStatus(CallResult result) {
        try {
            Field f = CallResult.class.getDeclaredField("status");
            f.setAccessible(true);
            Object status = f.get(result);
            return status == null ? null : ((Enum<?>) status).name();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("CallResult.status not reachable", e);
        }
    }

    static String effectiveStatus(CallResult result) {
        if (result.isPending()) {
            return "PENDING";
        }
        return result.isFailure() ? "FAILED" : "SUCCEEDED";
    }

    /**
     * Builds an upstream event from {"@class", "id", "type", "attributes"}; attributes are parsed
     * by Jackson, so their Java types are what the seder would produce for the same JSON.
     */
    static Event event(JsonNode spec) {
        String cls = spec.path("@class").asText(Event.class.getName());
        JsonNode idNode = spec.get("id");
        UUID id = idNode == null || idNode.isNull() ? null : UUID.fromString(idNode.asText());
        Map<String, Object> attributes = attributes(spec.get("attributes"));
        if (cls.equals(InputEvent.class.getName())) {
            return new InputEvent(id, attributes);
        }
        if (cls.equals(OutputEvent.class.getName())) {
            return new OutputEvent(id, attributes);
        }
        if (cls.equals(Event.class.getName())) {
            return new Event(id, spec.path("type").asText(), attributes);
        }
        throw new IllegalArgumentException("unsupported event class " + cls);
    }

    static Map<String, Object> attributes(JsonNode node) {
        if (node == null || node.isNull()) {
            return new java.util.LinkedHashMap<>();
        }
        return JSON.convertValue(node, new TypeReference<java.util.LinkedHashMap<String, Object>>() {});
    }

    static Map<String, Object> attributes(String json) {
        try {
            return attributes(JSON.readTree(json));
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("bad attributes JSON: " + json, e);
        }
    }

    /**
     * The text {@code ActionStateUtil} hashes into an event UUID, for diagnostics: written with
     * the same two Jackson features upstream sets, and checked against the real UUID.
     */
    static String canonicalAttributes(Event event, String expectedUuid) {
        try {
            byte[] text = SORTED.writeValueAsBytes(event.getAttributes());
            if (!UUID.nameUUIDFromBytes(text).toString().equals(expectedUuid)) {
                throw new IllegalStateException("canonical attribute text does not match upstream");
            }
            return new String(text, java.nio.charset.StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot write attributes", e);
        }
    }

    static ObjectNode object() {
        return JSON.createObjectNode();
    }
}
