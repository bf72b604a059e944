// Vision ops: patch embedding (convolution with stride = kernel), 2-D average pooling, transpose.

/// im2col for non-overlapping patches: cols[n·P + p, c·k·k + ky·k + kx] = pixels[n, c, py·k + ky, px·k + kx]
/// with p = py·(W/k) + px (row-major patch order, as `conv(x).flatten(2).transpose(1, 2)`).
func patchColumns(_ pixels: Tensor, patchSize k: Int) -> Tensor {
    precondition(pixels.rank == 4, "patchEmbed: pixels \(pixels.shape) should be [N, C, H, W]")
    let n = pixels.shape[0], c = pixels.shape[1], hgt = pixels.shape[2], wid = pixels.shape[3]
    let gh = hgt / k, gw = wid / k, cols = c * k * k
    let out = Tensor(uninitialized: [n * gh * gw, cols])
    let src = pixels.data, dst = out.data
    Parallel.forEachChunk(count: n * gh, grain: max(1, ParallelGrain.elementwise / max(1, gw * cols))) { rows in
        for row in rows {
            let ni = row / gh, py = row % gh
            for px in 0..<gw {
                let d = dst + ((ni * gh + py) * gw + px) * cols
                for ci in 0..<c {
                    for ky in 0..<k {
                        let s = src + ((ni * c + ci) * hgt + py * k + ky) * wid + px * k
                        for kx in 0..<k { d[(ci * k + ky) * k + kx] = s[kx] }
                    }
                }
            }
        }
    }
    return out
}

/// Conv2d with kernel = stride = k, no padding (SigLIP's patch embedding), as im2col + linear.
/// - pixels: [N, C, H, W]; weight: [E, C·k·k] (the conv weight [E, C, k, k]); bias: [E] or nil;
///   out: [N, (H/k)·(W/k), E].
public func patchEmbedForward(out: Tensor, pixels: Tensor, weight: any LinearWeight, bias: Tensor?, patchSize: Int) {
    let cols = patchColumns(pixels, patchSize: patchSize)
    precondition(weight.cols == cols.lastDim, "patchEmbedForward: weight [\(weight.rows), \(weight.cols)] vs patch of \(cols.lastDim) values")
    precondition(out.count == cols.rows * weight.rows, "patchEmbedForward: out \(out.shape) should be [N, \(cols.rows / max(1, pixels.shape[0])), \(weight.rows)]")
    linearForward(out: out.reshaped([cols.rows, weight.rows]), x: cols, weight: weight, bias: bias)
}

/// dweight += doutᵀ·cols, dbias += Σ dout, dpixels += col2im(dout·W).
public func patchEmbedBackward(dpixels: Tensor?, dweight: Tensor?, dbias: Tensor?, dout: Tensor, pixels: Tensor,
                               weight: any LinearWeight, patchSize k: Int) {
    let cols = patchColumns(pixels, patchSize: k)
    let e = weight.rows
    let dcols: Tensor? = dpixels == nil ? nil : Tensor(zeros: cols.shape)
    linearBackward(dx: dcols, dweight: dweight, dbias: dbias, dout: dout.reshaped([cols.rows, e]), x: cols, weight: weight)
    guard let dpixels, let dcols else { return }
    precondition(dpixels.count == pixels.count, "patchEmbedBackward: dpixels \(dpixels.shape) vs pixels \(pixels.shape)")
    let n = pixels.shape[0], c = pixels.shape[1], hgt = pixels.shape[2], wid = pixels.shape[3]
    let gh = hgt / k, gw = wid / k, width = c * k * k
    let src = dcols.data, dst = dpixels.data
    Parallel.forEachChunk(count: n * gh, grain: max(1, ParallelGrain.elementwise / max(1, gw * width))) { rows in
        for row in rows {
            let ni = row / gh, py = row % gh
            for px in 0..<gw {
                let s = src + ((ni * gh + py) * gw + px) * width
                for ci in 0..<c {
                    for ky in 0..<k {
                        let d = dst + ((ni * c + ci) * hgt + py * k + ky) * wid + px * k
                        for kx in 0..<k { d[kx] += s[(ci * k + ky) * k + kx] }
                    }
                }
            }
        }
    }
}

