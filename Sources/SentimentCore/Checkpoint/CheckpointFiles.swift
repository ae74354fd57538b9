// The safetensors file(s) of a checkpoint folder: `model.safetensors`, or the shards listed
// by `model.safetensors.index.json` ({"metadata": ..., "weight_map": {tensor: file}}).
// Tensors are looked up by name across files and validated against expected shapes.

struct CheckpointFiles {
    static let single = "model.safetensors"
    static let index = "model.safetensors.index.json"

    let files: [SafeTensorsFile]
    /// Tensor name -> index into `files`.
    let location: [String: Int]
    /// Names actually read (for `LoadedCheckpoint.usedTensors`).
    private(set) var used: Set<String> = []
    /// Per-row scales of the tensors read from int8 ("I8" + F32 `<name>_scale`), by the loaded tensor.
    private(set) var rowScales: [ObjectIdentifier: [Float]] = [:]
    /// The smoothing factors of each smoothed int8 tensor loaded, and the columns each keeps in
    /// fp32 (by tensor identity).
    private(set) var columnSmoothing: [ObjectIdentifier: [Float]] = [:]
    private(set) var outlierColumns: [ObjectIdentifier: [Int]] = [:]

    /// Opens `model.safetensors` in `directory`, else the sharded index. Neither -> `.io` naming the folder.
    init(directory: String) throws {
        let singlePath = FileSystem.join(directory, CheckpointFiles.single)
        let indexPath = FileSystem.join(directory, CheckpointFiles.index)
        if FileSystem.kind(singlePath) != .missing {
            let f = try SafeTensorsFile(path: singlePath)
            files = [f]
            location = Dictionary(uniqueKeysWithValues: f.entries.keys.map { ($0, 0) })
            return
        }
        guard FileSystem.kind(indexPath) != .missing else {
            let legacy = ["pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"]
                .filter { FileSystem.kind(FileSystem.join(directory, $0)) == .file }
            let hint = legacy.isEmpty ? "" : " (found \(legacy.joined(separator: ", ")); convert it to safetensors)"
            throw SentimentError.io("no \(CheckpointFiles.single) or \(CheckpointFiles.index) in \(directory)\(hint)", field: singlePath)
        }
        (files, location) = try CheckpointFiles.openShards(directory: directory, indexPath: indexPath)
    }

