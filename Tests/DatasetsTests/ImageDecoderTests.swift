// Fixtures: Scripts/fixtures/gen_images.py (Pillow 13.0.0 with its bundled libjpeg-turbo 3.2.0; transformers 5.24).
import Foundation
import XCTest
@testable import Datasets

func fixtureURL(_ path: String) -> URL {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(path)
}

final class ImageDecoderTests: XCTestCase {
    struct Entry: Decodable { var file: String; var width: Int?; var height: Int?; var mode: String?; var sum: Int?; var white: Bool?; var error: String? }

    func manifest() throws -> [String: Entry] {
        let data = try Data(contentsOf: fixtureURL("images/decode/manifest.json"))
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var out = [String: Entry]()
        for (k, v) in obj where !k.hasPrefix("_") {
            out[k] = try JSONDecoder().decode(Entry.self, from: JSONSerialization.data(withJSONObject: v))
        }
        return out
    }

    /// PNG: every kind must equal Pillow's `.convert("RGB")` bytes exactly (lossless, no gamma either side).
    /// JPEG: the system libjpeg-turbo (Debian 2.1.5) against Pillow's bundled 3.2.0, both ISLOW + fancy
    /// upsampling; measured bit-identical on every fixture, so the test demands exact equality.
    func testDecodesEveryKindLikePillow() throws {
        var checked = 0
        for (name, e) in try manifest().sorted(by: { $0.key < $1.key }) where e.error == nil {
            let data = try Data(contentsOf: fixtureURL("images/decode/\(e.file)"))
            let img = try ImageDecoder.decodeRGB(data, alpha: .drop)
            XCTAssertEqual(img.width, e.width, name)
            XCTAssertEqual(img.height, e.height, name)
            let expected = try [UInt8](Data(contentsOf: fixtureURL("images/decode/\(name).rgb")))
            let diffs = zip(img.pixels, expected).filter { $0 != $1 }.count
            XCTAssertEqual(img.pixels.count, expected.count, name)
            XCTAssertEqual(diffs, 0, "\(name) (\(e.mode ?? "?")): \(diffs) of \(expected.count) bytes differ from Pillow")
            XCTAssertEqual(img.pixels.reduce(0) { $0 + Int($1) }, e.sum, name)
            if e.white == true {
                let white = try [UInt8](Data(contentsOf: fixtureURL("images/decode/\(name).white.rgb")))
                let w = try ImageDecoder.decodeRGB(data, alpha: .compositeOnWhite)
                let wd = zip(w.pixels, white).filter { $0 != $1 }.count
                XCTAssertEqual(wd, 0, "\(name): composite-on-white differs from transformers convert_to_rgb in \(wd) bytes")
            }
            checked += 1
        }
        XCTAssertEqual(checked, 22)
    }

    func testKindsAreWhatTheyClaim() throws {
        func decoded(_ f: String) throws -> DecodedImage { try ImageDecoder.decode(Data(contentsOf: fixtureURL("images/decode/\(f)"))) }
        XCTAssertEqual(try decoded("jpeg_gray.jpg").channels, 1)
        XCTAssertEqual(try decoded("png_la8.png").channels, 2)
        XCTAssertEqual(try decoded("png_rgba16.png").channels, 4)
        XCTAssertEqual(try decoded("png_palette_trns.png").channels, 4)
        XCTAssertEqual(try decoded("png_palette.png").channels, 3)
    }

    func testBadInputsAreOneClearError() throws {
        let cases: [(String, ImageError.Kind, String)] = [
            ("bad_truncated_jpeg.jpg", .corrupt, "JPEG"),
            ("bad_truncated_png.png", .corrupt, "PNG"),
            ("bad_garbage_jpeg.jpg", .corrupt, "JPEG"),
            ("bad_bomb_png.png", .tooLarge, "100000x100000"),
            ("bad_bomb_jpeg.jpg", .tooLarge, "60000x60000"),
        ]
        for (file, kind, needle) in cases {
            let data = try Data(contentsOf: fixtureURL("images/decode/\(file)"))
            let start = Date()
            XCTAssertThrowsError(try ImageDecoder.decode(data)) { error in
                guard let e = error as? ImageError else { return XCTFail("\(file): \(error)") }
                XCTAssertEqual(e.kind, kind, "\(file): \(e)")
                XCTAssertTrue(e.description.contains(needle), "\(file): \(e)")
                XCTAssertFalse(e.description.contains("\n"))
                XCTAssertEqual(e.in("row 7, image 0").description, "row 7, image 0: \(e.message)")
            }
            // The bombs are refused from the header (no 30 GB allocation); generous bound, not a timing test.
            XCTAssertLessThan(Date().timeIntervalSince(start), 5, file)
        }
        XCTAssertThrowsError(try ImageDecoder.decode(Data("GIF89a".utf8))) { XCTAssertEqual(($0 as? ImageError)?.kind, .unknownFormat) }
        XCTAssertThrowsError(try ImageDecoder.decode(Data())) { XCTAssertEqual(($0 as? ImageError)?.kind, .unknownFormat) }
        // A configurable bound.
        let small = try Data(contentsOf: fixtureURL("images/decode/png_rgb8.png"))
        XCTAssertThrowsError(try ImageDecoder.decode(small, limits: ImageLimits(maxWidth: 36))) { XCTAssertEqual(($0 as? ImageError)?.kind, .tooLarge) }
        XCTAssertThrowsError(try ImageDecoder.decode(small, limits: ImageLimits(maxPixels: 29 * 37 - 1))) { XCTAssertEqual(($0 as? ImageError)?.kind, .tooLarge) }
        XCTAssertNoThrow(try ImageDecoder.decode(small, limits: ImageLimits(maxWidth: 37, maxHeight: 29, maxPixels: 29 * 37)))
    }
}

