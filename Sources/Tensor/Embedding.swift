// Embedding lookup and its scatter-add backward.

/// out[i] = table[ids[i]].
/// - out: [N, D] (any leading shape with N·D values); table: [V, D] in any storage; ids: N values in 0..<V.
public func embeddingForward(out: Tensor, table: any LinearWeight, ids: [Int32]) {
    let d = table.cols, v = table.rows
    precondition(out.count == ids.count * d, "embeddingForward: out \(out.shape) should hold \(ids.count)×\(d) values")
    let po = out.data
    ids.withUnsafeBufferPointer { ib in
        guard let pi = ib.baseAddress else { return }
        Parallel.forEachChunk(count: ids.count, grain: rowGrain(d)) { rows in
            for i in rows {
                let id = Int(pi[i])
                precondition(id >= 0 && id < v, "embeddingForward: id \(id) at \(i) outside 0..<\(v)")
                table.dequantizeRows(id..<(id + 1), into: po + i * d)
            }
        }
    }
}

/// dtable[ids[i]] += dout[i] for every i with ids[i] != paddingIndex (that row gets no gradient, as
/// torch's `padding_idx`). Parallel over column ranges, so repeated ids never race and the sum order is
/// the token order. dtable: [V, D] fp32; dout: [N, D].
public func embeddingBackward(dtable: Tensor, dout: Tensor, ids: [Int32], paddingIndex: Int32? = nil) {
    let v = dtable.rows, d = dtable.cols
    precondition(dout.count == ids.count * d, "embeddingBackward: dout \(dout.shape) should hold \(ids.count)×\(d) values")
    let pt = dtable.data, pg = dout.data
    ids.withUnsafeBufferPointer { ib in
        guard let pi = ib.baseAddress else { return }
        Parallel.forEachChunk(count: d, grain: max(16, ParallelGrain.elementwise / max(1, ids.count))) { cols in
            for i in 0..<ib.count {
                let id = pi[i]
                if let paddingIndex, id == paddingIndex { continue }
                precondition(id >= 0 && Int(id) < v, "embeddingBackward: id \(id) at \(i) outside 0..<\(v)")
                let dst = pt + Int(id) * d, src = pg + i * d
                for j in cols { dst[j] += src[j] }
            }
        }
    }
}
