import Foundation

/// Token bytes → id, built for loading a 262k-entry vocab and resolving ~500k merges quickly: every key's
/// bytes live in one arena (no array per token), open-addressed slots (linear probing, 64-bit FNV-1a hash)
/// carry the hash's high half, the id and the key's place in the arena, so a probe compares hashes before
/// bytes and a lookup allocates nothing. `lookup(a, b)` finds the concatenation a+b without building it
/// (merge targets). Inserting an existing key replaces its id (last wins, as a dictionary assignment does).
struct TokenTable {
    /// One probe reads one slot: the hash's high half, the id and where the key's bytes are, so a lookup
    /// touches the slot and the arena bytes only (a 262k vocab is memory-latency bound, not hash bound).
    private struct Slot { var hash: UInt32; var id: Int32; var start: UInt32; var length: UInt32 }
    private static let emptySlot = Slot(hash: 0, id: 0, start: .max, length: 0)
    private var arena: [UInt8] = []
    private var slots: [Slot]
    private var mask: Int
    private var shift: UInt64
    /// Distinct keys.
    private(set) var count = 0

    init(capacity: Int = 16) {
        var cap = 16
        while cap < capacity * 2 { cap <<= 1 }
        slots = [Slot](repeating: TokenTable.emptySlot, count: cap)
        mask = cap - 1
        shift = UInt64(64 - cap.trailingZeroBitCount)
        arena.reserveCapacity(capacity * 8)
    }

    static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) static func fnv(_ h0: UInt64, _ b: UnsafeRawBufferPointer) -> UInt64 {
        var h = h0
        for c in b { h = (h ^ UInt64(c)) &* 0x0000_0100_0000_01b3 }
        return h
    }
    @inline(__always) private func slot(_ h: UInt64) -> Int { Int(truncatingIfNeeded: (h &* 0x9E37_79B9_7F4A_7C15) >> shift) & mask }

    /// The slot holding exactly a+b, or the empty slot where it would go; (index, found).
    private func find(_ h: UInt64, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> (Int, Bool) {
        let n = a.count + b.count, tag = UInt32(truncatingIfNeeded: h >> 32)
        return arena.withUnsafeBytes { ar in
            slots.withUnsafeBufferPointer { sl in
                var i = slot(h)
                while true {
                    let s = sl[i]
                    if s.start == .max { return (i, false) }
                    if s.hash == tag && Int(s.length) == n {
                        if n == 0 { return (i, true) }
                        let p = ar.baseAddress! + Int(s.start)
                        if (a.isEmpty || memcmp(p, a.baseAddress!, a.count) == 0)
                            && (b.isEmpty || memcmp(p + a.count, b.baseAddress!, b.count) == 0) { return (i, true) }
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    private static let emptyBytes = UnsafeRawBufferPointer(start: nil, count: 0)

    func lookup(_ key: UnsafeRawBufferPointer) -> Int32? {
        let (i, found) = find(TokenTable.fnv(TokenTable.fnvOffset, key), key, TokenTable.emptyBytes)
        return found ? slots[i].id : nil
    }

    /// The id of the token whose bytes are a followed by b.
    func lookup(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int32? {
        let (i, found) = find(TokenTable.fnv(TokenTable.fnv(TokenTable.fnvOffset, a), b), a, b)
        return found ? slots[i].id : nil
    }

    func lookup(_ key: [UInt8]) -> Int32? { key.withUnsafeBytes { lookup($0) } }
    func lookup(_ key: String) -> Int32? { lookup(Array(key.utf8)) }

    mutating func insert(_ key: UnsafeRawBufferPointer, id: Int32) {
        if (count + 1) * 2 > slots.count { grow() }
        let h = TokenTable.fnv(TokenTable.fnvOffset, key)
        let (i, found) = find(h, key, TokenTable.emptyBytes)
        if found { slots[i].id = id; return }
        slots[i] = Slot(hash: UInt32(truncatingIfNeeded: h >> 32), id: id, start: UInt32(arena.count), length: UInt32(key.count))
        arena.append(contentsOf: key)
        count += 1
    }

    private mutating func grow() {
        let old = slots
        let cap = slots.count * 2
        slots = [Slot](repeating: TokenTable.emptySlot, count: cap)
        mask = cap - 1
        shift = UInt64(64 - cap.trailingZeroBitCount)
        arena.withUnsafeBytes { ar in
            for s in old where s.start != .max {
                let h = TokenTable.fnv(TokenTable.fnvOffset, UnsafeRawBufferPointer(rebasing: ar[Int(s.start)..<Int(s.start + s.length)]))
                var i = slot(h)
                while slots[i].start != .max { i = (i + 1) & mask }
                slots[i] = s
            }
        }
    }
}
