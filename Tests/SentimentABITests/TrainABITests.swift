import SentimentCore
import Testing
@testable import Sentiment

#if canImport(Glibc)
import Glibc
#endif

/// Calls sentiment_train with `config` and a callback that records every event and
/// cancels (returns 1) once `cancelAt` returns true for an event.
private final class TrainCall {
    var events: [JSON] = []
    var cancelAt: (JSON) -> Bool = { _ in false }

    func run(_ config: String) throws -> (Int32, JSON) {
        let cb: ProgressCallback = { event, user in
            guard let user, let event else { return 1 }
            let recorder = Unmanaged<TrainCall>.fromOpaque(user).takeUnretainedValue()
            guard let parsed = try? JSON.parse(String(cString: event)) else { return 1 }
            recorder.events.append(parsed)
            return recorder.cancelAt(parsed) ? 1 : 0
        }
        let user = Unmanaged.passUnretained(self).toOpaque()
        return try call { out in config.withCString { sentiment_train($0, cb, user, out) } }
    }

    func events(named kind: String) -> [JSON] { events.filter { $0["event"]?.stringValue == kind } }
}

private func trainConfig(_ pairs: KeyValuePairs<String, JSON>) -> String { JSON(pairs).serialized() }

/// A small SST-2-like TSV in `dir`: `rows` labelled sentences after the header.
private func writeTSV(_ path: String, rows: Int) throws {
    let sentences = [("a charming and often affecting journey .", 1), ("unflinchingly bleak and desperate", 0),
                     ("one of the best films of the year .", 1), ("an utterly predictable , lifeless script .", 0)]
    var text = "sentence\tlabel\n"
    for i in 0..<rows {
        let (s, y) = sentences[i % sentences.count]
        text += "\(s)\t\(y)\n"
    }
    try writeText(path, text)
}

private func writeText(_ path: String, _ text: String) throws {
    try FileSystem.writeAtomically(path) { try $0.write(Array(text.utf8)) }
}

/// A temporary folder, removed with its files when the object goes away.
private final class ScratchDir {
    let path: String

    init() throws {
        var template = Array("/tmp/sentiment-train-test-XXXXXX".utf8CString)
        let ok = template.withUnsafeMutableBufferPointer { buf in buf.baseAddress.map { mkdtemp($0) != nil } ?? false }
        guard ok else { throw SentimentError.io("mkdtemp failed") }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { ScratchDir.remove(path) }

    func sub(_ name: String) -> String { path + "/" + name }

    /// Removes `path`; a symlink is removed itself, never followed.
    static func remove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { unlink(path); return }
        for name in (try? FileSystem.listDirectory(path)) ?? [] { remove(path + "/" + name) }
        rmdir(path)
    }
}

