import SentimentCore
import Testing
@testable import Sentiment

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ABIStaticTests {
    @Test func versionsAndStatusStrings() {
        #expect(sentiment_abi_version() == 1)
        #expect(String(cString: sentiment_version()) == "0.1.0")
        #expect(String(cString: sentiment_status_string(0)) == "ok")
        #expect(String(cString: sentiment_status_string(2)) == "invalid argument")
        #expect(String(cString: sentiment_status_string(99)) == "unknown status")
        #expect(String(cString: sentiment_status_string(-1)) == "unknown status")
        sentiment_string_free(nil)
        sentiment_model_free(nil)
    }

    @Test func errorDocuments() throws {
        var handle: OpaquePointer? = nil
        // NULL config.
        var (status, doc) = try call { sentiment_model_load(nil, &handle, $0) }
        #expect(status == Status.misuse.rawValue)
        #expect(doc["error"]?["code"]?.stringValue == "misuse")
        #expect(doc["error"]?["field"]?.stringValue == "config_json")
        #expect(handle == nil)
        // NULL out_model.
        (status, doc) = try call { out in "{\"model_dir\":\"/x\"}".withCString { sentiment_model_load($0, nil, out) } }
        #expect(status == Status.misuse.rawValue)
        #expect(doc["error"]?["field"]?.stringValue == "out_model")
        // NULL out_json still returns the status.
        #expect("{".withCString { sentiment_model_load($0, &handle, nil) } == Status.invalidArgument.rawValue)
        // Malformed JSON.
        (status, doc) = try call { out in "{\"model_dir\": ".withCString { sentiment_model_load($0, &handle, out) } }
        #expect(status == Status.invalidArgument.rawValue)
        #expect(doc["error"]?["message"]?.stringValue?.contains("invalid JSON") == true)
        // Unknown key.
        (status, doc) = try call { out in "{\"model_dir\":\"/x\",\"precison\":\"fp32\"}".withCString { sentiment_model_load($0, &handle, out) } }
        #expect(status == Status.invalidArgument.rawValue)
        #expect(doc["error"]?["field"]?.stringValue == "precison")
        // Wrong type.
        (status, doc) = try call { out in "{\"model_dir\":5}".withCString { sentiment_model_load($0, &handle, out) } }
        #expect(status == Status.invalidArgument.rawValue)
        #expect(doc["error"]?["field"]?.stringValue == "model_dir")
        // Missing directory.
        (status, doc) = try call { out in "{\"model_dir\":\"/nonexistent/model\"}".withCString { sentiment_model_load($0, &handle, out) } }
        #expect(status == Status.io.rawValue)
        #expect(doc["error"]?["field"]?.stringValue == "model_dir")
        #expect(doc["error"]?["message"]?.stringValue?.contains("/nonexistent/model") == true)
        #expect(handle == nil)
        // Calls on a NULL or never-loaded handle.
        (status, doc) = try call { sentiment_model_info(nil, $0) }
        #expect(status == Status.misuse.rawValue)
        var bogus = 0
        (status, doc) = try call { out in
            withUnsafeMutablePointer(to: &bogus) { p in sentiment_model_info(OpaquePointer(p), out) }
        }
        #expect(status == Status.misuse.rawValue)
    }
}

