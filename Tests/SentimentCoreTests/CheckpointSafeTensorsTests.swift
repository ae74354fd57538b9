// The safetensors reader and writer, and the file-level corruption catalogue.

import Testing
@testable import SentimentCore

@Suite struct CheckpointSafeTensorsTests {
    static let good = Fixtures.path("distilbert_f32/model.safetensors")

    @Test(arguments: ["distilbert_f32", "distilbert_f16", "bert_f32", "bert_bf16", "bert_bare"])
    func readsEveryTensorAsPyTorchWroteIt(_ fixture: String) throws {
        let file = try SafeTensorsFile(path: Fixtures.path(fixture + "/model.safetensors"))
        let expected = try #require(Fixtures.expected[fixture]?.objectMembers)
        #expect(Set(file.entries.keys) == Set(expected.map(\.key)))
        #expect(file.metadata["format"] == "pt")
        for m in expected {
            let e = try #require(file[m.key])
            if e.dtype.convertsToFloat {
                expectMatches(try file.floatTensor(m.key), m.value, "\(fixture)/\(m.key)")
            } else {
                // position_ids: I64 0..<64, readable raw but never converted.
                #expect(e.dtype == .i64 && e.shape == [1, 64])
                let total = try file.withRawBytes(m.key) { raw in
                    (0..<e.count).reduce(Int64(0)) { $0 + raw.loadUnaligned(fromByteOffset: 8 * $1, as: Int64.self) }
                }
                #expect(total == m.value["sum"]?.int64Value)
                expectError(.format, mentions: [m.key, "I64"]) { _ = try file.floatTensor(m.key) }
            }
        }
    }

    @Test func dtypesAreRecorded() throws {
        let f16 = try SafeTensorsFile(path: Fixtures.path("distilbert_f16/model.safetensors"))
        #expect(f16.entries.values.allSatisfy { $0.dtype == .f16 })
        let bf16 = try SafeTensorsFile(path: Fixtures.path("bert_bf16/model.safetensors"))
        #expect(bf16.entries.values.allSatisfy { $0.dtype == .bf16 })
    }

    @Test func writerMatchesThePythonLibraryByteForByte() throws {
        // Re-writing every tensor of a file saved by safetensors/transformers reproduces it exactly.
        for fixture in ["distilbert_f32", "bert_f32"] {
            let path = Fixtures.path(fixture + "/model.safetensors")
            let file = try SafeTensorsFile(path: path)
            let entries = try file.names.map { SafeTensorsWriter.Entry(name: $0, tensor: try file.floatTensor($0)) }
            let tmp = try TempDir()
            try SafeTensorsWriter.write(entries, to: tmp.sub("out.safetensors"))
            #expect(try readBytes(tmp.sub("out.safetensors")) == readBytes(path), "\(fixture)")
            #expect(list(tmp.path) == ["out.safetensors"])   // no temp file left behind
        }
    }

