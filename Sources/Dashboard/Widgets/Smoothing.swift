import Foundation

/// TensorBoard's scalar smoothing: an exponential moving average with debiasing, as in
/// TensorBoard's `vz_line_chart2` `resmoothDataset`. The running average starts at 0 and is divided by
/// `1 - weight^n`, so the first points are not pulled toward zero. Non-finite values pass through
/// unsmoothed and do not advance the average; a constant series is returned as it is.
public enum TensorBoardSmoothing {
    public static func smooth(_ values: [Double], weight: Double) -> [Double] {
        let w = min(max(weight, 0), 1)
        guard let first = values.first else { return [] }
        if values.allSatisfy({ $0 == first }) { return values }
        var last = 0.0, numAccum = 0
        return values.map { v in
            guard v.isFinite else { return v }
            last = last * w + (1 - w) * v
            numAccum += 1
            let debias = w == 1 ? 1 : 1 - pow(w, Double(numAccum))
            return last / debias
        }
    }
}
