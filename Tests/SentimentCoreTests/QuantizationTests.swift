// int8 inference: kernel error bounds, exact s32 accumulation, batch invariance, int8 checkpoints.
import Testing
#if canImport(Glibc)
import Glibc
#endif
import CKernels
@testable import SentimentCore

@Suite struct QuantizationTests {
    /// One int8 linear layer against a double reference. The stated bound is rigorous: with
    /// |x - x^| <= sx/2 and |w - w^| <= sw/2 per element,
    ///   |y - y^| <= sx/2 * sum|w| + sw/2 * sum|x| + K sx sw / 4   (+ float rounding).
    @Test(arguments: [(1, 100, 37), (7, 384, 48), (33, 64, 16)])
    func linearErrorWithinBound(_ shape: (Int, Int, Int)) throws {
        let (m, k, n) = shape
        var rng = SeededRandom(seed: 7)
        let x = try Buf(rng.uniform(m * k, -3, 1)), w = try Buf(rng.uniform(n * k, -0.2, 0.2)), b = try Buf(rng.uniform(n))
        let q = try Int8Matrix(weight: w.p, bias: b.p, n: n, k: k)
        let out = try Buf(count: m * n)
        let scratch = try Int8Scratch()
        try int8Linear(q.linear, inp: x.p, rows: m, out: out.p, scratch: scratch)
        var worstRatio = 0.0, errSq = 0.0, refSq = 0.0
        for r in 0..<m {
            var lo = 0.0, hi = 0.0, sumX = 0.0
            for c in 0..<k { let v = Double(x.p[r * k + c]); lo = min(lo, v); hi = max(hi, v); sumX += abs(v) }
            let sx = (hi - lo) / 255
            for j in 0..<n {
                var ref = Double(b.p[j]), sumW = 0.0, maxW = 0.0
                for c in 0..<k {
                    ref += Double(x.p[r * k + c]) * Double(w.p[j * k + c])
                    sumW += abs(Double(w.p[j * k + c])); maxW = max(maxW, abs(Double(w.p[j * k + c])))
                }
                let sw = maxW / 127
                let bound = sx / 2 * sumW + sw / 2 * sumX + Double(k) * sx * sw / 4
                let err = abs(Double(out.p[r * n + j]) - ref)
                #expect(err <= bound * 1.001 + 1e-5, "row \(r) col \(j): error \(err) > bound \(bound)")
                worstRatio = max(worstRatio, err / bound)
                errSq += err * err
                refSq += ref * ref
            }
        }
        // Typical errors are far inside the worst case, and small relative to the outputs.
        #expect(worstRatio < 0.5)
        #expect((errSq / refSq).squareRoot() < 0.02, "relative RMS error \((errSq / refSq).squareRoot())")
    }

    /// Extreme u8 x s8 products (255 * 127, which the pre-VNNI vpmaddubsw path would saturate in
    /// pairs) accumulate exactly, for every batch size.
    @Test(arguments: [1, 3, 32, 100])
    func gemmAccumulatesExactly(_ m: Int) throws {
        let k = 500, n = 48   // |acc| <= 500 * 255 * 127 < 2^24: exact in float too
        var rng = SeededRandom(seed: UInt64(m))
        var wv = [Float](repeating: 0, count: n * k), xv = [Float](repeating: 0, count: m * k)
        for i in 0..<(n * k) { wv[i] = i % 3 == 0 ? 127 : (i % 3 == 1 ? -127 : Float(Int(rng.nextUnitFloat() * 255) - 127)) }
        for i in 0..<(m * k) { xv[i] = i % 2 == 0 ? 255 : Float(Int(rng.nextUnitFloat() * 255)) }
        for r in 0..<m { xv[r * k + 1] = 0 }   // every row spans 0...255: scale 1, zero point 0
        let w = try Buf(wv), x = try Buf(xv), zero = try Buf(count: n)
        let q = try Int8Matrix(weight: w.p, bias: zero.p, n: n, k: k)
        let out = try Buf(count: m * n)
        try int8Linear(q.linear, inp: x.p, rows: m, out: out.p, scratch: try Int8Scratch())
        var wrong = 0
        for r in 0..<m {
            for j in 0..<n {
                var s = 0
                for c in 0..<k { s += Int(xv[r * k + c]) * Int(wv[j * k + c]) }
                if Float(s) != out.p[r * n + j] { wrong += 1 }
            }
        }
        #expect(wrong == 0, "\(wrong) of \(m * n) outputs differ from the exact integer product")
    }

