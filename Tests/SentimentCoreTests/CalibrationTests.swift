// int8 calibration (SmoothQuant and fp32 outlier channels): the smoothed and split products,
// calibration files, the calibrated int8 checkpoint's round trip and batch invariance, and the
// errors.
import Testing
@testable import SentimentCore

@Suite struct CalibrationTests {
    /// Smoothing leaves x W^T as it was and, on inputs with an outlier channel, cuts the int8 error.
    @Test func smoothingCutsTheOutlierError() throws {
        let m = 16, k = 64, n = 32
        var rng = SeededRandom(seed: 11)
        var xv = rng.uniform(m * k, -1, 1)
        for r in 0..<m { xv[r * k + 5] *= 60; xv[r * k + 40] *= 25 }   // two outlier channels, as after LayerNorm
        let x = try Buf(xv), w = try Buf(rng.uniform(n * k, -0.2, 0.2)), b = try Buf(count: n)
        var xmax = [Float](repeating: 0, count: k), wmax = [Float](repeating: 0, count: k)
        for r in 0..<m { for c in 0..<k { xmax[c] = max(xmax[c], abs(xv[r * k + c])) } }
        for j in 0..<n { for c in 0..<k { wmax[c] = max(wmax[c], abs(w.p[j * k + c])) } }
        let s = (0..<k).map { (xmax[$0] / wmax[$0]).squareRoot() }   // alpha 0.5
        func error(_ q: Int8Matrix) throws -> Double {
            let out = try Buf(count: m * n)
            try int8Linear(q.linear, inp: x.p, rows: m, out: out.p, scratch: try Int8Scratch())
            var e = 0.0
            for r in 0..<m {
                for j in 0..<n {
                    var ref = 0.0
                    for c in 0..<k { ref += Double(xv[r * k + c]) * Double(w.p[j * k + c]) }
                    e = max(e, abs(Double(out.p[r * n + j]) - ref))
                }
            }
            return e
        }
        let plain = try error(Int8Matrix(weight: w.p, bias: b.p, n: n, k: k))
        let smoothed = try error(Int8Matrix(weight: w.p, bias: b.p, n: n, k: k, smoothing: s))
        #expect(smoothed < plain / 2, "max error smoothed \(smoothed), plain \(plain)")
        #expect(smoothed < 0.1)
        // The two outlier channels in fp32, the rest smoothed: the outliers add no error at all.
        var rest = s
        rest[5] = 1
        rest[40] = 1
        let split = try error(Int8Matrix(weight: w.p, bias: b.p, n: n, k: k, smoothing: rest, outlierColumns: [5, 40]))
        #expect(split < smoothed, "max error split \(split), smoothed \(smoothed)")
        // Without smoothing too, on both kernels, and in a stacked matrix.
        for vnni in [false, Int8Kernel.vnniPacked] {
            let alone = try Int8Matrix(weight: w.p, bias: b.p, n: n, k: k, outlierColumns: [5, 40], vnni: vnni)
            #expect(try error(alone) < plain / 2)
            let stacked = try Int8Matrix(stacking: [alone, alone])
            let out = try Buf(count: m * 2 * n), one = try Buf(count: m * n)
            try int8Linear(stacked.linear, inp: x.p, rows: m, out: out.p, scratch: try Int8Scratch())
            try int8Linear(alone.linear, inp: x.p, rows: m, out: one.p, scratch: try Int8Scratch())
            for r in 0..<m {
                for j in 0..<n { #expect(out.p[r * 2 * n + n + j] == one.p[r * n + j]) }
            }
        }
    }

    @Test func badSmoothingIsRefused() throws {
        let w = try Buf([1, 2, 3, 4]), b = try Buf(count: 2)
        expectError(.invalidArgument, mentions: ["smoothing"]) {
            _ = try Int8Matrix(weight: w.p, bias: b.p, n: 2, k: 2, smoothing: [1, 0])
        }
        expectError(.invalidArgument, mentions: ["smoothing"]) {
            _ = try Int8Matrix(weight: w.p, bias: b.p, n: 2, k: 2, smoothing: [1])
        }
        for columns in [[2], [1, 0], [0, 0]] {
            expectError(.invalidArgument, mentions: ["outlier"]) {
                _ = try Int8Matrix(weight: w.p, bias: b.p, n: 2, k: 2, outlierColumns: columns)
            }
        }
    }

    /// Text files (one sentence a line, CRLF and a BOM), TSV and JSON Lines give the same
    /// sentences; `samples` takes the first ones.
    @Test func calibrationFilesRead() throws {
        let tmp = try TempDir()
        let sentences = ["a charming journey", "the worst film, \"ever\"", "it is what it is"]
        try writeBytes(tmp.sub("c.txt"), [0xEF, 0xBB, 0xBF] + Array((sentences.joined(separator: "\r\n") + "\r\n\r\n").utf8))
        try writeBytes(tmp.sub("c.tsv"), Array(("sentence\tlabel\n" + sentences.map { $0 + "\t1" }.joined(separator: "\n")).utf8))
        try writeBytes(tmp.sub("c.jsonl"), Array(sentences.map { "{\"text\": \"\($0.replacingQuotes)\"}" }.joined(separator: "\n").utf8))
        for name in ["c.txt", "c.tsv", "c.jsonl"] {
            #expect(try CalibrationOptions(file: tmp.sub(name)).texts() == sentences, "\(name)")
        }
        var two = CalibrationOptions(file: tmp.sub("c.txt"))
        two.samples = 2
        #expect(try two.texts() == Array(sentences.prefix(2)))
        try writeBytes(tmp.sub("empty.txt"), Array("\n\n".utf8))
        expectError(.invalidArgument, mentions: ["calibration_file", "no sentences"]) {
            _ = try CalibrationOptions(file: tmp.sub("empty.txt")).texts()
        }
        expectError(.io, mentions: ["missing.txt"]) { _ = try CalibrationOptions(file: tmp.sub("missing.txt")).texts() }
    }

    static func load(_ dir: String, _ p: Precision, calibration: String? = nil) throws -> SentimentModel {
        try QuantizationTests.load(dir, p, calibration: calibration)
    }

    /// A calibrated int8 model saves smoothing factors and its config; the saved checkpoint
    /// reloads to the same logits at batch 1 and in a batch, a quantizing save of the float model
    /// writes the same bytes, and the checkpoint loads at fp32 too.
    @Test(arguments: ["distilbert_f32", "bert_f32"])
    func calibratedRoundTrip(_ fixture: String) throws {
        let src = try TempDir(), out = try TempDir(), out2 = try TempDir()
        let dir = try QuantizationTests.fixtureModel(fixture, in: src)
        let calibration = src.sub("calibration.txt")
        try writeBytes(calibration, Array(QuantizationTests.texts.joined(separator: "\n").utf8))
        let m = try Self.load(dir, .int8, calibration: calibration)
        #expect(m.quantized?.config.method == "smoothquant")
        #expect(m.quantized?.config.calibrationSamples == QuantizationTests.texts.count - 1)   // the blank one is skipped
        let texts = QuantizationTests.texts + ["good good good", "the film of the year"]
        let before = try m.logits(m.encode(texts), batchSize: 1)
        #expect(try m.logits(m.encode(texts), batchSize: 32) == before)
        _ = try m.save(to: out.path, precision: .int8)

        let file = try SafeTensorsFile(path: out.sub("model.safetensors"))
        for suffix in [Int8Scheme.smoothingSuffix, Int8Scheme.outlierColumnsSuffix, Int8Scheme.outlierWeightSuffix] {
            #expect(file.names.filter { $0.hasSuffix(suffix) }.count == 6 * m.config.numLayers, "\(suffix)")
        }
        #expect(file.names.first { $0.hasSuffix(Int8Scheme.outlierColumnsSuffix) }.flatMap { file[$0]?.dtype } == .i32)
        let config = try JSON.parse(file.metadata[Int8Scheme.configKey] ?? "")
        #expect(config["method"]?.stringValue == "smoothquant")
        #expect(config["calibration_file"]?.stringValue == "calibration.txt")
        #expect(config["outlier_channels"]?.int64Value == Int64(CalibrationOptions.defaultOutlierChannels))

        let again = try Self.load(out.path, .int8)
        #expect(again.quantized?.config == m.quantized?.config)
        #expect(try again.logits(again.encode(texts), batchSize: 1) == before)
        _ = try Self.load(dir, .fp32).save(to: out2.path, precision: .int8, calibration: CalibrationOptions(file: calibration))
        #expect(try readBytes(out.sub("model.safetensors")) == readBytes(out2.sub("model.safetensors")))
        let f = try Self.load(out.path, .fp32)
        #expect(maxAbsDiff(try f.logits(f.encode(texts), batchSize: 8), before) < 0.05)
    }

    @Test func calibrationErrors() throws {
        let src = try TempDir(), out = try TempDir()
        let dir = try QuantizationTests.fixtureModel("bert_f32", in: src)
        let calibration = src.sub("calibration.txt")
        try writeBytes(calibration, Array("a charming journey\n".utf8))
        expectError(.invalidArgument, mentions: ["calibration_file", "int8"]) { _ = try Self.load(dir, .fp32, calibration: calibration) }
        expectError(.io, mentions: ["nope.txt"]) { _ = try Self.load(dir, .int8, calibration: src.sub("nope.txt")) }
        let q = try Self.load(dir, .int8)
        expectError(.invalidArgument, mentions: ["already quantized"]) {
            _ = try q.save(to: out.path, precision: .int8, calibration: CalibrationOptions(file: calibration))
        }
        _ = try q.save(to: out.path, precision: .int8)
        expectError(.invalidArgument, mentions: ["already int8"]) { _ = try Self.load(out.path, .int8, calibration: calibration) }
    }

    /// A smoothing tensor that is zero, negative or of the wrong shape is a FORMAT error naming it.
    @Test(arguments: [[Float](repeating: 0, count: 1), [-1], [1, 1, 1]])
    func badSmoothingTensorIsAFormatError(_ values: [Float]) throws {
        let src = try TempDir(), out = try TempDir()
        let dir = try QuantizationTests.fixtureModel("distilbert_f32", in: src)
        _ = try Self.load(dir, .int8).save(to: out.path, precision: .int8)
        let path = out.sub("model.safetensors")
        let file = try SafeTensorsFile(path: path)
        let target = "distilbert.transformer.layer.0.ffn.lin1.weight"
        guard let k = file[target]?.shape.last else { Issue.record("no \(target)"); return }
        var entries: [SafeTensorsWriter.Entry] = []
        for name in file.names {
            guard let e = file[name] else { continue }
            let bytes = try file.withRawBytes(name) { Array($0) }
            entries.append(try SafeTensorsWriter.Entry(name: name, dtype: e.dtype.rawValue, shape: e.shape, bytes: bytes))
        }
        let v = values.count == 1 ? [Float](repeating: values[0], count: k) : values
        entries.append(SafeTensorsWriter.Entry(name: target + Int8Scheme.smoothingSuffix, tensor: try Tensor(shape: [v.count], values: v)))
        try SafeTensorsWriter.write(entries, metadata: file.metadata, to: path)
        expectError(.format, mentions: [target + Int8Scheme.smoothingSuffix]) { _ = try Self.load(out.path, .int8) }
    }
}

private extension String {
    var replacingQuotes: String { replacing("\"", with: "\\\"") }
}
