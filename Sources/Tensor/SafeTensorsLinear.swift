// Glue from mapped safetensors tensors to the kernels' weight formats: frozen bf16/f16 weights
// borrowed in place from the mapping, fp32 tensors copied, and NF4 quantised straight from the
// mapped bytes (no fp32 copy of the matrix).
import Foundation

extension SafeTensorsFile {
    /// Whether the tensor's data sits at an address aligned for its element type (always true for
    /// files written by the Rust library or SafeTensorsWriter, whose headers are padded to 8 bytes).
    public func isAligned(_ t: SafeTensorInfo) -> Bool {
        guard let p = rawBytes(t).baseAddress else { return true }
        return Int(bitPattern: p) % t.dtype.byteSize == 0
    }

    /// Rows and columns of a weight: rows = shape[0], cols = the product of the rest.
    func matrixShape(_ t: SafeTensorInfo) throws -> (rows: Int, cols: Int) {
        guard let rows = t.shape.first, t.shape.count >= 2 else {
            throw SafeTensorsError(path: url.path, problem: "tensor '\(t.name)' has shape \(t.shape), not a matrix")
        }
        return (rows, rows == 0 ? 0 : t.elementCount / rows)
    }

    /// A frozen weight for the linear kernels: BF16/F16 borrowed from the mapping (zero copy when
    /// aligned; this file stays alive as long as the weight), F32/F64 copied into an fp32 Tensor.
    public func frozenWeight(_ name: String) throws -> any LinearWeight {
        let t = try info(name)
        let (rows, cols) = try matrixShape(t)
        switch t.dtype {
        case .BF16, .F16:
            let format: HalfPrecisionWeight.Format = t.dtype == .BF16 ? .bf16 : .f16
            let raw = rawBytes(t)
            guard let base = raw.baseAddress else {
                return HalfPrecisionWeight(format: format, rows: rows, cols: cols, copying: [UInt16](repeating: 0, count: 1))
            }
            if isAligned(t) {
                return HalfPrecisionWeight(format: format, rows: rows, cols: cols,
                                           borrowing: base.assumingMemoryBound(to: UInt16.self), owner: self)
            }
            let copy = (0..<t.elementCount).map { raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) }
            return copy.withUnsafeBufferPointer { HalfPrecisionWeight(format: format, rows: rows, cols: cols, copying: $0.baseAddress!) }
        case .F32, .F64:
            return Tensor(shape: t.shape, try floats(name))
        default:
            throw SafeTensorsError(path: url.path, problem: "tensor '\(name)' is \(t.dtype.rawValue), not a floating-point weight")
        }
    }

    /// Quantises a weight to NF4 as bitsandbytes would when loading it (`load_in_4bit`), reading the
    /// mapped values block by block. `loadedAs` is the dtype the reference run loaded the model in
    /// (transformers' `dtype=`), which bitsandbytes records and rounds dequantised values to; by
    /// default the file's own dtype (a BF16 checkpoint loaded as bf16).
    public func nf4Weight(_ name: String, loadedAs: NF4SourceDType? = nil, doubleQuant: Bool = true,
                          referenceThreads: Int = 1) throws -> NF4Weight {
        let t = try info(name)
        let (rows, cols) = try matrixShape(t)
        guard t.dtype == .BF16 || t.dtype == .F16 || t.dtype == .F32 else {
            throw SafeTensorsError(path: url.path, problem: "tensor '\(name)' is \(t.dtype.rawValue); NF4 quantisation needs BF16, F16 or F32")
        }
        let raw = rawBytes(t)
        let dtype = t.dtype
        let source: NF4SourceDType = loadedAs ?? (dtype == .BF16 ? .bf16 : dtype == .F16 ? .f16 : .f32)
        return NF4Weight(rows: rows, cols: cols, dtype: source, doubleQuant: doubleQuant, referenceThreads: referenceThreads) { range, dst in
            let piece = UnsafeRawBufferPointer(rebasing: raw[(range.lowerBound * dtype.byteSize)..<(range.upperBound * dtype.byteSize)])
            SafeTensorsConvert.toFloats(piece, dtype: dtype, into: UnsafeMutableBufferPointer(start: dst, count: range.count))
        }
    }
}

extension SafeTensorsCheckpoint {
    public func frozenWeight(_ name: String) throws -> any LinearWeight { try file(containing: name).frozenWeight(name) }
    public func nf4Weight(_ name: String, loadedAs: NF4SourceDType? = nil, doubleQuant: Bool = true,
                          referenceThreads: Int = 1) throws -> NF4Weight {
        try file(containing: name).nf4Weight(name, loadedAs: loadedAs, doubleQuant: doubleQuant, referenceThreads: referenceThreads)
    }
}
