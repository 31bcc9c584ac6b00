import ArgumentParser
import EncompassDemo
import EncompassKafka
import EncompassModels
import Foundation
import Logging
import ServiceRuntime
import WebSupport

/// `encompass-bench pipeline`: incidents per second through all five services (as processes on
/// the embedded broker), latency from intake to scheduled, and in the same run the ceiling: a
/// raw 5-hop relay through the same kind of broker with the same Swift Kafka client.
struct PipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "End-to-end throughput and latency of the pipeline vs a raw 5-hop Kafka relay, same run.",
        discussion: """
            Phase 1: a raw relay (consume → produce, no work) through 5 hops, the ceiling; then the \
            same 5 hops through the service runtime (inbox, outbox, one SQLite transaction per batch, \
            envelope decoded and encoded; no domain work), the floor of a service's cost per message. \
            Phase 2: --incidents incidents (one eligible child each) written to encompass.incidents.raw \
            as fast as the producer goes, until scheduling has scheduled every notice: incidents/s end \
            to end. Phase 3: --paced incidents offered at --rate per second: p50/p99 latency from \
            intake (the raw record's timestamp) to scheduled (the scheduled event's); and for the \
            --escalations share of them, made notices due at once (high risk while their schools are \
            on half term: escalated to the force's Education Safeguarding Manager), from intake to \
            the mail's acceptance by an SMTP server on loopback. Then each \
            process's peak resident memory. The embedded broker keeps about 5 MiB per partition, so \
            the topics get --partitions partitions.
            """
    )

    @Option(help: "Incidents for the throughput phase.")
    var incidents: Int = 100_000
    @Option(help: "Incidents for the paced latency phase (0: no latency phase).")
    var paced: Int = 3_000
    @Option(help: "Offered load of the latency phase, incidents per second.")
    var rate: Int = 200
    @Option(
        help:
            "Share of the paced incidents made due at once (high risk while their schools are on half term: escalated to the Education Safeguarding Manager and mailed through an SMTP server on loopback, python3 with aiosmtpd); 0: no mail figure."
    )
    var escalations: Double = 0.1
    @Option(help: "Messages through the raw relay (default: --incidents).")
    var relayMessages: Int?
    @Option(help: "Partitions per topic.")
    var partitions: Int = 48
    @Option(help: "Folder for the run's logs and stores.")
    var dir: String = "var/bench-pipeline"
    @Option(help: "Intake's HTTP port; the other services and the console take the next five.")
    var basePort: Int = 28_081
    @Flag(
        help:
            "Also follow the topics between intake and scheduling, and print the paced phase's latency per hop (the watcher's decoding shares the machine with the run)."
    )
    var hops = false
    @Flag(help: "Skip the durable relay (the service runtime's 5 hops with no domain work).")
    var noDurableRelay = false
    @Flag(help: "Measure the two relays only (raw and durable), not the pipeline: for comparing builds of the service runtime.")
    var relaysOnly = false
    @Option(
        name: .customLong("property"), help: "A librdkafka property NAME=VALUE for every client of the run, relay and services alike (repeatable).")
    var properties: [String] = []
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard incidents >= 1 else { throw ValidationError("--incidents must be at least 1, got \(incidents)") }
        guard paced >= 0 else { throw ValidationError("--paced must be 0 (no latency phase) or more, got \(paced)") }
        guard rate >= 1 else { throw ValidationError("--rate must be at least 1 incident per second, got \(rate)") }
        guard (0...1).contains(escalations) else { throw ValidationError("--escalations is a share from 0 to 1, got \(escalations)") }
    }

    /// The --property options as librdkafka properties.
    func kafkaProperties() throws -> [String: String] {
        var result: [String: String] = [:]
        for item in properties {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--property takes NAME=VALUE, got \(item)") }
            result[parts[0]] = parts[1]
        }
        return result
    }

    func run() async throws {
        let logger = try log.logger("encompass.bench")
        let extra = try kafkaProperties()
        let schools = try SchoolList.read(path: SchoolList.shippedFile)
        let day = CalendarDate(year: 2026, month: 11, day: 23)
        print(
            "pipeline benchmark: \(incidents) incidents (+\(paced) paced at \(rate)/s), \(partitions) partitions; \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB; \(Date().formatted(.iso8601))"
        )

        // Phase 1: the ceiling.
        let sample = try WireFormat.data(WorldGenerator.eligibleIncidents(count: 1, day: day, schools: schools, seed: 1)[0])
        let (relay, relayCPU) = try await relayCeiling(messages: relayMessages ?? incidents, size: sample.count, properties: extra, logger: logger)
        print(
            String(
                format: "raw 5-hop relay (Swift client, embedded broker, %d-byte messages): %.0f msg/s end to end, CPU %.3f ms per message",
                sample.count, relay, relayCPU))
        try? FileManager.default.removeItem(atPath: dir)
        if !noDurableRelay {
            let recorded = IncidentRecorded(
                kind: .new, revision: 1, changes: [], source: "feed",
                incident: WorldGenerator.eligibleIncidents(count: 1, day: day, schools: schools, seed: 1)[0])
            let durable = try await DurableRelayCeiling(partitions: partitions, directory: "\(dir)/durable-relay", properties: extra, logger: logger)
                .run(messages: relayMessages ?? incidents, sample: recorded)
            print(
                String(
                    format:
                        "durable 5-hop relay (the service runtime, no domain work): %.0f msg/s end to end (%.0f%% of the raw relay), CPU %.3f ms per message",
                    durable.rate, 100 * durable.rate / relay, durable.cpuMilliseconds))
        }

        if relaysOnly { return }

        // Phase 2 and 3: the pipeline.
        try? FileManager.default.removeItem(atPath: dir)
        let mail = paced > 0 && escalations > 0 ? EscalationMail(port: basePort + 9, folder: "\(dir)/smtp-accepted") : nil
        let pipeline = LocalPipeline(
            .init(
                binDirectory: binDirectory(), directory: dir, basePort: basePort, partitions: partitions,
                environment: serviceEnvironment(extra).merging(mail?.environment ?? [:]) { _, smtp in smtp }))
        var smtpServer: Process?
        defer { smtpServer?.terminate() }
        do {
            try await pipeline.start(clock: day.at(hour: 23, minute: 30))
            let all = WorldGenerator.eligibleIncidents(count: incidents + paced, day: day, schools: schools, seed: 42)
            let urns = Set(all.flatMap { $0.children.compactMap { $0.school?.urn } })
            let contacts =
                "urn,role,name,email,phone\r\n" + urns.sorted().map { "\($0),dsl,DSL,dsl.\($0)@schools.example.org.uk," }.joined(separator: "\r\n")
            _ = try await pipeline.client(.schoolResolution).call(
                "POST", "/v1/contacts/import", query: ["name": "contacts.csv"], raw: Data(contacts.utf8), contentType: "text/csv")
            try await pipeline.quiet(stable: .seconds(2))
            let bootstrap = try String(contentsOfFile: pipeline.bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let client = KafkaClientConfiguration(
                bootstrapServers: bootstrap, clientId: "bench-pipeline", properties: extra,
                consumerProperties: MockKafkaCluster.consumerProperties)
            let watcher = try ScheduledWatcher(client: client, hops: hops, escalations: mail != nil, logger: logger)

            let throughputSet = Array(all.prefix(incidents))
            let processes = await pipeline.processIds()
            let cpuBefore = processes.mapValues { cpuSeconds($0) ?? 0 }
            // Flushed before the feed, so a profiler driving the run can start counting here.
            print("pipeline: feeding \(incidents) incidents")
            fflush(nil)
            let started = Date()
            try await feed(throughputSet, client: client, perSecond: nil, logger: logger)
            let finished = try await watcher.wait(for: Set(throughputSet.map(\.occurrenceNumber)), timeout: .seconds(3_600))
            let seconds = finished.timeIntervalSince(started)
            let throughput = Double(incidents) / seconds
            print(
                String(
                    format: "pipeline: %d incidents intake → scheduled in %.1f s = %.0f incidents/s (%.0f%% of the relay ceiling)",
                    incidents, seconds, throughput, 100 * throughput / relay))
            // CPU time per incident and process: unlike the rate, it hardly moves when something
            // else shares the machine, so it compares runs and shows where the time goes.
            for (name, pid) in processes.sorted(by: { $0.key < $1.key }) {
                guard let after = cpuSeconds(pid) else { continue }
                let used = after - (cpuBefore[name] ?? 0)
                print(String(format: "  cpu %@: %.1f s = %.3f ms per incident", name, used, used * 1000 / Double(incidents)))
            }
            let bulk = watcher.latencies(Set(throughputSet.map(\.occurrenceNumber)))
            print(String(format: "  latency under full load: p50 %.0f ms, p99 %.0f ms", percentile(bulk, 0.5) * 1000, percentile(bulk, 0.99) * 1000))

            // --paced 0 skips the latency phase.
            if paced > 0 {
                var pacedSet = Array(all.suffix(paced))
                if let mail {
                    smtpServer = try await mail.startServer()
                    for index in evenlySpread(count: pacedSet.count, share: escalations) { pacedSet[index].riskLevel = .high }
                    try await mail.prepare(pipeline, urns: Set(pacedSet.flatMap { $0.children.compactMap { $0.school?.urn } }), forceCode: "43")
                }
                let before = await pipeline.figures()
                try await feed(pacedSet, client: client, perSecond: rate, logger: logger)
                _ = try await watcher.wait(for: Set(pacedSet.map(\.occurrenceNumber)), timeout: .seconds(600))
                let latencies = watcher.latencies(Set(pacedSet.map(\.occurrenceNumber)))
                print(
                    String(
                        format: "latency at %d incidents/s offered: p50 %.0f ms, p99 %.0f ms (intake → scheduled, %d incidents)",
                        rate, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000, latencies.count))
                for hop in watcher.hopLatencies(Set(pacedSet.map(\.occurrenceNumber))) {
                    print(
                        String(
                            format: "  hop %@: p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d incidents)", hop.service,
                            percentile(hop.seconds, 0.5) * 1000, percentile(hop.seconds, 0.99) * 1000, (hop.seconds.last ?? .nan) * 1000,
                            hop.seconds.count))
                }
                if hops { printHopParts(before: before, after: await pipeline.figures()) }
                if let mail {
                    let wanted = evenlySpread(count: pacedSet.count, share: escalations).count
                    // Each escalation is released just after it is scheduled: wait for the last ones.
                    var escalated = watcher.escalationStarts(Set(pacedSet.map(\.occurrenceNumber)))
                    let deadline = ContinuousClock.now + .seconds(60)
                    while escalated.count < wanted, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(200))
                        escalated = watcher.escalationStarts(Set(pacedSet.map(\.occurrenceNumber)))
                    }
                    let accepted = try await mail.accepted(for: escalated, timeout: .seconds(120))
                    let spans = AcceptedMail.spans(notices: escalated, accepted: accepted)
                    print(
                        String(
                            format:
                                "mail accepted for notices due at once (escalations): p50 %.0f ms, p99 %.0f ms, max %.0f ms (intake → SMTP server accepted, %d mails; %d incidents made high risk, %d escalated)",
                            percentile(spans, 0.5) * 1000, percentile(spans, 0.99) * 1000, (spans.last ?? .nan) * 1000, spans.count, wanted,
                            escalated.count))
                }
            }
            await printPeakMemory(pipeline)
            await watcher.close()
        } catch {
            await pipeline.stopAll()
            throw error
        }
        await pipeline.stopAll()
    }

    /// With --hops: where each service's part of a hop went in the paced phase, from the
    /// histograms on its /metrics (read before and after the phase): a record's wait from its
    /// producer's send to the batch that applies it (linger, broker, fetch wait, hand-over), the
    /// batch applied and committed, the outbox relay's wait after the commit, and the relay's
    /// publish until Kafka acknowledged. Estimates interpolated inside the histograms' buckets.
    func printHopParts(before: PipelineFigures, after: PipelineFigures) {
        let work: [(ServiceName, String)] = [
            (.intake, Topics.incidentsRaw.name), (.childResearch, Topics.incidents.name), (.schoolResolution, Topics.children.name),
            (.scheduling, Topics.noticeRequests.name), (.dispatch, Topics.noticesDue.name),
        ]
        func figure(_ service: ServiceName, _ metric: String, _ labels: [String]) -> String {
            let buckets = after.histogram(service, metric, labels: labels).subtracting(before.histogram(service, metric, labels: labels))
            guard let p50 = buckets.quantile(0.5), let p99 = buckets.quantile(0.99) else { return "–" }
            return String(format: "%.1f/%.1f", p50 * 1000, p99 * 1000)
        }
        print(
            "  where a hop's time goes (p50/p99 ms, paced phase, from /metrics): record wait (send → batch), batch applied and committed, relay wait, publish → acknowledged"
        )
        for (service, topic) in work {
            let topicLabel = "topic=\"\(topic)\""
            print(
                "    \(service.rawValue) (\(topic)): \(figure(service, "encompass_record_wait_seconds", [topicLabel])), "
                    + "\(figure(service, "encompass_processing_duration_seconds", [topicLabel])), "
                    + "\(figure(service, "encompass_outbox_relay_wait_seconds", [])), \(figure(service, "encompass_outbox_publish_duration_seconds", []))"
            )
        }
    }

    /// The services' environment: quiet logs, and the run's librdkafka properties passed through.
    func serviceEnvironment(_ properties: [String: String]) -> [String: String] {
        var environment = ["ENCOMPASS_LOG_LEVEL": "warning"]
        for (name, value) in properties {
            environment[ServiceConfiguration.kafkaPropertyVariable(name)] = value
        }
        return environment
    }

    /// Writes incidents to the records-feed topic, as fast as possible or paced.
    func feed(_ incidents: [Incident], client: KafkaClientConfiguration, perSecond: Int?, logger: Logger) async throws {
        let producer = try KafkaProducer(configuration: .init(client: client), logger: logger)
        let encoder = WireFormat.encoder()
        let started = ContinuousClock.now
        var batch: [ProducerRecord] = []
        for (index, incident) in incidents.enumerated() {
            batch.append(ProducerRecord(topic: Topics.incidentsRaw.name, key: incident.occurrenceNumber, value: Array(try encoder.encode(incident))))
            if let perSecond {
                try await producer.sendBatch(batch)
                batch = []
                let due = started + .milliseconds(Int64((index + 1) * 1000 / perSecond))
                if due > ContinuousClock.now { try await Task.sleep(until: due) }
            } else if batch.count == 1_000 {
                try await producer.sendBatch(batch)
                batch = []
            }
        }
        if !batch.isEmpty { try await producer.sendBatch(batch) }
        await producer.close()
    }

    /// The raw relay: hop 0 → 5 through five consume-produce relays with the Swift client.
    /// Returns messages per second and this process's CPU per message (relays, broker, feeder and sink).
    func relayCeiling(messages: Int, size: Int, properties: [String: String], logger: Logger) async throws -> (rate: Double, cpuMilliseconds: Double)
    {
        let (cluster, topics, client) = try RelayTiming.broker(
            name: "relay", partitions: partitions, properties: properties, oneRequestInFlight: false, logger: logger)
        defer { cluster.shutdown() }
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        var relays: [Task<Void, any Error>] = []
        var consumers: [KafkaConsumer] = []
        for hop in 0..<5 {
            let consumer = try KafkaConsumer(configuration: .init(client: client, groupId: "relay-\(hop)", topics: [topics[hop]]), logger: logger)
            consumers.append(consumer)
            let out = try KafkaProducer(configuration: .init(client: client), logger: logger)
            let next = topics[hop + 1]
            relays.append(
                Task {
                    var iterator = consumer.makeAsyncIterator()
                    while let first = try await iterator.next() {
                        let records = [first] + consumer.takeBuffered(limit: 999)
                        try await out.sendBatch(records.map { ProducerRecord(topic: next, key: $0.key, value: $0.value) })
                        consumer.storeOffsets(records)
                    }
                    await out.close()
                })
        }
        let measured = try await RelayTiming(client: client, last: topics[5], partitions: partitions, hops: consumers, logger: logger)
            .measure(messages: messages) { id in ProducerRecord(topic: topics[0], key: id, value: payload) }
        for consumer in consumers { consumer.stopDelivery() }
        for relay in relays { _ = try? await relay.value }
        for consumer in consumers { await consumer.close() }
        return measured
    }
}

