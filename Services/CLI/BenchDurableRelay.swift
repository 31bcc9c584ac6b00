import EncompassKafka
import EncompassModels
import Foundation
import Logging
import ServiceLifecycle
import ServiceRuntime

/// The second ceiling of `encompass bench pipeline`: the 5-hop relay again, but each hop is the
/// service runtime every Encompass service runs on, with no domain work. A hop's message worker
/// decodes the envelope, checks and records its id in the inbox, queues the same payload for the
/// next topic in the outbox, all in one SQLite transaction per batch (a savepoint per record),
/// and its outbox relay publishes the rows and deletes them. So this is the floor of a
/// service's cost per message, and the pipeline's distance from it is the services' own work.
///
/// The hops run in this process (as the raw relay's do), each with its own SQLite file.
struct DurableRelayCeiling {
    var partitions: Int
    var directory: String
    var properties: [String: String]
    var logger: Logger

    struct Result {
        var messagesPerSecond: Double
        /// CPU of this process (the five hops and the bench's own feeder and sink), ms per message.
        var cpuMillisecondsPerMessage: Double
    }

    func run(messages: Int, sample: IncidentRecorded) async throws -> Result {
        let cluster = try MockKafkaCluster(brokers: 1, logger: logger)
        defer { cluster.shutdown() }
        let topics = (0...5).map { "durable-relay.hop\($0)" }
        for topic in topics { try cluster.createTopic(topic, partitions: partitions) }
        let client = KafkaClientConfiguration(bootstrapServers: cluster.bootstrapServers, clientId: "durable-relay", properties: properties,
                                              consumerProperties: MockKafkaCluster.consumerProperties)
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var workers: [MessageWorker] = []
        var relays: [OutboxRelay] = []
        var consumers: [KafkaConsumer] = []
        for hop in 0..<5 {
            let configuration = ServiceConfiguration(service: .intake, kafka: client, groupId: "durable-relay-\(hop)",
                                                     dataDirectory: "\(directory)/hop\(hop)", createTopics: false)
            let store = try ServiceStore(path: configuration.databasePath)
            let metrics = ServiceMetrics(service: "durable-relay-\(hop)")
            let producer = try KafkaProducer(configuration: .init(client: client), logger: logger)
            let relay = OutboxRelay(store: store, producer: producer, metrics: metrics, logger: logger)
            let consumer = try KafkaConsumer(configuration: .init(client: client, groupId: configuration.groupId, topics: [topics[hop]]), logger: logger)
            let next = topics[hop + 1]
            let handler = TopicHandler.on(topics[hop], IncidentRecorded.self) { envelope, ctx in
                try ctx.outbox.publish(envelope.payload, to: next, key: envelope.key, id: MessageID.derived(from: envelope.id, "hop"),
                                       causationId: envelope.id, now: ctx.now)
            }
            workers.append(MessageWorker(consumer: consumer, store: store, handlers: [handler], configuration: configuration,
                                         metrics: metrics, relay: relay, logger: logger))
            relays.append(relay)
            consumers.append(consumer)
        }
        // Shut down in reverse: the workers stop first, then the relays drain.
        let services: [any Service] = relays + workers
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup) },
            logger: logger
        ))
        let running = Task { try await group.run() }

        let feeder = try KafkaProducer(configuration: .init(client: client), logger: logger)
        let sink = try KafkaConsumer(configuration: .init(client: client, groupId: "durable-relay-sink", topics: [topics[5]]), logger: logger)
        var iterator = sink.makeAsyncIterator()
        func pass(_ count: Int, prefix: String) async throws {
            let feed = Task {
                var batch: [ProducerRecord] = []
                for index in 0..<count {
                    let id = "\(prefix)-\(index)"
                    let envelope = Envelope(id: id, key: id, producer: "bench", payload: sample)
                    batch.append(ProducerRecord(topic: topics[0], key: id, value: try WireFormat.encode(envelope), headers: [
                        KafkaHeader(key: MessageHeader.messageId, string: id), KafkaHeader(key: MessageHeader.schema, string: IncidentRecorded.schema),
                        KafkaHeader(key: MessageHeader.version, string: String(IncidentRecorded.schemaVersion)),
                    ]))
                    if batch.count == 1_000 { try await feeder.sendBatch(batch); batch = [] }
                }
                if !batch.isEmpty { try await feeder.sendBatch(batch) }
            }
            var received = 0
            while received < count, let first = try await iterator.next() {
                let records = [first] + sink.takeBuffered(limit: 999)
                received += records.count
                sink.storeOffsets(records)
            }
            try await feed.value
        }
        let joinDeadline = ContinuousClock.now + .seconds(60)
        while !(consumers + [sink]).allSatisfy(\.hasJoinedGroup), ContinuousClock.now < joinDeadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await pass(partitions * 20, prefix: "warm")
        let cpuBefore = cpuSeconds(getpid()) ?? 0
        let started = ContinuousClock.now
        try await pass(messages, prefix: "m")
        let elapsed = ContinuousClock.now - started
        let cpu = (cpuSeconds(getpid()) ?? 0) - cpuBefore

        await group.triggerGracefulShutdown()
        _ = try? await running.value
        await sink.close()
        await feeder.close()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Result(messagesPerSecond: Double(messages) / seconds, cpuMillisecondsPerMessage: cpu * 1000 / Double(messages))
    }
}
