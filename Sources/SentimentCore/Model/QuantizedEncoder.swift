// The int8 form of an encoder (issue 4).
//
// Quantized: the six linear layers of every block (Q, K, V, attention output, FFN in, FFN out):
// int8 weights per output channel, symmetric; activations quantized per token at run time
// (Kernels/QuantizedLinear.swift); with calibration, SmoothQuant factors per input channel
// (Calibration.swift). Float: embeddings, LayerNorm, attention (softmax), the head.
// The word-embedding table is *stored* as int8 rows (per-row symmetric scale) so an int8 checkpoint
// is a quarter of the fp32 one; it is dequantized to float at load and computed in float. The
// in-memory int8 model uses those same rounded embeddings, so a saved and reloaded int8 model gives
// identical logits.

/// Scheme names written to an int8 checkpoint's safetensors metadata.
public enum Int8Scheme {
    /// `__metadata__["quantization"]`.
    public static let name = "sentiment-int8"
    /// `__metadata__["quantization_scheme"]`: a readable description.
    public static let description =
        "linear weights: int8 per output channel, symmetric (I8 [out, in] + F32 <name>_scale [out]; "
        + "calibrated: the integers of W x diag(s) with F32 <name>_smoothing s [in], inputs divided by s, and the "
        + "input channels I32 <name>_outlier_columns computed in fp32 with F32 <name>_outlier_weight [out, count]); "
        + "activations: dynamic per token, asymmetric u8; word embeddings: int8 per row (dequantized at load); "
        + "everything else F32"
    /// Suffix of the F32 scale tensor that goes with an I8 tensor.
    public static let scaleSuffix = "_scale"
    /// Suffix of the F32 [in] smoothing factors of a smoothed I8 linear weight: the stored
    /// integers are of W x diag(s), and the layer's inputs are divided by s.
    public static let smoothingSuffix = "_smoothing"
    /// Suffixes of the input channels an I8 linear weight keeps in fp32 (I32 [count]) and of
    /// their weights (F32 [out, count]); the I8 integers of those columns are 0.
    public static let outlierColumnsSuffix = "_outlier_columns"
    public static let outlierWeightSuffix = "_outlier_weight"
    /// `__metadata__` key of the quantization's settings (`Int8Config`, JSON).
    public static let configKey = "quantization_config"

    /// A smoothing factor s a layer can multiply and divide by: positive, finite, and with
    /// 127 / s finite (so 1 / s and every dequantized weight are too).
    static func isValidSmoothing(_ s: Float) -> Bool { s > 0 && s.isFinite && (127 / s).isFinite }
}

/// How an int8 model was quantized: written to an int8 checkpoint's metadata
/// (`Int8Scheme.configKey`) and reported by `sentiment_model_info` as "quantization".
/// What reproduces a model is in its tensors (integers, scales, smoothing factors); this
/// records how they were made.
public struct Int8Config: Sendable, Equatable {
    /// "dynamic" (activations quantized per token, nothing calibrated) or "smoothquant".
    public var method = "dynamic"
    /// SmoothQuant's alpha, the input channels per layer kept in fp32, the calibration
    /// sentences read and the calibration file's name.
    public var alpha: Float? = nil
    public var outlierChannels: Int? = nil
    public var calibrationSamples: Int? = nil
    public var calibrationFile: String? = nil

    public init() {}

    /// SmoothQuant calibrated as `options` say, on `samples` sentences.
    init(smoothQuant options: CalibrationOptions, samples: Int) {
        method = "smoothquant"
        alpha = options.alpha
        outlierChannels = options.outlierChannels
        calibrationSamples = samples
        calibrationFile = FileSystem.baseName(options.file)
    }

    public var json: JSON {
        var m: [JSON.Member] = [JSON.Member("method", JSON(method))]
        // The shortest decimal of the Float (0.6, not 0.6000000238418579), as the request wrote it.
        if let alpha { m.append(JSON.Member("smoothquant_alpha", JSON(Double(String(alpha)) ?? Double(alpha)))) }
        if let outlierChannels { m.append(JSON.Member("outlier_channels", JSON(outlierChannels))) }
        if let calibrationSamples { m.append(JSON.Member("calibration_samples", JSON(calibrationSamples))) }
        if let calibrationFile { m.append(JSON.Member("calibration_file", JSON(calibrationFile))) }
        return .object(m)
    }

    /// The config an int8 checkpoint's metadata records (nil when absent or unreadable: an
    /// older checkpoint; its tensors still say everything needed to compute).
    init?(metadata: [String: String]) {
        guard let text = metadata[Int8Scheme.configKey], let j = try? JSON.parse(text), let method = j["method"]?.stringValue
        else { return nil }
        self.method = method
        alpha = j["smoothquant_alpha"]?.doubleValue.map { Float($0) }
        outlierChannels = j["outlier_channels"]?.int64Value.map { Int($0) }
        calibrationSamples = j["calibration_samples"]?.int64Value.map { Int($0) }
        calibrationFile = j["calibration_file"]?.stringValue
    }
}

/// Int8 linear layers of an encoder, built from its float weights. Immutable, shareable.
public final class QuantizedEncoderWeights: @unchecked Sendable {
    struct Layer {
        let qkv: Int8Matrix   // [3D, D]: Q rows, then K, then V
        let attnOut: Int8Matrix, ffnIn: Int8Matrix, ffnOut: Int8Matrix
    }

    let layers: [Layer]
    let hiddenSize: Int
    public let config: Int8Config

