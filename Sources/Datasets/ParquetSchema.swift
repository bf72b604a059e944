import Foundation

/// The parquet schema as a tree with each node's definition and repetition levels (the Dremel
/// numbers: how many optional-or-repeated / repeated nodes lie on the path from the root to it,
/// itself included). Leaves are the file's columns, numbered depth-first.
public struct ParquetSchema: Sendable {
    public struct Node: Sendable {
        public var name: String
        public var repetition: ParquetRepetition
        public var physicalType: ParquetPhysicalType?   // nil for groups
        var typeLength: Int32?
        var convertedType: Int32?
        var logicalType: Int16?
        public var children: [Int] = []
        public var parent: Int?
        /// Definition / repetition level of this node itself (root: 0, 0).
        public var defLevel = 0
        public var repLevel = 0
        /// Leaf columns under this node: `leafStart ..< leafEnd`.
        public var leafStart = 0
        public var leafEnd = 0
        /// For a LIST/MAP-annotated group: the values are its repeated child's instances, unwrapped to
        /// that child's single field when `unwrapElement` (the standard 3-level list).
        var isListWrapper = false
        var unwrapElement = false

        public var isLeaf: Bool { physicalType != nil }
        /// BYTE_ARRAY read as text (UTF8 / STRING / ENUM / JSON annotations).
        public var isString: Bool {
            guard physicalType == .byteArray else { return false }
            if let c = convertedType, c == ParquetConvertedType.utf8.rawValue || c == ParquetConvertedType.enumeration.rawValue
                || c == ParquetConvertedType.json.rawValue { return true }
            if let l = logicalType, l == 1 || l == 4 || l == 12 { return true }
            return false
        }
    }

    public private(set) var nodes: [Node]
    /// Node index of each leaf column.
    public private(set) var leaves: [Int]
    public var root: Node { nodes[0] }

    /// Builds the tree from the flattened, depth-first schema list of the footer.
    init(elements: [SchemaElement]) throws {
        guard let first = elements.first else { throw ThriftError.malformed("empty schema") }
        nodes = []
        leaves = []
        var index = 0
        func build(parent: Int?, defLevel: Int, repLevel: Int, depth: Int) throws -> Int {
            guard index < elements.count else { throw ThriftError.malformed("schema lists fewer elements than its groups claim") }
            guard depth < 100 else { throw ThriftError.malformed("schema nested deeper than 100") }
            let e = elements[index]
            index += 1
            let isRoot = parent == nil
            let repetition = isRoot ? .required : (e.repetition ?? .required)
            var node = Node(name: e.name, repetition: repetition, physicalType: e.type, typeLength: e.typeLength,
                            convertedType: e.convertedType, logicalType: e.logicalType)
            node.parent = parent
            node.defLevel = defLevel + (repetition == .required ? 0 : 1)
            node.repLevel = repLevel + (repetition == .repeated ? 1 : 0)
            if node.defLevel > 250 { throw ThriftError.malformed("schema has more than 250 nested levels") }
            let me = nodes.count
            nodes.append(node)
            nodes[me].leafStart = leaves.count
            let childCount = Int(e.numChildren ?? 0)
            if e.type == nil || childCount > 0 {
                guard childCount > 0 else { throw ThriftError.malformed("group '\(e.name)' has no children") }
                guard childCount <= elements.count - index else {
                    throw ThriftError.malformed("group '\(e.name)' claims \(childCount) children, more than the schema holds")
                }
                nodes[me].physicalType = nil
                for _ in 0..<childCount {
                    let c = try build(parent: me, defLevel: nodes[me].defLevel, repLevel: nodes[me].repLevel, depth: depth + 1)
                    nodes[me].children.append(c)
                }
            } else {
                leaves.append(me)
            }
            nodes[me].leafEnd = leaves.count
            return me
        }
        _ = try build(parent: nil, defLevel: 0, repLevel: 0, depth: 0)
        if index != elements.count { throw ThriftError.malformed("schema has \(elements.count - index) elements outside the root") }
        _ = first
        markLists()
    }

    /// LogicalTypes.md, "Lists" and "Maps", including the backward-compatibility rules for 2-level lists.
    private mutating func markLists() {
        for i in nodes.indices where !nodes[i].isLeaf {
            let n = nodes[i]
            let annotatedList = n.convertedType == ParquetConvertedType.list.rawValue || n.logicalType == 3
            let annotatedMap = n.convertedType == ParquetConvertedType.map.rawValue
                || n.convertedType == ParquetConvertedType.mapKeyValue.rawValue || n.logicalType == 2
            guard annotatedList || annotatedMap, n.children.count == 1 else { continue }
            let child = nodes[n.children[0]]
            guard child.repetition == .repeated else { continue }
            nodes[i].isListWrapper = true
            if annotatedList, !child.isLeaf, child.children.count == 1, child.name != "array", child.name != n.name + "_tuple" {
                nodes[i].unwrapElement = true
            }
        }
    }

    /// Index of the top-level field named `name`.
    public func topLevelField(_ name: String) -> Int? { nodes[0].children.first { nodes[$0].name == name } }
    public var topLevelNames: [String] { nodes[0].children.map { nodes[$0].name } }

    /// Arrow-like type text, e.g. `list<struct<role: string, content: list<...>>>`; `?` marks nullable.
    public func typeDescription(_ i: Int) -> String {
        let n = nodes[i]
        if n.isListWrapper {
            let rep = n.children[0]
            let elem = n.unwrapElement ? nodes[rep].children[0] : rep
            return "list<\(n.unwrapElement ? typeDescription(elem) + (nodes[elem].repetition == .optional ? "?" : "") : instanceDescription(elem))>"
        }
        if n.repetition == .repeated && i != 0 { return "list<\(instanceDescription(i))>" }
        return instanceDescription(i)
    }
    private func instanceDescription(_ i: Int) -> String {
        let n = nodes[i]
        if n.isListWrapper { return typeDescription(i) }
        if let p = n.physicalType { return n.isString ? "string" : p.description }
        return "struct<" + n.children.map { c in
            nodes[c].name + ": " + typeDescription(c) + (nodes[c].repetition == .optional ? "?" : "")
        }.joined(separator: ", ") + ">"
    }

    /// `name: type` for every top-level field.
    public var fieldDescriptions: [String] {
        nodes[0].children.map { c in nodes[c].name + ": " + typeDescription(c) + (nodes[c].repetition == .optional ? "?" : "") }
    }
}