/// Times a 5-hop relay from outside: feeds the first topic (the records `measure` is given to
/// send), reads the last, and measures a pass of `messages` records after every group has joined
/// and a warm-up pass has been through.
struct RelayTiming {
    var client: KafkaClientConfiguration
    var last: String
    var partitions: Int
    /// The hops' consumers, waited for until they have joined their groups.
    var hops: [KafkaConsumer]
    var logger: Logger

    /// An embedded broker of its own for a relay `name`, with its six topics (`name.hop0` … `hop5`).
    /// `oneRequestInFlight` gives its producers the setting the services run with on the embedded
    /// broker (`MockKafkaCluster.producerProperties`); the raw relay keeps librdkafka's default of
    /// five, the strongest baseline (no produce fails in a relay run, so the mock's unchecked
    /// sequence numbers lose nothing there).
    static func broker(
        name: String, partitions: Int, properties: [String: String], oneRequestInFlight: Bool = true, logger: Logger
    ) throws
        -> (cluster: MockKafkaCluster, topics: [String], client: KafkaClientConfiguration)
    {
        let cluster = try MockKafkaCluster(brokers: 1, logger: logger)
        let topics = (0...5).map { "\(name).hop\($0)" }
        for topic in topics { try cluster.createTopic(topic, partitions: partitions) }
        let client = KafkaClientConfiguration(
            bootstrapServers: cluster.bootstrapServers, clientId: name, properties: properties,
            consumerProperties: MockKafkaCluster.consumerProperties,
            // `--property` may set these too (to measure what they cost).
            producerProperties: oneRequestInFlight ? MockKafkaCluster.producerProperties.filter { properties[$0.key] == nil } : [:])
        return (cluster, topics, client)
    }

