import Foundation

// TensorBoard event files as torch's SummaryWriter writes them (spec §8): TFRecord framing with masked
// CRC-32C, `Event` protobufs encoded by hand, and a reader for `watch` and the dashboard's Runs screen.

public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78); crc("123456789") = 0xE3069283.
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// TFRecord's masking: ((c >> 15) | (c << 17)) + 0xA282EAD8.
    public static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}

/// Minimal protobuf wire-format encoder for the few messages TensorBoard needs.
struct ProtoWriter {
    var bytes: [UInt8] = []
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func tag(_ field: Int, _ wire: Int) { varint(UInt64(field << 3 | wire)) }
    mutating func double(_ field: Int, _ v: Double) {
        tag(field, 1); withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func float(_ field: Int, _ v: Float) {
        tag(field, 5); withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func int64(_ field: Int, _ v: Int64) { tag(field, 0); varint(UInt64(bitPattern: v)) }
    mutating func lengthDelimited(_ field: Int, _ b: [UInt8]) { tag(field, 2); varint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Array(s.utf8)) }
}

public enum TensorBoardEvent {
    /// `Event{wall_time=1, step=2, file_version=3}` + `source_metadata=10{writer=1}` (first record).
    public static func fileVersion(wallTime: Double) -> [UInt8] {
        var e = ProtoWriter()
        e.double(1, wallTime)
        e.string(3, "brain.Event:2")
        var sm = ProtoWriter(); sm.string(1, "tensorboard.summary.writer.event_file_writer")
        e.lengthDelimited(10, sm.bytes)
        return e.bytes
    }

    /// `add_scalar`: `Event{wall_time, step, summary=5{value=1{tag=1, simple_value=2}}}`.
    public static func scalar(tag: String, value: Float, step: Int, wallTime: Double) -> [UInt8] {
        var v = ProtoWriter(); v.string(1, tag); v.float(2, value)
        var s = ProtoWriter(); s.lengthDelimited(1, v.bytes)
        var e = ProtoWriter()
        e.double(1, wallTime)
        if step != 0 { e.int64(2, Int64(step)) }
        e.lengthDelimited(5, s.bytes)
        return e.bytes
    }

    /// `add_text`: tag `<tag>/text_summary`, plugin "text", a DT_STRING tensor of shape [1].
    public static func text(tag: String, text: String, step: Int, wallTime: Double) -> [UInt8] {
        var plugin = ProtoWriter(); plugin.string(1, "text"); plugin.lengthDelimited(2, [])
        var meta = ProtoWriter(); meta.lengthDelimited(1, plugin.bytes)
        var dim = ProtoWriter(); dim.int64(1, 1)
        var shape = ProtoWriter(); shape.lengthDelimited(2, dim.bytes)
        var tensor = ProtoWriter(); tensor.int64(1, 7); tensor.lengthDelimited(2, shape.bytes); tensor.string(8, text)
        var v = ProtoWriter(); v.string(1, tag + "/text_summary"); v.lengthDelimited(9, meta.bytes); v.lengthDelimited(8, tensor.bytes)
        var s = ProtoWriter(); s.lengthDelimited(1, v.bytes)
        var e = ProtoWriter()
        e.double(1, wallTime)
        if step != 0 { e.int64(2, Int64(step)) }
        e.lengthDelimited(5, s.bytes)
        return e.bytes
    }

    /// TFRecord: u64 length | masked crc(length) | data | masked crc(data).
    public static func record(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { out += $0 }
        let lenCRC = CRC32C.masked(out)
        withUnsafeBytes(of: lenCRC.littleEndian) { out += $0 }
        out += data
        withUnsafeBytes(of: CRC32C.masked(data).littleEndian) { out += $0 }
        return out
    }
}

/// Appends events to `events.out.tfevents.<time>.<host>.<pid>.<n>` in a run folder.
public final class TensorBoardWriter {
    public let url: URL
    private let handle: FileHandle

    public init(logDir: URL, now: Date = Date()) throws {
        try FileManager.default.createDirectory(at: logDir, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName
        let name = String(format: "events.out.tfevents.%010d.%@.%d.0", Int(now.timeIntervalSince1970), host, getpid())
        url = logDir.appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: url.path, contents: nil),
              let h = FileHandle(forWritingAtPath: url.path) else {
            throw TrainingError("\(url.path): cannot create the TensorBoard event file")
        }
        handle = h
        write(TensorBoardEvent.fileVersion(wallTime: now.timeIntervalSince1970))
    }

    deinit { try? handle.close() }

    public func write(_ event: [UInt8]) {
        handle.write(Data(TensorBoardEvent.record(event)))
    }

    public func addScalar(_ tag: String, _ value: Double, step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        write(TensorBoardEvent.scalar(tag: tag, value: Float(value), step: step, wallTime: wallTime))
    }

    public func addText(_ tag: String, _ text: String, step: Int = 0, wallTime: Double = Date().timeIntervalSince1970) {
        write(TensorBoardEvent.text(tag: tag, text: text, step: step, wallTime: wallTime))
    }

    public func flush() { try? handle.synchronize() }

    /// transformers `rewrite_logs`: eval_* → eval/*, test_* → test/*, everything else → train/*.
    public static func tag(forLogKey k: String) -> String {
        if k.hasPrefix("eval_") { return "eval/" + k.dropFirst(5) }
        if k.hasPrefix("test_") { return "test/" + k.dropFirst(5) }
        return "train/" + k
    }

