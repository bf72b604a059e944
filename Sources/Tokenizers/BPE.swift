import Foundation

/// A BPE model (tokenizer.json `model` with `type: "BPE"`), merging on integer ids: initial symbols are the ids
/// of single-scalar tokens (or byte-fallback / unk ids), and a merge is a hash lookup on the packed id pair.
final class BPEModel: @unchecked Sendable {
    let vocab: TokenTable
    let idToToken: [String?]
    /// (left id << 32 | right id) → (rank << 32 | merged id)
    let merges: PairTable
    let unkId: Int32?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// id of each single-scalar token in the Basic Multilingual Plane (-1 when absent); astral ones in a dictionary.
    private var bmpIds: [Int32]
    private var astralIds: [UInt32: Int32]
    private var byteIds: [Int32]
    /// Word cache: a word's scalars → flattened (id, unitStart, unitEnd) triples. Guarded by a lock.
    private var cache: [[UInt32]: [Int32]] = [:]
    private let lock = NSLock()
    static let cacheLimit = 200_000
    static let cacheWordLength = 256

    /// `json` holds the model's scalar fields; `vocab` and `merges` are read from the parsed document's nodes.
    init(json: JSONObject, doc: FastJSON, vocabNode: FastJSON.Node?, mergesNode: FastJSON.Node?, file: String) throws {
        if let d = json["dropout"], !(d is NSNull) {
            if let v = (d as? NSNumber)?.doubleValue, v > 0 {
                throw TokenizerError("\(file): BPE dropout \(v) is not supported (tokenization would be random); set it to null")
            }
        }
        if let p = json.string("continuing_subword_prefix"), !p.isEmpty {
            throw TokenizerError("\(file): BPE continuing_subword_prefix is not supported")
        }
        if let p = json.string("end_of_word_suffix"), !p.isEmpty {
            throw TokenizerError("\(file): BPE end_of_word_suffix is not supported")
        }
        guard case .object(let entries)? = vocabNode else { throw TokenizerError("\(file): BPE model has no vocab object") }
        // Keys stay in the JSON text: hashed and copied once into the table's arena, never into a [UInt8] each.
        var vocab = TokenTable(capacity: entries.count)
        var order: [(key: FastJSON.Str, id: Int32)] = []
        order.reserveCapacity(entries.count)
        var maxId: Int32 = -1
        for (k, v) in entries {
            guard let n = doc.int(v), n >= 0, n <= Int(Int32.max) else {
                throw TokenizerError("\(file): vocab entry \(doc.string(k).debugDescription) has no non-negative integer id")
            }
            doc.withStringBytes(k) { vocab.insert($0, id: Int32(n)) }
            order.append((k, Int32(n)))
            maxId = max(maxId, Int32(n))
        }
        var idToToken = [String?](repeating: nil, count: Int(maxId) + 1)
        for (k, id) in order { idToToken[Int(id)] = doc.string(k) }
        self.vocab = vocab
        self.idToToken = idToToken
        fuseUnk = json.bool("fuse_unk", false)
        byteFallback = json.bool("byte_fallback", false)
        ignoreMerges = json.bool("ignore_merges", false)
        if let u = json.string("unk_token") {
            guard let id = vocab.lookup(u) else { throw TokenizerError("\(file): unk_token \(u.debugDescription) is not in the vocab") }
            unkId = id
        } else { unkId = nil }

        var list: [FastJSON.Node] = []
        if case .array(let l)? = mergesNode { list = l }
        var merges = PairTable(capacity: list.count)
        /// (left, right, merged) ids of merge `rank`, its two tokens given as bytes.
        func resolve(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ rank: Int) throws -> (Int32, Int32, Int32) {
            guard let ia = vocab.lookup(a), let ib = vocab.lookup(b) else {
                let missing = vocab.lookup(a) == nil ? a : b
                throw TokenizerError("\(file): merge \(rank) uses \(String(decoding: missing, as: UTF8.self).debugDescription), which is not in the vocab")
            }
            guard let im = vocab.lookup(a, b) else {
                throw TokenizerError("\(file): merge \(rank) makes \(String(decoding: Array(a) + Array(b), as: UTF8.self).debugDescription), which is not in the vocab")
            }
            return (ia, ib, im)
        }
        for (rank, m) in list.enumerated() {
            let (ia, ib, im): (Int32, Int32, Int32)
            switch m {
            case .string(let s):
                (ia, ib, im) = try doc.withStringBytes(s) { all in
                    guard let sp = all.firstIndex(of: 0x20), !all[(sp + 1)...].contains(0x20) else {
                        throw TokenizerError("\(file): merge \(rank) \(String(decoding: all, as: UTF8.self).debugDescription) is not two tokens separated by one space")
                    }
                    return try resolve(UnsafeRawBufferPointer(rebasing: all[..<sp]), UnsafeRawBufferPointer(rebasing: all[(sp + 1)...]), rank)
                }
            case .array(let pair) where pair.count == 2:
                guard case .string(let x) = pair[0], case .string(let y) = pair[1] else { throw TokenizerError("\(file): merge \(rank) must be \"a b\" or [\"a\", \"b\"]") }
                (ia, ib, im) = try doc.withStringBytes(x) { a in try doc.withStringBytes(y) { b in try resolve(a, b, rank) } }
            default: throw TokenizerError("\(file): merge \(rank) must be \"a b\" or [\"a\", \"b\"]")
            }
            let key = UInt64(UInt32(bitPattern: ia)) << 32 | UInt64(UInt32(bitPattern: ib))
            merges.insertIfAbsent(key, UInt64(rank) << 32 | UInt64(UInt32(bitPattern: im)))  // the lowest rank wins
        }
        self.merges = merges

        bmpIds = [Int32](repeating: -1, count: 0x10000)
        astralIds = [:]
        for (k, id) in order {
            // single-scalar tokens: one UTF-8 sequence
            let scalar: Unicode.Scalar? = doc.withStringBytes(k) { kb in
                guard let f = kb.first else { return nil }
                let len = f < 0x80 ? 1 : (f < 0xE0 ? 2 : (f < 0xF0 ? 3 : 4))
                guard kb.count == len else { return nil }
                return String(decoding: kb, as: UTF8.self).unicodeScalars.first
            }
            guard let u = scalar else { continue }
            if u.value < 0x10000 { bmpIds[Int(u.value)] = id } else { astralIds[u.value] = id }
        }
        byteIds = (0..<256).map { vocab.lookup(String(format: "<0x%02X>", $0)) ?? -1 }
    }

