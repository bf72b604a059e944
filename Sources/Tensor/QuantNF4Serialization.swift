// bitsandbytes' serialised 4-bit state, as `Linear4bit.state_dict()` (and transformers'
// save_pretrained of a 4-bit model) writes it next to the packed weight:
//   <w>                                     U8 [n/2, 1]  packed codes
//   <w>.absmax                              U8 [blocks]  (F32 without double quantisation)
//   <w>.quant_map                           F32 [16]     the NF4 code
//   <w>.nested_absmax                       F32 [ceil(blocks/256)]
//   <w>.nested_quant_map                    F32 [256]    the dynamic map
//   <w>.quant_state.bitsandbytes__nf4       U8           JSON {"quant_type", "blocksize", "dtype",
//                                                        "shape", "nested_blocksize", "nested_dtype",
//                                                        "nested_offset"}
import Foundation

extension NF4Weight {
    /// Loads a weight saved by bitsandbytes under `name` (e.g. "model.layers.0.mlp.up_proj.weight").
    public convenience init(bitsAndBytesState file: SafeTensorsFile, name: String) throws {
        func fail(_ problem: String) -> SafeTensorsError { SafeTensorsError(path: file.url.path, problem: "4-bit weight '\(name)': \(problem)") }
        let stateName = "\(name).quant_state.bitsandbytes__nf4"
        guard file.contains(stateName) else { throw fail("no \(stateName) (not an NF4 bitsandbytes weight)") }
        let stateBytes = Array(try file.rawBytes(stateName))
        let json: SafeTensorsJSON
        do { json = try SafeTensorsJSONParser.parse(stateBytes) } catch { throw fail("quant_state is not valid JSON") }
        guard case .object(let members) = json else { throw fail("quant_state is not a JSON object") }
        var state: [String: SafeTensorsJSON] = [:]
        for (k, v) in members { state[k] = v }
        guard case .string("nf4")? = state["quant_type"] else { throw fail("quant_type is not nf4") }
        guard case .integer(Int64(NF4Weight.blockSize))? = state["blocksize"] else { throw fail("blocksize is not 64") }
        guard case .array(let dims)? = state["shape"], dims.count >= 1 else { throw fail("quant_state has no shape") }
        var shape: [Int] = []
        for d in dims {
            guard case .integer(let v) = d, v >= 0 else { throw fail("quant_state shape is not a list of sizes") }
            shape.append(Int(v))
        }
        let rows = shape[0]
        let cols = shape.dropFirst().reduce(1, *)
        let dtype: NF4SourceDType
        switch state["dtype"] {
        case .string("bfloat16")?: dtype = .bf16
        case .string("float16")?: dtype = .f16
        case .string("float32")?: dtype = .f32
        default: throw fail("unsupported dtype \(String(describing: state["dtype"]))")
        }
        let packed = Array(try file.rawBytes(name))
        guard packed.count == (rows * cols + 1) / 2 else { throw fail("\(packed.count) packed bytes for shape \(shape)") }
        let quantMap = try file.floats("\(name).quant_map")
        guard quantMap.map(\.bitPattern) == BitsAndBytesMaps.nf4.map(\.bitPattern) else { throw fail("quant_map is not the NF4 code") }
        let blocks = (rows * cols + NF4Weight.blockSize - 1) / NF4Weight.blockSize
        let scales: Scales
        if file.contains("\(name).nested_absmax") {
            guard case .integer(Int64(NF4Weight.nestedBlockSize))? = state["nested_blocksize"] else { throw fail("nested_blocksize is not 256") }
            let offset: Float
            switch state["nested_offset"] {
            case .number(let d)?: offset = Float(d)
            case .integer(let n)?: offset = Float(n)
            default: throw fail("no nested_offset")
            }
            let codes = Array(try file.rawBytes("\(name).absmax"))
            let absmax2 = try file.floats("\(name).nested_absmax")
            let code = try file.floats("\(name).nested_quant_map")
            guard codes.count == blocks, absmax2.count == (blocks + 255) / 256, code.count == 256 else {
                throw fail("nested scales do not match \(blocks) blocks")
            }
            scales = .nested(codes: codes, absmax2: absmax2, offset: offset, code: code)
        } else {
            let absmax = try file.floats("\(name).absmax")
            guard absmax.count == blocks else { throw fail("\(absmax.count) absmax values for \(blocks) blocks") }
            scales = .plain(absmax: absmax)
        }
        self.init(rows: rows, cols: cols, dtype: dtype, packed: packed, scales: scales)
    }

    /// Adds this weight under `name` in bitsandbytes' layout (the tensors `Linear4bit.state_dict()`
    /// holds), so Python's `load_state_dict` of a 4-bit layer accepts the file.
    public func addBitsAndBytesState(to writer: inout SafeTensorsWriter, name: String) throws {
        try writer.add(name, dtype: .U8, shape: [packed.count, 1], bytes: packed)
        try writer.add("\(name).quant_map", floats: BitsAndBytesMaps.nf4, shape: [16])
        var json = "{\"quant_type\": \"nf4\", \"blocksize\": \(Self.blockSize), \"dtype\": \"\(dtype.rawValue)\", \"shape\": [\(rows), \(cols)]"
        switch scales {
        case .plain(let absmax):
            try writer.add("\(name).absmax", floats: absmax, shape: [absmax.count])
        case .nested(let codes, let absmax2, let offset, let code):
            try writer.add("\(name).absmax", dtype: .U8, shape: [codes.count], bytes: codes)
            try writer.add("\(name).nested_absmax", floats: absmax2, shape: [absmax2.count])
            try writer.add("\(name).nested_quant_map", floats: code, shape: [256])
            json += ", \"nested_blocksize\": \(Self.nestedBlockSize), \"nested_dtype\": \"float32\", \"nested_offset\": \(Double(offset))"
        }
        json += "}"
        let bytes = Array(json.utf8)
        try writer.add("\(name).quant_state.bitsandbytes__nf4", dtype: .U8, shape: [bytes.count], bytes: bytes)
    }
}
