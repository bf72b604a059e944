import Foundation

/// Dremel record assembly for one row: walks the schema, reading each leaf's level slots from the
/// row's start. Every node instance consumes exactly one slot from each leaf under it when it is null
/// or an empty list, so sibling leaves stay aligned; a list continues while the next slot of its first
/// leaf repeats at the list's own repetition level.
struct RowAssembler {
    let schema: ParquetSchema
    /// Decoded leaf columns by leaf index (nil for columns not projected).
    let columns: [DecodedLeafColumn?]
    /// The row's index inside each column's decoded page run.
    let rows: [Int]
    var slot: [Int]
    var valueIndex: [Int]

    init(schema: ParquetSchema, columns: [DecodedLeafColumn?], rows: [Int]) {
        self.schema = schema
        self.columns = columns
        self.rows = rows
        slot = zip(columns, rows).map { c, r in c.map { Int($0.rowSlotStart[r]) } ?? 0 }
        valueIndex = zip(columns, rows).map { c, r in c.map { Int($0.rowValueStart[r]) } ?? 0 }
    }

    /// Assembles the given top-level fields of the row (`row`: its index in the file, for messages).
    mutating func assemble(fields: [Int], row: Int) throws -> RowValue {
        var out: [RowField] = []
        out.reserveCapacity(fields.count)
        for f in fields { out.append(RowField(name: schema.nodes[f].name, value: try readNode(f))) }
        for f in fields {
            for leaf in schema.nodes[f].leafStart..<schema.nodes[f].leafEnd {
                guard let col = columns[leaf], slot[leaf] != Int(col.rowSlotStart[rows[leaf] + 1]) else { continue }
                throw ParquetDecodeError("levels of column \(schema.nodes[schema.leaves[leaf]].name) do not agree with its siblings in row \(row)")
            }
        }
        return .record(out)
    }

    private func firstColumn(_ node: Int) throws -> (Int, DecodedLeafColumn) {
        let leaf = schema.nodes[node].leafStart
        guard let col = columns[leaf] else { throw ParquetDecodeError("column \(leaf) was not decoded") }
        guard slot[leaf] < col.slotCount else {
            throw ParquetDecodeError("column \(schema.nodes[schema.leaves[leaf]].name) ends inside a row")
        }
        return (leaf, col)
    }

    private mutating func skipSlot(_ node: Int) {
        let n = schema.nodes[node]
        for leaf in n.leafStart..<n.leafEnd { slot[leaf] += 1 }
    }

    /// One occurrence of `node` in its parent: a list for a repeated node, else a single instance.
    private mutating func readNode(_ node: Int) throws -> RowValue {
        let n = schema.nodes[node]
        guard n.repetition == .repeated else { return try readInstance(node) }
        let (leaf, col) = try firstColumn(node)
        if col.def(slot[leaf]) < n.defLevel { skipSlot(node); return .list([]) }
        var items: [RowValue] = []
        while true {
            items.append(try readDefinedInstance(node))
            let s = slot[leaf]
            guard s < col.slotCount, col.rep(s) == n.repLevel else { break }
        }
        return .list(items)
    }

    private mutating func readInstance(_ node: Int) throws -> RowValue {
        let n = schema.nodes[node]
        if n.repetition == .optional {
            let (leaf, col) = try firstColumn(node)
            if col.def(slot[leaf]) < n.defLevel { skipSlot(node); return .null }
        }
        return try readDefinedInstance(node)
    }

    /// An instance known to be present (its definition level is reached).
    private mutating func readDefinedInstance(_ node: Int) throws -> RowValue {
        let n = schema.nodes[node]
        if n.isLeaf {
            let leaf = n.leafStart
            guard let col = columns[leaf] else { throw ParquetDecodeError("column \(n.name) was not decoded") }
            guard slot[leaf] < col.slotCount else { throw ParquetDecodeError("column \(n.name) ends inside a row") }
            guard col.def(slot[leaf]) == col.maxDef else {
                throw ParquetDecodeError("column \(n.name): definition level \(col.def(slot[leaf])) where \(col.maxDef) is required")
            }
            let k = valueIndex[leaf]
            guard k < col.values.count else { throw ParquetDecodeError("column \(n.name) has fewer values than its levels") }
            valueIndex[leaf] += 1
            slot[leaf] += 1
            return col.values.value(k, asString: n.isString)
        }
        if n.isListWrapper {
            let repeatedChild = n.children[0]
            guard case .list(let items) = try readNode(repeatedChild) else { return .list([]) }
            if n.unwrapElement { return .list(items.map { $0.fields?.first?.value ?? .null }) }
            return .list(items)
        }
        var fields: [RowField] = []
        fields.reserveCapacity(n.children.count)
        for c in n.children { fields.append(RowField(name: schema.nodes[c].name, value: try readNode(c))) }
        return .record(fields)
    }
}