@Suite(.serialized) struct ABIModelTests {
    @Test func loadInfoClassifyTokenizeEvaluate() throws {
        guard let dir = requireModelDirectory() else { return }
        _ = try withModel("{\"model_dir\":\(jsonString(dir)),\"threads\":2}") { m in
            var (status, doc) = try call { sentiment_model_info(m, $0) }
            #expect(status == 0)
            #expect(doc["model_type"]?.stringValue == "bert")
            #expect(doc["hidden_size"]?.int64Value == 384)
            #expect(doc["layers"]?.int64Value == 6)
            #expect(doc["labels"] == ["NEGATIVE", "POSITIVE"])
            #expect(doc["fresh_head"]?.boolValue == true)
            #expect(doc["threads"]?.int64Value == 2)

            (status, doc) = try call { out in
                "{\"texts\":[\"a charming journey\",\"\"]}".withCString { sentiment_tokenize(m, $0, out) }
            }
            #expect(status == 0)
            #expect(doc["input_ids"]?.arrayValue?[0].arrayValue?.first == 101)
            #expect(doc["input_ids"]?.arrayValue?[1] == [101, 102])
            #expect(doc["tokens"]?.arrayValue?[1] == ["[CLS]", "[SEP]"])

            let texts = ["a charming and often affecting journey .", "unflinchingly bleak and desperate", "", "ok"]
            let request = JSON(["texts": .array(texts.map { JSON($0) })]).serialized()
            (status, doc) = try call { out in request.withCString { sentiment_classify(m, $0, out) } }
            #expect(status == 0, "\(doc.serialized())")
            let results = doc["results"]?.arrayValue ?? []
            #expect(results.count == texts.count)
            for r in results {
                let probs = r["probabilities"]?.arrayValue?.compactMap(\.doubleValue) ?? []
                let logits = r["logits"]?.arrayValue?.compactMap(\.doubleValue) ?? []
                #expect(probs.count == 2 && logits.count == 2)
                #expect(abs(probs.reduce(0, +) - 1) < 1e-5)
                let id = Int(r["label_id"]?.int64Value ?? -1)
                #expect(id == (logits[1] > logits[0] ? 1 : 0))
                #expect(r["label"]?.stringValue == ["NEGATIVE", "POSITIVE"][id])
                #expect(abs((r["score"]?.doubleValue ?? 0) - probs[id]) < 1e-6)
            }
            // One text at a time gives the same logits as the batch (packed batches have no padding).
            for (k, text) in texts.enumerated() {
                let one = JSON(["texts": [JSON(text)], "batch_size": 1]).serialized()
                let (s1, d1) = try call { out in one.withCString { sentiment_classify(m, $0, out) } }
                #expect(s1 == 0)
                #expect(d1["results"]?.arrayValue?.first?["logits"] == results[k]["logits"])
            }

            let eval = JSON(["texts": .array(texts.map { JSON($0) }), "labels": [1, 0, 1, 0]]).serialized()
            (status, doc) = try call { out in eval.withCString { sentiment_evaluate(m, $0, nil, nil, out) } }
            #expect(status == 0, "\(doc.serialized())")
            #expect(doc["examples"]?.int64Value == 4)
            #expect((doc["loss"]?.doubleValue ?? -1) > 0)

            // Request errors name their field.
            for (req, field) in [("{\"texts\":\"x\"}", "texts"), ("{\"texts\":[\"a\"],\"batch_size\":0}", "batch_size"),
                                 ("{\"texts\":[1]}", "texts"), ("{\"text\":[\"a\"]}", "text"), ("{}", "texts")] {
                let (s, d) = try call { out in req.withCString { sentiment_classify(m, $0, out) } }
                #expect(s == Status.invalidArgument.rawValue, "\(req)")
                #expect(d["error"]?["field"]?.stringValue == field, "\(req): \(d.serialized())")
            }
            let badLabels = "{\"texts\":[\"a\"],\"labels\":[7]}"
            (status, doc) = try call { out in badLabels.withCString { sentiment_evaluate(m, $0, nil, nil, out) } }
            #expect(status == Status.invalidArgument.rawValue)
            #expect(doc["error"]?["field"]?.stringValue == "labels")
        }
    }

    @Test func evaluateDevFileWithProgressAndCancel() throws {
        guard let dir = requireModelDirectory() else { return }
        let data = [getenv("SENTIMENT_DATA_DIR").map { String(cString: $0) }, "../shared/data/sst2"]
            .compactMap { $0 }.first { FileIO.exists($0 + "/dev.tsv") }
        guard let data else {
            if getenv("CI") != nil { Issue.record("SST-2 dev.tsv not found (SENTIMENT_DATA_DIR)") }
            return
        }
        _ = try withModel("{\"model_dir\":\(jsonString(dir))}") { m in
            final class Counter { var events = 0; var cancelAfter = Int.max }
            let counter = Counter()
            let cb: ProgressCallback = { event, user in
                guard let user else { return 1 }
                let c = Unmanaged<Counter>.fromOpaque(user).takeUnretainedValue()
                c.events += 1
                if let event, (try? JSON.parse(String(cString: event)))?["event"]?.stringValue != "progress" { return 1 }
                return c.events >= c.cancelAfter ? 1 : 0
            }
            let request = "{\"data_file\":\(jsonString(data + "/dev.tsv")),\"batch_size\":64}"
            let user = Unmanaged.passUnretained(counter).toOpaque()
            var (status, doc) = try call { out in request.withCString { sentiment_evaluate(m, $0, cb, user, out) } }
            #expect(status == 0, "\(doc.serialized())")
            #expect(doc["examples"]?.int64Value == 872)
            #expect(counter.events == (872 + 63) / 64)
            let accuracy = doc["accuracy"]?.doubleValue ?? -1
            #expect(accuracy > 0.2 && accuracy < 0.8)   // a fresh head is near chance

            counter.events = 0
            counter.cancelAfter = 2
            (status, doc) = try call { out in request.withCString { sentiment_evaluate(m, $0, cb, user, out) } }
            #expect(status == Status.cancelled.rawValue)
            #expect(counter.events == 2)

            let missing = "{\"data_file\":\"/nonexistent/dev.tsv\"}"
            (status, doc) = try call { out in missing.withCString { sentiment_evaluate(m, $0, nil, nil, out) } }
            #expect(status == Status.io.rawValue)
            #expect(doc["error"]?["field"]?.stringValue == "data_file")
        }
    }
}
