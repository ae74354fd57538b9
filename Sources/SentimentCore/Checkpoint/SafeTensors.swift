// Reading `.safetensors` files (https://github.com/huggingface/safetensors).
//
// Layout: 8-byte little-endian header length N, N bytes of JSON header, data section.
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data section) and may hold "__metadata__" (string -> string).
// The file is mapped read-only; tensors are converted straight from the mapping.
// Validation follows the reference implementation: tensors must tile the data section
// exactly (no gaps, no overlaps, no trailing bytes).

#if canImport(Glibc)
import Glibc
#endif

/// Element types a safetensors header may name. Sub-byte types (F4, F6) are not supported.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8", i8 = "I8"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2", f8e8m0 = "F8_E8M0"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2, .f8e8m0: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .i64, .u64, .f64: return 8
        }
    }

    /// Whether `SafeTensorsFile.floatTensor` converts this type to F32.
    public var convertsToFloat: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        default: return false
        }
    }
}

/// One tensor as described by the header.
public struct SafeTensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// Byte range within the data section.
    public let dataOffsets: Range<Int>
}

/// A safetensors file mapped read-only. Tensors are validated when the file is opened
/// and converted on request; the mapping is released when the object goes away.
///
/// The mapping assumes the file is not truncated by someone else while it is open.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Largest header accepted; real headers are kilobytes.
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    /// Entries keyed by tensor name.
    public let entries: [String: SafeTensorsEntry]
    /// Tensor names in data-offset order (the order they are stored).
    public let names: [String]
    /// `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// File size in bytes.
    public let fileSize: Int

    private let base: UnsafeRawPointer?   // nil only for an empty mapping
    private let mappedSize: Int
    private let dataStart: Int            // 8 + header length

    /// Maps and validates `path`. Missing or unreadable -> `.io`; malformed -> `.format`
    /// (field = the path or the offending tensor's name).
    public init(path: String) throws {
        self.path = path
        let (fd, size) = try FileSystem.openRegularFile(path, limit: nil)
        defer { close(fd) }
        guard size >= 8 else {
            throw SentimentError.format("\(path): \(size)-byte file is too short for a safetensors header", field: path)
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
            mapped != UnsafeMutableRawPointer(bitPattern: -1)
        else {
            throw SentimentError.io("cannot map \(path): \(FileSystem.errnoText())", field: path)
        }
        let base = UnsafeRawPointer(mapped)
        do {
            let header = try SafeTensorsFile.parseHeader(base: base, fileSize: size, path: path)
            self.entries = header.entries
            self.names = header.names
            self.metadata = header.metadata
            self.dataStart = header.dataStart
        } catch {
            munmap(mapped, size)
            throw error
        }
        self.base = base
        self.mappedSize = size
        self.fileSize = size
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedSize) }
    }

    public subscript(name: String) -> SafeTensorsEntry? { entries[name] }

    /// Calls `body` with the raw little-endian bytes of a tensor (valid only during the call).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let e = entries[name] else { throw missing(name) }
        return try body(rawBytes(e))
    }

    private func rawBytes(_ e: SafeTensorsEntry) -> UnsafeRawBufferPointer {
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataStart + e.dataOffsets.lowerBound, count: e.dataOffsets.count)
    }

    private func missing(_ name: String) -> SentimentError {
        SentimentError.format("tensor \(name) is not in \(path)", field: name)
    }

    /// Converts a F32, F16, BF16 or F64 tensor to a float32 `Tensor` in one pass over the mapped bytes.
    /// Other dtypes -> `.format` naming the tensor.
    public func floatTensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else { throw missing(name) }
        guard e.dtype.convertsToFloat else {
            throw SentimentError.format(
                "tensor \(name) in \(path) has dtype \(e.dtype.rawValue); expected a floating-point dtype (F32, F16, BF16)",
                field: name)
        }
        let t = try Tensor(shape: e.shape)
        let src = rawBytes(e)
        guard let p = src.baseAddress, e.count > 0 else { return t }
        let out = t.data
        switch e.dtype {
        case .f32:
            // Safetensors is little-endian, like every host this library targets.
            UnsafeMutableRawPointer(out).copyMemory(from: p, byteCount: e.count * 4)
        case .f16:
            for i in 0..<e.count {
                out[i] = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in 0..<e.count {
                out[i] = Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        case .f64:
            for i in 0..<e.count {
                out[i] = Float(p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
            }
        default:
            break
        }
        return t
    }

    // MARK: Header validation

    private struct Header {
        var entries: [String: SafeTensorsEntry]
        var names: [String]
        var metadata: [String: String]
        var dataStart: Int
    }

    private static func parseHeader(base: UnsafeRawPointer, fileSize: Int, path: String) throws -> Header {
        func fail(_ message: String, field: String? = nil) -> SentimentError {
            SentimentError.format("\(path): \(message)", field: field ?? path)
        }
        let declared = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard declared > 0 else { throw fail("header length is 0") }
        guard declared <= UInt64(maxHeaderBytes) else {
            throw fail("header length \(declared) is larger than the \(maxHeaderBytes)-byte limit")
        }
        let headerLength = Int(declared)
        guard headerLength <= fileSize - 8 else {
            throw fail("header length \(headerLength) runs past the end of the \(fileSize)-byte file")
        }
        let headerBytes = UnsafeBufferPointer(start: (base + 8).assumingMemoryBound(to: UInt8.self), count: headerLength)
        let json: JSON
        do {
            json = try JSON.parse(headerBytes)
        } catch let e as SentimentError {
            throw fail("header is not valid JSON (\(e.message))")
        }
        guard let members = json.objectMembers else { throw fail("header is a JSON \(json.typeName), not an object") }

        let dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart
        var entries: [String: SafeTensorsEntry] = [:]
        var metadata: [String: String] = [:]
        for m in members {
            if m.key == "__metadata__" {
                guard let fields = m.value.objectMembers else {
                    throw fail("__metadata__ is a JSON \(m.value.typeName), not an object", field: "__metadata__")
                }
                for f in fields {
                    guard let s = f.value.stringValue else {
                        throw fail("__metadata__ value for \"\(f.key)\" is a \(f.value.typeName), not a string", field: "__metadata__")
                    }
                    metadata[f.key] = s
                }
                continue
            }
            entries[m.key] = try entry(name: m.key, m.value, dataSize: dataSize, fail: fail)
        }

        // The tensors must tile the data section: sorted by offset, each begins where the last ended.
        let ordered = entries.values.sorted {
            ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name)
        }
        var end = 0
        var previous: String? = nil
        for e in ordered {
            let r = e.dataOffsets
            if r.lowerBound < end, let previous {
                throw fail("tensors \(previous) and \(e.name) overlap (\(e.name) begins at byte \(r.lowerBound), before \(end))", field: e.name)
            }
            if r.lowerBound > end {
                throw fail("data section has a gap of \(r.lowerBound - end) bytes before tensor \(e.name) (bytes \(end)..<\(r.lowerBound) belong to no tensor)", field: e.name)
            }
            end = r.upperBound
            previous = e.name
        }
        if end != dataSize {
            throw fail("data section is \(dataSize) bytes but the tensors cover \(end); \(dataSize - end) trailing bytes belong to no tensor")
        }
        return Header(entries: entries, names: ordered.map(\.name), metadata: metadata, dataStart: dataStart)
    }

    private static func entry(
        name: String, _ value: JSON, dataSize: Int, fail: (String, String?) -> SentimentError
    ) throws -> SafeTensorsEntry {
        guard value.objectMembers != nil else {
            throw fail("entry for tensor \(name) is a JSON \(value.typeName), not an object", name)
        }
        guard let dtypeName = value["dtype"]?.stringValue else {
            throw fail("tensor \(name) has no \"dtype\" string", name)
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw fail("tensor \(name) has unknown or unsupported dtype \"\(dtypeName)\"", name)
        }
        guard let dims = value["shape"]?.arrayValue else { throw fail("tensor \(name) has no \"shape\" array", name) }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard let v = d.int64Value, v >= 0, v <= Int64(Int.max) else {
                throw fail("tensor \(name) has an invalid dimension \(d.serialized()) in its shape", name)
            }
            let (p, o) = count.multipliedReportingOverflow(by: Int(v))
            guard !o else { throw fail("tensor \(name) shape \(dims.map { $0.serialized() }) overflows", name) }
            count = p
            shape.append(Int(v))
        }
        guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
            let begin = offsets[0].int64Value, let end = offsets[1].int64Value
        else {
            throw fail("tensor \(name) has no \"data_offsets\" [begin, end] pair", name)
        }
        guard begin >= 0, end >= begin else {
            throw fail("tensor \(name) has invalid data_offsets [\(begin), \(end)]", name)
        }
        guard end <= Int64(dataSize) else {
            throw fail(
                "tensor \(name) data_offsets [\(begin), \(end)] run past the end of the \(dataSize)-byte data section (offsets out of range or file truncated)",
                name)
        }
        let (bytes, o) = count.multipliedReportingOverflow(by: dtype.size)
        guard !o, bytes == Int(end - begin) else {
            throw fail(
                "tensor \(name) has shape \(shape) of \(dtype.rawValue) (\(o ? "overflowing" : String(bytes)) bytes) but data_offsets [\(begin), \(end)] span \(end - begin) bytes",
                name)
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, count: count, dataOffsets: Int(begin)..<Int(end))
    }
}