    /// Messages per second end to end, and this process's CPU per message (everything the
    /// process runs: relays, embedded broker, feeder and sink).
    func measure(messages: Int, record: @escaping @Sendable (_ id: String) throws -> ProducerRecord) async throws -> (
        rate: Double, cpuMilliseconds: Double
    ) {
        let producer = try KafkaProducer(configuration: .init(client: client), logger: logger)
        let sink = try KafkaConsumer(configuration: .init(client: client, groupId: "\(last).sink", topics: [last]), logger: logger)
        var iterator = sink.makeAsyncIterator()
        /// Sends `count` records into the first hop and waits until the sink has them all.
        func pass(_ count: Int, prefix: String) async throws {
            let feeder = Task {
                var batch: [ProducerRecord] = []
                for index in 0..<count {
                    batch.append(try record("\(prefix)-\(index)"))
                    if batch.count == 1_000 {
                        try await producer.sendBatch(batch)
                        batch = []
                    }
                }
                if !batch.isEmpty { try await producer.sendBatch(batch) }
            }
            var received = 0
            while received < count, let first = try await iterator.next() {
                let records = [first] + sink.takeBuffered(limit: 999)
                received += records.count
                sink.storeOffsets(records)
            }
            try await feeder.value
        }
        // Not timed: every group joins (about 3 s each on the mock) and every partition of
        // every hop has been fetched once, so the figure is the relay's rate, not start-up.
        let joinDeadline = ContinuousClock.now + .seconds(60)
        while !(hops + [sink]).allSatisfy(\.hasJoinedGroup), ContinuousClock.now < joinDeadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await pass(partitions * 20, prefix: "warm")
        let cpuBefore = cpuSeconds(getpid()) ?? 0
        let started = ContinuousClock.now
        try await pass(messages, prefix: "m")
        let elapsed = ContinuousClock.now - started
        let cpu = (cpuSeconds(getpid()) ?? 0) - cpuBefore
        await sink.close()
        await producer.close()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return (Double(messages) / seconds, cpu * 1000 / Double(messages))
    }
}