@Suite struct TrainConfigErrorTests {
    /// Config errors need no model: parsing fails before anything is loaded.
    @Test(arguments: [
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"learning_rat\":1e-5}", "learning_rat"),
        ("{\"train_file\":\"t.tsv\"}", "model_dir"),
        ("{\"model_dir\":\"/m\"}", "train_file"),
        ("{\"model_dir\":\"\",\"train_file\":\"t.tsv\"}", "model_dir"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"save_strategy\":\"no\",\"learning_rate\":0}", "learning_rate"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"save_strategy\":\"no\",\"train_batch_size\":0}", "train_batch_size"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"save_strategy\":\"no\",\"train_batch_size\":2.5}", "train_batch_size"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"save_strategy\":\"no\",\"num_train_epochs\":\"5\"}", "num_train_epochs"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"save_strategy\":\"no\",\"max_steps\":0}", "max_steps"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"save_strategy\":\"sometimes\"}", "save_strategy"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"save_strategy\":\"no\",\"lr_scheduler_type\":\"cosine_with_restarts\"}", "lr_scheduler_type"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\",\"save_strategy\":\"no\",\"dropout\":1}", "dropout"),
        ("{\"model_dir\":\"/m\",\"train_file\":\"t.tsv\"}", "output_dir"),   // save_strategy "best" needs it
        ("[1, 2]", "config_json"),
    ])
    func badConfigNamesItsField(config: String, field: String) throws {
        let (status, doc) = try call { out in config.withCString { sentiment_train($0, nil, nil, out) } }
        #expect(status == Status.invalidArgument.rawValue, "\(config): \(doc.serialized())")
        #expect(doc["error"]?["code"]?.stringValue == "invalid_argument")
        #expect(doc["error"]?["field"]?.stringValue == field, "\(config): \(doc.serialized())")
        #expect(doc["error"]?["message"]?.stringValue?.contains(field == "config_json" ? "object" : field) == true)
    }

    @Test func nullAndMalformedConfig() throws {
        var (status, doc) = try call { sentiment_train(nil, nil, nil, $0) }
        #expect(status == Status.misuse.rawValue)
        #expect(doc["error"]?["field"]?.stringValue == "config_json")
        (status, doc) = try call { out in "{\"model_dir\": ".withCString { sentiment_train($0, nil, nil, out) } }
        #expect(status == Status.invalidArgument.rawValue)
        #expect(doc["error"]?["message"]?.stringValue?.contains("invalid JSON") == true)
        // A NULL out_json still gets the status.
        #expect("{}".withCString { sentiment_train($0, nil, nil, nil) } == Status.invalidArgument.rawValue)
    }

    @Test func outputDirectoryClaims() throws {
        let scratch = try ScratchDir()
        let registry = ActiveOutputDirectories.shared
        let key = try registry.claim(scratch.path)
        // Other spellings of the same folder are the same claim.
        for spelling in [scratch.path + "/", scratch.path + "/.", scratch.path + "/../" + FileSystem.baseName(scratch.path)] {
            #expect(throws: SentimentError.self) { try registry.claim(spelling) }
        }
        let other = try registry.claim(scratch.sub("not-yet-created"))
        #expect(throws: SentimentError.self) { try registry.claim(scratch.sub("not-yet-created/")) }
        registry.release(other)
        registry.release(key)
        registry.release(try registry.claim(scratch.path))
    }

    @Test func canonicalPaths() throws {
        let scratch = try ScratchDir()
        let canonical = ActiveOutputDirectories.canonical
        #expect(canonical(scratch.path + "//") == canonical(scratch.path))
        #expect(canonical(scratch.sub("new/")) == canonical(scratch.path) + "/new")
        #expect(canonical(scratch.sub("a/b/c")) == scratch.sub("a/b/c"))
        #expect(canonical("relative-dir").hasPrefix("/"))
    }
}

@Suite(.serialized) struct TrainRunTests {
    @Test func busyOutputDirectory() throws {
        guard let model = requireModelDirectory() else { return }
        let scratch = try ScratchDir()
        try writeTSV(scratch.sub("train.tsv"), rows: 8)
        let out = scratch.sub("out")
        let key = try ActiveOutputDirectories.shared.claim(out)
        defer { ActiveOutputDirectories.shared.release(key) }
        let config = trainConfig(["model_dir": JSON(model), "train_file": JSON(scratch.sub("train.tsv")),
                                  "output_dir": JSON(out + "/"), "max_steps": 1, "train_batch_size": 4])
        let (status, doc) = try TrainCall().run(config)
        #expect(status == Status.busy.rawValue, "\(doc.serialized())")
        #expect(doc["error"]?["field"]?.stringValue == "output_dir")
        #expect(!FileSystem.exists(out))
        // save_strategy "no" writes nothing, so it does not need the folder.
        let unsaved = trainConfig(["model_dir": JSON(model), "train_file": JSON(scratch.sub("train.tsv")),
                                   "output_dir": JSON(out), "max_steps": 1, "train_batch_size": 4,
                                   "save_strategy": "no"])
        let (status2, doc2) = try TrainCall().run(unsaved)
        #expect(status2 == 0, "\(doc2.serialized())")
    }

