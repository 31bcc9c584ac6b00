import CRdKafka
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Fault commands for a running mock cluster, one line each, so a test can break the embedded
/// broker (`encompass broker --control-port`) while the services run as other processes.
///
/// ```
/// ping                                  ok 3 brokers
/// down 2 | up 2                         broker 2 refuses connections / is back (leaders stay put)
/// rtt 2 500                             broker 2 answers every request 500 ms late
/// errors produce NOT_LEADER_OR_FOLLOWER*20,REQUEST_TIMED_OUT*5 [broker=2] [rtt=100]
///                                       each broker's (or broker 2's) next Produce requests fail so
/// remaining produce [broker=2]          ok 17: errors pushed by `errors` not yet served
/// clear produce                         drops the cluster-wide stack (broker stacks drain by use)
/// leader encompass.children 3 2         partition 3's leader becomes broker 2 ("*" for every topic or partition)
/// coordinator GROUP 1                   broker 1 coordinates consumer group GROUP
/// ```
/// API names: produce, fetch, list-offsets, metadata, offset-commit, offset-fetch,
/// find-coordinator, join-group, heartbeat, sync-group, init-producer-id, or the numeric key.
/// Errors: librdkafka's names (`rd_kafka_err2name`, e.g. NOT_LEADER_OR_FOLLOWER) or numbers
/// (`rd_kafka_resp_err_t`, e.g. 6). Answers are `ok[ detail]` or `error <why>`.
public struct MockClusterControl: Sendable {
    public let cluster: MockKafkaCluster
    /// Topic name → partition count, for `leader *`.
    public let topics: [String: Int]

    public init(cluster: MockKafkaCluster, topics: [String: Int]) {
        self.cluster = cluster
        self.topics = topics
    }

    public static let apiKeys: [String: Int16] = [
        "produce": KafkaApiKey.produce, "fetch": KafkaApiKey.fetch, "list-offsets": KafkaApiKey.listOffsets,
        "metadata": KafkaApiKey.metadata, "offset-commit": KafkaApiKey.offsetCommit, "offset-fetch": KafkaApiKey.offsetFetch,
        "find-coordinator": KafkaApiKey.findCoordinator, "join-group": KafkaApiKey.joinGroup, "heartbeat": KafkaApiKey.heartbeat,
        "sync-group": KafkaApiKey.syncGroup, "init-producer-id": KafkaApiKey.initProducerId,
    ]

    /// librdkafka's error names (without a leading underscore for broker errors) → codes.
    public static let errorCodes: [String: Int32] = {
        var descriptions: UnsafePointer<rd_kafka_err_desc>?
        var count = 0
        rd_kafka_get_err_descs(&descriptions, &count)
        var codes: [String: Int32] = [:]
        guard let descriptions else { return codes }
        for i in 0..<count {
            guard let name = descriptions[i].name else { continue }
            codes[String(cString: name)] = descriptions[i].code.rawValue
        }
        // Kafka's current name for 6; librdkafka 2.0 still calls it NOT_LEADER_FOR_PARTITION.
        codes["NOT_LEADER_OR_FOLLOWER"] = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue
        return codes
    }()

    public static func errorCode(_ text: String) -> Int32? {
        if let number = Int32(text) { return number }
        return errorCodes[text.uppercased()]
    }

    struct Failure: Error { var reason: String }

    /// Runs one command line; returns the answer line.
    public func execute(_ line: String) -> String {
        do {
            return try run(line.split(whereSeparator: \.isWhitespace).map(String.init))
        } catch let failure as Failure {
            return "error " + failure.reason
        } catch let error as KafkaError {
            return "error " + error.description
        } catch {
            return "error \(error)"
        }
    }

    private func broker(_ text: String?) throws -> Int32 {
        guard let text, let id = Int32(text), (1...Int32(cluster.brokerCount)).contains(id) else {
            throw Failure(reason: "broker must be 1…\(cluster.brokerCount), got \(text ?? "nothing")")
        }
        return id
    }

    private func api(_ text: String?) throws -> Int16 {
        guard let text else { throw Failure(reason: "missing API name (\(Self.apiKeys.keys.sorted().joined(separator: ", ")))") }
        if let key = Self.apiKeys[text.lowercased()] ?? Int16(text) { return key }
        throw Failure(reason: "unknown API \(text); use \(Self.apiKeys.keys.sorted().joined(separator: ", ")) or a numeric key")
    }

