package actionstate.interop.v02;

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import org.apache.flink.agents.api.Event;
import org.apache.flink.agents.api.InputEvent;
import org.apache.flink.agents.api.OutputEvent;
import org.apache.flink.agents.api.context.MemoryUpdate;
import org.apache.flink.agents.plan.PythonFunction;
import org.apache.flink.agents.plan.actions.Action;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.ActionStateKafkaSeder;
import org.apache.flink.agents.runtime.actionstate.ActionStateKeyPartitioner;
import org.apache.flink.agents.runtime.actionstate.ActionStateUtil;
import org.apache.flink.agents.runtime.actionstate.CallResult;
import org.apache.flink.agents.runtime.python.event.PythonEvent;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;

import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Thin access to Flink Agents 0.2.0's own action-state classes. Everything that decides bytes,
 * keys or partitions is the upstream class's; this file only builds their inputs from JSON specs
 * (objects through the classes' constructors, values as plain Jackson reads JSON).
 */
final class Upstream {
    static final ObjectMapper JSON = new ObjectMapper();
    /** Writes replies in ASCII: a Java string may hold a lone surrogate, which UTF-8 cannot carry. */
    static final ObjectWriter REPLY = JSON.writer().with(JsonWriteFeature.ESCAPE_NON_ASCII);
    static final ActionStateKafkaSeder SEDER = new ActionStateKafkaSeder();
    private static final ActionStateKeyPartitioner PARTITIONER = new ActionStateKeyPartitioner();
    private static final String TOPIC = "interop";
    private static final TypeReference<LinkedHashMap<String, Object>> MAP = new TypeReference<>() {};

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
                    name, new PythonFunction("actionstate.interop", name), List.of(InputEvent.class.getName()));
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

    static int partition(String stateKey, int numPartitions) {
        Node node = new Node(0, "127.0.0.1", 9092);
        Node[] nodes = {node};
        List<PartitionInfo> infos = new ArrayList<>(numPartitions);
        for (int p = 0; p < numPartitions; p++) {
            infos.add(new PartitionInfo(TOPIC, p, node, nodes, nodes));
        }
        Cluster cluster =
                new Cluster("interop", List.of(node), infos, Collections.emptySet(), Collections.emptySet());
        return PARTITIONER.partition(TOPIC, stateKey, null, null, null, cluster);
    }

    /** {taskEvent, sensoryMemoryUpdates, shortTermMemoryUpdates, outputEvents, callResults, completed}. */
    static ActionState state(JsonNode spec) {
        List<Event> outputs = new ArrayList<>();
        spec.path("outputEvents").forEach(e -> outputs.add(event(e)));
        List<CallResult> calls = new ArrayList<>();
        for (JsonNode c : spec.path("callResults")) {
            calls.add(
                    new CallResult(
                            c.path("functionId").asText(),
                            c.path("argsDigest").asText(),
                            bytes(c.get("resultPayload")),
                            bytes(c.get("exceptionPayload"))));
        }
        return new ActionState(
                event(spec.get("taskEvent")),
                memory(spec.path("sensoryMemoryUpdates")),
                memory(spec.path("shortTermMemoryUpdates")),
                outputs,
                calls,
                spec.path("completed").asBoolean());
    }

    private static List<MemoryUpdate> memory(JsonNode items) {
        List<MemoryUpdate> out = new ArrayList<>();
        for (JsonNode m : items) {
            out.add(new MemoryUpdate(m.path("path").asText(), value(m.get("value"))));
        }
        return out;
    }

    /**
     * {"@class", "id", "attributes", and "input" | "output" | "event", "eventType", "eventJsonStr",
     * optional "sourceTimestamp"}: an InputEvent, OutputEvent or PythonEvent of 0.2.0.
     */
    static Event event(JsonNode spec) {
        if (spec == null || spec.isNull()) {
            return null;
        }
        String cls = spec.path("@class").asText();
        JsonNode idNode = spec.get("id");
        UUID id = idNode == null || idNode.isNull() ? null : UUID.fromString(idNode.asText());
        Map<String, Object> attributes = JSON.convertValue(spec.path("attributes"), MAP);
        Event event;
        if (cls.equals(InputEvent.class.getName())) {
            event = new InputEvent(id, attributes, value(spec.get("input")));
        } else if (cls.equals(OutputEvent.class.getName())) {
            event = new OutputEvent(id, attributes, value(spec.get("output")));
        } else if (cls.equals(PythonEvent.class.getName())) {
            event =
                    new PythonEvent(
                            id,
                            attributes,
                            bytes(spec.get("event")),
                            spec.path("eventType").asText(),
                            spec.path("eventJsonStr").asText());
        } else {
            throw new IllegalArgumentException("unsupported event class " + cls);
        }
        JsonNode ts = spec.get("sourceTimestamp");
        if (ts != null && !ts.isNull()) {
            event.setSourceTimestamp(ts.asLong());
        }
        return event;
    }

    private static Object value(JsonNode node) {
        return node == null ? null : JSON.convertValue(node, Object.class);
    }

    private static byte[] bytes(JsonNode node) {
        return node == null || node.isNull() ? null : Base64.getDecoder().decode(node.asText());
    }

    static String b64(byte[] bytes) {
        return bytes == null ? null : Base64.getEncoder().encodeToString(bytes);
    }
}