    /// Our VNNI kernel, which dequantizes each register tile as it finishes, gives exactly the
    /// results of oneDNN's products dequantized afterwards: shapes with partial row tiles and
    /// column panels, several K blocks (K > 256, rows >= 24), and both thread splits (columns;
    /// rows when there are few columns); with GELU, and with fp32 outlier channels, smoothing and
    /// no bias. The packed weights unpack to the row-major ones.
    @Test(.enabled(if: Int8Kernel.vnniPacked), arguments: [
        (1, 4, 16), (5, 12, 48), (7, 384, 80), (25, 600, 400), (100, 1536, 384), (40, 600, 32), (13, 384, 1152),
    ])
    func vnniKernelMatchesOneDNN(_ shape: (Int, Int, Int)) throws {
        let (m, k, n) = shape
        var rng = SeededRandom(seed: UInt64(m * 31 + n))
        let x = try Buf(rng.uniform(m * k, -2, 3)), w = try Buf(rng.uniform(n * k, -0.3, 0.3)), b = try Buf(rng.uniform(n))
        let smoothing = (0..<k).map { _ in 0.5 + rng.nextUnitFloat() }
        for calibrated in [false, true] {
            func matrix(vnni: Bool) throws -> Int8Matrix {
                try Int8Matrix(weight: w.p, bias: b.p, n: n, k: k, smoothing: calibrated ? smoothing : nil,
                               outlierColumns: calibrated ? [0, k / 2, k - 1] : [], vnni: vnni)
            }
            let vnni = try matrix(vnni: true), onednn = try matrix(vnni: false)
            #expect(vnni.packed && !onednn.packed)
            #expect(vnni.linear.weightBytes == onednn.linear.weightBytes)
            let outV = try Buf(count: m * n), outD = try Buf(count: m * n)
            for (q, out) in [(vnni, outV), (onednn, outD)] {
                try int8Linear(q.linear, inp: x.p, rows: m, out: out.p, addBias: !calibrated,
                               epilogue: calibrated ? .none : .gelu, scratch: try Int8Scratch())
            }
            let differ = (0..<(m * n)).filter { outV.p[$0] != outD.p[$0] }.count
            #expect(differ == 0, "\(differ) of \(m * n) outputs differ between the VNNI kernel and oneDNN (calibrated: \(calibrated))")
        }
    }