    func id(of token: String) -> Int32? { vocab.lookup(token) }

    var vocabSize: Int { vocab.count }

    @inline(__always) private func scalarId(_ v: UInt32) -> Int32 {
        v < 0x10000 ? bmpIds[Int(v)] : (astralIds[v] ?? -1)
    }

    /// Tokenizes one pre-tokenized word; appends (id, start unit, end unit) triples, units being scalar indices of `word`.
    func tokenize(_ word: ArraySlice<UInt32>, into out: inout [Int32]) { tokenize(Array(word), into: &out) }

    func tokenize(_ key: [UInt32], into out: inout [Int32]) {
        if key.isEmpty { return }
        let cacheable = key.count < BPEModel.cacheWordLength
        if cacheable {
            lock.lock()
            let hit = cache[key]
            lock.unlock()
            if let hit { out.append(contentsOf: hit); return }
        }
        var res: [Int32] = []
        res.reserveCapacity(key.count * 3)
        if ignoreMerges, let id = vocab.lookup(NormalizedText(scalars: key, starts: [], ends: []).string) {
            res = [id, 0, Int32(key.count)]
        } else {
            mergeWord(key, &res)
        }
        if cacheable {
            lock.lock()
            if cache.count >= BPEModel.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[key] = res
            lock.unlock()
        }
        out.append(contentsOf: res)
    }

    private struct Symbol { var id: Int32; var start: Int32; var end: Int32; var prev: Int32; var next: Int32 }

