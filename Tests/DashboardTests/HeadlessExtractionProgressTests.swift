import Datasets
import XCTest
@testable import Dashboard
import Training

/// The headless runner installs the image-extraction progress line (Datasets' ZipExtractionProgress) for
/// every dataset opened while the run loads, and prints it on the printer's error stream.
final class HeadlessExtractionProgressTests: XCTestCase {
    func testHeadlessRunnerPrintsExtractionProgressOnItsErrorStream() throws {
        let e = ScriptedEngine()
        let out = Pipe(), err = Pipe()
        let p = HeadlessPrinter(out: out.fileHandleForWriting, err: err.fileHandleForWriting)
        let code = try HeadlessRunner.run(e, printer: p) {
            // What DatasetsSource's Dataset.open gets: options made with the defaults.
            DatasetOpenOptions().extractionProgress?(ZipExtractionProgress(
                archive: "2D-spatial.zip", archiveIndex: 0, archiveCount: 1, entriesDone: 2, entriesTotal: 2,
                bytesDone: 10, bytesTotal: 10, elapsed: 1, finished: true))
            DispatchQueue.global().async { e.emit(.stateChanged(.stopping)); e.emit(.stateChanged(.stopped)) }
        }
        XCTAssertEqual(code, 130)
        XCTAssertNil(DatasetOpenOptions.defaultExtractionProgress, "the runner puts the previous handler back")
        try err.fileHandleForWriting.close()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(text.contains("extracting images: 2D-spatial.zip, 10 B of 10 B (100%), 2 of 2 files, 10 B/s, done in 1s\n"), text)
    }
}
