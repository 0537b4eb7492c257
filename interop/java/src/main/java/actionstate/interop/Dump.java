package actionstate.interop;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.api.Event;
import org.apache.flink.agents.api.context.MemoryUpdate;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.CallResult;

import java.util.Base64;
import java.util.List;

/**
 * Field-by-field view of an upstream {@link ActionState} as the Java objects hold it (read through
 * their getters, not through the seder), so the Python side can compare what Java understood.
 */
final class Dump {
    private Dump() {}

    static ObjectNode state(ActionState state) {
        ObjectNode out = Upstream.object();
        out.set("taskEvent", event(state.getTaskEvent()));
        out.set("sensoryMemoryUpdates", memory(state.getSensoryMemoryUpdates()));
        out.set("shortTermMemoryUpdates", memory(state.getShortTermMemoryUpdates()));
        ArrayNode events = out.putArray("outputEvents");
        for (Event e : state.getOutputEvents()) {
            events.add(event(e));
        }
        ArrayNode calls = out.putArray("callResults");
        for (CallResult c : state.getCallResults()) {
            calls.add(call(c));
        }
        out.put("completed", state.isCompleted());
        return out;
    }

    static JsonNode event(Event event) {
        if (event == null) {
            return Upstream.JSON.nullNode();
        }
        ObjectNode out = Upstream.object();
        out.put("class", event.getClass().getName());
        out.put("id", event.getId() == null ? null : event.getId().toString());
        out.put("type", event.getType());
        out.set("attributes", Upstream.JSON.valueToTree(event.getAttributes()));
        return out;
    }

    private static ArrayNode memory(List<MemoryUpdate> updates) {
        ArrayNode out = Upstream.JSON.createArrayNode();
        for (MemoryUpdate u : updates) {
            ObjectNode item = out.addObject();
            item.put("path", u.getPath());
            item.set("value", Upstream.JSON.valueToTree(u.getValue()));
        }
        return out;
    }

    private static ObjectNode call(CallResult c) {
        ObjectNode out = Upstream.object();
        out.put("functionId", c.getFunctionId());
        out.put("argsDigest", c.getArgsDigest());
        out.put("resultPayload", b64(c.getResultPayload()));
        out.put("exceptionPayload", b64(c.getExceptionPayload()));
        out.put("status", Upstream.rawStatus(c));
        out.put("effectiveStatus", Upstream.effectiveStatus(c));
        return out;
    }

    static String b64(byte[] bytes) {
        return bytes == null ? null : Base64.getEncoder().encodeToString(bytes);
    }
}