    /// Quantizes every linear layer of `weights`. `knownScales` (canonical name -> per-row
    /// scales), `smoothing` (-> per-input-channel factors) and `outliers` (-> input channels kept
    /// in fp32) come from an int8 checkpoint, and reproduce its integers exactly, or from
    /// calibration (the last two).
    public init(_ weights: EncoderWeights, knownScales: [String: [Float]] = [:], smoothing: [String: [Float]] = [:],
                outliers: [String: [Int]] = [:], config: Int8Config = Int8Config()) throws {
        hiddenSize = weights.config.hiddenSize
        self.config = config
        var out: [Layer] = []
        for (i, l) in weights.layers.enumerated() {
            func q(_ t: LayerTensor) throws -> Int8Matrix {
                let name = TensorSlot.layer(i, t).name
                guard let bias = t.bias else { throw SentimentError(.internal, "\(name) is not a linear weight") }
                let w = l[t]
                do {
                    return try Int8Matrix(weight: w.data, bias: l[bias].data, n: w.shape[0], k: w.shape[1],
                                          knownScales: knownScales[name], smoothing: smoothing[name],
                                          outlierColumns: outliers[name] ?? [])
                } catch let e as SentimentError {
                    throw SentimentError(e.status, "\(name): \(e.message)", field: name)
                }
            }
            let qkv = [try q(.query), try q(.key), try q(.value)]
            guard qkv.allSatisfy({ $0.smoothing == qkv[0].smoothing && $0.outliers?.columnList == qkv[0].outliers?.columnList })
            else {
                throw SentimentError.format(
                    "layer \(i)'s query, key and value weights read one input, so they need the same smoothing factors and "
                        + "outlier columns", field: TensorSlot.layer(i, .query).name)
            }
            out.append(Layer(
                qkv: try Int8Matrix(stacking: qkv),
                attnOut: try q(.attentionOut), ffnIn: try q(.ffnIn), ffnOut: try q(.ffnOut)))
        }
        layers = out
    }

    /// The quantized weight of every linear layer, by canonical name (query/key/value are views
    /// of the fused matrix).
    var namedLinears: [(name: String, linear: Int8Linear)] {
        let d = hiddenSize
        var out: [(String, Int8Linear)] = []
        for (i, l) in layers.enumerated() {
            let linears: [(LayerTensor, Int8Linear)] = [
                (.query, l.qkv.view(0..<d)), (.key, l.qkv.view(d..<(2 * d))), (.value, l.qkv.view((2 * d)..<(3 * d))),
                (.attentionOut, l.attnOut.linear), (.ffnIn, l.ffnIn.linear), (.ffnOut, l.ffnOut.linear),
            ]
            out += linears.map { (TensorSlot.layer(i, $0.0).name, $0.1) }
        }
        return out
    }

    /// The tensors an int8 checkpoint stores as I8, by canonical name: every linear weight (with
    /// its smoothing factors), and the word embeddings (`wordEmbeddings`, see `EmbeddingRows`).
    func checkpointTensors(wordEmbeddings: Int8Tensor) -> [String: Int8Tensor] {
        var out: [String: Int8Tensor] = [TensorSlot.embedding(.word).name: wordEmbeddings]
        for (name, l) in namedLinears {
            out[name] = Int8Tensor(bytes: l.weightBytes, scales: l.scaleValues, smoothing: l.smoothing,
                                   outlierColumns: l.outliers?.columnValues, outlierWeights: l.outliers?.weightValues(rows: l.n))
        }
        return out
    }

    /// Weights in bytes (int8 weights, scales, column sums, biases).
    public var byteCount: Int {
        layers.reduce(0) { acc, l in
            acc + [l.qkv, l.attnOut, l.ffnIn, l.ffnOut].reduce(0) { $0 + $1.n * ($1.k + 12) }
        }
    }
}

/// Int8 storage of an embedding table: per-row symmetric scales.
enum EmbeddingRows {
    /// The int8-per-row form of `table` ([V, D]); with `roundInPlace`, `table` is also replaced by
    /// its dequantized values (q * scale). Rows with `knownScales` use them (an int8 checkpoint's
    /// table is then unchanged). Throws `.invalidArgument` for non-finite values.
    @discardableResult
    static func quantize(_ table: Tensor, knownScales: [Float]? = nil, roundInPlace: Bool) throws -> Int8Tensor {
        guard table.shape.count == 2 else { throw SentimentError(.internal, "embedding table must be 2-D") }
        let rows = table.shape[0], cols = table.shape[1]
        if let s = knownScales, s.count != rows {
            throw SentimentError.format("embedding table has \(rows) rows but \(s.count) scales")
        }
        var bytes = [UInt8](repeating: 0, count: rows * cols)
        var scales = [Float](repeating: 1, count: rows)
        try bytes.withUnsafeMutableBytes { raw in
            guard let q = raw.baseAddress?.assumingMemoryBound(to: Int8.self) else { return }
            for r in 0..<rows {
                let row = table.data + r * cols
                let s = knownScales?[r] ?? Int8Matrix.symmetricScale(row, count: cols)
                guard s.isFinite, s > 0 else {
                    throw SentimentError.invalidArgument("embedding row \(r) is not finite", field: TensorSlot.embedding(.word).name)
                }
                scales[r] = s
                quantizeSymmetric(row, count: cols, scale: s, into: q + r * cols)
                if roundInPlace { for c in 0..<cols { row[c] = Float(q[r * cols + c]) * s } }
            }
        }
        return Int8Tensor(bytes: bytes, scales: scales)
    }
}
