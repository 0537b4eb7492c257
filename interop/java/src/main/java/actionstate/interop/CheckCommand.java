package actionstate.interop;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.api.Event;
import org.apache.flink.agents.plan.actions.Action;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.ActionStateUtil;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.UUID;

/**
 * {@code check}: answers requests in one JVM, one JSON object per line in and out, in order,
 * each reply flushed as soon as it is written. Requests ({@code op}):
 *
 * <ul>
 *   <li>{@code decode} {value: b64, compare?: b64}: the seder reads the value; the reply has a
 *       field dump, the seder's re-serialization, and whether it equals the {@code compare} record
 *       read the same way ({@link ActionState#equals}).
 *   <li>{@code key} {agentKey, seq, action, event}: {@code ActionStateUtil.generateKey}.
 *   <li>{@code partition} {key, numPartitions}: {@code ActionStateKeyPartitioner}.
 *   <li>{@code parseKey} {key}: {@code ActionStateUtil.parseKey}.
 *   <li>{@code uuid} {bytes: b64}: {@code UUID.nameUUIDFromBytes}.
 *   <li>{@code hash} {text}: {@code String.hashCode}.
 *   <li>{@code env}: the JVM's version (event UUIDs hash {@code Double.toString} output, which
 *       changed in JDK 19).
 * </ul>
 *
 * A request that upstream rejects gets {ok: false, error}; the batch goes on.
 */
final class CheckCommand {
    private CheckCommand() {}

    static int run(List<String> args) throws Exception {
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode request = Upstream.JSON.readTree(line);
            ObjectNode reply = Upstream.object();
            reply.set("id", request.get("id"));
            try {
                answer(request, reply);
                reply.put("ok", true);
            } catch (RuntimeException e) {
                reply.put("ok", false);
                reply.put("error", describe(e));
            }
            out.println(Upstream.JSON.writeValueAsString(reply));
            // one reply per request as soon as it is ready: a caller may keep this process
            // open and talk to it request by request
            out.flush();
        }
        out.flush();
        return 0;
    }

    private static void answer(JsonNode request, ObjectNode reply) {
        String op = request.path("op").asText();
        switch (op) {
            case "decode":
                decode(request, reply);
                break;
            case "key":
                key(request, reply);
                break;
            case "partition":
                reply.put(
                        "partition",
                        Upstream.partition(
                                request.path("key").asText(),
                                request.path("numPartitions").asInt()));
                break;
            case "parseKey":
                ArrayNode parts = reply.putArray("parts");
                ActionStateUtil.parseKey(request.path("key").asText()).forEach(parts::add);
                break;
            case "uuid":
                byte[] bytes = Base64.getDecoder().decode(request.path("bytes").asText());
                reply.put("uuid", UUID.nameUUIDFromBytes(bytes).toString());
                break;
            case "env":
                reply.put("javaVersion", System.getProperty("java.version"));
                reply.put("javaFeatureVersion", Runtime.version().feature());
                break;
            case "hash":
                reply.put("hash", request.path("text").asText().hashCode());
                break;
            default:
                throw new IllegalArgumentException("unknown op " + op);
        }
    }

    private static void decode(JsonNode request, ObjectNode reply) {
        byte[] value = Base64.getDecoder().decode(request.path("value").asText());
        ActionState state = Upstream.decode(value);
        reply.set("dump", Dump.state(state));
        reply.put("reserialized", Dump.b64(Upstream.encode(state)));
        JsonNode compare = request.get("compare");
        if (compare != null && !compare.isNull()) {
            ActionState other = Upstream.decode(Base64.getDecoder().decode(compare.asText()));
            reply.put("equal", state.equals(other));
        }
    }

    private static void key(JsonNode request, ObjectNode reply) {
        Action action = Upstream.action(request.path("action").asText());
        Event event = Upstream.event(request.path("event"));
        String key =
                Upstream.generateKey(
                        request.path("agentKey").asText(),
                        request.path("seq").asLong(),
                        action,
                        event);
        reply.put("key", key);
        reply.put("actionHashCode", action.hashCode());
        String[] parts = key.split("_");
        reply.put("canonicalAttributes", Upstream.canonicalAttributes(event, parts[parts.length - 2]));
    }

    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(t.getClass().getName()).append(": ").append(t.getMessage());
        }
        return sb.toString();
    }
}
