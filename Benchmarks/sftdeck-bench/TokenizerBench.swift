import Foundation
import Tokenizers

/// `sftdeck-bench tokenizer`: encodes the same few MB of text with SFTDeck's tokenizer and with Hugging Face
/// `tokenizers` (Python, single thread: RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false), each timing only
/// its own loop of encode calls, and prints the ratio. Token ids are checksummed on both sides and must agree.
/// The tokenizers (32k-vocab Llama-3-like and Gemma-like) and the text are made by
/// `Scripts/fixtures/gen_tokenizers.py --bench DIR` (run from the repo root; default DIR /tmp/sftdeck-tokbench).
/// Python: $SFTDECK_PYTHON, else /work/pyref/bin/python, else python3.
func runTokenizerBench() {
    let env = ProcessInfo.processInfo.environment
    let dir = env["SFTDECK_TOKBENCH_DIR"] ?? "/tmp/sftdeck-tokbench"
    let python = env["SFTDECK_PYTHON"] ?? (FileManager.default.isExecutableFile(atPath: "/work/pyref/bin/python") ? "/work/pyref/bin/python" : "/usr/bin/python3")
    let fm = FileManager.default
    if let folder = env["SFTDECK_TOKBENCH_LOAD"] {
        // Load time of a real-size folder (e.g. a 262k-vocab Gemma tokenizer.json).
        let t0 = DispatchTime.now().uptimeNanoseconds, c0 = processCPUSeconds()
        do {
            let tok = try Tokenizer.load(folder: URL(fileURLWithPath: folder))
            let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            print(String(format: "tokenizer load %@: %.2f s wall, %.2f s CPU (%d tokens)", folder, s, processCPUSeconds() - c0, tok.count))
        } catch { print("tokenizer load \(folder): \(error)") }
    }

    func run(_ args: [String], extraEnv: [String: String] = [:]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = args
        var e = env
        for (k, v) in extraEnv { e[k] = v }
        p.environment = e
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        do { try p.run() } catch { return (-1, "cannot run \(python): \(error)") }
        let d = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: d, as: UTF8.self))
    }

    if !fm.fileExists(atPath: dir + "/text.txt") {
        print("tokenizer: generating bench tokenizers and text in \(dir) ...")
        let (rc, out) = run(["Scripts/fixtures/gen_tokenizers.py", "--bench", dir])
        guard rc == 0 else { print("tokenizer: generator failed (run from the repo root): \(out)"); return }
    }
    guard let text = try? String(contentsOfFile: dir + "/text.txt", encoding: .utf8) else { print("tokenizer: cannot read \(dir)/text.txt"); return }
    // Documents: paragraphs, as a dataset of samples would be encoded.
    let docs = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
    let mb = Double(text.utf8.count) / 1e6

    let pyScript = """
    import sys, time, json
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(sys.argv[1])
    docs = [d for d in open(sys.argv[2], encoding='utf-8').read().split('\\n\\n') if d]
    for d in docs[: max(1, len(docs) // 20)]: tok.encode(d)
    t0 = time.perf_counter(); c0 = time.process_time()
    encs = [tok.encode(d) for d in docs]
    t1 = time.perf_counter(); c1 = time.process_time()
    n = 0; h = 0
    for e in encs:
        for i in e.ids:
            h = (h * 1000003 + i) % 2147483647; n += 1
    print(json.dumps({"seconds": t1 - t0, "cpu": c1 - c0, "tokens": n, "checksum": str(h)}))
    """
    let scriptURL = URL(fileURLWithPath: dir + "/bench_hf.py")
    try? pyScript.write(to: scriptURL, atomically: true, encoding: .utf8)

    print(String(format: "tokenizer: %.2f MB of text, %d documents", mb, docs.count))
    for name in ["llama3", "gemma"] {
        let tjPath = dir + "/\(name)/tokenizer.json"
        guard let data = fm.contents(atPath: tjPath), let tok = try? Tokenizer(tokenizerJSON: data, source: tjPath) else {
            print("tokenizer: cannot load \(tjPath)"); continue
        }
        for d in docs.prefix(max(1, docs.count / 20)) { _ = tok.encode(d) }  // same warm-up as the Python side
        let t0 = DispatchTime.now().uptimeNanoseconds, c0 = processCPUSeconds()
        var encs: [Encoding] = []
        encs.reserveCapacity(docs.count)
        for d in docs { encs.append(tok.encode(d)) }
        let swiftSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, swiftCPU = processCPUSeconds() - c0
        var n = 0
        var h: UInt64 = 0
        for e in encs { for i in e.ids { h = (h &* 1000003 &+ UInt64(i)) % 2147483647; n += 1 } }

        let t1 = DispatchTime.now().uptimeNanoseconds
        var idsOnly = 0
        for d in docs { idsOnly += tok.encodeIdsFast(d).count }
        let fastSeconds = Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9

        let (rc, out) = run([scriptURL.path, tjPath, dir + "/text.txt"], extraEnv: ["RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"])
        guard rc == 0, let line = out.split(separator: "\n").last,
              let r = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let hfSeconds = r["seconds"] as? Double, let hfCPU = r["cpu"] as? Double, let hfTokens = r["tokens"] as? Int, let hfSumText = r["checksum"] as? String, let hfSum = UInt64(hfSumText) else {
            print("tokenizer \(name): HF side failed: \(out)"); continue
        }
        let same = hfTokens == n && hfSum == h && idsOnly == n
        // CPU seconds are the figure to compare on a shared machine (both loops are single-threaded).
        print(String(format: "tokenizer %@: SFTDeck encode %.3f s wall / %.3f s CPU (%.1f MB/s), ids-only %.3f s; HF tokenizers %.3f s wall / %.3f s CPU (%.1f MB/s); ratio HF/SFTDeck = %.2fx CPU, %.2fx wall; %d tokens, ids %@",
                     name, swiftSeconds, swiftCPU, mb / swiftCPU, fastSeconds, hfSeconds, hfCPU, mb / hfCPU, hfCPU / swiftCPU, hfSeconds / swiftSeconds, n,
                     same ? "identical" : "DIFFER (hf \(hfTokens) tokens)"))
    }
}