/// Follows one topic from its start and notes, per occurrence, the broker timestamp of the first
/// record that `occurrence` names (nil: not one to note).
final class FirstSeen: Sendable {
    private let consumer: KafkaConsumer
    private let task: Task<Void, any Error>
    private let times = Locked<[String: Date]>([:])

    init(
        client: KafkaClientConfiguration, topic: TopicDefinition, logger: Logger,
        occurrence: @escaping @Sendable (KafkaRecord) -> String?
    ) throws {
        let consumer = try KafkaConsumer(
            configuration: .init(
                client: client, groupId: "bench-\(MessageID.fresh())", topics: [topic.name],
                bufferCapacity: 10_000), logger: logger)
        let times = self.times
        self.consumer = consumer
        task = Task {
            for try await record in consumer {
                if let key = occurrence(record) {
                    let at = record.timestamp ?? Date()
                    times.withLock { if $0[key] == nil { $0[key] = at } }
                }
                consumer.storeOffsets([record])
            }
        }
    }

    func snapshot() -> [String: Date] { times.withLock { $0 } }

    func close() async {
        consumer.stopDelivery()
        _ = try? await task.value
        await consumer.close()
    }
}

/// Notes when each occurrence's raw record was written and its notice scheduled (broker
/// timestamps), and with `hops`, when it reached each topic between: where a slow incident
/// spent its time.
final class ScheduledWatcher: Sendable {
    private let raw: FirstSeen
    private let scheduled: FirstSeen
    /// The stages between, in pipeline order, named by the service that writes the topic.
    private let between: [(service: String, topic: FirstSeen)]