    /// The C epilogue computes the formula its header states, bit for bit, in its 16-column
    /// blocks and in its one-column tails alike (37 columns: two blocks and a tail of 5; 7 rows:
    /// a group of 6 and one of 1); with and without bias and outlier products; on every variant
    /// this CPU runs (AVX-512, AVX2, plain).
    @Test(arguments: [false, true]) func dequantizeIsTheStatedFormula(_ calibrated: Bool) throws {
        let m = 7, n = 37, count = calibrated ? 3 : 0
        var rng = SeededRandom(seed: 11)
        let acc = (0..<(m * n)).map { _ in Int32(rng.nextUnitFloat() * 2_000_000) - 1_000_000 }
        let zero = (0..<m).map { _ in Int32(rng.nextUnitFloat() * 255) }
        let sums = (0..<n).map { _ in Int32(rng.nextUnitFloat() * 20_000) - 10_000 }
        let rowScale = rng.uniform(m, 1e-3, 1e-1), colScale = rng.uniform(n, 1e-4, 1e-2), bias = rng.uniform(n)
        let xo = rng.uniform(m * count, -30, 30), wo = rng.uniform(count * n, -0.5, 0.5)
        // Copies that stay put while C reads them.
        var copies: [UnsafeMutableRawPointer] = []
        defer { copies.forEach { $0.deallocate() } }
        func pinned<T>(_ a: [T]) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: Swift.max(a.count, 1))
            p.initialize(from: a, count: a.count)
            copies.append(UnsafeMutableRawPointer(p))
            return p
        }
        let accP = pinned(acc)
        func run(_ blocks: [(Range<Int>, Range<Int>)], variant: Int32) -> [Float] {
            let out = pinned([Float](repeating: .nan, count: m * n))
            var d = int8_dequant(
                row_scale: pinned(rowScale), row_zero: pinned(zero), col_scale: pinned(colScale), col_sum: pinned(sums),
                bias: calibrated ? nil : pinned(bias), outlier_x: pinned(xo), outlier_w: pinned(wo),
                outlier_count: count, outlier_ld: n, out: out, ldo: n, activate: nil)
            for (rows, cols) in blocks {
                int8_dequantize_variant(variant, accP, n, rows.lowerBound, rows.upperBound, cols.lowerBound, cols.upperBound, &d)
            }
            return Array(UnsafeBufferPointer(start: out, count: m * n))
        }
        var expected = [Float](repeating: 0, count: m * n)
        for r in 0..<m {
            for c in 0..<n {
                var v = Float(acc[r * n + c] &- zero[r] &* sums[c]) * (rowScale[r] * colScale[c])
                if !calibrated { v = v + bias[c] }
                for j in 0..<count { v = v.addingProduct(xo[r * count + j], wo[j * n + c]) }
                expected[r * n + c] = v
            }
        }
        let elements = (0..<m).flatMap { r in (0..<n).map { c in (r..<(r + 1), c..<(c + 1)) } }
        func differing(_ got: [Float]) -> Int { zip(got, expected).filter { $0.bitPattern != $1.bitPattern }.count }
        for variant in 0...int8_dequantize_best_variant() {
            #expect(differing(run([(0..<m, 0..<n)], variant: variant)) == 0, "variant \(variant), one call")
            #expect(differing(run(elements, variant: variant)) == 0, "variant \(variant), one element a call")
        }
    }

    /// Q, K and V stacked in the packed layout: each row range views its own part, and unpacks to it.
    @Test(.enabled(if: Int8Kernel.vnniPacked)) func packedStackingViews() throws {
        let d = 32, k = 40
        var rng = SeededRandom(seed: 5)
        let parts = try (0..<3).map { _ in
            let w = try Buf(rng.uniform(d * k, -1, 1)), b = try Buf(rng.uniform(d))
            return try Int8Matrix(weight: w.p, bias: b.p, n: d, k: k, vnni: true)
        }
        let fused = try Int8Matrix(stacking: parts)
        #expect(fused.packed)
        for (i, p) in parts.enumerated() {
            #expect(fused.view((i * d)..<((i + 1) * d)).weightBytes == p.linear.weightBytes)
        }
    }

    /// A sentence's int8 logits are bit-identical alone and inside a batch of 32.
    @Test func batchInvariant() throws {
        let ckpt = try Checkpoint.load(directory: EncoderParityTests.tinyDir)
        let enc = try EncoderForward(weights: ckpt.weights, packing: .int8(try QuantizedEncoderWeights(ckpt.weights)))
        var rng = SeededRandom(seed: 3)
        let seqs: [[Int32]] = (0..<32).map { i in
            [101] + (0..<(1 + (i * 7) % 40)).map { _ in Int32(1000 + Int(rng.nextUnitFloat() * 900)) } + [102]
        }
        let batched = try enc.logits(try PackedBatch(sequences: seqs))
        var ws: ForwardWorkspace? = nil
        for (i, s) in seqs.enumerated() {
            let alone = try enc.logits(try PackedBatch(sequences: [s]), workspace: &ws)
            #expect(alone[0] == batched[i], "sequence \(i): \(alone[0]) alone vs \(batched[i]) in the batch")
        }
        // And the int8 logits follow the float ones.
        let fp32 = try EncoderForward(weights: ckpt.weights).logits(try PackedBatch(sequences: seqs))
        #expect(maxAbsDiff(batched, fp32) < 0.05)
    }

    @Test func int8EncoderRefusesTraining() throws {
        let ckpt = try Checkpoint.load(directory: EncoderParityTests.tinyDir)
        let enc = try EncoderForward(weights: ckpt.weights, packing: .int8(try QuantizedEncoderWeights(ckpt.weights)))
        expectError(.misuse, mentions: ["int8"]) {
            try enc.forward(try PackedBatch(sequences: [[101, 102]]), workspace: ForwardWorkspace(config: ckpt.config, mode: .training))
        }
    }

    // MARK: Model and checkpoints

    static func load(_ dir: String, _ p: Precision, calibration: String? = nil) throws -> SentimentModel {
        var o = ModelOptions(modelDirectory: dir)
        o.precision = p
        o.threads = 2
        o.maxLength = 32
        o.calibration = calibration.map { CalibrationOptions(file: $0) }
        return try SentimentModel.load(o)
    }

    /// A copy of a checkpoint fixture with a usable vocab.txt (the fixtures' own repeat tokens).
    static func fixtureModel(_ name: String, in tmp: TempDir) throws -> String {
        let dir = tmp.sub(name)
        try copyFolder(Fixtures.path(name), to: dir)
        let special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        let words = "a charming and funny journey the worst film of year it is what utterly completely forgettable mess i left early good"
            .split(separator: " ").map(String.init)
        var tokens = special
        for w in words + (0..<100).map({ "##\($0)" }) where !tokens.contains(w) && tokens.count < 100 { tokens.append(w) }
        try writeBytes(dir + "/vocab.txt", Array((tokens.joined(separator: "\n") + "\n").utf8))
        return dir
    }

    static let texts = [
        "a charming and funny journey", "the worst film of the year", "it is what it is",
        "an utterly, completely forgettable mess; i left early", "good", "",
    ]

    /// Save int8, load int8: identical logits, I8 tensors with F32 scales, the scheme in the metadata.
    @Test(arguments: ["distilbert_f32", "bert_f32"])
    func saveLoadRoundTrip(_ fixture: String) throws {
        let tmp = try TempDir(), src = try TempDir()
        let dir = try Self.fixtureModel(fixture, in: src)
        let m = try Self.load(dir, .int8)
        let before = try m.classify(Self.texts, batchSize: 4)
        _ = try m.save(to: tmp.path, precision: .int8)
        let file = try SafeTensorsFile(path: tmp.sub("model.safetensors"))
        #expect(file.metadata["quantization"] == Int8Scheme.name)
        let i8 = file.entries.values.filter { $0.dtype == .i8 }
        #expect(i8.count == 1 + 6 * m.config.numLayers)   // word embeddings + 6 linears per layer
        for e in i8 { #expect(file[e.name + Int8Scheme.scaleSuffix]?.dtype == .f32) }

        let again = try Self.load(tmp.path, .int8)
        let after = try again.classify(Self.texts, batchSize: 1)
        #expect(before.map(\.logits) == after.map(\.logits))
        // Saving the reloaded model again writes the same bytes.
        let tmp2 = try TempDir()
        _ = try again.save(to: tmp2.path, precision: .int8)
        #expect(try readBytes(tmp.sub("model.safetensors")) == readBytes(tmp2.sub("model.safetensors")))
        // A float model saved as int8 gives the same checkpoint as the int8 model.
        let tmp3 = try TempDir()
        _ = try Self.load(dir, .fp32).save(to: tmp3.path, precision: .int8)
        #expect(try readBytes(tmp.sub("model.safetensors")) == readBytes(tmp3.sub("model.safetensors")))
        // An int8 checkpoint also loads at fp32 (dequantized weights).
        let f = try Self.load(tmp.path, .fp32)
        #expect(maxAbsDiff(try f.classify(Self.texts).map(\.logits), after.map(\.logits)) < 0.05)
    }

    @Test func missingScaleIsAFormatError() throws {
        let tmp = try TempDir(), src = try TempDir()
        _ = try Self.load(try Self.fixtureModel("distilbert_f32", in: src), .int8).save(to: tmp.path, precision: .int8)
        let path = tmp.sub("model.safetensors")
        let file = try SafeTensorsFile(path: path)
        let dropped = "distilbert.transformer.layer.1.ffn.lin2.weight_scale"
        var entries: [SafeTensorsWriter.Entry] = []
        for name in file.names where name != dropped {
            guard let e = file[name] else { continue }
            let bytes = try file.withRawBytes(name) { Array($0) }
            entries.append(try SafeTensorsWriter.Entry(name: name, dtype: e.dtype.rawValue, shape: e.shape, bytes: bytes))
        }
        try SafeTensorsWriter.write(entries, metadata: file.metadata, to: path)
        expectError(.format, mentions: [dropped]) { _ = try Self.load(tmp.path, .int8) }
    }

    /// On the real 6-layer model: the int8 checkpoint is at most 30% of the fp32 file, and the
    /// int8 [CLS] states stay close to fp32 ones; batch 1 and batch 32 agree bit for bit.
    @Test func miniLMSizeAndAccuracy() throws {
        guard let dir = Fixtures.miniLM() else { return }
        let tmp = try TempDir()
        let m = try Self.load(dir, .int8)
        _ = try m.save(to: tmp.path, precision: .int8)
        let ratio = Double(try readBytes(tmp.sub("model.safetensors")).count) / Double(try readBytes(dir + "/model.safetensors").count)
        #expect(ratio <= 0.30, "int8 checkpoint is \(ratio) of the fp32 one")

        let f = try Self.load(dir, .fp32)
        let texts = (0..<32).map { "sentence \($0): " + Self.texts[$0 % Self.texts.count] + String(repeating: " indeed", count: $0 % 5) }
        let ids = try PackedBatch(sequences: m.encode(texts))
        var ws: ForwardWorkspace? = nil
        let qi = try m.encoder.run(ids, workspace: &ws, includeCLSHidden: true)
        var ws2: ForwardWorkspace? = nil
        let fi = try f.encoder.run(ids, workspace: &ws2, includeCLSHidden: true)
        for (a, b) in zip(qi.clsHidden ?? [], fi.clsHidden ?? []) {
            var dot = 0.0, na = 0.0, nb = 0.0
            for (x, y) in zip(a, b) { dot += Double(x) * Double(y); na += Double(x * x); nb += Double(y * y) }
            #expect(dot / (na * nb).squareRoot() > 0.99)
        }
        let one = try m.logits(m.encode(texts), batchSize: 1), all = try m.logits(m.encode(texts), batchSize: 32)
        #expect(one == all)
    }
}