    @Test func writerTakesRawDtypesAndOrdersForAlignment() throws {
        let tmp = try TempDir()
        let path = tmp.sub("q.safetensors")
        let w = try Tensor(shape: [2, 3], values: [1, -2, 3.5, 0, 1e-8, -7])
        let q = try SafeTensorsWriter.Entry(name: "a.weight_int8", dtype: "I8", shape: [2, 3], bytes: [1, 255, 127, 128, 0, 9])
        let s = SafeTensorsWriter.Entry(name: "z.scale", tensor: try Tensor(shape: [2], values: [0.5, 0.25]))
        let bits: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]   // F16 1.0, -2.0
        let h = try SafeTensorsWriter.Entry(name: "m.half", dtype: "F16", shape: [2], bytes: bits)
        try SafeTensorsWriter.write([q, h, s, SafeTensorsWriter.Entry(name: "b.weight", tensor: w)],
                                    metadata: ["format": "pt", "quantization": "int8-per-row"], to: path)
        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata == ["format": "pt", "quantization": "int8-per-row"])
        #expect(f.names == ["b.weight", "z.scale", "m.half", "a.weight_int8"])   // 4-byte, then 2, then 1
        #expect(try f.floatTensor("b.weight").array == w.array)
        #expect(try f.floatTensor("m.half").array == [1, -2])
        #expect(try f.withRawBytes("a.weight_int8") { Array($0) } == [1, 255, 127, 128, 0, 9])
        #expect(f["a.weight_int8"]?.dtype == .i8)
        let headerLength = try readBytes(path).prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
    }

    @Test func writerRejectsBadEntries() throws {
        expectError(.invalidArgument, mentions: ["tensor t", "needs 12 bytes, got 6"]) {
            _ = try SafeTensorsWriter.Entry(name: "t", dtype: "F32", shape: [3], bytes: [0, 0, 0, 0, 0, 0])
        }
        expectError(.invalidArgument, mentions: ["Q4"]) {
            _ = try SafeTensorsWriter.Entry(name: "t", dtype: "Q4", shape: [1], bytes: [0])
        }
        let tmp = try TempDir()
        let t = SafeTensorsWriter.Entry(name: "x", tensor: try Tensor(shape: [1]))
        expectError(.invalidArgument, mentions: ["x", "twice"]) { try SafeTensorsWriter.write([t, t], to: tmp.sub("a")) }
        expectError(.io, mentions: ["no/such/dir"]) { try SafeTensorsWriter.write([t], to: tmp.sub("no/such/dir/a")) }
        #expect(list(tmp.path).isEmpty)
    }

    @Test func atomicWriteReplacesAndLeavesNoTemporaryFiles() throws {
        let tmp = try TempDir()
        let path = tmp.sub("model.safetensors")
        try writeBytes(path, [1, 2, 3])
        try SafeTensorsWriter.write([SafeTensorsWriter.Entry(name: "x", tensor: try Tensor(shape: [4]))], to: path)
        #expect(try SafeTensorsFile(path: path).names == ["x"])
        #expect(list(tmp.path) == ["model.safetensors"])
        // A failing body leaves the old file alone and removes its temp file.
        #expect(throws: SentimentError.self) {
            try FileSystem.writeAtomically(path) { w in
                try w.write([9, 9])
                throw SentimentError.io("simulated failure")
            }
        }
        #expect(try SafeTensorsFile(path: path).names == ["x"])
        #expect(list(tmp.path) == ["model.safetensors"])
    }

    // MARK: Corruption catalogue (file level)

    /// Writes `bytes` as a corrupt file and expects `.format` naming the file path and `mentions`.
    func expectCorrupt(_ bytes: [UInt8], mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let tmp = try TempDir()
        let path = tmp.sub("model.safetensors")
        try writeBytes(path, bytes)
        expectError(.format, mentions: [path] + mentions, sourceLocation: sourceLocation) { _ = try SafeTensorsFile(path: path) }
    }

    func goodParts() throws -> SafeTensorsParts { try SafeTensorsParts(readBytes(Self.good)) }

    @Test func headerLengthBeyondFile() throws {
        let p = try goodParts()
        let text = Array(p.header.serialized().utf8)
        try expectCorrupt(SafeTensorsParts.assemble(headerText: text, data: p.data, length: 1_000_000), mentions: ["header length 1000000", "past the end"])
    }

    @Test func headerLengthZeroOrAbsurd() throws {
        let p = try goodParts()
        let text = Array(p.header.serialized().utf8)
        try expectCorrupt(SafeTensorsParts.assemble(headerText: text, data: p.data, length: 0), mentions: ["header length is 0"])
        try expectCorrupt(SafeTensorsParts.assemble(headerText: text, data: p.data, length: UInt64.max), mentions: ["limit"])
        try expectCorrupt(SafeTensorsParts.assemble(headerText: text, data: p.data, length: 200_000_000), mentions: ["limit"])
    }

    @Test func tooShortFile() throws {
        try expectCorrupt([1, 2, 3], mentions: ["too short"])
        try expectCorrupt([], mentions: ["too short"])
    }

    @Test func headerNotJSON() throws {
        let p = try goodParts()
        try expectCorrupt(SafeTensorsParts.assemble(headerText: Array("{\"a\": not json".utf8), data: p.data), mentions: ["not valid JSON"])
        try expectCorrupt(SafeTensorsParts.assemble(headerText: [0xFF, 0xFE, 0x00, 0x01], data: p.data), mentions: ["not valid JSON"])
    }

    @Test func headerNotAnObject() throws {
        let p = try goodParts()
        try expectCorrupt(SafeTensorsParts.assemble(headerText: Array("[1, 2, 3]".utf8), data: p.data), mentions: ["array, not an object"])
    }

    @Test func unknownDtype() throws {
        var p = try goodParts()
        p.set("classifier.bias", "dtype", "F33")
        try expectCorrupt(p.bytes, mentions: ["classifier.bias", "F33"])
        p.set("classifier.bias", "dtype", 4)
        try expectCorrupt(p.bytes, mentions: ["classifier.bias", "dtype"])
    }

    @Test func shapeSizeMismatch() throws {
        var p = try goodParts()
        p.set("distilbert.embeddings.LayerNorm.weight", "shape", [33])
        try expectCorrupt(p.bytes, mentions: ["distilbert.embeddings.LayerNorm.weight", "[33]", "128 bytes"])
        p = try goodParts()
        p.set("classifier.weight", "shape", [2, -32])
        try expectCorrupt(p.bytes, mentions: ["classifier.weight", "dimension"])
        p = try goodParts()
        p.set("classifier.weight", "shape", [4_611_686_018_427_387_904, 4])
        try expectCorrupt(p.bytes, mentions: ["classifier.weight"])
    }

    @Test func offsetsOutOfRange() throws {
        var p = try goodParts()
        let last = try #require(p.namesByOffset.last)
        let (a, b) = p.offsets(last)
        p.set(last, "data_offsets", [JSON(a + 1_000_000), JSON(b + 1_000_000)])
        try expectCorrupt(p.bytes, mentions: [last, "past the end"])
        p = try goodParts()
        p.set(last, "data_offsets", [JSON(b), JSON(a)])
        try expectCorrupt(p.bytes, mentions: [last, "invalid data_offsets"])
        p = try goodParts()
        p.set(last, "data_offsets", [JSON(a)])
        try expectCorrupt(p.bytes, mentions: [last, "data_offsets"])
    }

    @Test func overlappingOffsets() throws {
        var p = try goodParts()
        let names = p.namesByOffset
        let second = names[1]
        let (a, b) = p.offsets(second)
        p.set(second, "data_offsets", [JSON(a - 4), JSON(b - 4)])
        try expectCorrupt(p.bytes, mentions: [names[0], second, "overlap"])
    }

    @Test func gapInDataSection() throws {
        var p = try goodParts()
        let victim = p.namesByOffset[3]
        p.header = p.header.removing(victim)
        try expectCorrupt(p.bytes, mentions: ["gap"])
    }

    @Test func truncatedAndTrailingData() throws {
        var p = try goodParts()
        let last = try #require(p.namesByOffset.last)
        p.data.removeLast(100)
        try expectCorrupt(p.bytes, mentions: [last, "truncated"])
        p = try goodParts()
        p.data += [0, 0, 0, 0]
        try expectCorrupt(p.bytes, mentions: ["4 trailing bytes"])
    }

    @Test func badMetadata() throws {
        var p = try goodParts()
        p.header = p.header.setting("__metadata__", .object([JSON.Member("format", 1)]))
        try expectCorrupt(p.bytes, mentions: ["__metadata__", "format"])
        p.header = p.header.setting("__metadata__", [1, 2])
        try expectCorrupt(p.bytes, mentions: ["__metadata__"])
    }

    @Test func missingFileIsIO() throws {
        let tmp = try TempDir()
        expectError(.io, mentions: [tmp.sub("nope.safetensors")]) { _ = try SafeTensorsFile(path: tmp.sub("nope.safetensors")) }
        expectError(.io, mentions: [tmp.path, "not a regular file"]) { _ = try SafeTensorsFile(path: tmp.path) }
    }
}