    private static let escalatedKind = Array("\"escalated\"".utf8)
    /// Escalations released (`escalated` events), keyed by notice id and occurrence (nil: not followed).
    private let escalated: FirstSeen?

    init(client: KafkaClientConfiguration, hops: Bool, escalations: Bool = false, logger: Logger) throws {
        raw = try FirstSeen(client: client, topic: Topics.incidentsRaw, logger: logger) { $0.keyString }
        escalated =
            escalations
            ? try FirstSeen(client: client, topic: Topics.noticeEvents, logger: logger) { record in
                // Only escalations are decoded: the throughput phase's events pass by this watcher too.
                guard record.value.firstRange(of: Self.escalatedKind) != nil,
                    let event = try? WireFormat.decode(NoticeEvent.self, from: record.value), event.payload.kind == .escalated
                else { return nil }
                return event.payload.noticeId + "\t" + event.payload.occurrenceNumber
            } : nil
        scheduled = try FirstSeen(client: client, topic: Topics.noticeEvents, logger: logger) { record in
            guard let event = try? WireFormat.decode(NoticeEvent.self, from: record.value), event.payload.kind == .scheduled else { return nil }
            return event.payload.occurrenceNumber
        }
        between =
            hops
            ? [
                ("intake", try FirstSeen(client: client, topic: Topics.incidents, logger: logger) { $0.keyString }),
                (
                    "child research",
                    try FirstSeen(client: client, topic: Topics.children, logger: logger) { record in
                        (try? WireFormat.decode(ChildIdentified.self, from: record.value))?.payload.incident.occurrenceNumber
                    }
                ),
                (
                    "school resolution",
                    try FirstSeen(client: client, topic: Topics.noticeRequests, logger: logger) { record in
                        (try? WireFormat.decode(NoticeRequested.self, from: record.value))?.payload.incident.occurrenceNumber
                    }
                ),
            ] : []
    }

