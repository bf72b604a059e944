import XCTest
@testable import Training

/// AdamW, schedules, clipping and the sampler permutation against torch / transformers
/// (fixtures: Scripts/fixtures/gen_training.py).
final class OptimizerTests: XCTestCase {
    func testAdamWMatchesTorchFusedAndSingleTensor() throws {
        let fx = try XCTUnwrap(loadJSON("adamw.json") as? [String: Any])
        let shapes = try XCTUnwrap(fx["shapes"] as? [[Int]])
        let inits = (fx["init"] as! [Any]).map(floats)
        let grads = (fx["grads"] as! [[Any]]).map { $0.map(floats) }
        let lrs = (fx["lrs"] as! [Double])
        let runs = fx["runs"] as! [String: Any]
        for runName in ["fused", "single_tensor"] {
            let run = runs[runName] as! [String: Any]
            // Names chosen so the decay rule reproduces the fixture's groups: [0, 2] decay 0.1, [1] none.
            let names = ["layer.weight", "layer.bias", "other.weight"]
            let params = TestParams((0..<3).map { (names[$0], shapes[$0], inits[$0]) })
            let opt = AdamW(parameters: params.tensors, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1)
            XCTAssertEqual(opt.decayFlags, [true, false, true])
            let expected = (run["params_after_step"] as! [[Any]]).map { $0.map(floats) }
            for k in 0..<lrs.count {
                for j in 0..<3 { for i in 0..<grads[k][j].count { params.grads[j][i] = grads[k][j][i] } }
                opt.step(params.tensors, lr: lrs[k])
                for j in 0..<3 {
                    // fp32 update; torch's vectorised kernel rounds in a slightly different order.
                    assertClose(Array(params.values[j]), expected[k][j], abs: 2e-7, rel: 2e-6, "\(runName) step \(k) param \(j)")
                }
            }
            let m = (run["exp_avg"] as! [Any]).map(floats), v = (run["exp_avg_sq"] as! [Any]).map(floats)
            for j in 0..<3 {
                assertClose(opt.expAvg[j], m[j], abs: 1e-7, rel: 1e-6, "\(runName) exp_avg \(j)")
                assertClose(opt.expAvgSq[j], v[j], abs: 1e-7, rel: 1e-6, "\(runName) exp_avg_sq \(j)")
            }
        }
    }

    func testDecayNameRuleMatchesTrainer() {
        // get_decay_parameter_names patterns (transformers 5.24 trainer.py).
        let excluded = ["model.norm.weight", "layers.0.input_layernorm.weight", "q_norm.weight", "head.bias",
                        "x.post_feedforward_layernorm.weight", "norm.weight", "a.rmsnorm.w"]
        let kept = ["model.embed_tokens.weight", "layers.0.self_attn.q_proj.lora_A.default.weight", "normal.weight",
                    "lm_head.weight", "vision.layer_norm1.weight" /* excluded by layer type, not by name */]
        for n in excluded { XCTAssertTrue(AdamW.nameExcludedFromDecay(n), n) }
        for n in kept { XCTAssertFalse(AdamW.nameExcludedFromDecay(n), n) }
    }

    func testSchedulesMatchTransformers() throws {
        let cases = try XCTUnwrap(loadJSON("schedules.json") as? [[String: Any]])
        XCTAssertEqual(cases.count, 12)
        for c in cases {
            let type = try XCTUnwrap(LRSchedulerType(rawValue: c["type"] as! String))
            let total = c["total"] as! Int
            let warm = LRSchedule.warmupSteps((c["warmup_steps"] as! NSNumber).doubleValue, totalSteps: total)
            XCTAssertEqual(warm, c["num_warmup"] as? Int, "\(type) warmup")
            let s = LRSchedule(type: type, baseLR: c["lr0"] as! Double, warmupSteps: warm, totalSteps: total)
            let lrs = c["lrs"] as! [Double]
            for (t, lr) in lrs.enumerated() {
                XCTAssertEqual(s.learningRate(atStep: t), lr, accuracy: 1e-15, "\(type) warmup \(warm) step \(t)")
            }
        }
    }

    func testClipGradNormMatchesTorch() throws {
        let cases = try XCTUnwrap(loadJSON("clip.json") as? [[String: Any]])
        for (ci, c) in cases.enumerated() {
            let grads = (c["grads"] as! [Any]).map(floats)
            let params = TestParams(grads.enumerated().map { ("p\($0.offset)", [$0.element.count], [Float](repeating: 0, count: $0.element.count)) })
            for j in 0..<grads.count { for i in 0..<grads[j].count { params.grads[j][i] = grads[j][i] } }
            let norm = GradientClipping.clip(params.tensors, maxNorm: c["max_norm"] as! Double)
            XCTAssertEqual(Double(norm), c["norm"] as! Double, accuracy: 1e-6 * (c["norm"] as! Double), "case \(ci) norm")
            let clipped = (c["clipped"] as! [Any]).map(floats)
            for j in 0..<grads.count { assertClose(Array(params.grads[j]), clipped[j], abs: 1e-7, rel: 1e-6, "case \(ci) grad \(j)") }
        }
    }

    func testRandpermMatchesTorch() throws {
        let cases = try XCTUnwrap(loadJSON("randperm.json") as? [[String: Any]])
        for c in cases {
            let n = c["n"] as! Int, seed = c["seed"] as! Int
            let perm = TorchRandom.randperm(n, seed: UInt64(seed))
            XCTAssertEqual(Array(perm.prefix(64)), c["head"] as! [Int], "n=\(n) seed=\(seed) head")
            XCTAssertEqual(Array(perm.suffix(16)), c["tail"] as! [Int], "n=\(n) seed=\(seed) tail")
        }
        // Spec §4.8 check value.
        XCTAssertEqual(TorchRandom.randperm(10, seed: 42), [2, 6, 1, 8, 4, 5, 0, 9, 3, 7])
    }
}
