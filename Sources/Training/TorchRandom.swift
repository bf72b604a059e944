// Bit-exact re-implementations of the two PyTorch random streams the Trainer's data order depends on:
// the CPU generator (mt19937, `torch.Generator().manual_seed(s)`) and `torch.randperm(n, generator:)`,
// which accelerate's `SeedableRandomSampler` calls once per epoch with seed `data_seed ?? seed` + epoch.

/// Mersenne Twister mt19937 as ATen's `at::mt19937` seeds and steps it (32-bit outputs).
public struct MT19937: Sendable, Equatable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<624 {
            state[j] = 1_812_433_253 &* (state[j - 1] ^ (state[j - 1] >> 30)) &+ UInt32(j)
        }
        index = 624
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_B0DF }
            state[i] = v
        }
        index = 0
    }

    public mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }
}

public enum TorchRandom {
    /// `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` on CPU: a Fisher-Yates pass that
    /// swaps position i with i + random() % (n - i), for i in 0..<n-1 (ATen `randperm_cpu`, small-n path).
    public static func randperm(_ n: Int, seed: UInt64) -> [Int] {
        var gen = MT19937(seed: seed)
        var r = Array(0..<n)
        if n < 2 { return r }
        for i in 0..<(n - 1) {
            let z = Int(UInt64(gen.next()) % UInt64(n - i))
            r.swapAt(i, z + i)
        }
        return r
    }
}
