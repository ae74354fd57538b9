// Matrix products through oneDNN's matmul primitive, for the bf16 and u8 x s8 paths. Unlike
// `dnnl_sgemm`, the primitive dispatches to AMX tiles and AVX512-BF16 by itself, within the ISA
// cap (ISA.swift); `ONEDNN_VERBOSE=1` names the kernel it picked.
//
// Weights are packed once (`PackedMatrix`) into the layout the primitive picks for them
// (`format_tag_any`); that layout depends on K, N and the types, not on M. A primitive is
// compiled for one M (a run-time M falls back to oneDNN's slower `gemm:jit`), so each
// `MatmulRunner` keeps the primitives it made, keyed by shape. Rows do not interact: a row's
// result is the same for any M (tested), which keeps logits independent of the batch.
import CDnnl

#if canImport(Glibc)
import Glibc
#endif

/// Element types of matmul operands.
enum MatmulType: Hashable {
    case f32, bf16, s8, u8, s32

    var dnnl: dnnl_data_type_t {
        switch self {
        case .f32: return dnnl_f32
        case .bf16: return dnnl_bf16
        case .s8: return dnnl_s8
        case .u8: return dnnl_u8
        case .s32: return dnnl_s32
        }
    }
}

/// The process's oneDNN CPU engine and the C API's plumbing.
enum Dnnl {
    private struct Engine: @unchecked Sendable { let handle: dnnl_engine_t }   // oneDNN engines are thread-safe

    private static let made: Result<Engine, SentimentError> = {
        var e: dnnl_engine_t? = nil
        guard dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success, let e else {
            return .failure(SentimentError(.internal, "oneDNN could not create its CPU engine"))
        }
        return .success(Engine(handle: e))
    }()

    static func engine() throws -> dnnl_engine_t {
        _ = try ISA.active()   // the ISA cap must be set before oneDNN's first primitive
        return try made.get().handle
    }

    /// Throws `.internal` for a failed call: every argument is ours, so a failure is a bug.
    @inline(__always)
    static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) throws {
        guard status == dnnl_success else {
            throw SentimentError(.internal, "oneDNN \(what()) failed with status \(status.rawValue)")
        }
    }

    /// A row-major [rows, cols] matrix with row stride `ld`, or its transpose (`transposed`: the
    /// [rows, cols] matrix is stored as [cols, rows] with row stride `ld`).
    static func matrix(_ rows: Int, _ cols: Int, _ type: MatmulType, ld: Int, transposed: Bool = false) throws
        -> dnnl_memory_desc_t
    {
        var md = dnnl_memory_desc_t()
        var dims: [dnnl_dim_t] = [dnnl_dim_t(rows), dnnl_dim_t(cols)]
        var strides: [dnnl_dim_t] = transposed ? [1, dnnl_dim_t(ld)] : [dnnl_dim_t(ld), 1]
        try check(dnnl_memory_desc_init_by_strides(&md, 2, &dims, type.dnnl, &strides), "memory descriptor")
        return md
    }

    /// A [rows, cols] matrix in the layout the primitive will choose.
    static func anyLayout(_ rows: Int, _ cols: Int, _ type: MatmulType) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var dims: [dnnl_dim_t] = [dnnl_dim_t(rows), dnnl_dim_t(cols)]
        try check(dnnl_memory_desc_init_by_tag(&md, 2, &dims, type.dnnl, dnnl_format_tag_any), "memory descriptor")
        return md
    }

    static let argSrc: Int32 = 1, argDst: Int32 = 17, argWeights: Int32 = 33, argBias: Int32 = 41

    /// A memory object over `md` without data (the caller sets the handle before each use).
    static func memory(_ md: dnnl_memory_desc_t) throws -> dnnl_memory_t {
        var m: dnnl_memory_t? = nil
        var desc = md
        try check(dnnl_memory_create(&m, &desc, try engine(), nil), "memory object")
        guard let m else { throw SentimentError(.internal, "oneDNN returned no memory object") }
        return m
    }
}

