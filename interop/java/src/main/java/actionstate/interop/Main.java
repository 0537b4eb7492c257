package actionstate.interop;

import java.util.Arrays;
import java.util.List;

/**
 * Command-line entry point of the interop harness. Data goes to stdout, logs to stderr.
 *
 * <pre>
 *   java -jar actionstate-interop.jar vectors OUTDIR
 *   java -jar actionstate-interop.jar check            &lt; requests.jsonl
 *   java -jar actionstate-interop.jar store-write   --bootstrap B --topic T [--partitions N] &lt; puts.jsonl
 *   java -jar actionstate-interop.jar store-rebuild --bootstrap B --topic T
 *   java -jar actionstate-interop.jar bench seder|put|rebuild [options]
 * </pre>
 */
public final class Main {
    private Main() {}

    public static void main(String[] argv) {
        // Kafka clients log through SLF4J; keep stderr quiet unless something is wrong.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", System.getProperty("interop.log", "warn"));
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        if (argv.length == 0) {
            usage();
            System.exit(2);
        }
        List<String> rest = Arrays.asList(argv).subList(1, argv.length);
        int rc;
        try {
            switch (argv[0]) {
                case "vectors":
                    rc = VectorsCommand.run(rest);
                    break;
                case "check":
                    rc = CheckCommand.run(rest);
                    break;
                case "store-write":
                    rc = StoreCommand.write(rest);
                    break;
                case "store-rebuild":
                    rc = StoreCommand.rebuild(rest);
                    break;
                case "bench":
                    rc = BenchCommand.run(rest);
                    break;
                default:
                    usage();
                    rc = 2;
            }
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            rc = 2;
        } catch (Exception e) {
            System.err.println("error: " + CheckCommand.describe(e));
            e.printStackTrace();
            rc = 1;
        }
        System.out.flush();
        System.exit(rc);
    }

    private static void usage() {
        System.err.println(
                "usage: actionstate-interop vectors OUTDIR | check | store-write --bootstrap B --topic T"
                        + " [--partitions N] | store-rebuild --bootstrap B --topic T"
                        + " | bench seder|put|rebuild [options]");
    }
}
