// sftdeck-bench pipeline: rows/s for read (parquet, Dataset.open) + format (the layout's formatter) + render + tokenize + image processing
// (decode, resize to 896, rescale, normalize) + collate on the llava layout, against the Python reference
// pipeline (pyarrow + Pillow + transformers 5.24 Gemma3Processor, PIL backend, + the guide's collate_fn)
// on the same files, measured in the same run.
//
// Usage: sftdeck-bench pipeline [--rows N] [--batch B] [--python PATH] [--work DIR]
// The dataset (640x480 photo-like JPEGs, as COCO images in llava-instruct-mix) and a Gemma-3-sized processor
// folder (size 896, 256 image tokens; the tiny fixture tokenizer, since no real Gemma tokenizer is
// available offline) are written by the Python side first.
import Datasets
import Foundation

private let pipelinePython = #"""
import io, json, os, shutil, sys, time
import numpy as np
mode, root = sys.argv[1], sys.argv[2]
if mode == "make":
    import pyarrow as pa, pyarrow.parquet as pq
    from PIL import Image
    n, fixture = int(sys.argv[3]), sys.argv[4]
    os.makedirs(os.path.join(root, "model"), exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(os.path.join(fixture, f), os.path.join(root, "model", f))
    cfg = json.load(open(os.path.join(fixture, "preprocessor_config.json")))
    cfg["size"] = {"height": 896, "width": 896}; cfg["image_seq_length"] = 256
    json.dump(cfg, open(os.path.join(root, "model", "preprocessor_config.json"), "w"))
    json.dump({"image_seq_length": 256}, open(os.path.join(root, "model", "processor_config.json"), "w"))
    r = np.random.RandomState(0)
    yy, xx = np.mgrid[0:480, 0:640]
    msgs, imgs = [], []
    for i in range(n):
        img = np.stack([128 + 100 * np.sin(xx / 60.0 + i), 128 + 100 * np.cos(yy / 45.0 - i), (xx + yy + 7 * i) % 256], -1)
        img = np.clip(img + r.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
        b = io.BytesIO(); Image.fromarray(img).save(b, "JPEG", quality=90)
        imgs.append([{"bytes": b.getvalue(), "path": None}])
        q = "What is   in this picture? Describe the colours." if i % 2 else "Describe the image."
        msgs.append([{"role": "user", "content": [{"index": 0, "text": None, "type": "image"}, {"index": None, "text": q, "type": "text"}]},
                     {"role": "assistant", "content": [{"index": None, "text": "A red circle on a striped background, " * (1 + i % 3), "type": "text"}]}])
    pq.write_table(pa.table({"messages": msgs, "images": imgs}), os.path.join(root, "llava.parquet"), compression="snappy")
    print("ok")
else:
    import pyarrow.parquet as pq
    from PIL import Image
    from transformers import PreTrainedTokenizerFast
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil
    from transformers.models.gemma3.processing_gemma3 import Gemma3Processor
    rows, bs = int(sys.argv[3]), int(sys.argv[4])
    m = os.path.join(root, "model")
    tok = PreTrainedTokenizerFast.from_pretrained(m)
    cfg = json.load(open(os.path.join(m, "preprocessor_config.json")))
    ip = Gemma3ImageProcessorPil(size=cfg["size"], resample=2, rescale_factor=cfg["rescale_factor"], image_mean=cfg["image_mean"], image_std=cfg["image_std"])
    proc = Gemma3Processor(image_processor=ip, tokenizer=tok, chat_template=open(os.path.join(m, "chat_template.jinja")).read(), image_seq_length=256)
    def collate_fn(examples):  # the guide's
        texts = [proc.apply_chat_template(e["messages"], tokenize=False, add_generation_prompt=False).strip() for e in examples]
        images = [[img.convert("RGB") for img in e["images"]] for e in examples]
        batch = proc(images=images, text=texts, return_tensors="pt", padding=True)
        labels = batch["input_ids"].clone()
        labels[labels == tok.pad_token_id] = -100
        labels[labels == tok.image_token_id] = -100
        batch["labels"] = labels
        return batch
    t0, c0 = time.perf_counter(), time.process_time()
    table = pq.read_table(os.path.join(root, "llava.parquet")).to_pylist()[:rows]
    done = 0
    for s in range(0, rows, bs):
        ex = [{"messages": r["messages"], "images": [Image.open(io.BytesIO(i["bytes"])) for i in r["images"]]} for r in table[s:s + bs]]
        b = collate_fn(ex)
        done += b["input_ids"].shape[0]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"rows": done, "seconds": dt, "cpu_seconds": cpu, "shape": list(b["input_ids"].shape), "pixel_sum": float(b["pixel_values"].double().sum())}))
