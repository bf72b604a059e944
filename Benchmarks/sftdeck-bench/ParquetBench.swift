import Foundation
import Datasets

/// `sftdeck-bench parquet [--rows N] [--image-bytes B] [--group G] [--reads K]`: writes a llava-layout
/// parquet file in /tmp with SFTDeck's writer, then measures open time and random-row read time with
/// SFTDeck's reader and with pyarrow on the same file, in the same run.
func runParquetBench(_ args: [String]) throws {
    func opt(_ name: String, _ def: Int) -> Int {
        if let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) { return v }
        return def
    }
    let rows = opt("--rows", 10_000), imageBytes = opt("--image-bytes", 20_000), group = opt("--group", 1000), reads = opt("--reads", 40)
    let dir = URL(fileURLWithPath: "/tmp/sftdeck-bench-parquet")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent("llava-\(rows)x\(imageBytes).parquet")
    defer { try? FileManager.default.removeItem(at: url) }

    // Write: llava rows with incompressible "image" bytes (JPEG-like entropy).
    var rng = DemoDataset.Random(seed: 1)
    let t0 = Date()
    let writer = try ParquetWriter(url: url, fields: ParquetField.llavaSchema, compression: .snappy, rowGroupSize: group)
    var image = [UInt8](repeating: 0, count: imageBytes)
    for i in 0..<rows {
        for k in stride(from: 0, to: imageBytes, by: 8) {
            var v = rng.next()
            for j in k..<min(k + 8, imageBytes) { image[j] = UInt8(truncatingIfNeeded: v); v >>= 8 }
        }
        let text: (String) -> RowValue = { t in .record([RowField(name: "index", value: .null), RowField(name: "text", value: .string(t)), RowField(name: "type", value: .string("text"))]) }
        let img = RowValue.record([RowField(name: "index", value: .int(0)), RowField(name: "text", value: .null), RowField(name: "type", value: .string("image"))])
        let row = RowValue.record([
            RowField(name: "messages", value: .list([
                .record([RowField(name: "content", value: .list([img, text("Question \(i): what is shown in this picture, in detail?")])), RowField(name: "role", value: .string("user"))]),
                .record([RowField(name: "content", value: .list([text(String(repeating: "A long answer about the picture. ", count: 1 + i % 8))])), RowField(name: "role", value: .string("assistant"))]),
            ])),
            RowField(name: "images", value: .list([.record([RowField(name: "bytes", value: .bytes(Data(image))), RowField(name: "path", value: .null)])])),
        ])
        try writer.append(row)
    }
    try writer.close()
    let writeSeconds = Date().timeIntervalSince(t0)
    let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
    print(String(format: "parquet: wrote %d rows, %.1f MB, %d rows/group, snappy in %.2f s (%.0f MB/s)",
                 rows, Double(size) / 1e6, group, writeSeconds, Double(size) / 1e6 / writeSeconds))

    // The same random rows for both readers.
    var indices: [Int] = []
    for _ in 0..<reads { indices.append(Int(rng.next() % UInt64(rows))) }
    let python = ProcessInfo.processInfo.environment["SFTDECK_PYREF"] ?? "/work/pyref/bin/python"
    let hasPython = FileManager.default.isExecutableFile(atPath: python)
    try measureParquet(url: url, label: "SFTDeck-written (PLAIN, snappy, v1 pages)", indices: indices, group: group,
                       imageBytes: imageBytes, python: hasPython ? python : nil)
    guard hasPython else {
        print("parquet: pyarrow reference skipped (no python at \(python); set SFTDECK_PYREF)")
        return
    }
    // The same rows rewritten by pyarrow with its defaults (dictionary, snappy, 1 MiB v1 pages).
    let copy = dir.appendingPathComponent("llava-pyarrow-copy.parquet")
    defer { try? FileManager.default.removeItem(at: copy) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", "import sys, pyarrow.parquet as pq; pq.write_table(pq.read_table(sys.argv[1]), sys.argv[2], row_group_size=int(sys.argv[3]))",
                   url.path, copy.path, String(group)]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { print("parquet: pyarrow rewrite failed"); return }
    try measureParquet(url: copy, label: "pyarrow-written copy (dictionary, snappy)", indices: indices, group: group,
                       imageBytes: imageBytes, python: python)
    // And with a page index and pages of about 64 rows (write_page_index, write_batch_size): the
    // layout where the page-level read path can go straight to a row's pages.
    let indexed = dir.appendingPathComponent("llava-pyarrow-indexed.parquet")
    defer { try? FileManager.default.removeItem(at: indexed) }
    let q = Process()
    q.executableURL = URL(fileURLWithPath: python)
    q.arguments = ["-c", "import sys, pyarrow.parquet as pq; pq.write_table(pq.read_table(sys.argv[1]), sys.argv[2], row_group_size=int(sys.argv[3]), write_page_index=True, write_batch_size=64, use_dictionary=False)",
                   url.path, indexed.path, String(group)]
    try q.run()
    q.waitUntilExit()
    guard q.terminationStatus == 0 else { print("parquet: pyarrow rewrite with page index failed"); return }
    try measureParquet(url: indexed, label: "pyarrow-written copy (page index, 64-row batches, no dictionary, snappy)", indices: indices,
                       group: group, imageBytes: imageBytes, python: python)
}

