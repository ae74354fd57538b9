// swift-tools-version:6.0
// sentiment: DistilBERT/BERT sentiment classification and fine-tuning on the CPU, exported as a C ABI.
//
//   swift build -c release            -> .build/release/libsentiment.so (static Swift runtime, sentiment_* exports only)
//   SENTIMENT_DYNAMIC_STDLIB=1 swift test   (XCTest/Testing bundles cannot link the static runtime; see docs/TOOLCHAIN.md)
//
// Environment knobs (read when the manifest is evaluated):
//   SENTIMENT_MARCH=<cpu>       -march for C and Swift SIMD code (default: native)
//   SENTIMENT_DYNAMIC_STDLIB=1  link the toolchain's shared Swift runtime instead of the static one
import PackageDescription

let env = Context.environment
let march = env["SENTIMENT_MARCH"] ?? "native"
let dynamicStdlib = env["SENTIMENT_DYNAMIC_STDLIB"] != nil
let exportsMap = Context.packageDirectory + "/Sources/Sentiment/exports.map"

let codegen: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=\(march)", "-enforce-exclusivity=unchecked"]),
]
// C targets emit DWARF 4: valgrind 3.19 (scripts/leaks.sh) gives up on the whole library
// ("possibly corrupted debuginfo") when C units are DWARF 5.
let dwarf4: [CSetting] = [.unsafeFlags(["-gdwarf-4"])]
// Only the sentiment_* C symbols are exported; the static runtime keeps the .so free of toolchain paths.
let libraryLink: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--version-script=\(exportsMap)"])]
    + (dynamicStdlib ? [] : [.unsafeFlags(["-static-stdlib", "-no-toolchain-stdlib-rpath"])])

let package = Package(
    name: "sentiment",
    products: [
        .library(name: "sentiment", type: .dynamic, targets: ["Sentiment"]),
        // The `sentiment` command (installed as bin/sentiment; the library product has that name here).
        .executable(name: "sentiment-cli", targets: ["SentimentCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // oneDNN (GEMM) and libgomp (thread pool shared with oneDNN).
        .systemLibrary(name: "CDnnl", path: "Sources/CDnnl"),
        // The int8 GEMM kernel for AVX-512 VNNI and the AVX512-BF16 rounding kernel (C intrinsics;
        // compiled per function for their ISA and used only where the CPU has it).
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: dwarf4),
        // Linux system calls Swift's Glibc module lacks (renameat2 RENAME_EXCHANGE), fork handlers.
        .target(name: "CSystem", path: "Sources/CSystem", cSettings: dwarf4),
        // Numerics: tokenizer, checkpoints, kernels, model, inference. No C-ABI or JSON-request concerns.
        .target(
            name: "SentimentCore",
            dependencies: ["CDnnl", "CKernels", "CSystem"],
            path: "Sources/SentimentCore",
            swiftSettings: codegen + (dynamicStdlib ? [] : [.unsafeFlags(["-static-stdlib"])])
        ),
        // The C ABI: @_cdecl exports, JSON requests and results, status codes. No numerics.
        .target(
            name: "Sentiment",
            dependencies: ["SentimentCore", "CSystem"],
            path: "Sources/Sentiment",
            exclude: ["exports.map"],
            swiftSettings: codegen + (dynamicStdlib ? [] : [.unsafeFlags(["-static-stdlib"])]),
            linkerSettings: libraryLink
        ),
        // Benchmarks: `sentiment-bench <name>` (see bench/README.md). Sentiment: for the train
        // config's JSON parser.
        .executableTarget(
            name: "sentiment-bench",
            dependencies: ["SentimentCore", "Sentiment"],
            path: "bench/SentimentBench",
            swiftSettings: codegen
        ),
        // The `sentiment` command: builds JSON requests and calls the C ABI's functions (linked
        // in, with the static Swift runtime), so it has no request schema of its own.
        .executableTarget(
            name: "SentimentCLI",
            dependencies: ["SentimentCore", "Sentiment", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/SentimentCLI",
            swiftSettings: codegen,
            // ArgumentParser imports FoundationEssentials; its static archive needs these.
            linkerSettings: dynamicStdlib ? [] : ["_FoundationCollections", "_FoundationCShims", "swiftSynchronization"].map { .linkedLibrary($0) }
        ),
        .testTarget(
            name: "SentimentCoreTests",
            dependencies: ["SentimentCore"],
            path: "Tests/SentimentCoreTests",
            exclude: ["Fixtures"],   // read by path from #filePath at test time, not as resources
            swiftSettings: codegen
        ),
        .testTarget(
            name: "SentimentABITests",
            dependencies: ["Sentiment"],
            path: "Tests/SentimentABITests",
            swiftSettings: codegen
        ),
    ]
)