final class ImageResizeTests: XCTestCase {
    struct Case: Decodable { var name: String; var width: Int; var height: Int; var out_width: Int; var out_height: Int }

    /// Pillow `Image.resize(BILINEAR)` port: bit-exact on upscales, downscales, one-axis and degenerate sizes.
    func testBilinearMatchesPillowExactly() throws {
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: fixtureURL("images/resize/index.json")))
        XCTAssertEqual(cases.count, 24)
        for c in cases {
            let src = try [UInt8](Data(contentsOf: fixtureURL("images/resize/\(c.name).in.rgb")))
            let expected = try [UInt8](Data(contentsOf: fixtureURL("images/resize/\(c.name).out.rgb")))
            let out = PillowResize.resize(RGBImage(width: c.width, height: c.height, pixels: src), width: c.out_width, height: c.out_height)
            XCTAssertEqual(out.width, c.out_width); XCTAssertEqual(out.height, c.out_height)
            let diffs = zip(out.pixels, expected).filter { $0 != $1 }.count
            XCTAssertEqual(diffs, 0, "\(c.name): \(diffs) of \(expected.count) bytes differ from Pillow")
        }
    }
}

final class ProcessorImageTests: XCTestCase {
    struct Index: Decodable {
        struct Case: Decodable { var name: String; var width: Int; var height: Int }
        struct Summary: Decodable { var name: String; var width: Int; var height: Int; var size: Int; var sum: Double; var abs_sum: Double; var samples: [[Double]] }
        var cases: [Case]; var summary896: Summary; var backend: String
    }

    func floats(_ path: String) throws -> [Float] {
        let d = try Data(contentsOf: fixtureURL(path))
        return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Gemma3ImageProcessorPil (transformers 5.24, PIL backend) at size 48: pixel values equal.
    /// Measured: max |error| 0, mean 0 (bit-exact float32); the test allows nothing more.
    func testPixelValuesMatchTransformers() throws {
        let dir = fixtureURL("images/processor")
        let config = try Gemma3ImageProcessorConfig.load(modelDirectory: dir)
        XCTAssertEqual(config.size, .init(height: 48, width: 48))
        XCTAssertEqual(config.imageSeqLength, 4)
        let proc = try Gemma3ImageProcessor(config: config)
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: dir.appendingPathComponent("index.json")))
        XCTAssertEqual(index.backend, "pil")
        for c in index.cases {
            let src = try [UInt8](Data(contentsOf: dir.appendingPathComponent("\(c.name).in.rgb")))
            let expected = try floats("images/processor/\(c.name).pixel_values.f32")
            let got = proc.process(RGBImage(width: c.width, height: c.height, pixels: src))
            XCTAssertEqual(got.count, expected.count)
            var maxErr: Float = 0, sumErr: Double = 0
            for (a, b) in zip(got, expected) { let e = abs(a - b); maxErr = max(maxErr, e); sumErr += Double(e) }
            XCTAssertEqual(maxErr, 0, "\(c.name): max error \(maxErr), mean \(sumErr / Double(got.count))")
        }
    }

    /// The full 896 size on a 300x200 photo-like image (summary statistics + samples from transformers).
    func testFullSize896Summary() throws {
        let dir = fixtureURL("images/processor")
        let s = try JSONDecoder().decode(Index.self, from: Data(contentsOf: dir.appendingPathComponent("index.json"))).summary896
        let src = try [UInt8](Data(contentsOf: dir.appendingPathComponent("\(s.name).in.rgb")))
        let proc = try Gemma3ImageProcessor(config: Gemma3ImageProcessorConfig())
        let got = proc.process(RGBImage(width: s.width, height: s.height, pixels: src))
        XCTAssertEqual(got.count, 3 * 896 * 896)
        var sum = 0.0, absSum = 0.0
        for v in got { sum += Double(v); absSum += Double(abs(v)) }
        // float64 sums of float32 values: equal pixels give equal sums up to summation order (1e-9 relative).
        XCTAssertEqual(sum, s.sum, accuracy: 1e-9 * max(1, abs(s.sum)) + 1e-6)
        XCTAssertEqual(absSum, s.abs_sum, accuracy: 1e-9 * s.abs_sum)
        for sm in s.samples {
            let (c, y, x) = (Int(sm[0]), Int(sm[1]), Int(sm[2]))
            XCTAssertEqual(got[c * 896 * 896 + y * 896 + x], Float(sm[3]))
        }
    }

    func testConfigErrors() throws {
        var c = Gemma3ImageProcessorConfig()
        c.doPanAndScan = true
        XCTAssertThrowsError(try Gemma3ImageProcessor(config: c))
        c = Gemma3ImageProcessorConfig(); c.resample = 0
        XCTAssertThrowsError(try Gemma3ImageProcessor(config: c)) { XCTAssertTrue("\($0)".contains("resample=0")) }
        XCTAssertThrowsError(try Gemma3ImageProcessorConfig.load(modelDirectory: URL(fileURLWithPath: "/nonexistent")))
    }
}
