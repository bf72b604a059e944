import XCTest
import Tokenizers
@testable import Datasets

final class DemoDatasetTests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-demo-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func small(seed: UInt64 = 7) -> DemoDataset.Options {
        var o = DemoDataset.Options()
        o.seed = seed; o.trainRows = 12; o.testRows = 4; o.multiImageRows = 6; o.imageSize = 24
        return o
    }

    func testRendererDrawsTheShapeOnItsBackground() {
        let size = 32
        for shape in DemoDataset.Shape.allCases {
            let scene = DemoDataset.Scene(shape: shape, colour: DemoDataset.palette[0], background: DemoDataset.backgrounds[2],
                                          cx: 16, cy: 16, radius: 10)
            let px = DemoDataset.render(scene, size: size)
            func at(_ x: Int, _ y: Int) -> [UInt8] { Array(px[((y * size + x) * 3)..<((y * size + x) * 3 + 3)]) }
            XCTAssertEqual(at(16, 18), [220, 40, 40], "\(shape) centre")
            XCTAssertEqual(at(0, 0), [200, 225, 250], "\(shape) corner")
        }
        // Triangle: the apex row is narrow, the base row wide.
        let tri = DemoDataset.render(DemoDataset.Scene(shape: .triangle, colour: DemoDataset.palette[0], background: DemoDataset.backgrounds[0],
                                                       cx: 16, cy: 16, radius: 10), size: size)
        func width(_ y: Int) -> Int { (0..<size).filter { tri[(y * size + $0) * 3] == 220 }.count }
        XCTAssertLessThan(width(7), width(25))
        XCTAssertEqual(width(26), 21)
    }

    func testPNGEncoding() throws {
        let png = try DemoDataset.encodePNG(rgb: [UInt8](repeating: 128, count: 5 * 3 * 3), width: 5, height: 3)
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // IHDR: width and height big-endian at bytes 16..23, bit depth 8, colour type 2 (RGB).
        XCTAssertEqual(Array(png[16..<26]), [0, 0, 0, 5, 0, 0, 0, 3, 8, 2])
        XCTAssertThrowsError(try DemoDataset.encodePNG(rgb: [1, 2], width: 5, height: 3))
    }

    func testDemoReadsBackThroughTheLayouts() throws {
        let summary = try DemoDataset.write(to: tmp, options: small())
        let train = try Dataset.open(summary.llavaFolder.path)
        XCTAssertEqual(train.info.availableSplits, ["train", "test"])
        XCTAssertEqual(train.count, 12)
        XCTAssertEqual(try Dataset.open(summary.llavaFolder.path, split: "test").count, 4)
        for i in 0..<train.count {
            let row = try train.row(i)
            XCTAssertEqual(row.images.count, 1)
            XCTAssertEqual(row.messages.count, 2)
            XCTAssertEqual(row.messages[0].imageCount, 1)
            guard case .bytes(let png) = row.images[0] else { return XCTFail("bytes expected") }
            XCTAssertEqual(Array(png[16..<24]), [0, 0, 0, 24, 0, 0, 0, 24])
            guard case .parts(let parts) = row.messages[1].content, case .text(let answer) = parts[0] else { return XCTFail() }
            XCTAssertTrue(answer.hasSuffix("."), answer)
        }
        let mmiu = try Dataset.open(summary.mmiuFolder.path)
        XCTAssertEqual(mmiu.info.kind, .mmiu)
        XCTAssertEqual(mmiu.count, 6)
        XCTAssertEqual(try mmiu.missingImageReport().missingImages, 0)
        var images = 16
        for i in 0..<mmiu.count {
            let row = try mmiu.row(i)
            images += row.images.count
            XCTAssertTrue((2...4).contains(row.images.count))
            XCTAssertEqual(row.messages[1].imageCount, row.images.count)
            let raw = try mmiu.rawRow(i)
            if raw["task"]?.string == "shape_colour_match" {
                XCTAssertTrue(raw["question"]!.string!.hasPrefix("Which image has the "))
                XCTAssertTrue(raw["output"]!.string!.hasPrefix("Image "))
            }
        }
        XCTAssertEqual(images, summary.images)
    }

    /// With SFTDECK_DEMO_OUT=DIR, writes the full default demo there (for checking it with pyarrow/Pillow).
    func testWriteFullDemoWhenAsked() throws {
        guard let out = ProcessInfo.processInfo.environment["SFTDECK_DEMO_OUT"] else { return }
        let s = try DemoDataset.write(to: URL(fileURLWithPath: out))
        XCTAssertEqual(s.trainRows, 240)
    }

    func testDeterministicFromSeed() throws {
        let a = tmp.appendingPathComponent("a"), b = tmp.appendingPathComponent("b"), c = tmp.appendingPathComponent("c")
        try DemoDataset.write(to: a, options: small(seed: 1))
        try DemoDataset.write(to: b, options: small(seed: 1))
        try DemoDataset.write(to: c, options: small(seed: 2))
        for f in ["llava-shapes/data/train-00000-of-00001.parquet", "mmiu-shapes/all.parquet"] {
            let da = try Data(contentsOf: a.appendingPathComponent(f)), db = try Data(contentsOf: b.appendingPathComponent(f))
            XCTAssertEqual(da, db, f)
            XCTAssertNotEqual(da, try Data(contentsOf: c.appendingPathComponent(f)), f)
        }
    }
}
