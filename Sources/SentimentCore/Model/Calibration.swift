// Calibration of the int8 layers on sample sentences.
//
// Per-token activation quantization loses most where a few input channels carry values far
// larger than the rest (the LayerNorm outputs' outlier dimensions, the GELU output's heavy
// tails): each token's step size is set by its outliers. A float forward over the calibration
// sentences records max|X[:, c]| for every input channel of every linear layer. Then:
//   - the channels of largest range are computed in fp32 (Kernels/OutlierColumns.swift);
//   - SmoothQuant (Xiao et al. 2023) divides the other channels by
//       s[c] = max|X[:, c]|^alpha / max|W[:, c]|^(1 - alpha)
//     and multiplies the weight columns by it, which leaves x W^T unchanged and moves the rest
//     of the activations' range into the weights, quantized per output channel.
// bench/README.md ("int8 that keeps fp32's answers") has the measured sensitivity table and why
// this method was chosen.
#if canImport(Glibc)
import Glibc
#endif

/// Calibration of an int8 quantization: the load and save keys `calibration_file`,
/// `calibration_samples`, `smoothquant_alpha` and `outlier_channels`.
public struct CalibrationOptions: Sendable, Equatable {
    /// Sentences: TSV, CSV or JSON Lines by extension (the `sentence` or `text` column, as data
    /// files), any other file one sentence per line.
    public var file: String
    /// How many sentences are read from the start of the file (fewer if it has fewer).
    public var samples = CalibrationOptions.defaultSamples
    /// SmoothQuant's migration strength: 0 leaves the activations as they are, 1 moves all of
    /// their range into the weights.
    public var alpha = CalibrationOptions.defaultAlpha
    /// How many input channels of each linear layer (those with the largest calibrated range)
    /// are computed in fp32 instead (Kernels/OutlierColumns.swift).
    public var outlierChannels = CalibrationOptions.defaultOutlierChannels

    public init(file: String) { self.file = file }

    public static let defaultSamples = 512
    public static let defaultAlpha: Float = 0.4
    public static let defaultOutlierChannels = 16
    public static let samplesRange = 1...100_000
    public static let alphaRange: ClosedRange<Double> = 0...1
    public static let outlierChannelsRange = 0...OutlierColumns.maxCount

    /// The first `samples` texts of `file` (blank lines skipped). Errors name `calibration_file`.
    func texts() throws -> [String] {
        let field = "calibration_file"
        var out: [String] = []
        if DataFormat.of(path: file) != nil {
            let stream = try TextStream(DataFile(path: file), field: field)
            while out.count < samples, let row = try stream.next() { out.append(row.text) }
        } else {
            // One text per line: a TSV reader without a header, its fields joined back.
            let reader = try RecordReader(path: file, format: .tsv, field: field)
            while out.count < samples, let r = try reader.next() {
                let text = r.fields.joined(separator: "\t")
                if !text.trimmingSpaces.isEmpty { out.append(text) }
            }
        }
        guard !out.isEmpty else {
            throw SentimentError.invalidArgument("calibration_file \(file) holds no sentences", field: field)
        }
        return out
    }
}

/// The largest |activation| each input channel of each linear layer saw on the calibration
/// sentences: per block, for Q|K|V (the block input), the attention output projection (the
/// attention context), FFN in (the attention LayerNorm output) and FFN out (the GELU output).
struct ActivationRanges {
    var layers: [[LayerTensor: [Float]]]

    /// The linear layers whose inputs are recorded, keyed by the first of the weights sharing it.
    static let inputs: [(key: LayerTensor, weights: [LayerTensor])] = [
        (.query, [.query, .key, .value]), (.attentionOut, [.attentionOut]), (.ffnIn, [.ffnIn]), (.ffnOut, [.ffnOut]),
    ]

