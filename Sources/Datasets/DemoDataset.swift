import Foundation
import CPNG
import ZIPFoundation

/// SFTDeck's offline demo data: coloured shapes on coloured backgrounds, drawn here and encoded as PNG
/// with libpng, written in the two layouts of TRL's VLM guide so the demo exercises the same readers
/// as real data:
/// - single-image questions ("What shape is in the image?" → "A red triangle.") in the llava layout
///   (`llava-shapes/data/train-00000-of-00001.parquet`, `test-...`, a dataset card);
/// - multi-image questions ("Which image has the red triangle?" → "Image 2.") in the MMIU layout
///   (`mmiu-shapes/all.parquet` + one zip of PNGs per category).
/// Everything is a pure function of the seed.
public enum DemoDataset {
    public enum Shape: String, CaseIterable, Sendable { case circle, square, triangle }

    public struct Colour: Sendable, Equatable {
        public var name: String
        public var rgb: (UInt8, UInt8, UInt8)
        public static func == (a: Colour, b: Colour) -> Bool { a.name == b.name }
    }

    public static let palette: [Colour] = [
        Colour(name: "red", rgb: (220, 40, 40)), Colour(name: "green", rgb: (40, 170, 60)),
        Colour(name: "blue", rgb: (40, 80, 220)), Colour(name: "yellow", rgb: (235, 210, 40)),
        Colour(name: "purple", rgb: (140, 60, 180)), Colour(name: "orange", rgb: (240, 140, 30)),
    ]
    /// Backgrounds are pale, so every shape colour stands out on every background.
    public static let backgrounds: [Colour] = [
        Colour(name: "white", rgb: (245, 245, 245)), Colour(name: "grey", rgb: (200, 200, 200)),
        Colour(name: "light blue", rgb: (200, 225, 250)), Colour(name: "beige", rgb: (240, 230, 200)),
    ]

    public struct Options: Sendable {
        public var seed: UInt64 = 42
        public var trainRows = 240
        public var testRows = 60
        public var multiImageRows = 120
        public var imageSize = 64
        /// Images per multi-image question: a value in this range.
        public var imagesPerQuestion = 2...4
        public init() {}
    }

    public struct Summary: Sendable {
        public var llavaFolder: URL
        public var mmiuFolder: URL
        public var trainRows: Int
        public var testRows: Int
        public var multiImageRows: Int
        public var images: Int
    }

    /// The scene of one picture.
    public struct Scene: Sendable, Equatable {
        public var shape: Shape
        public var colour: Colour
        public var background: Colour
        /// Centre and half-size in pixels.
        public var cx: Int, cy: Int, radius: Int
        public var label: String { "\(colour.name) \(shape.rawValue)" }
    }

    /// SplitMix64: small, fast and the same everywhere.
    public struct Random: Sendable {
        var state: UInt64
        public init(seed: UInt64) { state = seed }
        public mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        public mutating func int(_ range: ClosedRange<Int>) -> Int {
            range.lowerBound + Int(next() % UInt64(range.count))
        }
        public mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
    }

    public static func randomScene(_ rng: inout Random, size: Int, shape: Shape? = nil, colour: Colour? = nil) -> Scene {
        let radius = rng.int(max(4, size / 6)...max(5, size / 3))
        let margin = radius + 1
        return Scene(shape: shape ?? rng.pick(Shape.allCases), colour: colour ?? rng.pick(palette), background: rng.pick(backgrounds),
                     cx: rng.int(margin...(size - 1 - margin)), cy: rng.int(margin...(size - 1 - margin)), radius: radius)
    }

    /// Draws a scene into an RGB buffer (row-major, 3 bytes a pixel).
    public static func render(_ s: Scene, size: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        let r = s.radius
        pixels.withUnsafeMutableBufferPointer { p in
            for y in 0..<size {
                for x in 0..<size {
                    let dx = x - s.cx, dy = y - s.cy
                    let inside: Bool
                    switch s.shape {
                    case .circle: inside = dx * dx + dy * dy <= r * r
                    case .square: inside = abs(dx) <= r * 3 / 4 && abs(dy) <= r * 3 / 4
                    case .triangle:
                        // Apex at (0, -r), base from (-r, r) to (r, r): inside when below both slanted edges.
                        inside = dy <= r && 2 * abs(dx) <= dy + r
                    }
                    let c = inside ? s.colour.rgb : s.background.rgb
                    let o = (y * size + x) * 3
                    p[o] = c.0; p[o + 1] = c.1; p[o + 2] = c.2
                }
            }
        }
        return pixels
    }

