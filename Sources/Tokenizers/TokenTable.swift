import Foundation

/// Token bytes → id, built for loading a 262k-entry vocab and resolving ~500k merges quickly: every key's
/// bytes live in one arena (no array per token), slots hold entry indices (open addressing, linear probing)
/// and each entry keeps its 64-bit FNV-1a hash, so a probe compares hashes before bytes and a lookup
/// allocates nothing. `lookup(a, b)` finds the concatenation a+b without building it (merge targets).
/// Inserting an existing key replaces its id (last wins, as a Swift dictionary assignment does).
struct TokenTable {
    private var arena: [UInt8] = []
    /// Entry i's bytes are arena[entryStart[i] ..< entryStart[i + 1]].
    private var entryStart: [Int] = [0]
    private var entryId: [Int32] = []
    private var entryHash: [UInt64] = []
    private var slots: [Int32]
    private var mask: Int
    private var shift: UInt64
    /// Distinct keys.
    private(set) var count = 0

    init(capacity: Int = 16) {
        var cap = 16
        while cap < capacity * 2 { cap <<= 1 }
        slots = [Int32](repeating: -1, count: cap)
        mask = cap - 1
        shift = UInt64(64 - cap.trailingZeroBitCount)
        entryId.reserveCapacity(capacity); entryHash.reserveCapacity(capacity); entryStart.reserveCapacity(capacity + 1)
        arena.reserveCapacity(capacity * 8)
    }

    static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) static func fnv(_ h0: UInt64, _ b: UnsafeRawBufferPointer) -> UInt64 {
        var h = h0
        for c in b { h = (h ^ UInt64(c)) &* 0x0000_0100_0000_01b3 }
        return h
    }
    @inline(__always) private func slot(_ h: UInt64) -> Int { Int(truncatingIfNeeded: (h &* 0x9E37_79B9_7F4A_7C15) >> shift) & mask }

    /// Index of the entry holding exactly a+b, or -1.
    private func find(_ h: UInt64, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = a.count + b.count
        return arena.withUnsafeBytes { ar in
            entryStart.withUnsafeBufferPointer { st in
                entryHash.withUnsafeBufferPointer { eh in
                    slots.withUnsafeBufferPointer { sl in
                        var i = slot(h)
                        while true {
                            let e = Int(sl[i])
                            if e < 0 { return -1 }
                            if eh[e] == h && st[e + 1] - st[e] == n {
                                if n == 0 { return e }
                                let p = ar.baseAddress! + st[e]
                                if (a.isEmpty || memcmp(p, a.baseAddress!, a.count) == 0)
                                    && (b.isEmpty || memcmp(p + a.count, b.baseAddress!, b.count) == 0) { return e }
                            }
                            i = (i + 1) & mask
                        }
                    }
                }
            }
        }
    }

    private static let emptyBytes = UnsafeRawBufferPointer(start: nil, count: 0)

    func lookup(_ key: UnsafeRawBufferPointer) -> Int32? {
        let e = find(TokenTable.fnv(TokenTable.fnvOffset, key), key, TokenTable.emptyBytes)
        return e < 0 ? nil : entryId[e]
    }

    /// The id of the token whose bytes are a followed by b.
    func lookup(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int32? {
        let e = find(TokenTable.fnv(TokenTable.fnv(TokenTable.fnvOffset, a), b), a, b)
        return e < 0 ? nil : entryId[e]
    }

    func lookup(_ key: [UInt8]) -> Int32? { key.withUnsafeBytes { lookup($0) } }
    func lookup(_ key: String) -> Int32? { lookup(Array(key.utf8)) }

    mutating func insert(_ key: UnsafeRawBufferPointer, id: Int32) {
        let h = TokenTable.fnv(TokenTable.fnvOffset, key)
        let e = find(h, key, TokenTable.emptyBytes)
        if e >= 0 { entryId[e] = id; return }
        if (count + 1) * 2 > slots.count { grow() }
        let idx = entryId.count
        arena.append(contentsOf: key)
        entryStart.append(arena.count); entryId.append(id); entryHash.append(h)
        place(idx, h)
        count += 1
    }

    private mutating func place(_ e: Int, _ h: UInt64) {
        var i = slot(h)
        slots.withUnsafeMutableBufferPointer { sl in
            while sl[i] >= 0 { i = (i + 1) & mask }
            sl[i] = Int32(e)
        }
    }

    private mutating func grow() {
        let cap = slots.count * 2
        slots = [Int32](repeating: -1, count: cap)
        mask = cap - 1
        shift = UInt64(64 - cap.trailingZeroBitCount)
        for e in 0..<entryId.count { place(e, entryHash[e]) }
    }
}