/// AvgPool2d(kernel = stride = k) in channels-last layout: out[n, oy, ox, c] = mean of the k×k window
/// (summed row by row, then divided by k², as torch). Channels-last because SigLIP's output
/// [N, H·W, C] is already that layout and the projector wants [N, (H/k)·(W/k), C] back.
/// - x: [N, H, W, C]; out: [N, H/k, W/k, C] (a remainder that does not fill a window is dropped).
public func avgPool2dForward(out: Tensor, _ x: Tensor, kernel k: Int) {
    precondition(x.rank == 4 && out.rank == 4, "avgPool2d: x \(x.shape) and out \(out.shape) should be [N, H, W, C]")
    let n = x.shape[0], hgt = x.shape[1], wid = x.shape[2], c = x.shape[3]
    let oh = hgt / k, ow = wid / k
    precondition(out.shape == [n, oh, ow, c], "avgPool2d: out \(out.shape) should be [\(n), \(oh), \(ow), \(c)]")
    let px = x.data, po = out.data
    let divisor = Float(k * k)
    Parallel.forEachChunk(count: n * oh * ow, grain: max(1, ParallelGrain.elementwise / max(1, c * k * k))) { cells in
        for cell in cells {
            let ni = cell / (oh * ow), oy = (cell / ow) % oh, ox = cell % ow
            let o = po + cell * c
            for ci in 0..<c { o[ci] = 0 }
            for ky in 0..<k {
                for kx in 0..<k {
                    let src = px + ((ni * hgt + oy * k + ky) * wid + ox * k + kx) * c
                    for ci in 0..<c { o[ci] += src[ci] }
                }
            }
            for ci in 0..<c { o[ci] /= divisor }
        }
    }
}

/// dx[n, y, x, c] += dout[n, y/k, x/k, c] / k².
public func avgPool2dBackward(dx: Tensor, dout: Tensor, kernel k: Int) {
    precondition(dx.rank == 4 && dout.rank == 4, "avgPool2dBackward: dx \(dx.shape), dout \(dout.shape)")
    let n = dx.shape[0], hgt = dx.shape[1], wid = dx.shape[2], c = dx.shape[3]
    let oh = hgt / k, ow = wid / k
    precondition(dout.shape == [n, oh, ow, c], "avgPool2dBackward: dout \(dout.shape) should be [\(n), \(oh), \(ow), \(c)]")
    let pd = dx.data, pg = dout.data
    let inv = 1 / Float(k * k)
    Parallel.forEachChunk(count: n * oh * ow, grain: max(1, ParallelGrain.elementwise / max(1, c * k * k))) { cells in
        for cell in cells {
            let ni = cell / (oh * ow), oy = (cell / ow) % oh, ox = cell % ow
            let g = pg + cell * c
            for ky in 0..<k {
                for kx in 0..<k {
                    let d = pd + ((ni * hgt + oy * k + ky) * wid + ox * k + kx) * c
                    for ci in 0..<c { d[ci] += g[ci] * inv }
                }
            }
        }
    }
}

/// out[b, j, i] = x[b, i, j] (+= when `accumulate`): x [B, R, C] -> out [B, C, R]. Its backward is
/// the same call on the gradients with `accumulate: true`.
public func transposeLast2(out: Tensor, _ x: Tensor, accumulate: Bool = false) {
    precondition(x.rank >= 2 && out.count == x.count, "transposeLast2: x \(x.shape), out \(out.shape)")
    let r = x.dim(-2), c = x.dim(-1), batch = x.count / max(1, r * c)
    precondition(out.dim(-2) == c && out.dim(-1) == r, "transposeLast2: out \(out.shape) should end in [\(c), \(r)]")
    let px = x.data, po = out.data
    Parallel.forEachChunk(count: batch * r, grain: max(1, ParallelGrain.elementwise / max(1, c))) { rows in
        for row in rows {
            let bi = row / r, i = row % r
            let src = px + row * c, dst = po + bi * r * c + i
            if accumulate { for j in 0..<c { dst[j * r] += src[j] } } else { for j in 0..<c { dst[j * r] = src[j] } }
        }
    }
}
