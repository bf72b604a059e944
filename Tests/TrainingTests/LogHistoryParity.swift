import Foundation
@testable import Training
import XCTest

/// Compares SFTDeck's log_history with a TRL SFTTrainer log_history, record by record and key by key,
/// with the tolerances the parity tests state: learning_rate and epoch 1e-12, token counts exact,
/// total_flos 1e-9, token accuracy 0.02 absolute (argmax ties), entropy `entropyTolerance` relative,
/// every other number (loss, grad_norm, eval_loss, train_loss) 1e-4 relative. A key TRL logged that
/// SFTDeck did not is a failure. Returns the worst relative (accuracy: absolute) error per key.
@discardableResult
func assertLogHistory(_ got: [LogRecord], matches want: [[String: Any]], label: String, entropyTolerance: Double,
                      file: StaticString = #filePath, line: UInt = #line) -> [String: Double] {
    XCTAssertEqual(got.count, want.count, "\(label): records", file: file, line: line)
    var worst: [String: Double] = [:]
    for (g, w) in zip(got, want) {
        XCTAssertEqual(g.step, w["step"] as? Int, file: file, line: line)
        for (k, any) in w where k != "step" {
            guard let wv = jsonNumber(any) else { continue }
            guard let gv = g[k] else { XCTFail("\(label) step \(g.step): missing \(k)", file: file, line: line); continue }
            let tol: Double
            switch k {
            case "learning_rate", "epoch": tol = 1e-12 * max(1, abs(wv))
            case "num_tokens", "eval_num_tokens": tol = 0
            case "total_flos": tol = 1e-9 * abs(wv)
            case "mean_token_accuracy", "eval_mean_token_accuracy": tol = 0.02
            case "entropy", "eval_entropy": tol = entropyTolerance * abs(wv)
            default: tol = 1e-4 * abs(wv)
            }
            XCTAssertEqual(gv, wv, accuracy: tol, "\(label) step \(g.step) \(k)", file: file, line: line)
            if ["loss", "grad_norm", "eval_loss", "train_loss", "entropy", "eval_entropy"].contains(k) {
                worst[k] = max(worst[k] ?? 0, abs(gv - wv) / abs(wv))
            } else if k.hasSuffix("mean_token_accuracy") {
                worst[k + " (abs)"] = max(worst[k + " (abs)"] ?? 0, abs(gv - wv))
            }
        }
    }
    return worst
}