    @Test func missingAndMalformedFiles() throws {
        guard let model = requireModelDirectory() else { return }
        let scratch = try ScratchDir()
        try writeTSV(scratch.sub("good.tsv"), rows: 4)
        try writeText(scratch.sub("bad.tsv"), "sentence\tlabel\nfine\t1\nno label here\n")
        try writeText(scratch.sub("badlabel.tsv"), "sentence\tlabel\nfine\t1\nfine\t1\nworse\t1.5\n")   // 7 would be an 8th class
        let cases: [(JSON, JSON, Status, String, String)] = [
            // (model_dir, train_file, status, field, text the message must contain)
            (JSON(scratch.sub("no-model")), JSON(scratch.sub("good.tsv")), .io, "model_dir", "no-model"),
            (JSON(model), JSON(scratch.sub("missing.tsv")), .io, "train_file", "missing.tsv"),
            (JSON(model), JSON(scratch.sub("bad.tsv")), .format, "train_file", "bad.tsv:3"),
            (JSON(model), JSON(scratch.sub("badlabel.tsv")), .format, "train_file", "badlabel.tsv:4"),
        ]
        for (modelDir, trainFile, expected, field, text) in cases {
            let config = trainConfig(["model_dir": modelDir, "train_file": trainFile, "save_strategy": "no"])
            let recorder = TrainCall()
            let (status, doc) = try recorder.run(config)
            #expect(status == expected.rawValue, "\(config): \(doc.serialized())")
            #expect(doc["error"]?["field"]?.stringValue == field, "\(config): \(doc.serialized())")
            #expect(doc["error"]?["message"]?.stringValue?.contains(text) == true, "\(doc.serialized())")
            #expect(recorder.events(named: "step").isEmpty)
        }
        let config = trainConfig(["model_dir": JSON(model), "train_file": JSON(scratch.sub("good.tsv")),
                                  "eval_file": JSON(scratch.sub("missing-dev.tsv")), "save_strategy": "no"])
        let (status, doc) = try TrainCall().run(config)
        #expect(status == Status.io.rawValue, "\(doc.serialized())")
        #expect(doc["error"]?["field"]?.stringValue == "eval_file")
    }

