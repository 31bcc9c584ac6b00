// swift-tools-version:6.2
import Foundation
import PackageDescription

// Encompass: Operation Encompass notifications for police MASH teams.
// Layout: Shared/ holds the cross-cutting modules, Services/ one library (logic) and
// one thin executable per service, Tests/ one test target per module.

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let grdb = Target.Dependency.product(name: "GRDB", package: "GRDB.swift")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let zipFoundation = Target.Dependency.product(name: "ZIPFoundation", package: "ZIPFoundation")

/// One service: a library with its logic and a thin executable that runs it, and its tests.
struct ServiceSpec {
    let folder: String // Services/<folder>, Tests/<folder>Tests
    let library: String // logic module
    let executable: String // product name
    var dependencies: [Target.Dependency] = [] // beyond the common ones
    var resources: [Resource]? = nil
    var testExclude: [String] = [] // non-Swift files in Tests/<folder>Tests (e.g. Python test peers)
    var testDependencies: [Target.Dependency] = [] // beyond the common ones (e.g. the services a test runs)
}

let services = [
    ServiceSpec(
        folder: "Intake", library: "IntakeService", executable: "intake",
        dependencies: ["Spreadsheets"]),
    ServiceSpec(
        folder: "ChildResearch", library: "ChildResearchService", executable: "child-research",
        dependencies: [.product(name: "GRDBSQLite", package: "GRDB.swift")]),
    ServiceSpec(
        folder: "SchoolResolution", library: "SchoolResolutionService", executable: "school-resolution",
        dependencies: ["Spreadsheets"],
        resources: [.copy("Resources/schools_2018_tvp_cambs.csv")]),
    ServiceSpec(
        folder: "Scheduling", library: "SchedulingService", executable: "scheduling",
        resources: [.copy("Resources/bank-holidays.json"), .copy("Resources/term-dates")]),
    ServiceSpec(
        folder: "Dispatch", library: "DispatchService", executable: "dispatch",
        dependencies: [
            "CCurl", "COpenSSLCrypto", "Spreadsheets", "EncompassSecrets", "WebSupport", .product(name: "Prometheus", package: "swift-prometheus"),
        ], testExclude: ["Peers"]),
    // The MASH console: a web app over the five services' HTTP APIs (it consumes no topic).
    ServiceSpec(
        folder: "Console", library: "ConsoleService", executable: "console",
        dependencies: [
            "Spreadsheets", "EncompassSecrets", "WebSupport", lifecycle, .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ],
        testExclude: ["Peers"],
        testDependencies: ["IntakeService", "ChildResearchService", "SchoolResolutionService", "SchedulingService", "DispatchService"]),
]

var targets: [Target] = [
    .systemLibrary(
        name: "CRdKafka",
        path: "Shared/CRdKafka",
        pkgConfig: "rdkafka",
        providers: [.apt(["librdkafka-dev"])]
    ),
    .systemLibrary(
        name: "CCurl",
        path: "Shared/CCurl",
        pkgConfig: "libcurl",
        providers: [.apt(["libcurl4-openssl-dev"])]
    ),
    .systemLibrary(
        name: "COpenSSLCrypto",
        path: "Shared/COpenSSLCrypto",
        pkgConfig: "libcrypto",
        providers: [.apt(["libssl-dev"])]
    ),
    .target(
        name: "EncompassModels",
        path: "Shared/Models",
        resources: [.copy("Resources/protocols")],
        swiftSettings: strict
    ),
    // Spreadsheets in and out (CSV and XLSX reader, writer, formula-injection guard), shared by
    // the services that take or give spreadsheets, the CLI and the console.
    .target(
        name: "Spreadsheets",
        dependencies: [zipFoundation],
        path: "Shared/Spreadsheets",
        swiftSettings: strict
    ),
    .testTarget(
        name: "SpreadsheetsTests",
        dependencies: ["Spreadsheets"],
        path: "Tests/SpreadsheetsTests",
        swiftSettings: strict
    ),
    .target(
        name: "EncompassKafka",
        dependencies: ["CRdKafka", logging],
        path: "Shared/KafkaClient",
        swiftSettings: strict
    ),
    // Passwords (PBKDF2), link and session tokens, hashes, constant-time comparison: the secrets of
    // the runtime's bearer tokens, the notice page and the console.
    .target(
        name: "EncompassSecrets",
        dependencies: ["COpenSSLCrypto"],
        path: "Shared/Secrets",
        swiftSettings: strict
    ),
    // HTTP beside the runtime: HTML escaping and the form-origin check of the pages served to
    // browsers (console, notice page), and the client the CLI, demo and console call the services' APIs with.
    .target(
        name: "WebSupport",
        dependencies: ["EncompassModels", hummingbird],
        path: "Shared/WebSupport",
        swiftSettings: strict
    ),
    .testTarget(
        name: "EncompassSecretsTests",
        dependencies: ["EncompassSecrets"],
        path: "Tests/EncompassSecretsTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "WebSupportTests",
        dependencies: ["WebSupport", "EncompassModels", "EncompassTestSupport"],
        path: "Tests/WebSupportTests",
        swiftSettings: strict
    ),
    .target(
        name: "ServiceRuntime",
        dependencies: [
            "EncompassModels", "EncompassKafka", "EncompassSecrets", "WebSupport", grdb, logging, lifecycle, hummingbird,
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ],
        path: "Shared/ServiceRuntime",
        swiftSettings: strict
    ),
    .target(
        name: "EncompassTestSupport",
        dependencies: ["EncompassModels", "EncompassKafka", "ServiceRuntime", grdb, logging],
        path: "Shared/TestSupport",
        swiftSettings: strict
    ),
    .target(
        name: "EncompassDemo",
        dependencies: ["EncompassModels", "EncompassKafka", "ServiceRuntime", "WebSupport", argumentParser, logging, grdb],
        path: "Services/Demo/Library",
        resources: [.copy("Resources/schools_2018_tvp_cambs.csv")],
        swiftSettings: strict
    ),
    .testTarget(
        name: "DemoTests",
        dependencies: ["EncompassDemo", "EncompassModels", "EncompassTestSupport", "ServiceRuntime", "EncompassKafka"],
        path: "Tests/DemoTests",
        swiftSettings: strict
    ),
    .executableTarget(
        name: "EncompassCLI",
        dependencies: [
            "EncompassModels", "EncompassKafka", "ServiceRuntime", "EncompassDemo", "Spreadsheets", "WebSupport", argumentParser, logging, grdb,
            "IntakeService", "SchedulingService", "SchoolResolutionService", "ConsoleService",
        ],
        path: "Services/CLI",
        swiftSettings: strict
    ),
    // The benchmarks, an executable apart from the operator's CLI (docs/BENCHMARKS.md).
    .executableTarget(
        name: "EncompassBench",
        dependencies: [
            "EncompassModels", "EncompassKafka", "ServiceRuntime", "EncompassDemo", "WebSupport", argumentParser, logging, lifecycle, grdb,
            "IntakeService", "ChildResearchService", "SchoolResolutionService",
        ],
        path: "Services/Bench",
        swiftSettings: strict
    ),
    .testTarget(
        name: "ModelsTests",
        dependencies: ["EncompassModels"],
        path: "Tests/ModelsTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "KafkaClientTests",
        dependencies: ["EncompassKafka", "EncompassTestSupport", "EncompassModels"],
        path: "Tests/KafkaClientTests",
        swiftSettings: strict
    ),
    .testTarget(
        name: "ServiceRuntimeTests",
        dependencies: [
            "ServiceRuntime", "EncompassKafka", "CRdKafka", "EncompassTestSupport", "EncompassModels", "WebSupport", grdb, logging, lifecycle,
            hummingbird, .product(name: "HummingbirdTesting", package: "hummingbird"),
        ],
        path: "Tests/ServiceRuntimeTests",
        swiftSettings: strict
    ),
]