    /// `runs/<%b%d_%H-%M-%S>_<hostname>` (transformers `default_logdir`).
    public static func defaultRunName(now: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "MMMdd_HH-mm-ss"
        return f.string(from: now) + "_" + ProcessInfo.processInfo.hostName
    }
}

/// Reads scalar (and text) series back from event files.
public struct TensorBoardReader {
    public struct ScalarPoint: Equatable, Sendable { public var step: Int; public var wallTime: Double; public var value: Double }
    public private(set) var scalars: [String: [ScalarPoint]] = [:]
    public private(set) var texts: [String: [String]] = [:]
    public private(set) var fileVersion: String?

    /// Reads one event file, or every `events.out.tfevents.*` under a folder (recursively), in name order.
    public init(path: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) else {
            throw TrainingError("\(path.path): no such file or folder")
        }
        var files: [URL] = []
        if isDir.boolValue {
            let e = FileManager.default.enumerator(at: path, includingPropertiesForKeys: nil)
            while let u = e?.nextObject() as? URL {
                if u.lastPathComponent.hasPrefix("events.out.tfevents.") { files.append(u) }
            }
            files.sort { $0.path < $1.path }
        } else { files = [path] }
        for f in files { try read(file: f) }
    }

    /// Tags with scalar series, sorted.
    public var tags: [String] { scalars.keys.sorted() }

    public func series(_ tag: String) -> [ScalarPoint] { scalars[tag] ?? [] }

    private mutating func read(file: URL) throws {
        guard let data = try? Data(contentsOf: file) else { throw TrainingError("\(file.path): cannot read") }
        let bytes = [UInt8](data)
        var p = 0
        while p < bytes.count {
            // A record still being written (the writer is live) ends the file early: stop quietly.
            guard p + 12 <= bytes.count else { break }
            let lenBytes = bytes[p..<(p + 8)]
            let len = lenBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            let lenCRC = le32(bytes, p + 8)
            guard lenCRC == CRC32C.masked(lenBytes) else { throw TrainingError("\(file.path): corrupt record header at byte \(p)") }
            let start = p + 12, end = start + Int(len)
            guard end + 4 <= bytes.count else { break }
            let payload = bytes[start..<end]
            guard le32(bytes, end) == CRC32C.masked(payload) else { throw TrainingError("\(file.path): corrupt record data at byte \(p)") }
            try parseEvent(Array(payload), file: file)
            p = end + 4
        }
    }

    private func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    private mutating func parseEvent(_ b: [UInt8], file: URL) throws {
        var r = ProtoReader(bytes: b, file: file)
        var wall: Double = 0, step = 0
        var summaries: [[UInt8]] = []
        while let (field, wire) = try r.nextTag() {
            switch (field, wire) {
            case (1, 1): wall = Double(bitPattern: try r.fixed64())
            case (2, 0): step = Int(Int64(bitPattern: try r.varint()))
            case (3, 2): fileVersion = String(decoding: try r.bytesField(), as: UTF8.self)
            case (5, 2): summaries.append(try r.bytesField())
            default: try r.skip(wire)
            }
        }
        for s in summaries {
            var sr = ProtoReader(bytes: s, file: file)
            while let (field, wire) = try sr.nextTag() {
                guard field == 1, wire == 2 else { try sr.skip(wire); continue }
                var vr = ProtoReader(bytes: try sr.bytesField(), file: file)
                var tag = "", simple: Float? = nil, text: String? = nil
                while let (vf, vw) = try vr.nextTag() {
                    switch (vf, vw) {
                    case (1, 2): tag = String(decoding: try vr.bytesField(), as: UTF8.self)
                    case (2, 5): simple = Float(bitPattern: try vr.fixed32())
                    case (8, 2):
                        var tr = ProtoReader(bytes: try vr.bytesField(), file: file)
                        while let (tf, tw) = try tr.nextTag() {
                            if tf == 8, tw == 2 { text = String(decoding: try tr.bytesField(), as: UTF8.self) } else { try tr.skip(tw) }
                        }
                    default: try vr.skip(vw)
                    }
                }
                if let simple { scalars[tag, default: []].append(ScalarPoint(step: step, wallTime: wall, value: Double(simple))) }
                if let text { texts[tag, default: []].append(text) }
            }
        }
    }
}

struct ProtoReader {
    let bytes: [UInt8]
    let file: URL
    var p = 0
    init(bytes: [UInt8], file: URL) { self.bytes = bytes; self.file = file }
    func bad() -> TrainingError { TrainingError("\(file.path): malformed protobuf in an event record") }
    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard p < bytes.count, shift < 64 else { throw bad() }
            let b = bytes[p]; p += 1
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }
    mutating func nextTag() throws -> (Int, Int)? {
        guard p < bytes.count else { return nil }
        let t = try varint()
        return (Int(t >> 3), Int(t & 7))
    }
    mutating func fixed64() throws -> UInt64 {
        guard p + 8 <= bytes.count else { throw bad() }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[p + i]) << (8 * UInt64(i)) }
        p += 8; return v
    }
    mutating func fixed32() throws -> UInt32 {
        guard p + 4 <= bytes.count else { throw bad() }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[p + i]) << (8 * UInt32(i)) }
        p += 4; return v
    }
    mutating func bytesField() throws -> [UInt8] {
        let n = Int(try varint())
        guard n >= 0, p + n <= bytes.count else { throw bad() }
        defer { p += n }
        return Array(bytes[p..<(p + n)])
    }
    mutating func skip(_ wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1: _ = try fixed64()
        case 2: _ = try bytesField()
        case 5: _ = try fixed32()
        default: throw bad()
        }
    }
}
