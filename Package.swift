// swift-tools-version:6.0
// SFTDeck: native supervised fine-tuning of vision-language models, driven from a terminal dashboard.
import PackageDescription

/// C libraries from Debian, wrapped as system-library targets (module map + shim header).
let systemLibraries: [Target] = [
    .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                   providers: [.apt(["libopenblas-dev"])]),
    // No pkgConfig: SwiftPM drops ncursesw's -D_XOPEN_SOURCE flags; the shim defines NCURSES_WIDECHAR itself.
    .systemLibrary(name: "CNcursesw", path: "Sources/CNcursesw", providers: [.apt(["libncursesw5-dev"])]),
    .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
    .systemLibrary(name: "CSnappy", path: "Sources/CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
    .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
    .systemLibrary(name: "CZ", path: "Sources/CZ", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    // libjpeg's error handler calls exit(): a small C target wraps decoding in setjmp.
    .target(name: "CJPEG", path: "Sources/CJPEG", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),
]

let package = Package(
    name: "SFTDeck",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sftdeck", targets: ["sftdeck"]),
        .executable(name: "sftdeck-bench", targets: ["sftdeck-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: systemLibraries + [
        // Numerical core: storage, dtypes, BLAS-backed kernels with their gradients, safetensors.
        .target(name: "Tensor", dependencies: ["COpenBLAS"]),
        // tokenizer.json pipeline, Jinja interpreter, chat templates.
        .target(name: "Tokenizers"),
        // parquet / JSON / MMIU readers, HF cache, image codecs and processor, collator and label policies.
        .target(name: "Datasets", dependencies: [
            "Tokenizers", "CPNG", "CJPEG", "CSnappy", "CZstd", "CZ",
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ]),
        // config.json structs, architecture registry, Gemma 3 (SigLIP + projector + decoder), LoRA, NF4.
        .target(name: "Models", dependencies: ["Tensor"]),
        // SFT config, optimizer, schedules, trainer loop and events, checkpoints, TensorBoard.
        .target(name: "Training", dependencies: [
            "Tensor", "Models", "Datasets", "Tokenizers", .product(name: "Yams", package: "Yams"),
        ]),
        // ncurses front end: screens, widgets, themes; observes the engine through events only.
        .target(name: "Dashboard", dependencies: ["Training", "Datasets", "Tokenizers", "CNcursesw", "CPNG"]),
        // The command line only wires modules together.
        .executableTarget(name: "sftdeck", dependencies: [
            "Tensor", "Tokenizers", "Datasets", "Models", "Training", "Dashboard",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "sftdeck-bench", dependencies: [
            "Tensor", "Tokenizers", "Datasets", "Models", "Training",
        ], path: "Benchmarks/sftdeck-bench"),

        .testTarget(name: "TensorTests", dependencies: ["Tensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Tokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Tensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TrainingTests", dependencies: ["Training"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "Training"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: []),
    ],
    swiftLanguageModes: [.v5]
)