    private static func openShards(directory: String, indexPath: String) throws -> ([SafeTensorsFile], [String: Int]) {
        func fail(_ message: String) -> SentimentError { SentimentError.format("\(indexPath): \(message)", field: indexPath) }
        let json: JSON
        do {
            json = try JSON.parse(try FileSystem.readFile(indexPath, limit: 64 << 20))
        } catch let e as SentimentError where e.status == .invalidArgument {
            throw fail("not valid JSON (\(e.message))")
        }
        guard let map = json["weight_map"]?.objectMembers else { throw fail("missing \"weight_map\" object") }
        var fileIndex: [String: Int] = [:]
        var files: [SafeTensorsFile] = []
        var location: [String: Int] = [:]
        for m in map {
            guard let name = m.value.stringValue else { throw fail("weight_map entry for \(m.key) is not a file name") }
            // Shards live next to the index: plain file names only.
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw fail("weight_map names shard \"\(name)\" for \(m.key); shards must be plain file names in the same folder")
            }
            let k: Int
            if let existing = fileIndex[name] {
                k = existing
            } else {
                k = files.count
                files.append(try SafeTensorsFile(path: FileSystem.join(directory, name)))
                fileIndex[name] = k
            }
            guard files[k].entries[m.key] != nil else {
                throw SentimentError.format(
                    "\(indexPath): weight_map puts tensor \(m.key) in \(name), but \(files[k].path) does not contain it", field: m.key)
            }
            location[m.key] = k
        }
        return (files, location)
    }

    var allNames: [String] { location.keys.sorted() }

    var metadata: [String: String] {
        var out: [String: String] = [:]
        for f in files { out.merge(f.metadata) { first, _ in first } }
        return out
    }

    var totalBytes: Int { files.reduce(0) { $0 + $1.fileSize } }

    func contains(_ name: String) -> Bool { location[name] != nil }

    /// The first candidate present in the checkpoint.
    func find(_ candidates: [String]) -> String? { candidates.first { location[$0] != nil } }

    func entry(_ name: String) -> (SafeTensorsFile, SafeTensorsEntry)? {
        guard let k = location[name], let e = files[k].entries[name] else { return nil }
        return (files[k], e)
    }

    /// A description of where tensors live, for messages.
    var describe: String {
        files.count == 1 ? files[0].path : "\(files.count) shards of \(files.first.map { FileSystem.directoryName($0.path) } ?? "?")"
    }

    /// Loads the first present candidate as float32 with the expected shape.
    /// Missing, wrong shape, or NaN/inf values -> `.format` naming the tensor and file.
    mutating func load(_ candidates: [String], shape: [Int], note: String = "") throws -> Tensor {
        let primary = candidates.first ?? "?"
        guard let name = find(candidates), let (file, e) = entry(name) else {
            let also = candidates.count > 1 ? " (also tried \(candidates.dropFirst().joined(separator: ", ")))" : ""
            throw SentimentError.format("missing tensor \(primary)\(also) in \(describe)", field: primary)
        }
        guard e.shape == shape else {
            throw SentimentError.format(
                "tensor \(name) in \(file.path) has shape \(e.shape), expected \(shape) from config.json\(note)", field: name)
        }
        used.insert(name)
        let t = e.dtype == .i8 ? try loadInt8(name, file: file, entry: e) : try file.floatTensor(name)
        // NaN or inf weights would give labels with null scores; refuse them here.
        guard t.allFinite else {
            throw SentimentError.format("tensor \(name) in \(file.path) holds NaN or infinite values", field: name)
        }
        return t
    }

    /// An int8 tensor of an int8 checkpoint: I8 [rows, ...] with F32 `<name>_scale` [rows],
    /// dequantized to float (row r times scale r). Missing or malformed scales -> `.format`.
    private mutating func loadInt8(_ name: String, file: SafeTensorsFile, entry e: SafeTensorsEntry) throws -> Tensor {
        let scaleName = name + Int8Scheme.scaleSuffix
        let rows = e.shape.first ?? 0
        guard let (scaleFile, se) = entry(scaleName), se.dtype == .f32, se.shape == [rows] else {
            throw SentimentError.format(
                "int8 tensor \(name) in \(file.path) needs an F32 tensor \(scaleName) of shape [\(rows)]", field: scaleName)
        }
        let scales = try scaleFile.floatTensor(scaleName).array
        // 127 x scale finite: every dequantized weight is a finite float (1e38 is not).
        guard scales.allSatisfy({ $0 > 0 && ($0 * 127).isFinite }) else {
            throw SentimentError.format(
                "\(scaleName) in \(scaleFile.path) has a scale that is not positive, or so large that 127 x scale is not a finite float",
                field: scaleName)
        }
        used.insert(scaleName)
        let cols = rows > 0 ? e.count / rows : 0
        let smoothing = try loadSmoothing(name, columns: cols, file: file)
        let outliers = try loadOutliers(name, rows: rows, columns: cols)
        let t = try Tensor(shape: e.shape)
        try file.withRawBytes(name) { raw in
            guard let p = raw.baseAddress else { return }
            let q = p.assumingMemoryBound(to: Int8.self)
            let (columns, weights) = outliers ?? ([], [])
            for r in 0..<rows {
                dequantizeRow(q + r * cols, count: cols, scale: scales[r], smoothing: smoothing, outlierColumns: columns,
                              outlierValue: { weights[r * columns.count + $0] }, into: t.data + r * cols)
            }
        }
        rowScales[ObjectIdentifier(t)] = scales
        if let smoothing { columnSmoothing[ObjectIdentifier(t)] = smoothing }
        if let (columns, _) = outliers { outlierColumns[ObjectIdentifier(t)] = columns }
        return t
    }

    /// An int8 weight's I32 `<name>_outlier_columns` [count] (at most `OutlierColumns.maxCount`
    /// increasing input channels) and F32 `<name>_outlier_weight` [rows, count], if it has them:
    /// both or neither, else `.format` naming the one at fault.
    private mutating func loadOutliers(_ name: String, rows: Int, columns cols: Int) throws -> ([Int], [Float])? {
        let columnsName = name + Int8Scheme.outlierColumnsSuffix, weightName = name + Int8Scheme.outlierWeightSuffix
        guard let (columnsFile, ce) = entry(columnsName) else {
            if entry(weightName) != nil {
                throw SentimentError.format("\(weightName) needs an I32 tensor \(columnsName)", field: columnsName)
            }
            return nil
        }
        guard ce.dtype == .i32, ce.shape.count == 1, (1...Swift.min(cols, OutlierColumns.maxCount)).contains(ce.shape[0]) else {
            throw SentimentError.format(
                "\(columnsName) in \(columnsFile.path) must be I32 of shape [count], count 1...\(Swift.min(cols, OutlierColumns.maxCount))",
                field: columnsName)
        }
        let count = ce.shape[0]
        let columns = try columnsFile.withRawBytes(columnsName) { raw in
            (0..<count).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
        }
        guard OutlierColumns.areValid(columns, inputs: cols) else {
            throw SentimentError.format(
                "\(columnsName) in \(columnsFile.path) must list increasing input channels of \(name) (0..<\(cols))",
                field: columnsName)
        }
        guard let (weightFile, we) = entry(weightName), we.dtype == .f32, we.shape == [rows, count] else {
            throw SentimentError.format(
                "int8 tensor \(name) needs an F32 tensor \(weightName) of shape [\(rows), \(count)]", field: weightName)
        }
        let weights = try weightFile.floatTensor(weightName).array
        used.insert(columnsName)
        used.insert(weightName)
        return (columns, weights)
    }

    /// An int8 weight's F32 `<name>_smoothing` [cols], if the checkpoint has one: every factor
    /// positive, finite and with 127 / s finite (`Int8Scheme.isValidSmoothing`), else `.format`
    /// naming it.
    private mutating func loadSmoothing(_ name: String, columns cols: Int, file: SafeTensorsFile) throws -> [Float]? {
        let smoothingName = name + Int8Scheme.smoothingSuffix
        guard let (smoothingFile, se) = entry(smoothingName) else { return nil }
        guard se.dtype == .f32, se.shape == [cols] else {
            throw SentimentError.format(
                "\(smoothingName) in \(smoothingFile.path) must be F32 of shape [\(cols)] (the columns of \(name))",
                field: smoothingName)
        }
        let smoothing = try smoothingFile.floatTensor(smoothingName).array
        guard smoothing.allSatisfy(Int8Scheme.isValidSmoothing) else {
            throw SentimentError.format(
                "\(smoothingName) in \(smoothingFile.path) has a factor that is not positive and finite, or too small to divide by",
                field: smoothingName)
        }
        used.insert(smoothingName)
        return smoothing
    }
}