var products: [Product] = [
    .executable(name: "encompass", targets: ["EncompassCLI"]),
    .executable(name: "encompass-bench", targets: ["EncompassBench"]),
]

for service in services {
    targets.append(
        .target(
            name: service.library,
            dependencies: ["EncompassModels", "ServiceRuntime", "EncompassKafka", grdb, logging, hummingbird, nioCore]
                + service.dependencies,
            path: "Services/\(service.folder)/Library",
            resources: service.resources,
            swiftSettings: strict
        ))
    targets.append(
        .testTarget(
            name: "\(service.folder)Tests",
            dependencies: [
                .target(name: service.library), "ServiceRuntime", "EncompassKafka", "EncompassTestSupport", "EncompassModels",
                "Spreadsheets", "EncompassSecrets", "WebSupport", grdb, logging, hummingbird,
            ] + service.testDependencies,
            path: "Tests/\(service.folder)Tests",
            exclude: service.testExclude,
            swiftSettings: strict
        ))
    let main = service.library.replacingOccurrences(of: "Service", with: "Main")
    targets.append(
        .executableTarget(
            name: main,
            dependencies: [.target(name: service.library), "ServiceRuntime"],
            path: "Services/\(service.folder)/Main",
            swiftSettings: strict
        ))
    products.append(.executable(name: service.executable, targets: [main]))
}

// The fuzz pass: random and mutated inputs against every input parser.
targets.append(
    .testTarget(
        name: "FuzzTests",
        dependencies: [
            "IntakeService", "SchoolResolutionService", "SchedulingService", "DispatchService", "EncompassModels",
            "ServiceRuntime", "Spreadsheets", "EncompassTestSupport", grdb, zipFoundation,
        ],
        path: "Tests/FuzzTests",
        swiftSettings: strict
    ))

// Each service's settings parsed from an environment dictionary: defaults, values, and the
// error naming each bad variable.
targets.append(
    .testTarget(
        name: "SettingsTests",
        dependencies: [
            "IntakeService", "ChildResearchService", "SchoolResolutionService", "SchedulingService", "DispatchService",
            "EncompassModels", "EncompassKafka", "ServiceRuntime", "EncompassTestSupport", logging,
        ],
        path: "Tests/SettingsTests",
        swiftSettings: strict
    ))

// Security checks: every endpoint's authentication, notice isolation between schools,
// output neutralisation, personal-data retention (every store, the console's too).
targets.append(
    .testTarget(
        name: "SecurityTests",
        dependencies: [
            "IntakeService", "ChildResearchService", "SchoolResolutionService", "SchedulingService", "DispatchService", "ConsoleService",
            "EncompassModels", "EncompassKafka", "ServiceRuntime", "Spreadsheets", "EncompassSecrets", "WebSupport", "EncompassTestSupport", grdb,
            hummingbird, logging,
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ],
        path: "Tests/SecurityTests",
        swiftSettings: strict
    ))

let package = Package(
    name: "encompass",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: targets,
    swiftLanguageModes: [.v6]
)