private func measureParquet(url: URL, label: String, indices: [Int], group: Int, imageBytes: Int, python: String?) throws {
    func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
    var opens: [Double] = []
    for _ in 0..<21 {
        let t = Date()
        let f = try ParquetFile(url: url)
        precondition(f.rowCount > 0)
        opens.append(Date().timeIntervalSince(t))
    }
    let file = try ParquetFile(url: url)
    let rows = file.rowCount
    // Cold: a fresh reader per row (no page map, no cached page); the open is not timed.
    var cold: [Double] = []
    var checksum = 0
    for i in indices {
        let fresh = try ParquetFile(url: url)
        let t = Date()
        let r = try fresh.row(i)
        cold.append(Date().timeIntervalSince(t))
        checksum &+= r["images"]?.list?.first?["bytes"]?.bytes?.count ?? 0
    }
    // One reader jumping between random rows (its page maps and LRU page cache warm up).
    var jumping: [Double] = []
    for i in indices {
        let t = Date()
        _ = try file.row(i)
        jumping.append(Date().timeIntervalSince(t))
    }
    var warm: [Double] = []
    for i in indices {
        _ = try file.row(i)
        let neighbour = i % group == group - 1 ? i - 1 : i + 1
        let t = Date()
        _ = try file.row(min(neighbour, rows - 1))
        warm.append(Date().timeIntervalSince(t))
    }
    precondition(checksum == indices.count * imageBytes)
    let swiftOpen = median(opens) * 1e3, swiftCold = median(cold) * 1e3, swiftWarm = median(warm) * 1e3, swiftJump = median(jumping) * 1e3
    print("parquet: \(label)")
    if let leaf = file.schema.leaves.firstIndex(where: { file.schema.nodes[$0].name == "bytes" }) {
        var counts: [String: Int] = [:]
        for p in try file.pageSummary(rowGroup: 0, column: leaf) { counts[p, default: 0] += 1 }
        print("  image column pages in row group 0: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))
    }
    print(String(format: "  SFTDeck: open %.3f ms (median of 21), random row %.2f ms (median of %d, fresh reader: decodes the row's pages), random row with one reader %.3f ms (page cache %.0f MB), neighbouring row %.3f ms",
                 swiftOpen, swiftCold, indices.count, swiftJump, Double(file.pageCacheUsage.bytes) / 1e6, swiftWarm))
    guard let python else { return }
    let script = """
    import sys, time, json, statistics
    import pyarrow.parquet as pq
    path = sys.argv[1]; idx = json.loads(sys.argv[2])
    opens = []
    for _ in range(21):
        t = time.perf_counter(); f = pq.ParquetFile(path); f.metadata.num_rows; opens.append(time.perf_counter() - t)
    f = pq.ParquetFile(path)
    starts = [0]
    for g in range(f.num_row_groups): starts.append(starts[-1] + f.metadata.row_group(g).num_rows)
    cold = []
    for i in idx:
        t = time.perf_counter()
        g = max(k for k in range(f.num_row_groups) if starts[k] <= i)
        row = f.read_row_group(g).slice(i - starts[g], 1).to_pylist()[0]
        cold.append(time.perf_counter() - t)
        assert len(row["images"][0]["bytes"]) > 0
    print(json.dumps({"open": statistics.median(opens), "cold": statistics.median(cold)}))
    """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", script, url.path, "[" + indices.map(String.init).joined(separator: ",") + "]"]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let json = try? JSONSerialization.jsonObject(with: out) as? [String: Double],
          let pyOpen = json["open"], let pyCold = json["cold"] else {
        print("  pyarrow reference failed (status \(p.terminationStatus))")
        return
    }
    print(String(format: "  pyarrow: open %.3f ms, random row %.2f ms (read_row_group + slice + to_pylist)", pyOpen * 1e3, pyCold * 1e3))
    print(String(format: "  ratio SFTDeck/pyarrow: open %.2fx, random row %.2fx (below 1 = SFTDeck faster)",
                 swiftOpen / (pyOpen * 1e3), swiftCold / (pyCold * 1e3)))
}
