import XCTest
@testable import Models

/// Greedy tokens equal transformers' `generate` (KV cache; prompts longer than the sliding windows).
final class GenerationTests: XCTestCase {
    func check(_ name: String, images: Int) throws {
        let dir = fixturesDir(name)
        let ref = try Reference(dir)
        let model = try Gemma3Model.load(from: dir)
        let b = try ref.batch()
        let L = b.attentionMask!.prefix(b.seqLen).reduce(0) { $0 + Int($1) }
        let prompt = Array(b.inputIDs.prefix(L))
        var px: [Float]? = nil
        if let all = b.pixelValues { px = Array(all.prefix(all.count / b.numImages * images)) }
        let want = ref.ints("generate.greedy")!.map(Int32.init)
        let got = try model.generate(prompt: prompt, tokenTypeIDs: b.tokenTypeIDs.map { Array($0.prefix(L)) },
                                     pixelValues: px, numImages: images, maxNewTokens: want.count)
        XCTAssertEqual(got, want, name)
    }
    func testGreedyTextOnly() throws { try check("text_gqa4", images: 0) }
    func testGreedyOneImage() throws { try check("mm_gqa1", images: 1) }
    func testGreedyTwoImages() throws { try check("mm_gqa2_bf16_sharded", images: 2) }

    /// The cached incremental path gives the same last-position logits as a full forward.
    func testCachedStepsEqualFullForward() throws {
        let model = try Gemma3Model.load(from: fixturesDir("text_gqa4"))
        let ids: [Int32] = [2, 17, 99, 5, 230, 41, 8, 77, 150, 3, 64, 12]
        let full = try model.evaluate(ModelBatch(batchSize: 1, seqLen: ids.count, inputIDs: ids), returnLogits: true).logits!
        let s = GenerationSession(model: model)
        _ = try s.step(Array(ids.prefix(5)))
        var last: [Float] = []
        for t in ids.dropFirst(5) { last = try s.step([t]) }
        let V = model.text.vocabSize
        XCTAssertLessThan(relErr(last, Array(full.suffix(V))), 1e-5)
        XCTAssertEqual(s.caches[0].count, model.text.slidingWindow! - 1, "sliding layer keeps window − 1 keys")
        XCTAssertEqual(s.caches[1].count, ids.count, "full layer keeps all")
    }

    /// With two images in the prefill (bidirectional blocks, sliding window 6 shorter than the prompt), cached
    /// steps equal full forwards over the growing sequence.
    func testCachedStepsWithImagesEqualFullForward() throws {
        let dir = fixturesDir("mm_gqa2_bf16_sharded")
        let model = try Gemma3Model.load(from: dir)
        let b = try Reference(dir).batch()
        let L = b.attentionMask!.prefix(b.seqLen).reduce(0) { $0 + Int($1) }
        var ids = Array(b.inputIDs.prefix(L))
        let tt = Array(b.tokenTypeIDs!.prefix(L))
        let px = Array(b.pixelValues!.prefix(b.pixelValues!.count / b.numImages * 2))
        let s = GenerationSession(model: model)
        var last = try s.step(ids, tokenTypeIDs: tt, pixelValues: px, numImages: 2)
        let V = model.text.vocabSize
        for next: Int32 in [7, 250, 31] {
            let full = try model.evaluate(ModelBatch(batchSize: 1, seqLen: ids.count, inputIDs: ids,
                                                     tokenTypeIDs: tt + [Int32](repeating: 0, count: ids.count - L),
                                                     pixelValues: px, numImages: 2), returnLogits: true).logits!
            XCTAssertLessThan(relErr(last, Array(full.suffix(V))), 1e-5)
            ids.append(next)
            last = try s.step([next])
        }
    }

    func testSamplingIsSeededAndRespectsTopK() throws {
        let logits: [Float] = [0, 5, 4.5, -1, 3]
        var r1 = SeededRNG(seed: 7), r2 = SeededRNG(seed: 7)
        let o = SamplingOptions(temperature: 1, topP: 1, topK: 2, seed: 7)
        let a = (0..<50).map { _ in Sampler.pick(logits, o, &r1) }
        let b = (0..<50).map { _ in Sampler.pick(logits, o, &r2) }
        XCTAssertEqual(a, b)
        XCTAssertTrue(Set(a).isSubset(of: [1, 2]))
        var r3 = SeededRNG(seed: 1)
        XCTAssertEqual(Set((0..<50).map { _ in Sampler.pick(logits, SamplingOptions(temperature: 1, topP: 0.5), &r3) }), [1])
    }
}