    /// tokenizers' `merge_word`: symbols from scalars (byte fallback or unk for unknown ones), then the lowest-rank
    /// pair is merged repeatedly, leftmost first on ties, via a binary heap of candidate merges.
    private func mergeWord(_ w: [UInt32], _ res: inout [Int32]) {
        var syms: [Symbol] = []
        syms.reserveCapacity(w.count)
        var lastWasUnk = false
        for (i, v) in w.enumerated() {
            let id = scalarId(v)
            let a = Int32(i), b = Int32(i + 1)
            if id >= 0 { syms.append(Symbol(id: id, start: a, end: b, prev: 0, next: 0)); lastWasUnk = false; continue }
            if byteFallback, let u = Unicode.Scalar(v) {
                let bytes = Array(String(u).utf8)
                if bytes.allSatisfy({ byteIds[Int($0)] >= 0 }) {
                    for byte in bytes { syms.append(Symbol(id: byteIds[Int(byte)], start: a, end: b, prev: 0, next: 0)) }
                    lastWasUnk = false
                    continue
                }
            }
            if let unk = unkId {
                if fuseUnk && lastWasUnk { syms[syms.count - 1].end = b }
                else { syms.append(Symbol(id: unk, start: a, end: b, prev: 0, next: 0)) }
                lastWasUnk = true
            }
        }
        let n = syms.count
        for i in 0..<n { syms[i].prev = Int32(i - 1); syms[i].next = i + 1 < n ? Int32(i + 1) : -1 }

        // Heap entries: rank << 32 | position (smaller = higher priority), with the merged id alongside.
        var heap: [(key: UInt64, newId: Int32)] = []
        @inline(__always) func push(_ pos: Int) {
            let nx = Int(syms[pos].next)
            guard nx >= 0 else { return }
            let k = UInt64(UInt32(bitPattern: syms[pos].id)) << 32 | UInt64(UInt32(bitPattern: syms[nx].id))
            guard let m = merges.get(k) else { return }
            let e = (key: (m >> 32) << 32 | UInt64(pos), newId: Int32(bitPattern: UInt32(truncatingIfNeeded: m)))
            heap.append(e)
            var c = heap.count - 1
            while c > 0 { let p = (c - 1) / 2; if heap[p].key <= heap[c].key { break }; heap.swapAt(p, c); c = p }
        }
        func pop() -> (key: UInt64, newId: Int32) {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var c = 0
                while true {
                    let l = 2 * c + 1, r = l + 1
                    var m = c
                    if l < heap.count && heap[l].key < heap[m].key { m = l }
                    if r < heap.count && heap[r].key < heap[m].key { m = r }
                    if m == c { break }
                    heap.swapAt(m, c); c = m
                }
            }
            return top
        }
        if n > 1 {
            for i in 0..<(n - 1) { push(i) }
            while !heap.isEmpty {
                let top = pop()
                let pos = Int(top.key & 0xFFFF_FFFF)
                // Skip stale entries: the symbol was merged away, or its pair no longer makes this id.
                if syms[pos].end == syms[pos].start && syms[pos].id == -1 { continue }
                let nx = Int(syms[pos].next)
                if nx < 0 { continue }
                let k = UInt64(UInt32(bitPattern: syms[pos].id)) << 32 | UInt64(UInt32(bitPattern: syms[nx].id))
                guard let m = merges.get(k), Int32(bitPattern: UInt32(truncatingIfNeeded: m)) == top.newId, (m >> 32) == (top.key >> 32) else { continue }
                syms[pos].id = top.newId
                syms[pos].end = syms[nx].end
                syms[pos].next = syms[nx].next
                if syms[nx].next >= 0 { syms[Int(syms[nx].next)].prev = Int32(pos) }
                syms[nx].id = -1; syms[nx].start = 0; syms[nx].end = 0; syms[nx].next = -1
                push(pos)
                if syms[pos].prev >= 0 { push(Int(syms[pos].prev)) }
            }
        }
        var i = n > 0 ? 0 : -1
        while i >= 0 {
            res.append(syms[i].id); res.append(syms[i].start); res.append(syms[i].end)
            i = Int(syms[i].next)
        }
    }
}

/// Open-addressing hash table for merge lookups (a multiply-shift hash instead of SipHash: this lookup is the
/// inner loop of BPE).
struct PairTable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int
    private let shift: UInt64
    static let empty = UInt64.max

    /// An empty table sized for `capacity` pairs (filled with `insertIfAbsent`).
    init(capacity: Int) {
        var cap = 16
        while cap < capacity * 2 { cap <<= 1 }
        keys = [UInt64](repeating: PairTable.empty, count: cap)
        values = [UInt64](repeating: 0, count: cap)
        mask = cap - 1
        shift = UInt64(64 - cap.trailingZeroBitCount)
    }

    /// Adds k → v unless k is present (the first value stays). At most `capacity` distinct keys.
    mutating func insertIfAbsent(_ k: UInt64, _ v: UInt64) {
        var i = slot(k)
        while true {
            let x = keys[i]
            if x == k { return }
            if x == PairTable.empty { keys[i] = k; values[i] = v; return }
            i = (i + 1) & mask
        }
    }

    init(_ d: [UInt64: UInt64]) {
        var cap = 16
        while cap < d.count * 2 { cap <<= 1 }
        keys = [UInt64](repeating: PairTable.empty, count: cap)
        values = [UInt64](repeating: 0, count: cap)
        mask = cap - 1
        shift = UInt64(64 - cap.trailingZeroBitCount)
        for (k, v) in d {
            var i = slot(k)
            while keys[i] != PairTable.empty { i = (i + 1) & mask }
            keys[i] = k; values[i] = v
        }
    }
    @inline(__always) private func slot(_ k: UInt64) -> Int { Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> shift) & mask }
    @inline(__always) func get(_ k: UInt64) -> UInt64? {
        var i = slot(k)
        while true {
            let x = keys[i]
            if x == k { return values[i] }
            if x == PairTable.empty { return nil }
            i = (i + 1) & mask
        }
    }
}
