import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import ServiceRuntime
import Testing

/// Runs a command to completion, off the concurrency pool (`offPool`); returns its exit status
/// and combined output.
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> (
    status: Int32, output: String
) {
    let run = try await offPool {
        try TestProcess(
            executable, arguments, environment: environment ?? [:], inheritEnvironment: environment == nil,
            directory: TestPaths.packageRoot
        ).waitForOutput()
    }
    return (run.status, run.output)
}

func installed(_ tool: String) throws -> String {
    for directory in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(directory)/\(tool)") {
        return "\(directory)/\(tool)"
    }
    throw TimeoutError(what: "\(tool) to be installed (./dev test installs it with apt-get)")
}

/// A TCP port that was free a moment ago.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

@Suite("Deployment: compose file, topics script, Prometheus and alert rules", .serialized, .tags(.kafka, .peers))
struct DeploymentTests {
    @Test("docker-compose validates compose/docker-compose.yml with the example settings and refuses it without secrets")
    func composeFileValidates() async throws {
        let compose = try installed("docker-compose")
        let good = try await runCommand(compose, ["-f", "compose/docker-compose.yml", "--env-file", "compose/.env.example", "config", "-q"])
        #expect(good.status == 0, "\(good.output)")
        var environment = ProcessInfo.processInfo.environment
        environment = environment.filter { !$0.key.hasPrefix("ENCOMPASS_") }
        let empty = TestPaths.temporaryDirectory("compose") + "/empty.env"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        let bare = try await runCommand(compose, ["-f", "compose/docker-compose.yml", "--env-file", empty, "config", "-q"], environment: environment)
        #expect(bare.status != 0)
        #expect(bare.output.contains("set ENCOMPASS_"), "\(bare.output)")
        let config = try await runCommand(
            compose, ["-f", "compose/docker-compose.yml", "--env-file", "compose/.env.example", "config", "--services"])
        let services = Set(config.output.split(separator: "\n").map(String.init))
        // Two instances of each service (dispatch's agree on who sends through claims).
        let instances = ServiceName.allCases.flatMap { ["\($0.rawValue)-1", "\($0.rawValue)-2"] }
        for expected in ["kafka-1", "kafka-2", "kafka-3", "topics-init", "prometheus"] + instances {
            #expect(services.contains(expected), "compose has \(expected)")
        }
    }

    @Test("the topics script creates exactly the catalogue's topics")
    func topicsScriptMatchesCatalogue() throws {
        let script = try String(contentsOfFile: "\(TestPaths.packageRoot)/compose/create-topics.sh", encoding: .utf8)
        let named = Set(
            script.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\\" }).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ";")) }
                .filter { $0.hasPrefix("encompass.") })
        #expect(named == Set(Topics.all.map(\.name)))
        #expect(script.contains("encompass.scheduling.changelog --config cleanup.policy=compact"))
    }

    @Test("promtool accepts the Prometheus configuration and alert rules")
    func promtoolChecks() async throws {
        let promtool = try installed("promtool")
        let rules = try await runCommand(promtool, ["check", "rules", "compose/prometheus/alerts.yml"])
        #expect(rules.status == 0, "\(rules.output)")
        #expect(rules.output.contains("9 rules found"))
    }

    @Test("a real Prometheus scrapes a running service's /metrics and loads the alert rules")
    func prometheusScrapes() async throws {
        let prometheus = try installed("prometheus")
        let kafka = try TestKafka(partitions: 2)
        let topic = try kafka.uniqueTopic("scraped")
        let host = try await RunningHost(
            noteService(input: topic, output: nil),
            configuration(kafka, dataDirectory: TestPaths.temporaryDirectory("scraped"), group: "scraped-\(UUID())"))
        try await produce(kafka, topic: topic, (0..<10).map { ("k\($0)", try TestNote(text: "n\($0)", sequence: $0).envelope()) })
        let servicePort = await host.host.httpPort()
        let directory = TestPaths.temporaryDirectory("prometheus")
        let rules = "\(directory)/alerts.yml"
        try FileManager.default.copyItem(atPath: "\(TestPaths.packageRoot)/compose/prometheus/alerts.yml", toPath: rules)
        try """
        global: {scrape_interval: 1s, evaluation_interval: 1s}
        rule_files: ["\(rules)"]
        scrape_configs:
          - job_name: encompass
            static_configs:
              - targets: ["127.0.0.1:\(servicePort)"]
                labels: {service: intake}
        """.write(toFile: "\(directory)/prometheus.yml", atomically: true, encoding: .utf8)
        let port = freePort()
        let process = try TestProcess(
            prometheus,
            [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(port)",
            ], log: "\(directory)/prometheus.log")
        defer { process.stop() }
        let api = "http://127.0.0.1:\(port)/api/v1"
        try await process.ready("Prometheus reports the service target up", timeout: .seconds(60), interval: .milliseconds(500)) {
            guard let answer = try? await httpGet("\(api)/targets") else { return false }
            return answer.body.contains("\"health\":\"up\"")
        }
        try await eventually("the service's counters and lag gauges are in Prometheus", timeout: .seconds(60), interval: .milliseconds(500)) {
            let processed = try await httpGet("\(api)/query?query=encompass_messages_processed_total").body
            let lag = try await httpGet("\(api)/query?query=kafka_consumergroup_group_lag_seconds").body
            return processed.contains(topic) && lag.contains(topic)
        }
        let loaded = try await httpGet("\(api)/rules").body
        for name in [
            "EncompassConsumerLagOver5m", "EncompassConsumerLagOver15m", "EncompassPartitionStalled", "EncompassDeadLettersGrowing",
            "EncompassOutboxStuck", "EncompassInstanceDown",
        ] {
            #expect(loaded.contains(name))
        }
        try await host.stop()
    }
}
