// Writing `.safetensors` files the way the Python library does: compact JSON header with
// "__metadata__" first, padded with spaces to a multiple of 8 bytes, contiguous data.
// Tensors are stored largest element size first, then by name (the reference library
// orders by dtype too), so every tensor stays aligned to its element size; for an
// all-F32 file that is plain sorted-name order.

/// Writes safetensors files atomically (temp file in the same directory, fsync, rename).
public enum SafeTensorsWriter {
    /// One tensor to write: a float32 `Tensor` (written as F32) or raw little-endian bytes of any dtype.
    public struct Entry: @unchecked Sendable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        fileprivate let storage: Storage

        fileprivate enum Storage {
            case tensor(Tensor)
            case bytes([UInt8])
        }

        /// A float32 tensor, written as F32 straight from its buffer.
        public init(name: String, tensor: Tensor) {
            self.name = name
            self.dtype = .f32
            self.shape = tensor.shape
            self.storage = .tensor(tensor)
        }

        /// A float32 tensor rounded to BF16 (nearest, ties to even).
        public init(name: String, bf16Of tensor: Tensor) throws {
            var bytes = [UInt8](repeating: 0, count: 2 * tensor.count)
            bytes.withUnsafeMutableBytes { raw in
                let out = raw.bindMemory(to: UInt16.self)
                for i in 0..<tensor.count { out[i] = bf16Bits(tensor.data[i]).littleEndian }
            }
            try self.init(name: name, dtype: "BF16", shape: tensor.shape, bytes: bytes)
        }

        /// Raw little-endian bytes of `dtype` (e.g. "I8" weights with F32 scales).
        /// Throws `.invalidArgument` if the dtype is unknown or the byte count does not match the shape.
        public init(name: String, dtype: String, shape: [Int], bytes: [UInt8]) throws {
            guard let t = SafeTensorsDType(rawValue: dtype) else {
                throw SentimentError.invalidArgument("unknown safetensors dtype \"\(dtype)\" for tensor \(name)", field: name)
            }
            var n = t.size
            for d in shape {
                guard d >= 0 else { throw SentimentError.invalidArgument("tensor \(name) has a negative dimension", field: name) }
                let (p, o) = n.multipliedReportingOverflow(by: d)
                guard !o else { throw SentimentError.invalidArgument("tensor \(name) shape \(shape) overflows", field: name) }
                n = p
            }
            guard n == bytes.count else {
                throw SentimentError.invalidArgument(
                    "tensor \(name): shape \(shape) of \(dtype) needs \(n) bytes, got \(bytes.count)", field: name)
            }
            self.name = name
            self.dtype = t
            self.shape = shape
            self.storage = .bytes(bytes)
        }

        var byteCount: Int {
            switch storage {
            case .tensor(let t): return t.count * 4
            case .bytes(let b): return b.count
            }
        }

        fileprivate func write(to w: FileSystem.Writer) throws {
            switch storage {
            case .tensor(let t): try w.write(UnsafeRawBufferPointer(start: t.data, count: t.count * 4))
            case .bytes(let b): try w.write(b)
            }
        }
    }

    /// The header bytes (length prefix included) and the entries in storage order.
    static func layout(_ entries: [Entry], metadata: [String: String]) throws -> (header: [UInt8], ordered: [Entry]) {
        var seen = Set<String>()
        for e in entries {
            guard !e.name.isEmpty, e.name != "__metadata__" else {
                throw SentimentError.invalidArgument("invalid tensor name \"\(e.name)\"", field: e.name)
            }
            guard seen.insert(e.name).inserted else {
                throw SentimentError.invalidArgument("tensor \(e.name) appears twice", field: e.name)
            }
        }
        let ordered = entries.sorted { a, b in
            a.dtype.size != b.dtype.size ? a.dtype.size > b.dtype.size : Array(a.name.utf8).lexicographicallyPrecedes(b.name.utf8)
        }
        var members: [JSON.Member] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { JSON.Member($0, .string(metadata[$0] ?? "")) }
            members.append(JSON.Member("__metadata__", .object(fields)))
        }
        var offset = 0
        for e in ordered {
            let end = offset + e.byteCount
            members.append(
                JSON.Member(
                    e.name,
                    .object([
                        JSON.Member("dtype", .string(e.dtype.rawValue)),
                        JSON.Member("shape", .array(e.shape.map { JSON($0) })),
                        JSON.Member("data_offsets", .array([JSON(offset), JSON(end)])),
                    ])))
            offset = end
        }
        var text = Array(JSON.object(members).serialized().utf8)
        while text.count % 8 != 0 { text.append(UInt8(ascii: " ")) }
        var header: [UInt8] = []
        header.reserveCapacity(8 + text.count)
        var n = UInt64(text.count).littleEndian
        withUnsafeBytes(of: &n) { header.append(contentsOf: $0) }
        header += text
        return (header, ordered)
    }

    /// Writes `entries` to `path` atomically. `metadata` becomes `__metadata__`
    /// (Hugging Face expects `"format": "pt"`).
    public static func write(_ entries: [Entry], metadata: [String: String] = ["format": "pt"], to path: String) throws {
        let (header, ordered) = try layout(entries, metadata: metadata)
        try FileSystem.writeAtomically(path) { w in
            try w.write(header)
            for e in ordered { try e.write(to: w) }
        }
    }
}
