package actionstate.interop.v02;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.agents.runtime.actionstate.ActionState;
import org.apache.flink.agents.runtime.actionstate.KafkaActionStateStore;
import org.apache.kafka.clients.consumer.ConsumerConfig;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

/**
 * {@code store-read BOOTSTRAP TOPIC PARTITIONS}: the real {@link KafkaActionStateStore} recovers
 * the topic as Flink Agents does after a failure, {@code rebuildState} with the recovery marker of
 * a checkpoint taken before the first write (offset 0 of every partition), and the harness prints
 * what it then holds:
 *
 * <pre>
 *   {isolationLevel, isolationLevelSet,
 *    states: [{key, tombstone, completed, callResults, value}]}   (sorted by key)
 * </pre>
 *
 * {@code isolationLevel} is the one its consumer reads with ({@code isolationLevelSet}: whether
 * the store sets it or leaves the client's default); {@code value} is the held state as the
 * seder writes it again (b64), null for a tombstone. A record the seder cannot read fails the
 * rebuild (upstream's poll throws), and so this command.
 */
final class StoreReadCommand {
    private StoreReadCommand() {}

    static int run(String bootstrap, String topic, int partitions) throws Exception {
        KafkaActionStateStore store = Main.open(Main.config(bootstrap, topic, partitions));
        ObjectNode out = Upstream.JSON.createObjectNode();
        try {
            Properties props = (Properties) privateMethod("createConsumerProp").invoke(store);
            out.put("isolationLevel", new ConsumerConfig(props).getString(ConsumerConfig.ISOLATION_LEVEL_CONFIG));
            out.put("isolationLevelSet", props.containsKey(ConsumerConfig.ISOLATION_LEVEL_CONFIG));

            Map<Integer, Long> marker = new HashMap<>();
            for (int p = 0; p < partitions; p++) {
                marker.put(p, 0L);
            }
            store.rebuildState(List.of(marker));

            ArrayNode states = out.putArray("states");
            for (Map.Entry<String, ActionState> e : new TreeMap<>(held(store)).entrySet()) {
                ActionState state = e.getValue();
                ObjectNode item = states.addObject().put("key", e.getKey()).put("tombstone", state == null);
                if (state != null) {
                    item.put("completed", state.isCompleted())
                            .put("callResults", state.getCallResultCount())
                            .put("value", Upstream.b64(Upstream.encode(state)));
                }
            }
        } finally {
            store.close();
        }
        System.out.println(Upstream.REPLY.writeValueAsString(out));
        return 0;
    }

    /** 0.2.0 can only look a state up by the (key, seq, action, event) that made its key, and
     * that lookup also drops diverged states; the map itself is what recovery filled. */
    @SuppressWarnings("unchecked")
    private static Map<String, ActionState> held(KafkaActionStateStore store) throws ReflectiveOperationException {
        Field field = KafkaActionStateStore.class.getDeclaredField("actionStates");
        field.setAccessible(true);
        return (Map<String, ActionState>) field.get(store);
    }

    /** The store builds its consumer from these properties and keeps no other record of them. */
    private static Method privateMethod(String name) throws NoSuchMethodException {
        Method method = KafkaActionStateStore.class.getDeclaredMethod(name);
        method.setAccessible(true);
        return method;
    }
}
