// Which matrix instructions this process uses: the CPU's best, capped by `SENTIMENT_ISA`.
//
// The cap governs every matrix product: oneDNN (its max ISA is set to it) and our VNNI kernel.
// The element-wise Swift code is compiled for the build machine (`SENTIMENT_MARCH`), not capped.
import CDnnl

#if canImport(Glibc)
import Glibc
#endif

/// A level of matrix instructions, lowest first.
public enum ISA: Int, Comparable, CaseIterable, Sendable {
    case avx2, avx512, avx512_vnni, avx512_bf16, amx

    /// The name `SENTIMENT_ISA`, `model_info` and the train result use.
    public var name: String {
        switch self {
        case .avx2: return "avx2"
        case .avx512: return "avx512"
        case .avx512_vnni: return "avx512_vnni"
        case .avx512_bf16: return "avx512_bf16"
        case .amx: return "amx"
        }
    }

    /// oneDNN's name for the level (a bit mask: each level includes the ones below).
    var dnnl: dnnl_cpu_isa_t {
        switch self {
        case .avx2: return dnnl_cpu_isa_avx2
        case .avx512: return dnnl_cpu_isa_avx512_core
        case .avx512_vnni: return dnnl_cpu_isa_avx512_core_vnni
        case .avx512_bf16: return dnnl_cpu_isa_avx512_core_bf16
        case .amx: return dnnl_cpu_isa_avx512_core_amx
        }
    }

    public static func < (a: ISA, b: ISA) -> Bool { a.rawValue < b.rawValue }

    /// Whether bf16 matrix products run natively (AVX512-BF16 or AMX). oneDNN emulates them
    /// below that at a third of fp32's speed, and not at all on AVX2, so bf16 requires this.
    public var hasBF16: Bool { self >= .avx512_bf16 }

    /// The level every matrix product of this process uses, fixed at first use (oneDNN's max ISA
    /// can be set only before its first call). Throws `.invalidArgument` for a bad `SENTIMENT_ISA`.
    public static func active() throws -> ISA { try configured.get() }

    /// " (capped by SENTIMENT_ISA=...)" when the cap is set, else "": for error messages.
    static var capNote: String {
        guard let raw = getenv("SENTIMENT_ISA"), raw.pointee != 0 else { return "" }
        return " (capped by SENTIMENT_ISA=\(String(cString: raw)))"
    }

    private static let configured: Result<ISA, SentimentError> = {
        var cap: ISA? = nil
        if let raw = getenv("SENTIMENT_ISA"), raw.pointee != 0 {
            let value = String(cString: raw)
            guard let isa = ISA.allCases.first(where: { $0.name == value }) else {
                return .failure(SentimentError.invalidArgument(
                    "SENTIMENT_ISA=\(value) is not one of \(ISA.allCases.map(\.name).joined(separator: ", "))",
                    field: "SENTIMENT_ISA"))
            }
            cap = isa
            _ = dnnl_set_max_cpu_isa(isa.dnnl)
        }
        let effective = dnnl_get_effective_cpu_isa().rawValue
        let hardware = ISA.allCases.last { effective & $0.dnnl.rawValue == $0.dnnl.rawValue } ?? .avx2
        return .success(cap.map { Swift.min($0, hardware) } ?? hardware)
    }()
}
