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

    /// Ctrl-C while the run's data loading unpacks images: the extraction's flag (what new DatasetOpenOptions
    /// get) is set with the engine's stop, the open fails with the line that says so, and the run counts as
    /// stopped (130). A Ctrl-C that stopped no extraction leaves a failure a failure (1).
    func testCtrlCStopsAnExtractionInTheRunsLoading() throws {
        for stopsExtraction in [true, false] {
            let e = ScriptedEngine()
            let p = HeadlessPrinter(out: FileHandle(forWritingAtPath: "/dev/null")!, err: FileHandle(forWritingAtPath: "/dev/null")!)
            let code = try HeadlessRunner.run(e, printer: p) {
                let options = DatasetOpenOptions()      // made inside the run, as DatasetsSource's are
                let flag = try XCTUnwrap(options.extractionCancellation)
                XCTAssertFalse(flag.isCancelled)
                // What the runner's SIGINT source calls (the real signal is CLITests' Ctrl-C test).
                try XCTUnwrap(HeadlessRunner.active).interrupt()
                XCTAssertTrue(flag.isCancelled, "Ctrl-C sets the extraction flag (iteration \(stopsExtraction))")
                if stopsExtraction { XCTAssertTrue(flag.shouldStop()) }   // what ZipExtractor does at its next chunk
                DispatchQueue.global().async { e.emit(.failed(reason: "a.zip: extraction cancelled after 1 of 2 files")) }
            }
            XCTAssertEqual(code, stopsExtraction ? 130 : 1)
            XCTAssertEqual(e.commands, [.stop])
            XCTAssertNil(DatasetOpenOptions.defaultExtractionCancellation, "the runner puts the previous flag back")
            XCTAssertNil(HeadlessRunner.active)
        }
    }
}
