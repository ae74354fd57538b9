// Small SIMD16 helpers shared by the kernels.
//
// Everything here assumes the package's `-march` flag (Package.swift): without it SIMD16
// lowers to SSE2 and FMA becomes a libcall (docs/TOOLCHAIN.md). Float min/max/clamp are
// written with `replacing(with:where:)` because the stdlib's NaN-aware versions scalarize.

typealias F16 = SIMD16<Float>
typealias I16 = SIMD16<Int32>

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}
@inline(__always) func load16(_ p: UnsafeMutablePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}
@inline(__always) func store16(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
}

/// Loads `n` (< 16) floats; the other lanes are `fill`.
@inline(__always) func loadPartial16(_ p: UnsafePointer<Float>, _ n: Int, fill: Float) -> F16 {
    var v = F16(repeating: fill)
    for i in 0..<n { v[i] = p[i] }
    return v
}
/// Stores the first `n` (< 16) lanes.
@inline(__always) func storePartial16(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
}

@inline(__always) func laneIndex16() -> I16 { I16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) }

@inline(__always) func min16(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: b .< a) }
@inline(__always) func max16(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: b .> a) }
@inline(__always) func abs16(_ a: F16) -> F16 {
    unsafeBitCast(unsafeBitCast(a, to: I16.self) & I16(repeating: 0x7FFF_FFFF), to: F16.self)
}

/// Horizontal reductions (once per row, so a plain lane loop is fine).
@inline(__always) func hsum16(_ v: F16) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}
@inline(__always) func hmax16(_ v: F16) -> Float {
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .> a.lowHalf)
    let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .> b.lowHalf)
    return c[1] > c[0] ? c[1] : c[0]
}

@inline(__always) func roundUp16(_ n: Int) -> Int { (n + 15) & ~15 }
