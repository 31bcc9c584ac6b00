import EncompassKafka
import EncompassModels
import Foundation
import Logging

/// An in-process mock Kafka cluster for a test, with the pipeline's topics created.
public final class TestKafka: Sendable {
    public let cluster: MockKafkaCluster
    public let partitions: Int

    public init(brokers: Int = 1, partitions: Int = 4, extraTopics: [String] = []) throws {
        cluster = try MockKafkaCluster(brokers: brokers, logger: TestLog.logger("mock-cluster"))
        self.partitions = partitions
        for topic in Topics.all.map(\.name) + extraTopics {
            try cluster.createTopic(topic, partitions: partitions, replicationFactor: brokers)
        }
    }

    public var bootstrapServers: String { cluster.bootstrapServers }

    public func client(_ id: String = "test", properties: [String: String] = [:]) -> KafkaClientConfiguration {
        KafkaClientConfiguration(
            bootstrapServers: bootstrapServers, clientId: id, properties: properties,
            consumerProperties: MockKafkaCluster.consumerProperties, producerProperties: MockKafkaCluster.producerProperties)
    }

    public func createTopic(_ name: String, partitions: Int? = nil) throws {
        try cluster.createTopic(name, partitions: partitions ?? self.partitions)
    }

    /// A unique topic name for one test.
    public func uniqueTopic(_ prefix: String = "test", partitions: Int? = nil) throws -> String {
        let name = "\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
        try createTopic(name, partitions: partitions)
        return name
    }

    deinit { cluster.shutdown() }
}

public enum TestLog {
    /// Quiet unless ENCOMPASS_TEST_LOG_LEVEL says otherwise.
    public static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = ProcessInfo.processInfo.environment["ENCOMPASS_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }
}

public enum TestPaths {
    /// A fresh empty directory under the system temporary directory.
    public static func temporaryDirectory(_ label: String = "encompass") -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(label)-\(UUID().uuidString.prefix(12))")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The package root (the folder with Package.swift).
    public static var packageRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }

    /// The read-only test data (FEBRL people, the schools list, calendars): `ENCOMPASS_SHARED_DIR`
    /// when set, else ../shared beside the project root. A clone of a local checkout (e.g. the
    /// fresh clone in /tmp that checks CI) has no ../shared of its own; it uses the one beside
    /// the checkout it was cloned from (its `origin`). Where none exists, ../shared is returned
    /// and the tests that need it fail saying which file they could not read.
    public static var shared: String {
        if let dir = ProcessInfo.processInfo.environment["ENCOMPASS_SHARED_DIR"], !dir.isEmpty { return dir }
        let beside = ((packageRoot as NSString).deletingLastPathComponent as NSString).appendingPathComponent("shared")
        if FileManager.default.fileExists(atPath: beside) { return beside }
        if let origin = localOrigin {
            let besideOrigin = ((origin as NSString).deletingLastPathComponent as NSString).appendingPathComponent("shared")
            if FileManager.default.fileExists(atPath: besideOrigin) { return besideOrigin }
        }
        return beside
    }

    /// The `origin` remote of the package's git clone when it is a local folder.
    static var localOrigin: String? {
        let config = (packageRoot as NSString).appendingPathComponent(".git/config")
        guard let text = try? String(contentsOfFile: config, encoding: .utf8) else { return nil }
        var inOrigin = false
        for line in text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasPrefix("[") {
                inOrigin = line == "[remote \"origin\"]"
                continue
            }
            guard inOrigin, line.hasPrefix("url") else { continue }
            let url = line.drop { $0 != "=" }.dropFirst().trimmingCharacters(in: .whitespaces)
            let path = url.hasPrefix("file://") ? String(url.dropFirst(7)) : url
            return path.hasPrefix("/") ? (path as NSString).standardizingPath : nil
        }
        return nil
    }
}

/// A built executable of this package (they sit beside the test bundle).
public func executable(_ name: String) throws -> String {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [
        directory.appendingPathComponent(name).path,
        directory.deletingLastPathComponent().appendingPathComponent(name).path,
        "\(TestPaths.packageRoot)/.build/debug/\(name)",
    ]
    guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw TimeoutError(what: "executable \(name) (build it first: swift build)")
    }
    return path
}

/// Runs blocking work (a child process to its end) on a thread of its own. On Swift's
/// concurrency pool it would hold one of its few threads (two on a 2-core machine) while the
/// child waits for an in-process service or console, which needs those threads to answer; with
/// suites running side by side the pool can run out and the child time out. `Task.detached`
/// runs on the same pool, so it does not help.
public func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// Runs a built executable of this package to its end, off the concurrency pool (`offPool`):
/// its exit status and what it printed (standard output and error together).
public func runExecutable(_ name: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let run = try await offPool { try runBuilt(name, arguments) }
    return (run.status, run.output)
}

public struct TimeoutError: Error, CustomStringConvertible {
    public let what: String
    public init(what: String) { self.what = what }
    public var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(
    _ what: String, timeout: Duration = .seconds(30), interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    if try await condition() { return }
    throw TimeoutError(what: what)
}

/// Reads a topic from its first record until `count` records arrive (or `timeout` passes), with
/// a consumer that joins no group: no wait for a group to form, nothing committed.
public func readRecords(
    _ kafka: TestKafka, topic: String, count: Int, timeout: Duration = .seconds(30)
) async throws -> [KafkaRecord] {
    try await KafkaAdmin.readFromStart(client: kafka.client("reader"), topic: topic, count: count, logger: TestLog.logger("reader"), timeout: timeout)
}

/// A small payload for runtime tests.
public struct TestNote: MessagePayload {
    public static let schema = "encompass.test-note"
    public static let schemaVersion = 1

    public var text: String
    public var sequence: Int

    public init(text: String, sequence: Int) {
        self.text = text
        self.sequence = sequence
    }

    public func validationErrors() -> [FieldError] {
        text.isEmpty ? [FieldError("text", "must not be empty")] : []
    }
}

extension TestNote {
    /// An encoded envelope carrying this note.
    public func envelope(id: String = MessageID.fresh(), key: String = "k") throws -> [UInt8] {
        try WireFormat.encode(Envelope(id: id, key: key, producer: "test", payload: self))
    }
}

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// GET over real HTTP; returns status and body.
public func httpGet(_ url: String, headers: [String: String] = [:]) async throws -> (status: Int, body: String) {
    var request = URLRequest(url: URL(string: url)!)
    for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}
