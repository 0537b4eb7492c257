package actionstate.interop.v02;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.api.Event;
import org.apache.flink.agents.api.configuration.AgentConfigOptions;
import org.apache.flink.agents.plan.AgentConfiguration;
import org.apache.flink.agents.plan.actions.Action;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.KafkaActionStateStore;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * The interop harness for Flink Agents 0.2.0. Data goes to stdout, logs to stderr.
 *
 * <pre>
 *   java -cp CLASSPATH actionstate.interop.v02.Main check &lt; requests.jsonl
 *   java -cp CLASSPATH actionstate.interop.v02.Main store-write BOOTSTRAP TOPIC PARTITIONS &lt; puts.jsonl
 *   java -cp CLASSPATH actionstate.interop.v02.Main store-read BOOTSTRAP TOPIC PARTITIONS
 * </pre>
 *
 * store-write reads JSON lines {agentKey, seq, action, state} (a state spec, see {@link
 * Upstream#state}) and puts each through the real {@link KafkaActionStateStore}, the state's task
 * event as the event; it prints {written: [{key, partition, actionHashCode}]}.
 *
 * <p>store-read is {@link StoreReadCommand}: the real store's recovery of the whole topic.
 */
public final class Main {
    private Main() {}

    public static void main(String[] argv) {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", System.getProperty("interop.log", "warn"));
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        int rc;
        try {
            if (argv.length == 1 && argv[0].equals("check")) {
                rc = CheckCommand.run();
            } else if (argv.length == 4 && argv[0].equals("store-write")) {
                rc = storeWrite(argv[1], argv[2], Integer.parseInt(argv[3]));
            } else if (argv.length == 4 && argv[0].equals("store-read")) {
                rc = StoreReadCommand.run(argv[1], argv[2], Integer.parseInt(argv[3]));
            } else {
                System.err.println(
                        "usage: check | store-write BOOTSTRAP TOPIC PARTITIONS | store-read BOOTSTRAP TOPIC PARTITIONS; got "
                                + Arrays.toString(argv));
                rc = 2;
            }
        } catch (Exception e) {
            System.err.println("error: " + describe(e));
            e.printStackTrace();
            rc = 1;
        }
        System.out.flush();
        System.exit(rc);
    }

    private static int storeWrite(String bootstrap, String topic, int partitions) throws Exception {
        AgentConfiguration config = config(bootstrap, topic, partitions);
        ObjectNode out = Upstream.JSON.createObjectNode();
        ArrayNode written = out.putArray("written");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        KafkaActionStateStore store = open(config);
        try {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode spec = Upstream.JSON.readTree(line);
                String agentKey = spec.path("agentKey").asText();
                long seq = spec.path("seq").asLong();
                Action action = Upstream.action(spec.path("action").asText());
                ActionState state = Upstream.state(spec.path("state"));
                Event event = state.getTaskEvent();
                store.put(agentKey, seq, action, event, state);
                String key = Upstream.generateKey(agentKey, seq, action, event);
                written.addObject()
                        .put("key", key)
                        .put("partition", Upstream.partition(key, partitions))
                        .put("actionHashCode", action.hashCode());
            }
        } finally {
            store.close();
        }
        System.out.println(Upstream.REPLY.writeValueAsString(out));
        return 0;
    }

    static AgentConfiguration config(String bootstrap, String topic, int partitions) {
        AgentConfiguration config = new AgentConfiguration();
        config.set(AgentConfigOptions.KAFKA_BOOTSTRAP_SERVERS, bootstrap);
        config.set(AgentConfigOptions.KAFKA_ACTION_STATE_TOPIC, topic);
        config.set(AgentConfigOptions.KAFKA_ACTION_STATE_TOPIC_NUM_PARTITIONS, partitions);
        return config;
    }

    /** Upstream lists topics with a short deadline when it starts, which a cold admin client can
     * miss; a new store is the only way to try again. */
    static KafkaActionStateStore open(AgentConfiguration config) throws InterruptedException {
        RuntimeException last = null;
        for (int attempt = 0; attempt < 20; attempt++) {
            try {
                return new KafkaActionStateStore(config);
            } catch (RuntimeException e) {
                last = e;
                System.err.println("KafkaActionStateStore did not start, retrying: " + describe(e));
                Thread.sleep(250);
            }
        }
        throw last;
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
