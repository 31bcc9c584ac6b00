import ArgumentParser
import EncompassDemo
import EncompassKafka
import Foundation
import Logging

/// `encompass-bench`: the benchmarks, apart from the operator's `encompass` command.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encompass-bench",
        abstract: "Benchmarks, each printed beside its baseline measured in the same run.",
        subcommands: [
            KafkaBench.self, ResearchBench.self, PipelineBench.self, BackfillBench.self, CodecBench.self, UploadBench.self,
            SchoolsBench.self,
        ]
    )
}

/// Raw producer and consumer throughput of the Swift client against kcat, same broker, same run.
struct KafkaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka",
        abstract: "Swift Kafka client vs kcat: producer and consumer throughput on the embedded broker."
    )

    @Option(
        help:
            "Messages per run. The embedded broker keeps about 5 MiB per partition, so keep messages x size / partitions under that to consume everything that was produced."
    )
    var messages: Int = 200_000

    @Option(help: "Bytes per message value.")
    var size: Int = 100

    @Option(help: "Partitions of the benchmark topics.")
    var partitions: Int = 8

    @Option(help: "Use this broker instead of starting an embedded one.")
    var bootstrap: String?

    @Option(name: .customLong("property"), help: "A librdkafka property (name=value) for every client, Swift and kcat alike; repeatable.")
    var properties: [String] = []

    @Option(help: "Path of kcat.")
    var kcat: String = "kcat"

    @OptionGroup var log: LogOptions

    func run() async throws {
        let logger = try log.logger("encompass.bench")
        guard let kcatPath = resolve(kcat) else {
            throw ValidationError("kcat not found; install it with: apt-get install -y kcat")
        }
        var cluster: MockKafkaCluster?
        let servers: String
        if let bootstrap {
            servers = bootstrap
        } else {
            let mock = try MockKafkaCluster(brokers: 1, logger: logger)
            cluster = mock
            servers = mock.bootstrapServers
        }
        defer { cluster?.shutdown() }
        let run = UUID().uuidString.prefix(6).lowercased()
        let swiftTopic = "bench.swift.\(run)"
        let kcatTopic = "bench.kcat.\(run)"
        if let cluster {
            try cluster.createTopic(swiftTopic, partitions: partitions)
            try cluster.createTopic(kcatTopic, partitions: partitions)
        }
        var extra: [String: String] = [:]
        for property in properties {
            let parts = property.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--property takes name=value, got '\(property)'") }
            extra[parts[0]] = parts[1]
        }
        let client = KafkaClientConfiguration(bootstrapServers: servers, clientId: "bench", properties: extra)
        let kcatExtra = properties.flatMap { ["-X", $0] }
        // The same producer settings for both: idempotent, acks=all, linger 5 ms.
        let sharedProducerProps = ["enable.idempotence=true", "acks=all", "linger.ms=5", "queue.buffering.max.messages=100000"]
        print(
            "Kafka client benchmark: \(messages) messages x \(size) bytes, \(partitions) partitions, broker \(servers)\(cluster != nil ? " (embedded mock cluster)" : "")"
        )
        print(
            "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB; \(Date().formatted(.iso8601))"
        )

        // Swift producer.
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        let producer = try KafkaProducer(configuration: .init(client: client), logger: logger)
        // Records are built inside the timed part, as kcat reads and splits its input file.
        // Warm-up outside the timing: a burst queued before the idempotent producer has its
        // producer id waits about a second inside librdkafka (see docs/BENCHMARKS.md).
        let warmStart = ContinuousClock.now
        // One warm-up record per partition, so the consumer can also start its timing once
        // every partition is fetching.
        try await producer.sendBatch((0..<Int32(partitions)).map { ProducerRecord(topic: swiftTopic, key: "warm-up", value: payload, partition: $0) })
        let warmUp = ContinuousClock.now - warmStart
        let produceStart = ContinuousClock.now
        try await producer.sendBatch((0..<messages).map { ProducerRecord(topic: swiftTopic, key: "k\($0)", value: payload) })
        let swiftProduce = ContinuousClock.now - produceStart
        await producer.close()

        // kcat producer: the same records from a file, one per line, with keys.
        let file = (NSTemporaryDirectory() as NSString).appendingPathComponent("encompass-bench-\(run).txt")
        var text = String()
        text.reserveCapacity(messages * (size + 10))
        let body = String(repeating: "x", count: size)
        for i in 0..<messages { text += "k\(i)\t\(body)\n" }
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let kcatProduce = try timed(
            kcatPath, ["-P", "-b", servers, "-t", kcatTopic, "-K", "\t", "-l", file] + sharedProducerProps.flatMap { ["-X", $0] } + kcatExtra)

        // Consume what the broker kept (the mock cluster drops the oldest records past ~5 MiB a partition).
        let admin = try KafkaAdmin(client: client, logger: logger)
        func retained(_ topic: String) async throws -> Int {
            var total: Int64 = 0
            for p in 0..<Int32(partitions) {
                let marks = try await admin.watermarks(TopicPartition(topic, p))
                total += marks.high - marks.low
            }
            return Int(total)
        }
        let swiftRetained = try await retained(swiftTopic)
        let kcatRetained = try await retained(kcatTopic)
        await admin.close()
        if swiftRetained < messages || kcatRetained < messages {
            print("note: the broker kept \(swiftRetained) (swift) and \(kcatRetained) (kcat) of \(messages) records; consumers read what was kept")
        }

        // Swift consumer: from the first record to the last (group join excluded, see below).
        let consumer = try KafkaConsumer(
            configuration: .init(client: client, groupId: "bench-\(run)", topics: [swiftTopic], bufferCapacity: 10_000, statisticsInterval: .zero),
            logger: logger)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(300))
            consumer.stopDelivery()
        }
        var iterator = consumer.makeAsyncIterator()
        var received = 0
        let joinStart = ContinuousClock.now
        // Start-up: group join and each partition's first offset lookup, up to the warm-up
        // record of every partition (they are the first record of each partition).
        var warmedPartitions = Set<Int32>()
        guard var last = try await iterator.next() else { throw ValidationError("consumer ended early") }
        received = 1
        warmedPartitions.insert(last.partition)
        while warmedPartitions.count < partitions {
            guard let record = try await iterator.next() else { throw ValidationError("consumer ended early") }
            received += 1
            warmedPartitions.insert(record.partition)
            last = record
        }
        let consumeStart = ContinuousClock.now
        let join = consumeStart - joinStart
        let timedFrom = received
        var longestGap = Duration.zero
        var previous = ContinuousClock.now
        while received < swiftRetained {
            guard let record = try await iterator.next() else { break }
            let now = ContinuousClock.now
            longestGap = Swift.max(longestGap, now - previous)
            previous = now
            received += 1
            let more = consumer.takeBuffered(limit: 10_000)
            received += more.count
            last = more.last ?? record
        }
        let swiftConsume = ContinuousClock.now - consumeStart
        watchdog.cancel()
        guard received >= swiftRetained else { throw ValidationError("swift consumer read \(received) of \(swiftRetained) records within 300 s") }
        consumer.storeOffsets([last])
        consumer.stopDelivery()
        await consumer.close()

        // kcat consumer: simple consumer (no group), whole process wall time.
        let kcatConsume = try timed(
            kcatPath, ["-C", "-b", servers, "-t", kcatTopic, "-o", "beginning", "-e", "-q", "-c", String(kcatRetained), "-f", "%o\\n"] + kcatExtra)

        let rows: [(String, Double, Double)] = [
            ("produce", Double(messages) / swiftProduce.seconds, Double(messages) / kcatProduce.seconds),
            ("consume", Double(swiftRetained - timedFrom) / swiftConsume.seconds, Double(kcatRetained) / kcatConsume.seconds),
        ]
        print("")
        print("operation   swift msg/s   kcat msg/s   swift/kcat   swift MiB/s")
        for (name, swift, kcat) in rows {
            print(
                String(
                    format: "%-10@ %12.0f %12.0f %11.0f%% %12.1f", name as NSString, swift, kcat, swift / kcat * 100,
                    swift * Double(size) / 1_048_576))
        }
        print("")
        print(
            String(
                format:
                    "excluded from the swift figures: producer warm-up (1 record per partition) %.3f s; consumer start-up (group join and first fetch of every partition, %d records) %.2f s",
                warmUp.seconds, timedFrom, join.seconds))
        print(String(format: "longest wait for records inside the swift consume: %.3f s", longestGap.seconds))
        print("kcat figures include its process start; both read the same broker in this process")
        print("target: swift within 80% of kcat (swift/kcat >= 80%)")
        print("swift records delivered: \(messages + partitions) (incl. warm-up); consumed: \(received) of \(swiftRetained) retained")
    }

    private func resolve(_ tool: String) -> String? {
        if tool.contains("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    private func timed(_ executable: String, _ arguments: [String]) throws -> Duration {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let start = ContinuousClock.now
        try process.run()
        process.waitUntilExit()
        let elapsed = ContinuousClock.now - start
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return elapsed
    }
}