    /// `name=value` options after the positional words.
    private func options(_ words: ArraySlice<String>) throws -> [String: String] {
        var options: [String: String] = [:]
        for word in words {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw Failure(reason: "expected name=value, got \(word)") }
            options[parts[0]] = parts[1]
        }
        return options
    }

    private func brokers(_ options: [String: String]) throws -> [Int32] {
        guard let chosen = options["broker"], chosen != "all" else { return Array(1...Int32(cluster.brokerCount)) }
        return [try broker(chosen)]
    }

    private func run(_ words: [String]) throws -> String {
        guard let verb = words.first?.lowercased() else { throw Failure(reason: "empty command") }
        switch verb {
        case "ping":
            return "ok \(cluster.brokerCount) brokers"
        case "down", "up":
            let id = try broker(words.dropFirst().first)
            if verb == "down" { cluster.setBrokerDown(id) } else { cluster.setBrokerUp(id) }
            return "ok broker \(id) \(verb)"
        case "rtt":
            let id = try broker(words.dropFirst().first)
            guard words.count > 2, let ms = Int(words[2]), (0...60_000).contains(ms) else {
                throw Failure(reason: "rtt BROKER MILLISECONDS (0…60000)")
            }
            cluster.setBrokerRoundTripTime(id, milliseconds: ms)
            return "ok broker \(id) rtt \(ms) ms"
        case "errors":
            let key = try api(words.dropFirst().first)
            guard words.count > 2 else { throw Failure(reason: "errors API CODE[*COUNT][,CODE[*COUNT]…] [broker=N] [rtt=MS]") }
            var codes: [rd_kafka_resp_err_t] = []
            for item in words[2].split(separator: ",") {
                let parts = item.split(separator: "*").map(String.init)
                guard let code = Self.errorCode(parts[0]) else {
                    throw Failure(reason: "unknown error \(parts[0]); use a librdkafka name or an rd_kafka_resp_err_t number")
                }
                let count = parts.count > 1 ? Int(parts[1]) : 1
                guard let count, (1...10_000).contains(count) else { throw Failure(reason: "bad count in \(item)") }
                codes += Array(repeating: rd_kafka_resp_err_t(code), count: count)
            }
            let options = try options(words.dropFirst(3))
            let rtt = Int(options["rtt"] ?? "0") ?? 0
            let targets = try brokers(options)
            for id in targets { try cluster.pushBrokerRequestErrors(id, apiKey: key, errors: codes, rttMilliseconds: rtt) }
            return "ok \(codes.count) errors pushed on broker(s) \(targets.map(String.init).joined(separator: ","))"
        case "remaining":
            let key = try api(words.dropFirst().first)
            let targets = try brokers(try options(words.dropFirst(2)))
            var total = 0
            for id in targets { total += try cluster.brokerErrorCount(id, apiKey: key) }
            return "ok \(total)"
        case "clear":
            cluster.clearRequestErrors(apiKey: try api(words.dropFirst().first))
            return "ok"
        case "leader":
            guard words.count == 4 else { throw Failure(reason: "leader TOPIC|* PARTITION|* BROKER") }
            let id = try broker(words[3])
            let names = words[1] == "*" ? topics.keys.sorted() : [words[1]]
            var moved = 0
            for name in names {
                guard let partitions = topics[name] else { throw Failure(reason: "unknown topic \(name)") }
                let chosen: [Int32]
                if words[2] == "*" {
                    chosen = Array(0..<Int32(partitions))
                } else {
                    guard let p = Int32(words[2]), (0..<Int32(partitions)).contains(p) else {
                        throw Failure(reason: "partition must be 0…\(partitions - 1) or *")
                    }
                    chosen = [p]
                }
                for p in chosen {
                    try cluster.setPartitionLeader(topic: name, partition: p, broker: id)
                    moved += 1
                }
            }
            return "ok \(moved) partition(s) led by broker \(id)"
        case "coordinator":
            guard words.count == 3 else { throw Failure(reason: "coordinator GROUP BROKER") }
            try cluster.setGroupCoordinator(words[1], broker: try broker(words[2]))
            return "ok"
        default:
            throw Failure(reason: "unknown command \(verb); use ping, down, up, rtt, errors, remaining, clear, leader, coordinator")
        }
    }
}

/// Serves `MockClusterControl` on 127.0.0.1: one command line per connection, one answer line
/// back. Loopback only, for tests and local fault runs; blocking socket calls run on a thread of
/// their own.
public final class MockClusterControlServer: @unchecked Sendable {
    public let port: Int
    private let socket: Int32
    private let control: MockClusterControl
    private let logger: Logger
    private let lock = NSLock()
    private var stopped = false

    public init(control: MockClusterControl, port: Int = 0, logger: Logger) throws {
        self.control = control
        self.logger = logger
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MockClusterControlError("socket(): \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MockClusterControlError("cannot listen on 127.0.0.1:\(port): \(reason)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.socket = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in self.serve() }
        thread.name = "mock-cluster-control"
        thread.start()
    }

    private func serve() {
        while true {
            let client = accept(socket, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return // closed by stop()
            }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let line = MockClusterControlClient.readLine(client)
            let answer = line.map { control.execute($0) } ?? "error no command line"
            logger.notice("broker control", metadata: ["command": .string(line ?? ""), "answer": .string(answer)])
            MockClusterControlClient.writeAll(client, answer + "\n")
            close(client)
        }
    }

    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    deinit { stop() }
}

public struct MockClusterControlError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Sends one command to a `MockClusterControlServer`.
public enum MockClusterControlClient {
    /// The answer line (`ok…` or `error…`); throws when the broker cannot be reached.
    public static func send(_ command: String, port: Int, timeout: Duration = .seconds(10)) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try sendBlocking(command, port: port, timeout: timeout) })
            }
        }
    }

    static func sendBlocking(_ command: String, port: Int, timeout: Duration) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MockClusterControlError("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var time = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            throw MockClusterControlError(
                "cannot reach the broker's control port 127.0.0.1:\(port): \(String(cString: strerror(errno))); is `encompass broker --control-port` running?"
            )
        }
        writeAll(fd, command.replacingOccurrences(of: "\n", with: " ") + "\n")
        guard let answer = readLine(fd) else { throw MockClusterControlError("no answer from the broker's control port 127.0.0.1:\(port)") }
        return answer
    }

    static func readLine(_ fd: Int32) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < 4096 {
            let n = read(fd, &byte, 1)
            if n <= 0 { break }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    static func writeAll(_ fd: Int32, _ text: String) {
        var data = Array(text.utf8)
        var offset = 0
        while offset < data.count {
            let n = data.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }
}