/// A copy from one memory layout into another (`dnnl_reorder`), e.g. f32 [N, K] into a packed
/// bf16 layout. Reusable: run it again when the source values change.
final class Reorder {
    private let primitive: dnnl_primitive_t
    private let from: dnnl_memory_t, to: dnnl_memory_t
    private let stream: dnnl_stream_t

    init(from src: dnnl_memory_desc_t, to dst: dnnl_memory_desc_t) throws {
        let e = try Dnnl.engine()
        var s = src, d = dst
        var pd: dnnl_primitive_desc_t? = nil
        try Dnnl.check(dnnl_reorder_primitive_desc_create(&pd, &s, e, &d, e, nil), "reorder descriptor")
        defer { dnnl_primitive_desc_destroy(pd) }
        var p: dnnl_primitive_t? = nil
        try Dnnl.check(dnnl_primitive_create(&p, pd), "reorder")
        var st: dnnl_stream_t? = nil
        try Dnnl.check(dnnl_stream_create(&st, e, dnnl_stream_default_flags.rawValue), "stream")
        guard let p, let st else { throw SentimentError(.internal, "oneDNN returned no reorder") }
        primitive = p
        stream = st
        from = try Dnnl.memory(src)
        to = try Dnnl.memory(dst)
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_memory_destroy(from)
        dnnl_memory_destroy(to)
        dnnl_stream_destroy(stream)
    }

    func run(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer) throws {
        try Dnnl.check(dnnl_memory_set_data_handle(from, UnsafeMutableRawPointer(mutating: src)), "set handle")
        try Dnnl.check(dnnl_memory_set_data_handle(to, dst), "set handle")
        var args = [dnnl_exec_arg_t(arg: Dnnl.argSrc, memory: from), dnnl_exec_arg_t(arg: Dnnl.argDst, memory: to)]
        try Signals.held {
            try Dnnl.check(dnnl_primitive_execute(primitive, stream, 2, &args), "reorder")
            try Dnnl.check(dnnl_stream_wait(stream), "stream wait")
        }
    }
}

/// A weight matrix B [K, N] of y = x * B, packed in the layout oneDNN's matmul picked for it.
/// Packed from a row-major source: an HF [out, in] = [N, K] weight (`transposed`, B = W^T) or a
/// [K, N] one. Immutable, except that `repack` refreshes it from a changed source (training).
final class PackedMatrix: @unchecked Sendable {
    let k: Int, n: Int
    let type: MatmulType
    let desc: dnnl_memory_desc_t
    private let storage: AlignedBuffer<UInt8>
    private let packer: Reorder
    private let sourceTransposed: Bool, sourceType: MatmulType

    var data: UnsafeMutableRawPointer { UnsafeMutableRawPointer(storage.pointer) }

    /// `source`: `sourceType` values, [N, K] row-major with row stride `ld` when `transposed`,
    /// else [K, N]. `type` is bf16 (for bf16 sources) or s8 (for u8 sources, AMX/VNNI int8).
    init(_ source: UnsafeRawPointer, sourceType: MatmulType, transposed: Bool, ld: Int, k: Int, n: Int, type: MatmulType)
        throws
    {
        self.k = k
        self.n = n
        self.type = type
        self.sourceTransposed = transposed
        self.sourceType = sourceType
        // The layout the primitive picks for B, asked of a matmul with any M (it does not depend on M).
        let srcType: MatmulType = type == .s8 ? .u8 : type
        var a = try Dnnl.matrix(64, k, srcType, ld: k)
        var b = try Dnnl.anyLayout(k, n, type)
        var c = try Dnnl.matrix(64, n, type == .s8 ? .s32 : .f32, ld: n)
        var op = dnnl_matmul_desc_t()
        try Dnnl.check(dnnl_matmul_desc_init(&op, &a, &b, nil, &c), "matmul descriptor")
        var pd: dnnl_primitive_desc_t? = nil
        try Dnnl.check(dnnl_primitive_desc_create(&pd, &op, nil, try Dnnl.engine(), nil), "matmul (\(k) x \(n), \(type))")
        defer { dnnl_primitive_desc_destroy(pd) }
        guard let md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)?.pointee else {
            throw SentimentError(.internal, "oneDNN matmul has no weights layout")
        }
        var chosen = md
        desc = md
        storage = try AlignedBuffer(count: dnnl_memory_desc_get_size(&chosen))
        packer = try Reorder(from: try Dnnl.matrix(k, n, sourceType, ld: ld, transposed: transposed), to: md)
        try packer.run(from: source, to: data)
    }

    /// Packs new values from a source of the same shape and layout as the one at init.
    func repack(from source: UnsafeRawPointer) throws { try packer.run(from: source, to: data) }

    /// The float values as an HF [N, K] (`transposed`) or [K, N] row-major tensor (exact for bf16).
    func unpacked(transposed: Bool = true) throws -> Tensor {
        let t = try Tensor(shape: transposed ? [n, k] : [k, n])
        let out = try Reorder(from: desc, to: try Dnnl.matrix(k, n, .f32, ld: transposed ? k : n, transposed: transposed))
        try out.run(from: data, to: t.data)
        return t
    }
}

