package actionstate.interop.v02;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.plan.actions.Action;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.ActionStateUtil;
import org.apache.flink.agents.runtime.actionstate.CallResult;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * {@code check}: one JSON request per line on stdin, one reply per line on stdout, in order.
 * Requests ({@code op}):
 *
 * <ul>
 *   <li>{@code encode} {state}: the seder writes the state built from the spec.
 *   <li>{@code decode} {value: b64, compare?: b64}: the seder reads the value; the reply has its
 *       re-serialization, each call result's {@code isSuccess()}, and whether it equals the {@code
 *       compare} record read the same way ({@code ActionState.equals}).
 *   <li>{@code key} {agentKey, seq, action, event}: {@code ActionStateUtil.generateKey}.
 *   <li>{@code partition} {key, numPartitions}: {@code ActionStateKeyPartitioner}.
 *   <li>{@code parseKey} {key}: {@code ActionStateUtil.parseKey}.
 *   <li>{@code hash} {text}: {@code String.hashCode}.
 * </ul>
 *
 * A request that upstream rejects gets {ok: false, error}; the batch goes on.
 */
final class CheckCommand {
    private CheckCommand() {}

    static int run() throws Exception {
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode request = Upstream.JSON.readTree(line);
            ObjectNode reply = Upstream.JSON.createObjectNode();
            reply.set("id", request.get("id"));
            try {
                answer(request, reply);
                reply.put("ok", true);
            } catch (RuntimeException e) {
                reply.put("ok", false);
                reply.put("error", Main.describe(e));
            }
            out.println(Upstream.REPLY.writeValueAsString(reply));
            out.flush();
        }
        return 0;
    }

    private static void answer(JsonNode request, ObjectNode reply) {
        String op = request.path("op").asText();
        switch (op) {
            case "encode":
                reply.put("value", Upstream.b64(Upstream.encode(Upstream.state(request.path("state")))));
                break;
            case "decode":
                decode(request, reply);
                break;
            case "key":
                Action action = Upstream.action(request.path("action").asText());
                reply.put(
                        "key",
                        Upstream.generateKey(
                                request.path("agentKey").asText(),
                                request.path("seq").asLong(),
                                action,
                                Upstream.event(request.path("event"))));
                reply.put("actionHashCode", action.hashCode());
                break;
            case "partition":
                reply.put(
                        "partition",
                        Upstream.partition(request.path("key").asText(), request.path("numPartitions").asInt()));
                break;
            case "parseKey":
                ArrayNode parts = reply.putArray("parts");
                ActionStateUtil.parseKey(request.path("key").asText()).forEach(parts::add);
                break;
            case "hash":
                reply.put("hash", request.path("text").asText().hashCode());
                break;
            default:
                throw new IllegalArgumentException("unknown op " + op);
        }
    }

    private static void decode(JsonNode request, ObjectNode reply) {
        ActionState state = Upstream.decode(Base64.getDecoder().decode(request.path("value").asText()));
        reply.put("reserialized", Upstream.b64(Upstream.encode(state)));
        ArrayNode success = reply.putArray("success");
        for (CallResult c : state.getCallResults()) {
            success.add(c.isSuccess());
        }
        JsonNode compare = request.get("compare");
        if (compare != null && !compare.isNull()) {
            ActionState other = Upstream.decode(Base64.getDecoder().decode(compare.asText()));
            reply.put("equal", state.equals(other));
        }
    }
}