    public struct PNGError: Error, CustomStringConvertible, LocalizedError {
        public var description: String
        public var errorDescription: String? { description }
    }

    /// Encodes 8-bit RGB pixels as PNG (libpng's simplified write API).
    public static func encodePNG(rgb: [UInt8], width: Int, height: Int) throws -> Data {
        guard rgb.count == width * height * 3 else { throw PNGError(description: "PNG encode: \(rgb.count) bytes for \(width)x\(height) RGB") }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        var size: png_alloc_size_t = 0
        let ok1 = rgb.withUnsafeBytes { png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard ok1 != 0, size > 0 else { throw PNGError(description: "PNG encode failed: \(pngMessage(&image))") }
        var out = [UInt8](repeating: 0, count: Int(size))
        let ok2 = rgb.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { png_image_write_to_memory(&image, $0.baseAddress, &size, 0, src.baseAddress, 0, nil) }
        }
        guard ok2 != 0 else { throw PNGError(description: "PNG encode failed: \(pngMessage(&image))") }
        png_image_free(&image)
        return Data(out[0..<Int(size)])
    }

    private static func pngMessage(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    // MARK: writing the two layouts

    /// The MMIU records schema (as in FanqingM/MMIU-Benchmark's all.parquet).
    public static let mmiuSchema: [ParquetField] = [
        ParquetField("task", .string), ParquetField("visual_input_component", .string), ParquetField("source", .string),
        ParquetField("options", .string), ParquetField("question", .string), ParquetField("context", .string),
        ParquetField("input_image_path", .list(ParquetField("element", .string))), ParquetField("output", .string),
    ]

    @discardableResult
    public static func write(to folder: URL, options: Options = Options()) throws -> Summary {
        let fm = FileManager.default
        let llava = folder.appendingPathComponent("llava-shapes"), mmiu = folder.appendingPathComponent("mmiu-shapes")
        for d in [llava.appendingPathComponent("data"), mmiu] {
            do { try fm.createDirectory(at: d, withIntermediateDirectories: true) } catch {
                throw DatasetError(source: d.path, "cannot create the demo folder: \(error.localizedDescription)")
            }
        }
        var rng = Random(seed: options.seed)
        let size = options.imageSize
        var imageCount = 0

        // Single-image questions, llava layout.
        for (split, n) in [("train", options.trainRows), ("test", options.testRows)] {
            var rows: [RowValue] = []
            for _ in 0..<n {
                let scene = randomScene(&rng, size: size)
                let png = try encodePNG(rgb: render(scene, size: size), width: size, height: size)
                imageCount += 1
                let (q, a): (String, String)
                switch rng.int(0...2) {
                case 0: (q, a) = ("What shape is in the image?", "A \(scene.label).")
                case 1: (q, a) = ("What colour is the \(scene.shape.rawValue)?", scene.colour.name.prefix(1).uppercased() + scene.colour.name.dropFirst() + ".")
                default: (q, a) = ("Describe the image.", "A \(scene.label) on a \(scene.background.name) background.")
                }
                rows.append(llavaRow(question: q, answer: a, png: png, imageFirst: rng.int(0...3) != 0))
            }
            let url = llava.appendingPathComponent("data/\(split)-00000-of-00001.parquet")
            try ParquetWriter.write(url: url, fields: ParquetField.llavaSchema, rows: rows, compression: .snappy, rowGroupSize: 100)
        }
        try """
        ---
        configs:
        - config_name: default
          data_files:
          - split: train
            path: data/train-*
          - split: test
            path: data/test-*
        ---
        # llava-shapes (SFTDeck demo)
        Synthetic single-image questions about coloured shapes, in the layout of HuggingFaceH4/llava-instruct-mix-vsft.

        """.write(to: llava.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)

        // Multi-image questions, MMIU layout: images go into one zip per category.
        let categories = [("Low-level-semantic", "shape_colour_match"), ("2D-spatial", "shape_count")]
        var archives: [String: Archive] = [:]
        for (cat, _) in categories {
            let url = mmiu.appendingPathComponent(cat + ".zip")
            try? fm.removeItem(at: url)
            do { archives[cat] = try Archive(url: url, accessMode: .create, pathEncoding: nil) } catch {
                throw DatasetError(source: url.path, "cannot create the archive: \(error)")
            }
        }
        let fixedDate = Date(timeIntervalSince1970: 1_700_000_000)
        var records: [RowValue] = []
        for q in 0..<options.multiImageRows {
            let (cat, task) = categories[q % categories.count]
            let n = rng.int(options.imagesPerQuestion)
            var scenes: [Scene] = []
            let question: String, answer: String, optionsText: String
            if task == "shape_colour_match" {
                let target = (rng.pick(Shape.allCases), rng.pick(palette))
                let hit = rng.int(0...(n - 1))
                for k in 0..<n {
                    if k == hit { scenes.append(randomScene(&rng, size: size, shape: target.0, colour: target.1)); continue }
                    var s: Scene
                    repeat { s = randomScene(&rng, size: size) } while s.shape == target.0 && s.colour == target.1
                    scenes.append(s)
                }
                question = "Which image has the \(target.1.name) \(target.0.rawValue)?"
                answer = "Image \(hit + 1)."
                optionsText = (1...n).map { "\(Character(UnicodeScalar(64 + $0)!)): Image \($0)" }.joined(separator: "\n")
            } else {
                let shape = rng.pick(Shape.allCases)
                var count = 0
                for _ in 0..<n {
                    let s = randomScene(&rng, size: size)
                    if s.shape == shape { count += 1 }
                    scenes.append(s)
                }
                question = "How many of the images show a \(shape.rawValue)?"
                answer = "\(count)."
                optionsText = (0...n).map { "\($0)" }.joined(separator: ", ")
            }
            var paths: [RowValue] = []
            for (k, s) in scenes.enumerated() {
                let png = try encodePNG(rgb: render(s, size: size), width: size, height: size)
                let inZip = String(format: "%@/q%04d_%d.png", task, q, k + 1)
                do {
                    try archives[cat]!.addEntry(with: inZip, type: .file, uncompressedSize: Int64(png.count), modificationDate: fixedDate,
                                                compressionMethod: .deflate) { position, chunk in
                        png.subdata(in: Int(position)..<(Int(position) + chunk))
                    }
                } catch { throw DatasetError(source: cat + ".zip", "cannot add \(inZip): \(error)") }
                paths.append(.string("./\(cat)/\(inZip)"))
                imageCount += 1
            }
            records.append(.record([
                RowField(name: "task", value: .string(task)),
                RowField(name: "visual_input_component", value: .string("synthetic image")),
                RowField(name: "source", value: .string("sftdeck-demo")),
                RowField(name: "options", value: .string(optionsText)),
                RowField(name: "question", value: .string(question)),
                RowField(name: "context", value: .string("You are shown \(n) images, numbered in order. Answer briefly.")),
                RowField(name: "input_image_path", value: .list(paths)),
                RowField(name: "output", value: .string(answer)),
            ]))
        }
        archives.removeAll()   // closes the archives
        try ParquetWriter.write(url: mmiu.appendingPathComponent("all.parquet"), fields: mmiuSchema, rows: records,
                                compression: .snappy, rowGroupSize: 1000)
        return Summary(llavaFolder: llava, mmiuFolder: mmiu, trainRows: options.trainRows, testRows: options.testRows,
                       multiImageRows: options.multiImageRows, images: imageCount)
    }

    static func llavaRow(question: String, answer: String, png: Data, imageFirst: Bool) -> RowValue {
        func part(_ type: String, text: String?, index: Int64?) -> RowValue {
            .record([RowField(name: "index", value: index.map { .int($0) } ?? .null),
                     RowField(name: "text", value: text.map { .string($0) } ?? .null),
                     RowField(name: "type", value: .string(type))])
        }
        let image = part("image", text: nil, index: 0), text = part("text", text: question, index: nil)
        let user = RowValue.record([RowField(name: "content", value: .list(imageFirst ? [image, text] : [text, image])),
                                    RowField(name: "role", value: .string("user"))])
        let assistant = RowValue.record([RowField(name: "content", value: .list([part("text", text: answer, index: nil)])),
                                         RowField(name: "role", value: .string("assistant"))])
        return .record([RowField(name: "messages", value: .list([user, assistant])),
                        RowField(name: "images", value: .list([.record([RowField(name: "bytes", value: .bytes(png)),
                                                                        RowField(name: "path", value: .null)])]))])
    }
}
