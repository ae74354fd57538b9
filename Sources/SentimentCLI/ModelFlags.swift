// The flags of sentiment_model_load, shared by the commands that load a model. Only flags given
// go into the request, so the defaults are the library's.
import ArgumentParser
import SentimentCore

struct ModelFlags: ParsableArguments {
    @Option(name: [.short, .customLong("model")], help: "Model folder (config.json, vocab.txt, model.safetensors).")
    var model: String

    @Option(help: "fp32, int8 (quantized at load) or bf16 (needs AVX512-BF16 or AMX). Default: fp32.")
    var precision: String?

    @Option(help: "Compute threads (0: OMP_NUM_THREADS, else every CPU the process may use).")
    var threads: Int?

    @Option(help: "Tokens per text, [CLS] and [SEP] included. Default: 128.")
    var maxLength: Int?

    @OptionGroup var calibration: CalibrationFlags

    /// The sentiment_model_load request, with `precision` instead of the flag when given.
    func request(precision override: String? = nil) -> JSON {
        var members = [JSON.Member("model_dir", JSON(model))]
        if let p = override ?? precision { members.append(JSON.Member("precision", JSON(p))) }
        if let threads { members.append(JSON.Member("threads", JSON(threads))) }
        if let maxLength { members.append(JSON.Member("max_length", JSON(maxLength))) }
        return .object(members + calibration.members)
    }

    func load(precision override: String? = nil) throws -> Model { try Model(request(precision: override)) }
}

/// The load request's keys that are spelled differently as flags.
let modelFieldFlags = ["model_dir": "--model", "config_json": "--model"]

/// The int8 calibration keys of a quantizing load or save (sentiment.h).
struct CalibrationFlags: ParsableArguments {
    @Option(help: "int8: calibrate SmoothQuant on these sentences (TSV, CSV, JSON Lines, or one per line).")
    var calibrationFile: String?

    @Option(help: "int8: sentences read from the calibration file. Default: 512.")
    var calibrationSamples: Int?

    @Option(help: "int8: SmoothQuant's migration strength, 0 to 1. Default: 0.4.")
    var smoothquantAlpha: Double?

    @Option(help: "int8: input channels per layer computed in fp32 (the largest calibrated ranges). Default: 16.")
    var outlierChannels: Int?

    /// Only the flags given, so the defaults (and the checks) are the library's.
    var members: [JSON.Member] {
        var m: [JSON.Member] = []
        if let calibrationFile { m.append(JSON.Member("calibration_file", JSON(calibrationFile))) }
        if let calibrationSamples { m.append(JSON.Member("calibration_samples", JSON(calibrationSamples))) }
        if let smoothquantAlpha { m.append(JSON.Member("smoothquant_alpha", JSON(smoothquantAlpha))) }
        if let outlierChannels { m.append(JSON.Member("outlier_channels", JSON(outlierChannels))) }
        return m
    }
}
