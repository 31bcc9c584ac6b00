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

    @Flag(help: "Measure the producers only (for profiling the produce path).")
    var produceOnly = false

    @OptionGroup var log: LogOptions

    func run() async throws {
        let logger = try log.logger("encompass.bench")
        guard let kcatPath = resolve(kcat) else {
            throw ValidationError("kcat not found; install it with: apt-get install -y kcat")
        }
        var cluster: MockKafkaCluster?
        let servers: String
        // The embedded broker runs in this process: its threads (those the cluster starts) are
        // left out of the Swift client's CPU time, and reported on their own.
        var brokerThreads = Set<Int32>()
        if let bootstrap {
            servers = bootstrap
        } else {
            let before = CPUTime.threadIds()
            let mock = try MockKafkaCluster(brokers: 1, logger: logger)
            brokerThreads = CPUTime.threadIds().subtracting(before)
            cluster = mock
            servers = mock.bootstrapServers
        }
        /// CPU time of the Swift client (this process without the broker) and of the broker, so far.
        func clientAndBrokerCPU() -> (client: Duration, broker: Duration) {
            let broker = CPUTime.threads(brokerThreads)
            return (CPUTime.process() - broker, broker)
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
        // The same producer settings for both: idempotent, acks=all, linger 5 ms (`--property` wins).
        let sharedProducerProps = ["enable.idempotence": "true", "acks": "all", "linger.ms": "5", "queue.buffering.max.messages": "100000"]
        var producerClient = client
        producerClient.properties = sharedProducerProps.merging(extra) { _, given in given }
        print(
            "Kafka client benchmark: \(messages) messages x \(size) bytes, \(partitions) partitions, broker \(servers)\(cluster != nil ? " (embedded mock cluster)" : "")"
        )
        print(
            "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB; \(Date().formatted(.iso8601))"
        )

        // Swift producer.
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        let producer = try KafkaProducer(configuration: .init(client: producerClient), logger: logger)
        // Records are built inside the timed part, as kcat reads and splits its input file.
        // Warm-up outside the timing: a burst queued before the idempotent producer has its
        // producer id waits about a second inside librdkafka (see docs/BENCHMARKS.md).
        let warmStart = ContinuousClock.now
        // One warm-up record per partition, so the consumer can also start its timing once
        // every partition is fetching.
        try await producer.sendBatch((0..<Int32(partitions)).map { ProducerRecord(topic: swiftTopic, key: "warm-up", value: payload, partition: $0) })
        let warmUp = ContinuousClock.now - warmStart
        let produceCPUStart = clientAndBrokerCPU()
        let produceStart = ContinuousClock.now
        try await producer.sendBatch((0..<messages).map { ProducerRecord(topic: swiftTopic, key: "k\($0)", value: payload) })
        let swiftProduce = ContinuousClock.now - produceStart
        let produceCPUEnd = clientAndBrokerCPU()
        await producer.close()

        // kcat producer: the same records from a file, one per line, with keys.
        let file = (NSTemporaryDirectory() as NSString).appendingPathComponent("encompass-bench-\(run).txt")
        var text = String()
        text.reserveCapacity(messages * (size + 10))
        let body = String(repeating: "x", count: size)
        for i in 0..<messages { text += "k\(i)\t\(body)\n" }
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let kcatProduceBroker = CPUTime.threads(brokerThreads)
        let kcatProduce = try CPUTime.run(
            kcatPath,
            ["-P", "-b", servers, "-t", kcatTopic, "-K", "\t", "-l", file]
                + sharedProducerProps.sorted { $0.key < $1.key }.flatMap { ["-X", "\($0.key)=\($0.value)"] } + kcatExtra)
        let kcatProduceBrokerCPU = CPUTime.threads(brokerThreads) - kcatProduceBroker
        var rows: [Row] = [
            Row(
                name: "produce", swiftRecords: messages, swiftWall: swiftProduce, swiftCPU: produceCPUEnd.client - produceCPUStart.client,
                swiftBrokerCPU: produceCPUEnd.broker - produceCPUStart.broker, kcatRecords: messages, kcatWall: kcatProduce.wall,
                kcatCPU: kcatProduce.cpu, kcatBrokerCPU: kcatProduceBrokerCPU)
        ]
        if produceOnly {
            print(Row.table(rows, size: size))
            print(String(format: "excluded from the swift figures: producer warm-up (1 record per partition) %.3f s", warmUp.seconds))
            return
        }

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
        let consumeCPUStart = clientAndBrokerCPU()
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
        let consumeCPUEnd = clientAndBrokerCPU()
        watchdog.cancel()
        guard received >= swiftRetained else { throw ValidationError("swift consumer read \(received) of \(swiftRetained) records within 300 s") }
        consumer.storeOffsets([last])
        consumer.stopDelivery()
        await consumer.close()

        // kcat consumer: simple consumer (no group), whole process wall time.
        let kcatConsumeBroker = CPUTime.threads(brokerThreads)
        let kcatConsume = try CPUTime.run(
            kcatPath, ["-C", "-b", servers, "-t", kcatTopic, "-o", "beginning", "-e", "-q", "-c", String(kcatRetained), "-f", "%o\\n"] + kcatExtra)
        rows.append(
            Row(
                name: "consume", swiftRecords: swiftRetained - timedFrom, swiftWall: swiftConsume,
                swiftCPU: consumeCPUEnd.client - consumeCPUStart.client, swiftBrokerCPU: consumeCPUEnd.broker - consumeCPUStart.broker,
                kcatRecords: kcatRetained, kcatWall: kcatConsume.wall, kcatCPU: kcatConsume.cpu,
                kcatBrokerCPU: CPUTime.threads(brokerThreads) - kcatConsumeBroker))
        print(Row.table(rows, size: size))
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

    /// One operation's figures: Swift and kcat, each with its CPU time and the broker's meanwhile.
    struct Row {
        var name: String
        var swiftRecords: Int
        var swiftWall: Duration
        var swiftCPU: Duration
        var swiftBrokerCPU: Duration
        var kcatRecords: Int
        var kcatWall: Duration
        var kcatCPU: Duration
        var kcatBrokerCPU: Duration

        static func table(_ rows: [Row], size: Int) -> String {
            var lines = [
                "",
                "operation   swift msg/s   kcat msg/s   swift/kcat   swift MiB/s",
            ]
            for row in rows {
                let swift = Double(row.swiftRecords) / row.swiftWall.seconds
                let kcat = Double(row.kcatRecords) / row.kcatWall.seconds
                lines.append(
                    String(
                        format: "%-10@ %12.0f %12.0f %11.0f%% %12.1f", row.name as NSString, swift, kcat, swift / kcat * 100,
                        swift * Double(size) / 1_048_576))
            }
            lines += [
                "",
                "CPU per record, user+sys (swift: this process without the broker's threads; kcat: its process, from wait4)",
                "operation   swift µs   kcat µs   kcat/swift   broker µs while swift   broker µs while kcat   swift CPU s   kcat CPU s",
            ]
            for row in rows {
                let swift = row.swiftCPU.seconds * 1e6 / Double(row.swiftRecords)
                let kcat = row.kcatCPU.seconds * 1e6 / Double(row.kcatRecords)
                lines.append(
                    String(
                        format: "%-10@ %9.2f %9.2f %11.0f%% %23.2f %22.2f %13.3f %12.3f", row.name as NSString, swift, kcat,
                        kcat / swift * 100, row.swiftBrokerCPU.seconds * 1e6 / Double(row.swiftRecords),
                        row.kcatBrokerCPU.seconds * 1e6 / Double(row.kcatRecords), row.swiftCPU.seconds, row.kcatCPU.seconds))
            }
            return lines.joined(separator: "\n")
        }
    }
}