/// What a matmul call computes: C[M, N] (row stride ldc) (+)= A[M, K] * B (+ bias) (GELU).
struct MatmulShape: Hashable {
    enum Weights: Hashable {
        /// A `PackedMatrix` of this K, N and type.
        case packed(MatmulType)
        /// A plain row-major [K, N] matrix with row stride `ld`.
        case plain(MatmulType, ld: Int)
    }

    var m: Int, k: Int, n: Int
    var src: MatmulType
    /// A's row stride; when `transA`, A is stored as [K, M] with this row stride.
    var lda: Int
    var transA = false
    var weights: Weights
    var dst: MatmulType = .f32
    var ldc: Int
    var bias = false
    /// C += A * B (oneDNN's sum post-op) instead of C = A * B.
    var accumulate = false
    /// Exact-erf GELU after the bias.
    var gelu = false
}

/// Runs matmuls, keeping the primitives it compiled (one per shape) and their memory objects.
/// One caller at a time (each workspace owns one); primitives are cheap to share, the memory
/// objects' handles are not.
final class MatmulRunner {
    private struct Compiled {
        let primitive: dnnl_primitive_t
        let a: dnnl_memory_t, b: dnnl_memory_t, c: dnnl_memory_t, bias: dnnl_memory_t?
    }

    private var compiled: [MatmulShape: Compiled] = [:]
    private var stream: dnnl_stream_t? = nil
    /// Distinct shapes kept before the cache starts over (training sees a new M every batch).
    private static let capacity = 512

    deinit { clear(); if let stream { dnnl_stream_destroy(stream) } }

    private func clear() {
        for c in compiled.values {
            dnnl_primitive_destroy(c.primitive)
            for m in [c.a, c.b, c.c, c.bias].compactMap({ $0 }) { dnnl_memory_destroy(m) }
        }
        compiled.removeAll()
    }

