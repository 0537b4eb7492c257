package actionstate.interop;

import org.apache.flink.util.MathUtils;

/**
 * Finds an agent key for the one corner of the partition formula that random keys never hit:
 * Flink's murmur mix landing on {@code Integer.MIN_VALUE}, which {@code MathUtils.murmurHash} maps
 * to 0. Every step of the mix is invertible, so we run it backwards from MIN_VALUE, then build a
 * string whose {@code String.hashCode} is that int. The result is checked against the real
 * {@link MathUtils#murmurHash(int)}.
 */
final class Murmur {
    private static final int C1 = 0xcc9e2d51;
    private static final int C2 = 0x1b873593;
    private static final int C3 = 0xe6546b64;
    private static final int F1 = 0x85ebca6b;
    private static final int F2 = 0xc2b2ae35;

    private Murmur() {}

    /** Multiplicative inverse of an odd int modulo 2^32 (Newton's iteration). */
    static int inverse(int odd) {
        int x = odd;
        for (int i = 0; i < 5; i++) {
            x *= 2 - odd * x;
        }
        return x;
    }

    private static int unshift13(int y) {
        return y ^ (y >>> 13) ^ (y >>> 26);
    }

    /** The int whose mix (before the absolute value) is {@code target}. */
    static int preimage(int target) {
        int h = target;
        h ^= h >>> 16;
        h *= inverse(F2);
        h = unshift13(h);
        h *= inverse(F1);
        h ^= h >>> 16;
        h ^= 4;
        h = (h - C3) * inverse(5);
        h = Integer.rotateRight(h, 13);
        h *= inverse(C2);
        h = Integer.rotateRight(h, 15);
        h *= inverse(C1);
        return h;
    }

    static String keyHashingToMinValue() {
        int code = preimage(Integer.MIN_VALUE);
        if (MathUtils.murmurHash(code) != 0 || code == 0) {
            throw new IllegalStateException("murmur preimage is wrong: " + code);
        }
        // hash(prefix + c0 + c1) = hash(prefix) * 961 + 31 * c0 + c1 (mod 2^32)
        for (int i = 0; ; i++) {
            String prefix = "minvalue-" + i + "-";
            long rest = Integer.toUnsignedLong(code - prefix.hashCode() * 961) - 'a';
            long c0 = rest / 31;
            long c1 = 'a' + rest % 31;
            if (c0 >= 0x4e00 && c0 <= 0x9fff) {
                String key = prefix + (char) c0 + (char) c1;
                if (key.hashCode() != code) {
                    throw new IllegalStateException("hashCode construction is wrong");
                }
                return key;
            }
        }
    }
}