"""#

func runPipelineBench(_ args: [String]) throws {
    func opt(_ name: String) -> String? { args.firstIndex(of: name).flatMap { args.indices.contains($0 + 1) ? args[$0 + 1] : nil } }
    let rows = Int(opt("--rows") ?? "") ?? 32
    let batch = Int(opt("--batch") ?? "") ?? 8
    let python = opt("--python") ?? ProcessInfo.processInfo.environment["SFTDECK_PYREF"] ?? "/work/pyref/bin/python"
    let work = URL(fileURLWithPath: opt("--work") ?? NSTemporaryDirectory() + "sftdeck-bench-pipeline")
    let fixture = URL(fileURLWithPath: "Tests/DatasetsTests/Fixtures/collator/model")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    let script = work.appendingPathComponent("pipeline.py")
    try pipelinePython.write(to: script, atomically: true, encoding: .utf8)

    func runPython(_ a: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script.path] + a
        let out = Pipe(); p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run(); p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard p.terminationStatus == 0 else { throw ProcessorError("python \(a.first ?? "") failed (status \(p.terminationStatus))") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let parquet = work.appendingPathComponent("llava.parquet")
    if !FileManager.default.fileExists(atPath: parquet.path) {
        _ = try runPython(["make", work.path, String(max(rows, 64)), fixture.path])
    }

    // Swift: everything from opening the file to the last collated batch, one thread.
    let pipe = try CollatorPipeline(modelDirectory: work.appendingPathComponent("model"), policy: LabelPolicy(masking: .guideExact))
    let t0 = Date(), c0 = processCPUSeconds()
    let dataset = try Dataset.open(parquet.path)
    var done = 0, last: CollatedBatch?
    var start = 0
    while start < rows {
        let samples = try (start..<min(start + batch, rows)).map { try TrainingSample.from(dataset.row($0)).0 }
        let b = try pipe.collate(samples)
        done += b.batchSize; last = b
        start += batch
    }
    let swiftSeconds = Date().timeIntervalSince(t0), swiftCPU = processCPUSeconds() - c0
    // Per-stage split on row 0 (10 repetitions): where a row's time goes.
    let s0 = try TrainingSample.from(dataset.row(0)).0
    func timed(_ f: () throws -> Void) rethrows -> Double {
        let t = Date(); for _ in 0..<10 { try f() }; return Date().timeIntervalSince(t) / 10 * 1000
    }
    var rgb = RGBImage(width: 1, height: 1, pixels: [0, 0, 0])
    let tDecode = try timed { rgb = try ImageDecoder.decodeRGB(s0.images[0]) }
    let proc = pipe.encoder.imageProcessor
    var resized = rgb
    let tResize = timed { resized = proc.resized(rgb) }
    let tNormalize = timed { var out = [Float](); out.reserveCapacity(3 * resized.width * resized.height); proc.process(resized, into: &out) }
    let tEncode = try timed { _ = try pipe.encode(s0) }
    let tRead = try timed { _ = try TrainingSample.from(dataset.row(0)) }
    let pyJSON = try runPython(["run", work.path, String(rows), String(batch)])
    let py = try JSONSerialization.jsonObject(with: Data(pyJSON.utf8)) as? [String: Any] ?? [:]
    let pySeconds = py["seconds"] as? Double ?? .nan, pyCPU = py["cpu_seconds"] as? Double ?? .nan
    let pixelSum = last.map { $0.pixelValues.reduce(0.0) { $0 + Double($1) } } ?? 0
    print("pipeline (llava layout, \(rows) rows, batch \(batch), 640x480 JPEG -> 896, 256 image tokens, guide-exact labels)")
    // CPU seconds are the robust figure on a shared machine (wall time also counts other jobs' time slices).
    print(String(format: "  swift : %7.2f rows/s wall, %7.2f rows per CPU-second  (%.3f s wall, %.3f s CPU, 1 thread)",
                 Double(done) / swiftSeconds, Double(done) / swiftCPU, swiftSeconds, swiftCPU))
    print(String(format: "  python: %7.2f rows/s wall, %7.2f rows per CPU-second  (%.3f s wall, %.3f s CPU; pyarrow + Pillow + transformers 5.24 PIL backend)",
                 Double(rows) / pySeconds, Double(rows) / pyCPU, pySeconds, pyCPU))
    print(String(format: "  ratio : %.2fx (CPU), %.2fx (wall)", pyCPU / swiftCPU, pySeconds / swiftSeconds))
    print(String(format: "  swift row 0 stages (ms): read+format %.2f, JPEG decode %.2f, resize %.2f, normalize %.2f, whole encode %.2f",
                 tRead, tDecode, tResize, tNormalize, tEncode))
    if let s = last, let pyShape = py["shape"] as? [Int], let pySum = py["pixel_sum"] as? Double {
        print("  last batch: swift [\(s.batchSize), \(s.sequenceLength)] python \(pyShape); pixel sum swift \(String(format: "%.3f", pixelSum)) python \(String(format: "%.3f", pySum))")
    }
}
