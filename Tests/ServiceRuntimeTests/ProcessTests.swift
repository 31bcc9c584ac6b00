import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

/// Whether a process has ended: no longer listed, or a zombie nobody has reaped yet.
func processGone(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return true }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state == "Z" || state == "X"
}

@Suite("Executables as processes", .serialized)
struct ProcessTests {
    @Test("a child given ENCOMPASS_PARENT_PID (as the demo's pipeline starts them) stops when its parent is killed with SIGKILL")
    func orphanStops() async throws {
        let directory = TestPaths.temporaryDirectory("parent-watch")
        let addressFile = "\(directory)/broker.bootstrap"
        let pidFile = "\(directory)/broker.pid"
        // A shell is the parent: it starts the broker with its own pid and waits for it.
        let script =
            "ENCOMPASS_PARENT_PID=$$ '\(try executable("encompass"))' broker --partitions 1 --address-file '\(addressFile)' & echo $! > '\(pidFile)'; wait"
        let shell = try TestProcess("/bin/sh", ["-c", script], log: "\(directory)/shell.log")
        try await shell.ready("broker address file") { FileManager.default.fileExists(atPath: addressFile) }
        let broker = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { if !processGone(broker) { kill(broker, SIGKILL) } }
        try await Task.sleep(for: .seconds(1))
        #expect(!processGone(broker), "the broker runs while its parent does")
        try await shell.signal(SIGKILL)
        try await eventually("the orphaned broker to stop", timeout: .seconds(20)) { processGone(broker) }
    }

    @Test("the embedded broker runs as a process, a service joins it, and both stop cleanly on SIGTERM")
    func brokerAndServiceProcesses() async throws {
        let directory = TestPaths.temporaryDirectory("processes")
        let addressFile = "\(directory)/broker.bootstrap"
        let broker = try TestProcess(
            try executable("encompass"), ["broker", "--partitions", "3", "--address-file", addressFile],
            log: "\(directory)/broker.log")
        try await broker.ready("broker address file") { FileManager.default.fileExists(atPath: addressFile) }
        let bootstrap = try String(contentsOfFile: addressFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(bootstrap.hasPrefix("127.0.0.1:"))

        // The broker has the pipeline's topics with the requested partition count.
        let admin = try KafkaAdmin(client: .init(bootstrapServers: bootstrap), logger: TestLog.logger("admin"))
        let topics = try await admin.listTopics()
        await admin.close()
        for topic in Topics.all { #expect(topics[topic.name] == 3, "\(topic.name)") }

        let port = 20_000 + Int.random(in: 0..<20_000)
        let service = try TestProcess(
            try executable("intake"), [],
            environment: [
                "ENCOMPASS_KAFKA_BOOTSTRAP_FILE": addressFile,
                "ENCOMPASS_DATA_DIR": "\(directory)/intake",
                "ENCOMPASS_HTTP_PORT": String(port),
            ], log: "\(directory)/intake.log")
        try await service.ready("intake ready", timeout: .seconds(30)) {
            (try? await httpGet("http://127.0.0.1:\(port)/readyz").status) == 200
        }
        #expect(FileManager.default.fileExists(atPath: "\(directory)/intake/intake.sqlite"))

        #expect(try await service.signal(SIGTERM, timeout: .seconds(30)) == 0)
        let log = try String(contentsOfFile: "\(directory)/intake.log", encoding: .utf8)
        // Structured logs: every line is a JSON object.
        for line in log.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] != nil && object?["msg"] != nil, "\(line)")
        }
        #expect(log.contains("service stopped"))

        #expect(try await broker.signal(SIGTERM, timeout: .seconds(15)) == 0)
        #expect(!FileManager.default.fileExists(atPath: addressFile))
    }

    @Test("a service refuses bad configuration with the variable to fix and exit code 2")
    func badConfiguration() async throws {
        let directory = TestPaths.temporaryDirectory("badconfig")
        let service = try TestProcess(try executable("scheduling"), [], environment: ["ENCOMPASS_HTTP_PORT": "not-a-port"], log: "\(directory)/log")
        #expect(try await service.exit(timeout: .seconds(15)) == 2)
        let log = try String(contentsOfFile: "\(directory)/log", encoding: .utf8)
        #expect(log.contains("ENCOMPASS_HTTP_PORT"))
    }
}
