// The request parsers of Requests.swift, without a model: defaults, and errors naming the key.
import SentimentCore
import Testing
@testable import Sentiment

/// Runs a request parser on `text` as the C caller would pass it.
func parsing<T>(_ text: String, _ parse: (UnsafePointer<CChar>?) throws -> T) throws -> T {
    try text.withCString { try parse($0) }
}

/// Expects `parse` to reject `text` with INVALID_ARGUMENT naming `field`; returns the message.
@discardableResult
func rejection<T>(_ text: String, _ field: String, _ parse: (UnsafePointer<CChar>?) throws -> T,
                  sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        _ = try parsing(text, parse)
        Issue.record("accepted \(text)", sourceLocation: sourceLocation)
    } catch let e as SentimentError {
        #expect(e.status == .invalidArgument, "\(text): \(e.message)", sourceLocation: sourceLocation)
        #expect(e.field == field, "\(text): \(e.message)", sourceLocation: sourceLocation)
        return e.message
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
    return ""
}

@Suite struct TrainingConfigTests {
    /// Every key left out (or null) is the core struct's default (SentimentCoreTests checks that
    /// those are the SST-2 recipe).
    @Test func defaultsAreTheCoreStruct() throws {
        let c = try parsing(#"{"model_dir":"m","train_file":"t.tsv","output_dir":"o"}"#, TrainingConfig.parse)
        var expected = TrainingConfig(modelDirectory: "m", trainFile: "t.tsv")
        expected.outputDirectory = "o"
        #expect(c == expected)
        #expect(try parsing(#"{"model_dir":"m","train_file":"t.tsv","output_dir":"o","seed":null}"#,
                            TrainingConfig.parse) == expected)
    }

    @Test func parsesTheTrainerKeys() throws {
        let c = try parsing(#"""
            {"model_dir":"m","train_file":"t.tsv","eval_file":"d.tsv","output_dir":"o","evaluation_strategy":"steps",
             "eval_steps":0.25,"save_strategy":"steps","save_steps":100,"save_total_limit":2,"save_optimizer_state":false,
             "resume_from_checkpoint":true,"early_stopping_patience":3,"early_stopping_threshold":0.01,
             "gradient_accumulation_steps":4,"warmup_steps":10,"lr_scheduler_type":"polynomial",
             "lr_scheduler_kwargs":{"power":2,"lr_end":1e-9}}
            """#, TrainingConfig.parse)
        #expect(c.evalStrategy == .steps && c.evalSteps == .fraction(0.25) && c.saveSteps == .steps(100))
        #expect(c.saveStrategy == .steps && c.saveTotalLimit == 2 && c.saveOptimizerState == false && !c.savesTrainingState)
        #expect(c.resumeFromCheckpoint == .newest && c.earlyStoppingPatience == 3 && c.earlyStoppingThreshold == 0.01)
        #expect(c.gradientAccumulationSteps == 4 && c.warmupSteps == 10 && c.lrSchedulerType == .polynomial)
        #expect(c.power == 2 && c.lrEnd == 1e-9 && c.numCycles == 0.5)
        let path = try parsing(#"{"model_dir":"m","train_file":"t","output_dir":"o","resume_from_checkpoint":"o/checkpoint-5"}"#,
                               TrainingConfig.parse)
        #expect(path.resumeFromCheckpoint == .path("o/checkpoint-5") && path.savesTrainingState == false)
        let off = try parsing(#"{"model_dir":"m","train_file":"t","output_dir":"o","resume_from_checkpoint":false}"#,
                              TrainingConfig.parse)
        #expect(off.resumeFromCheckpoint == nil)
    }

    @Test(arguments: [
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","learning_rate":-1}"#, "learning_rate"),
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","train_batch_size":0}"#, "train_batch_size"),
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","lr":0.1}"#, "lr"),
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","lr_scheduler_type":"cosine_restarts"}"#, "lr_scheduler_type"),
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","max_steps":0}"#, "max_steps"),
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","dropout":"yes"}"#, "dropout"),
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","num_train_epochs":2.5}"#, "num_train_epochs"),
        (#"{"model_dir":"m","train_file":"t"}"#, "output_dir"),
        (#"{"train_file":"t","output_dir":"o"}"#, "model_dir"),
        (#"{"model_dir":"m","train_file":"","output_dir":"o"}"#, "train_file"),
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","ema_decay":1}"#, "ema_decay"),
        (#"{"model_dir":"m","train_file":"t","output_dir":"o","rdrop_alpha":1,"dropout":false}"#, "rdrop_alpha"),
    ])
    func rejectsNamingTheField(_ text: String, _ field: String) {
        rejection(text, field, TrainingConfig.parse)
    }
}

@Suite struct RequestTests {
    @Test func defaultsAreTheCoreStructs() throws {
        let load = try parsing(#"{"model_dir":"/m"}"#, ModelOptions.parse)
        let options = ModelOptions(modelDirectory: "/m")
        #expect(load.precision == options.precision && load.maxLength == options.maxLength)
        #expect(load.threads == options.threads && load.head == options.head && load.seed == options.seed)
        #expect(try parsing(#"{"texts":[]}"#, ClassifyOptions.parse).batchSize == ClassifyOptions(texts: []).batchSize)
        let evaluate = try parsing(#"{"texts":["a"],"labels":[1]}"#, EvaluateOptions.parse)
        #expect(evaluate.batchSize == EvaluateOptions(data: .file(DataFile(path: "x"))).batchSize)
        #expect(try parsing(#"{"output_dir":"o"}"#, SaveOptions.parse).precision == SaveOptions(outputDirectory: "o").precision)
    }

    @Test func valuesAreRead() throws {
        let load = try parsing(#"{"model_dir":"/m","precision":"int8","max_length":64,"threads":3,"head":"bert","seed":7}"#,
                               ModelOptions.parse)
        #expect(load.modelDirectory == "/m" && load.precision == .int8 && load.maxLength == 64)
        #expect(load.threads == 3 && load.head == .bert && load.seed == 7)
        let classify = try parsing(#"{"texts":["a","b"],"batch_size":4.0}"#, ClassifyOptions.parse)
        #expect(classify.texts == ["a", "b"] && classify.batchSize == 4)
        guard case .examples(let texts, nil, .ids(let labels)) = try parsing(#"{"texts":["a"],"labels":[1]}"#, EvaluateOptions.parse).data
        else { Issue.record("texts+labels not read as examples"); return }
        #expect(texts == ["a"] && labels == [1])
        guard case .examples(_, let pairs, .names(let names)) = try parsing(
            #"{"texts":["a","b"],"text_pairs":["c","d"],"labels":["POSITIVE","negative"]}"#, EvaluateOptions.parse).data
        else { Issue.record("label names and pairs not read"); return }
        #expect(pairs == ["c", "d"] && names == ["POSITIVE", "negative"])
        let top = try parsing(#"{"texts":["a"],"text_pairs":["b"],"top_k":null}"#, ClassifyOptions.parse)
        #expect(top.topK == Int.max && top.textPairs == ["b"] && top.longText == .truncate)
        let window = try parsing(#"{"texts":["a"],"top_k":2,"long_text":"window","stride":8}"#, ClassifyOptions.parse)
        #expect(window.topK == 2 && window.longText == .window && window.stride == 8)
        #expect(try parsing(#"{"texts":["a"]}"#, ClassifyOptions.parse).topK == nil)
        guard case .file(let file) = try parsing(#"{"data_file":"d.tsv","batch_size":2}"#, EvaluateOptions.parse).data
        else { Issue.record("data_file not read as a file"); return }
        #expect(file == DataFile(path: "d.tsv"))
        guard case .file(let csv) = try parsing(
            #"{"data_file":"d.txt","format":"csv","text_column":"review","label_column":"stars"}"#, EvaluateOptions.parse).data
        else { Issue.record("data_file not read as a file"); return }
        #expect(csv == DataFile(path: "d.txt", format: .csv, textColumn: "review", labelColumn: "stars"))
        #expect(try parsing(#"{"output_dir":"o","precision":"int8"}"#, SaveOptions.parse).precision == .int8)
    }

    @Test func errorsNameTheKeyAndTheValue() {
        // Whole-object errors name the argument.
        #expect(rejection("[1]", "config_json", ModelOptions.parse).contains("config_json must be a JSON object, got an array"))
        // Classify's options.
        #expect(rejection(#"{"texts":["a"],"top_k":0}"#, "top_k", ClassifyOptions.parse).contains("top_k must be an integer"))
        #expect(rejection(#"{"texts":["a"],"stride":4}"#, "stride", ClassifyOptions.parse) == #"stride needs "long_text": "window""#)
        #expect(rejection(#"{"texts":["a"],"long_text":"all"}"#, "long_text", ClassifyOptions.parse).contains(#""truncate", "window""#))
        #expect(rejection(#"{"texts":["a"],"text_pairs":["b"],"long_text":"window"}"#, "long_text", ClassifyOptions.parse)
            .contains("takes single texts"))
        #expect(rejection(#"{"texts":["a"],"text_pairs":["b","c"]}"#, "text_pairs", ClassifyOptions.parse)
            == "text_pairs has 2 entries but texts has 1")
        #expect(rejection(#"{"model_dir":"m","train_file":"t","save_strategy":"no","metric_for_best_model":"eval_f2"}"#,
                          "metric_for_best_model", TrainingConfig.parse).contains(#""accuracy", "loss", "macro_f1", "mcc", "f1""#))
        #expect(rejection(#"{"model_dir":"m","train_file":"t","save_strategy":"no","labels":["a"]}"#,
                          "labels", TrainingConfig.parse).contains("a list of 2 to"))
        #expect(rejection(#"{"model_dir":"m","train_file":"t","save_strategy":"no","labels":["a","a"]}"#,
                          "labels", TrainingConfig.parse).contains("distinct"))
        #expect(rejection("{}", "model_dir", ModelOptions.parse).contains("missing key model_dir"))
        #expect(rejection(#"{"model_dir":""}"#, "model_dir", ModelOptions.parse).contains("must not be empty"))
        let unknown = rejection(#"{"model_dir":"/m","precison":"fp32"}"#, "precison", ModelOptions.parse)
        #expect(unknown.contains("unknown key \"precison\"") && unknown.contains("precision"))
        #expect(rejection(#"{"model_dir":"/m","max_length":"128"}"#, "max_length", ModelOptions.parse)
            .contains(#"max_length must be an integer in 2...512, got "128""#))
        #expect(rejection(#"{"model_dir":"/m","precision":"fp64"}"#, "precision", ModelOptions.parse)
            .contains(#"precision "fp64" is not one of "fp32", "int8""#))
        #expect(rejection(#"{"texts":[1]}"#, "texts", ClassifyOptions.parse).contains("texts[0] must be a string, got 1"))
        #expect(rejection(#"{"texts":{"a":1}}"#, "texts", ClassifyOptions.parse).contains("got an object"))
        // A long string is named by its type, not copied into the message.
        let long = String(repeating: "x", count: 1000)
        #expect(rejection(#"{"texts":["a"],"batch_size":"\#(long)"}"#, "batch_size", ClassifyOptions.parse)
            .hasSuffix("got a string"))
        // Labels are ids or names, not both.
        #expect(rejection(#"{"texts":["a","b"],"labels":[1,"x"]}"#, "labels", EvaluateOptions.parse)
            .contains(#"labels[1] must be an integer, got "x""#))
        #expect(rejection(#"{"texts":["a","b"],"labels":["x",1]}"#, "labels", EvaluateOptions.parse)
            .contains(#"labels[1] must be a string, got 1"#))
        #expect(rejection(#"{"model_dir":"/m","seed":-1}"#, "seed", ModelOptions.parse).contains("seed must be an integer >= 0, got -1"))
        rejection(#"{"texts":["a"]}"#, "labels", EvaluateOptions.parse)
        rejection(#"{"data_file":"d","labels":[1]}"#, "data_file", EvaluateOptions.parse)
        rejection("{}", "data_file", EvaluateOptions.parse)
        rejection(#"{"output_dir":5}"#, "output_dir", SaveOptions.parse)
        #expect(rejection(#"{"model_dir":"m","train_file":"t","save_strategy":"no","learning_rate":2}"#,
                          "learning_rate", TrainingConfig.parse).contains("learning_rate must be a number in (0, 1), got 2"))
    }

    @Test func nullRequestIsMisuse() {
        do {
            _ = try ClassifyOptions.parse(nil)
            Issue.record("accepted NULL")
        } catch let e as SentimentError {
            #expect(e.status == .misuse && e.field == "request_json")
        } catch { Issue.record("unexpected \(error)") }
    }
}