    /// C = A * B as `shape` says. `packed` must be given (and match) for `.packed` weights; `b`
    /// for `.plain` ones. Throws `.internal` if oneDNN refuses (a bug, never an input error).
    func run(
        _ shape: MatmulShape, a: UnsafeRawPointer, packed: PackedMatrix? = nil, b: UnsafeRawPointer? = nil,
        bias: UnsafePointer<Float>? = nil, c: UnsafeMutableRawPointer
    ) throws {
        guard shape.m > 0, shape.n > 0, shape.k > 0 else { return }
        let prim = try primitive(shape, packed: packed)
        let weights: UnsafeRawPointer
        if let packed {
            guard case .packed(packed.type) = shape.weights, packed.k == shape.k, packed.n == shape.n else {
                throw SentimentError(.internal, "packed matrix \(packed.k) x \(packed.n) does not match the matmul's")
            }
            weights = UnsafeRawPointer(packed.data)
        } else if let b {
            weights = b
        } else {
            throw SentimentError(.internal, "matmul without weights")
        }
        try Dnnl.check(dnnl_memory_set_data_handle(prim.a, UnsafeMutableRawPointer(mutating: a)), "set handle")
        try Dnnl.check(dnnl_memory_set_data_handle(prim.b, UnsafeMutableRawPointer(mutating: weights)), "set handle")
        try Dnnl.check(dnnl_memory_set_data_handle(prim.c, c), "set handle")
        var args = [
            dnnl_exec_arg_t(arg: Dnnl.argSrc, memory: prim.a), dnnl_exec_arg_t(arg: Dnnl.argWeights, memory: prim.b),
            dnnl_exec_arg_t(arg: Dnnl.argDst, memory: prim.c),
        ]
        if let bm = prim.bias {
            guard let bias else { throw SentimentError(.internal, "matmul with a bias but no bias values") }
            try Dnnl.check(dnnl_memory_set_data_handle(bm, UnsafeMutableRawPointer(mutating: bias)), "set handle")
            args.append(dnnl_exec_arg_t(arg: Dnnl.argBias, memory: bm))
        }
        try Signals.held {
            try Dnnl.check(dnnl_primitive_execute(prim.primitive, stream, Int32(args.count), &args),
                           "matmul \(shape.m) x \(shape.k) x \(shape.n)")
            try Dnnl.check(dnnl_stream_wait(stream), "stream wait")
        }
    }

    private func primitive(_ s: MatmulShape, packed: PackedMatrix?) throws -> Compiled {
        if let c = compiled[s] { return c }
        if compiled.count >= MatmulRunner.capacity { clear() }
        let e = try Dnnl.engine()
        if stream == nil {
            try Dnnl.check(dnnl_stream_create(&stream, e, dnnl_stream_default_flags.rawValue), "stream")
        }
        var a = try Dnnl.matrix(s.m, s.k, s.src, ld: s.lda, transposed: s.transA)
        var b: dnnl_memory_desc_t
        switch s.weights {
        case .packed:
            guard let packed else { throw SentimentError(.internal, "packed matmul without its matrix") }
            b = packed.desc
        case .plain(let type, let ld):
            b = try Dnnl.matrix(s.k, s.n, type, ld: ld)
        }
        var c = try Dnnl.matrix(s.m, s.n, s.dst, ld: s.ldc)
        var biasDesc = try Dnnl.matrix(1, s.n, .f32, ld: s.n)
        var op = dnnl_matmul_desc_t()
        try Dnnl.check(withUnsafeMutablePointer(to: &biasDesc) { bd in
            dnnl_matmul_desc_init(&op, &a, &b, s.bias ? bd : nil, &c)
        }, "matmul descriptor")

        var attr: dnnl_primitive_attr_t? = nil
        try Dnnl.check(dnnl_primitive_attr_create(&attr), "attributes")
        defer { dnnl_primitive_attr_destroy(attr) }
        if s.accumulate || s.gelu {
            var ops: dnnl_post_ops_t? = nil
            try Dnnl.check(dnnl_post_ops_create(&ops), "post-ops")
            defer { dnnl_post_ops_destroy(ops) }
            if s.accumulate { try Dnnl.check(dnnl_post_ops_append_sum(ops, 1), "sum post-op") }
            if s.gelu { try Dnnl.check(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_gelu_erf, 0, 0), "GELU post-op") }
            try Dnnl.check(dnnl_primitive_attr_set_post_ops(attr, ops), "post-ops")
        }
        var pd: dnnl_primitive_desc_t? = nil
        try Dnnl.check(dnnl_primitive_desc_create(&pd, &op, attr, e, nil), "matmul \(s.m) x \(s.k) x \(s.n) (\(s.src))")
        defer { dnnl_primitive_desc_destroy(pd) }
        var p: dnnl_primitive_t? = nil
        try Dnnl.check(dnnl_primitive_create(&p, pd), "matmul primitive")
        guard let p else { throw SentimentError(.internal, "oneDNN returned no matmul") }
        let made = Compiled(
            primitive: p, a: try Dnnl.memory(a), b: try Dnnl.memory(b), c: try Dnnl.memory(c),
            bias: s.bias ? try Dnnl.memory(biasDesc) : nil)
        compiled[s] = made
        return made
    }
}
