import EncompassKafka
import EncompassModels
import Foundation
import Logging
import ServiceLifecycle
import ServiceRuntime

/// The second ceiling of `encompass-bench pipeline`: the 5-hop relay again, but each hop is the
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

    /// Messages per second end to end, and this process's CPU per message (the five hops, the
    /// embedded broker, the feeder and the sink), as `RelayTiming.measure` gives them.
    func run(messages: Int, sample: IncidentRecorded) async throws -> (rate: Double, cpuMilliseconds: Double) {
        let (cluster, topics, client) = try RelayTiming.broker(name: "durable-relay", partitions: partitions, properties: properties, logger: logger)
        defer { cluster.shutdown() }
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var workers: [MessageWorker] = []
        var relays: [OutboxRelay] = []
        var consumers: [KafkaConsumer] = []
        for hop in 0..<5 {
            let configuration = ServiceConfiguration(
                service: .intake, kafka: client, groupId: "durable-relay-\(hop)",
                dataDirectory: "\(directory)/hop\(hop)", createTopics: false)
            let store = try ServiceStore(path: configuration.databasePath)
            let metrics = ServiceMetrics(service: "durable-relay-\(hop)")
            let producer = try KafkaProducer(configuration: .init(client: client), logger: logger)
            let relay = OutboxRelay(store: store, producer: producer, metrics: metrics, logger: logger, service: configuration.service)
            let consumer = try KafkaConsumer(
                configuration: .init(client: client, groupId: configuration.groupId, topics: [topics[hop]]), logger: logger)
            let next = topics[hop + 1]
            let handler = TopicHandler.on(topics[hop], IncidentRecorded.self) { envelope, ctx in
                try ctx.outbox.publish(
                    envelope.payload, to: next, key: envelope.key, id: MessageID.derived(from: envelope.id, "hop"),
                    causationId: envelope.id, now: ctx.now)
            }
            workers.append(
                MessageWorker(
                    consumer: consumer, store: store, handlers: [handler], configuration: configuration,
                    metrics: metrics, relay: relay, logger: logger))
            relays.append(relay)
            consumers.append(consumer)
        }
        // Shut down in reverse: the workers stop first, then the relays drain.
        let services: [any Service] = relays + workers
        let group = ServiceGroup(
            configuration: .init(
                services: services.map {
                    .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                logger: logger
            ))
        let running = Task { try await group.run() }

        let timing = RelayTiming(client: client, last: topics[5], partitions: partitions, hops: consumers, logger: logger)
        let measured: (rate: Double, cpuMilliseconds: Double)
        do {
            measured = try await timing.measure(messages: messages) { id in
                ProducerRecord(
                    topic: topics[0], key: id, value: try WireFormat.encode(Envelope(id: id, key: id, producer: "bench", payload: sample)),
                    headers: [
                        KafkaHeader(key: MessageHeader.messageId, string: id),
                        KafkaHeader(key: MessageHeader.schema, string: IncidentRecorded.schema),
                        KafkaHeader(key: MessageHeader.version, string: String(IncidentRecorded.schemaVersion)),
                    ])
            }
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        return measured
    }
}