    /// Runs the float model over `sequences` (token ids) in batches, keeping every block's
    /// activations (as a training forward without dropout does), and records their ranges.
    /// The last block is computed for the [CLS] rows only, as inference computes it.
    static func collect(_ weights: EncoderWeights, sequences: [[Int32]], batchSize: Int = 32) throws -> ActivationRanges {
        let c = weights.config
        let encoder = try EncoderForward(weights: weights, packing: .none)
        let ws = ForwardWorkspace(config: c, mode: .training)
        ws.sparseLastLayer = true
        var layers = [[LayerTensor: [Float]]](
            repeating: [.query: [Float](repeating: 0, count: c.hiddenSize), .attentionOut: [Float](repeating: 0, count: c.hiddenSize),
                        .ffnIn: [Float](repeating: 0, count: c.hiddenSize), .ffnOut: [Float](repeating: 0, count: c.intermediateSize)],
            count: c.numLayers)
        var start = 0
        while start < sequences.count {
            let chunk = Array(sequences[start..<Swift.min(sequences.count, start + batchSize)])
            start += chunk.count
            let batch = try PackedBatch(sequences: chunk)
            try encoder.forward(batch, workspace: ws)
            for li in 0..<c.numLayers {
                let rows = ws.rows(ofLayer: li)
                let a = ws.activations(ofLayer: li, rows: rows)
                let t = batch.totalTokens, n = rows == .all ? t : batch.count
                record(a.input, rows: t, into: &layers[li][.query])
                record(a.context, rows: n, into: &layers[li][.attentionOut])
                record(a.attnNorm, rows: n, into: &layers[li][.ffnIn])
                record(a.ffnAct, rows: n, into: &layers[li][.ffnOut])
            }
        }
        return ActivationRanges(layers: layers)
    }

    /// max[c] = max(max[c], |x[r, c]|) over `rows` dense rows of max.count columns.
    private static func record(_ x: UnsafePointer<Float>, rows: Int, into max: inout [Float]?) {
        guard var m = max else { return }
        let cols = m.count
        for r in 0..<rows {
            for c in 0..<cols { m[c] = Swift.max(m[c], abs(x[r * cols + c])) }
        }
        max = m
    }

    /// The `count` input channels of every linear weight with the largest range, increasing, by
    /// canonical name (the weights sharing an input share them).
    func outliers(count: Int) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        guard count > 0 else { return out }
        for (li, ranges) in layers.enumerated() {
            for (key, group) in ActivationRanges.inputs {
                guard let xmax = ranges[key] else { continue }
                let top = xmax.indices.sorted { xmax[$0] > xmax[$1] || (xmax[$0] == xmax[$1] && $0 < $1) }
                let columns = Array(top.prefix(count)).sorted()
                for t in group { out[TensorSlot.layer(li, t).name] = columns }
            }
        }
        return out
    }

    /// SmoothQuant's factors for every linear weight, by canonical name (the weights sharing an
    /// input share them). A channel that never fired, whose weight column is zero, or that is
    /// kept in fp32 (`outliers`) keeps 1; the rest are held to [1e-3, 1e3].
    func smoothing(_ weights: EncoderWeights, alpha: Float, outliers: [String: [Int]] = [:]) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (li, ranges) in layers.enumerated() {
            let l = weights.layers[li]
            for (key, group) in ActivationRanges.inputs {
                guard let xmax = ranges[key] else { continue }
                let k = xmax.count
                var wmax = [Float](repeating: 0, count: k)
                for t in group {
                    let w = l[t]
                    for r in 0..<w.shape[0] {
                        for c in 0..<k { wmax[c] = Swift.max(wmax[c], abs(w.data[r * k + c])) }
                    }
                }
                let kept = Set(outliers[TensorSlot.layer(li, group[0]).name] ?? [])
                let s = (0..<k).map { c -> Float in
                    guard xmax[c] > 0, wmax[c] > 0, !kept.contains(c) else { return 1 }
                    let v = Float(pow(Double(xmax[c]), Double(alpha)) / pow(Double(wmax[c]), Double(1 - alpha)))
                    return v.isFinite ? Swift.min(1e3, Swift.max(1e-3, v)) : 1
                }
                for t in group { out[TensorSlot.layer(li, t).name] = s }
            }
        }
        return out
    }
}