    @Test func tinyRunReportsEventsAndResult() throws {
        guard let model = requireModelDirectory() else { return }
        let scratch = try ScratchDir()
        try writeTSV(scratch.sub("train.tsv"), rows: 16)
        try writeTSV(scratch.sub("dev.tsv"), rows: 6)
        let config = trainConfig([
            "model_dir": JSON(model), "train_file": JSON(scratch.sub("train.tsv")),
            "eval_file": JSON(scratch.sub("dev.tsv")), "max_steps": 3, "train_batch_size": 4,
            "logging_steps": 1, "save_strategy": "no", "threads": 2,
        ])
        let recorder = TrainCall()
        let (status, doc) = try recorder.run(config)
        #expect(status == 0, "\(doc.serialized())")

        let steps = recorder.events(named: "step")
        #expect(steps.map { $0["step"]?.int64Value } == [1, 2, 3])
        for e in steps {
            #expect(e["total_steps"]?.int64Value == 3)
            #expect(e["epoch"]?.int64Value == 1)
            for key in ["loss", "learning_rate", "examples_per_second"] {
                #expect(e[key]?.doubleValue?.isFinite == true, "\(key) in \(e.serialized())")
            }
        }
        let evals = recorder.events(named: "eval")
        #expect(evals.count == 1)
        #expect(evals.first?["eval_accuracy"]?.doubleValue.map { (0...1).contains($0) } == true)
        #expect(recorder.events(named: "saved").isEmpty)

        #expect(doc["cancelled"] == false)
        #expect(doc["steps"]?.int64Value == 3)
        #expect(doc["train_examples"]?.int64Value == 16)
        #expect((doc["train_tokens_per_second"]?.doubleValue ?? 0) > 0)
        #expect(doc["curve"]?["steps"] == [1, 2, 3])
        #expect(doc["curve"]?["loss"]?.arrayValue?.compactMap(\.doubleValue) ==
                steps.compactMap { $0["loss"]?.doubleValue })
        let epochs = doc["epochs"]?.arrayValue ?? []
        #expect(epochs.count == 1)
        #expect(epochs.first?["step"]?.int64Value == 3)
        #expect(epochs.first?["eval_accuracy"] == evals.first?["eval_accuracy"])
        #expect(doc["best_epoch"]?.int64Value == 1)
    }

    @Test func cancelFromTheCallbackReturnsThePartialResult() throws {
        guard let model = requireModelDirectory() else { return }
        let scratch = try ScratchDir()
        try writeTSV(scratch.sub("train.tsv"), rows: 16)
        let config = trainConfig([
            "model_dir": JSON(model), "train_file": JSON(scratch.sub("train.tsv")), "max_steps": 4,
            "train_batch_size": 4, "logging_steps": 1, "save_strategy": "last", "output_dir": JSON(scratch.sub("out")),
        ])
        let recorder = TrainCall()
        recorder.cancelAt = { $0["event"]?.stringValue == "step" && $0["step"]?.int64Value == 2 }
        let (status, doc) = try recorder.run(config)
        #expect(status == Status.cancelled.rawValue, "\(doc.serialized())")
        #expect(doc["error"]?["code"]?.stringValue == "cancelled")
        #expect(recorder.events.count == 2, "no event after the callback cancelled: \(recorder.events)")
        let result = doc["result"]
        #expect(result?["cancelled"] == true)
        #expect(result?["steps"]?.int64Value == 2)
        #expect(result?["curve"]?["steps"] == [1, 2])
        #expect(!FileSystem.exists(scratch.sub("out/model.safetensors")))
        // The folder is free again for the next run.
        let again = try ActiveOutputDirectories.shared.claim(scratch.sub("out"))
        ActiveOutputDirectories.shared.release(again)
    }

    @Test func saveLastWritesALoadableCheckpoint() throws {
        guard let model = requireModelDirectory() else { return }
        let scratch = try ScratchDir()
        try writeTSV(scratch.sub("train.tsv"), rows: 8)
        let out = scratch.sub("out")
        let config = trainConfig([
            "model_dir": JSON(model), "train_file": JSON(scratch.sub("train.tsv")), "max_steps": 2,
            "train_batch_size": 4, "save_strategy": "last", "output_dir": JSON(out),
        ])
        let recorder = TrainCall()
        let (status, doc) = try recorder.run(config)
        #expect(status == 0, "\(doc.serialized())")
        #expect(doc["output_dir"]?.stringValue == out)
        #expect(!recorder.events(named: "saved").isEmpty)
        #expect(FileSystem.exists(out + "/model.safetensors"))
        _ = try withModel("{\"model_dir\":\(jsonString(out))}") { m in
            let (s, d) = try call { o in "{\"texts\":[\"a charming journey\"]}".withCString { sentiment_classify(m, $0, o) } }
            #expect(s == 0, "\(d.serialized())")
            #expect(d["results"]?.arrayValue?.count == 1)
        }
    }

    @Test func lossCurveIsBoundedForLongRuns() {
        let short = Documents.lossCurve([0.5, 0.25])
        #expect(short["steps"] == [1, 2])
        #expect(short["loss"] == [0.5, 0.25])
        let long = Documents.lossCurve((0..<4001).map { Double($0) })
        let steps = long["steps"]?.arrayValue?.compactMap(\.int64Value) ?? []
        #expect(steps.count <= Documents.curvePoints)
        #expect(steps.first == 3 && steps.last == 4001)
        #expect(long["loss"]?.arrayValue?.first == JSON(1.0))   // mean of steps 1...3 (values 0, 1, 2)
    }
}