    /// Waits until every occurrence was scheduled; returns when the last one was.
    func wait(for occurrences: Set<String>, timeout: Duration) async throws -> Date {
        if occurrences.isEmpty { return Date() }
        let deadline = ContinuousClock.now + timeout
        var lastReport = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let map = scheduled.snapshot()
            let times = occurrences.compactMap { map[$0] }
            if times.count == occurrences.count, let last = times.max() { return last }
            if ContinuousClock.now - lastReport > .seconds(10) {
                print("  … \(times.count)/\(occurrences.count) scheduled")
                lastReport = ContinuousClock.now
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ValidationError("not every incident was scheduled in \(timeout); see the logs")
    }

    /// Each released escalation of these occurrences (notice id) → its incident's raw record time.
    func escalationStarts(_ occurrences: Set<String>) -> [String: Date] {
        guard let escalated else { return [:] }
        let raw = raw.snapshot()
        var starts: [String: Date] = [:]
        for key in escalated.snapshot().keys {
            let parts = key.split(separator: "\t", maxSplits: 1).map(String.init)
            guard parts.count == 2, occurrences.contains(parts[1]), let start = raw[parts[1]] else { continue }
            starts[parts[0]] = start
        }
        return starts
    }

    /// Seconds from raw record to scheduled, sorted.
    func latencies(_ occurrences: Set<String>) -> [Double] {
        Self.spans(occurrences, from: raw.snapshot(), to: scheduled.snapshot())
    }

    /// Per hop, in pipeline order, the seconds each occurrence spent on it (from the record it
    /// consumed to the first record it wrote), sorted. Empty without `hops`.
    func hopLatencies(_ occurrences: Set<String>) -> [(service: String, seconds: [Double])] {
        guard !between.isEmpty else { return [] }
        let stages = [raw.snapshot()] + between.map { $0.topic.snapshot() } + [scheduled.snapshot()]
        let names = between.map(\.service) + ["scheduling"]
        return names.indices.map { (names[$0], Self.spans(occurrences, from: stages[$0], to: stages[$0 + 1])) }
    }

    static func spans(_ occurrences: Set<String>, from start: [String: Date], to end: [String: Date]) -> [Double] {
        occurrences.compactMap { key in
            guard let to = end[key], let from = start[key] else { return nil }
            return max(0, to.timeIntervalSince(from))
        }.sorted()
    }

    func close() async {
        for watcher in [raw, scheduled] + between.map(\.topic) + (escalated.map { [$0] } ?? []) { await watcher.close() }
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}

/// Each process's peak resident memory, one line each.
func printPeakMemory(_ pipeline: LocalPipeline) async {
    for (name, pid) in await pipeline.processIds().sorted(by: { $0.key < $1.key }) {
        print("  peak resident memory \(name): \(peakResidentMiB(pid).map { String(format: "%.0f MiB", $0) } ?? "?")")
    }
}

/// User plus system CPU time of a process so far, seconds (/proc/PID/stat, in clock ticks).
func cpuSeconds(_ pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// VmHWM of a process, MiB.
func peakResidentMiB(_ pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kib = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Double($0) })
    else { return nil }
    return kib / 1024
}
