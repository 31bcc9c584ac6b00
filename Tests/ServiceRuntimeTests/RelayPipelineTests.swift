import CRdKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Testing

@testable import EncompassKafka
@testable import ServiceRuntime

/// The relay hands the rows committed while a batch awaits its acknowledgements to Kafka at
/// once; a failure sends the failed batch and everything after it again, in order.
@Suite("Outbox relay: batches in flight", .serialized, .tags(.kafka))
struct RelayPipelineTests {
    /// Queues notes `n<i>` (sequence i, message id `out-<i>`, key `k<i % 3>`) in one transaction.
    func queue(_ store: ServiceStore, to topic: String, _ range: Range<Int>) async throws {
        try await store.pool.write { db in
            let outbox = Outbox(db: db, producer: "test")
            for i in range { try outbox.publish(TestNote(text: "n\(i)", sequence: i), to: topic, key: "k\(i % 3)", id: "out-\(i)") }
        }
    }

    func outboxCount(_ store: ServiceStore) async throws -> Int {
        try await store.pool.read { try OutboxMessage.fetchCount($0) }
    }

    /// Runs the relay as a service does until `body` returns, then shuts it down gracefully.
    func whileRunning(_ relay: OutboxRelay, logger: Logger, _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(services: [relay], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        let task = Task { try await group.run() }
        do {
            try await body()
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await task.value
            throw error
        }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// A producer that has its metadata and producer id, so that a round trip set afterwards
    /// delays only the relay's batches.
    func warmProducer(_ kafka: TestKafka, topic: String, logger: Logger) async throws -> KafkaProducer {
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        _ = try await producer.send(ProducerRecord(topic: topic, key: "warm-up", value: Array("{}".utf8)))
        return producer
    }

    /// The notes on the topic in log order (the warm-up record left out), and what a consumer
    /// applies: the first copy of each message id (its inbox drops the rest), per key.
    func published(_ kafka: TestKafka, topic: String, count: Int) async throws -> (all: [Int], appliedPerKey: [String: [Int]]) {
        let records = try await readRecords(kafka, topic: topic, count: count + 1)
        var all: [Int] = []
        var seen: Set<String> = []
        var perKey: [String: [Int]] = [:]
        for record in records where record.key != Array("warm-up".utf8) {
            let envelope = try WireFormat.decode(TestNote.self, from: record.value)
            all.append(envelope.payload.sequence)
            guard seen.insert(envelope.id).inserted else { continue }
            perKey[envelope.key, default: []].append(envelope.payload.sequence)
        }
        return (all, perKey)
    }

    /// How many records the topic holds (the partitions' high watermarks).
    func recordCount(_ kafka: TestKafka, topic: String, partitions: Int32) async throws -> Int {
        let admin = try KafkaAdmin(client: kafka.client("counter"), logger: TestLog.logger("counter"))
        var total = 0
        for partition in 0..<partitions {
            total += Int(try await admin.watermarks(TopicPartition(topic, partition)).high)
        }
        await admin.close()
        return total
    }

    func expected(_ range: Range<Int>) -> [String: [Int]] {
        Dictionary(grouping: range, by: { "k\($0 % 3)" })
    }

    @Test("rows committed while a batch awaits its acknowledgements are handed to Kafka before they arrive, and published in order")
    func handsOverWhileInFlight() async throws {
        let kafka = try TestKafka()
        let output = try kafka.uniqueTopic("out", partitions: 3)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("relay-in-flight") + "/svc.sqlite")
        let logger = TestLog.logger("relay-in-flight")
        let producer = try await warmProducer(kafka, topic: output, logger: logger)
        let relay = OutboxRelay(
            store: store, producer: producer, metrics: ServiceMetrics(service: "test"), logger: logger, service: .intake, batchSize: 4)
        kafka.cluster.setBrokerRoundTripTime(1, milliseconds: 3000)
        try await whileRunning(relay, logger: logger) {
            try await queue(store, to: output, 0..<4)
            relay.wake()
            try await eventually("the first batch handed to Kafka", timeout: .seconds(10), interval: .milliseconds(5)) { producer.queuedCount == 4 }
            let handedOver = ContinuousClock.now
            try await queue(store, to: output, 4..<8)
            relay.wake()
            try await queue(store, to: output, 8..<12)
            relay.wake()
            // A relay that waited for the first batch's acknowledgement (3 s away) before it
            // read the next rows would never have all twelve in flight.
            try await eventually("the rows committed since handed over too", timeout: .seconds(10), interval: .milliseconds(5)) {
                producer.queuedCount == 12
            }
            #expect(ContinuousClock.now - handedOver < .seconds(3))
            #expect(try await outboxCount(store) == 12, "nothing is deleted before its acknowledgement")
            kafka.cluster.setBrokerRoundTripTime(1, milliseconds: 0)
            try await eventually("every batch acknowledged and deleted") { try await outboxCount(store) == 0 }
        }
        let (all, perKey) = try await published(kafka, topic: output, count: 12)
        #expect(all.sorted() == Array(0..<12), "each row published once")
        #expect(perKey == expected(0..<12))
    }

    @Test(
        "a failure while later batches are in flight: after all have settled, the failed batch and everything after it go again; nothing lost, per-key order kept"
    )
    func failureWithBatchesInFlight() async throws {
        let kafka = try TestKafka()
        let output = try kafka.uniqueTopic("out", partitions: 3)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("relay-in-flight-failure") + "/svc.sqlite")
        let logger = TestLog.logger("relay-in-flight-failure")
        // Deliveries fail when the broker has not answered within 1.5 s (ERR__MSG_TIMED_OUT: not
        // a refused record, so the relay backs off and sends again).
        let producer = try KafkaProducer(
            configuration: .init(client: kafka.client(properties: ["message.timeout.ms": "1500"])), logger: logger)
        _ = try await producer.send(ProducerRecord(topic: output, key: "warm-up", value: Array("{}".utf8)))
        let relay = OutboxRelay(
            store: store, producer: producer, metrics: ServiceMetrics(service: "test"), logger: logger, service: .intake, batchSize: 4)
        kafka.cluster.setBrokerRoundTripTime(1, milliseconds: 4000)
        try await whileRunning(relay, logger: logger) {
            try await queue(store, to: output, 0..<4)
            relay.wake()
            try await eventually("the first batch handed to Kafka", timeout: .seconds(10), interval: .milliseconds(5)) { producer.queuedCount == 4 }
            try await queue(store, to: output, 4..<8)
            relay.wake()
            try await queue(store, to: output, 8..<12)
            relay.wake()
            try await eventually("three batches in flight", timeout: .seconds(10), interval: .milliseconds(5)) { producer.queuedCount == 12 }
            try await eventually("every batch's delivery failed") { producer.queuedCount == 0 }
            #expect(try await outboxCount(store) == 12, "a failed batch and the batches behind it stay in the outbox")
            kafka.cluster.setBrokerRoundTripTime(1, milliseconds: 0)
            try await eventually("published again after the backoff") { try await outboxCount(store) == 0 }
        }
        // The broker may have written the timed-out records too: a consumer applies the first
        // copy of each id.
        let total = try await recordCount(kafka, topic: output, partitions: 3)
        let (all, perKey) = try await published(kafka, topic: output, count: total - 1)
        #expect(Set(all) == Set(0..<12), "nothing lost")
        #expect(perKey == expected(0..<12))
    }

    @Test("a row Kafka refuses in a batch behind one in flight: dead-lettered, the rest published once each as consumers apply them, in order")
    func refusedRowWithBatchesInFlight() async throws {
        let kafka = try TestKafka()
        let output = try kafka.uniqueTopic("out", partitions: 3)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("relay-in-flight-refused") + "/svc.sqlite")
        let logger = TestLog.logger("relay-in-flight-refused")
        let producer = try await warmProducer(kafka, topic: output, logger: logger)
        let relay = OutboxRelay(
            store: store, producer: producer, metrics: ServiceMetrics(service: "intake"), logger: logger, service: .intake, batchSize: 4)
        try await queue(store, to: output, 0..<6)
        // Over the producer's message.max.bytes: refused as it is handed over.
        try await store.pool.write { db in
            var row = OutboxMessage(
                messageId: "poison", topic: output, key: "k0",
                value: Data(try TestNote(text: String(repeating: "x", count: 1_200_000), sequence: 99).envelope(id: "poison")),
                headers: #"{"encompass-message-id":"poison"}"#, createdAt: Date())
            try row.insert(db)
        }
        try await queue(store, to: output, 6..<12)
        kafka.cluster.setBrokerRoundTripTime(1, milliseconds: 500)
        try await whileRunning(relay, logger: logger) {
            relay.wake()
            try await eventually("the outbox emptied") { try await outboxCount(store) == 0 }
        }
        let letters = try await store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.map(\.originalMessageId) == ["poison"])
        #expect(letters.first?.errorClass == "outbox.refused")
        // The refused row's batch ([4, 5, poison, 6]; 6 was not handed over) goes again row by
        // row: 4 and 5 twice.
        let (all, perKey) = try await published(kafka, topic: output, count: 14)
        #expect(all.sorted() == (Array(0..<12) + [4, 5]).sorted())
        #expect(perKey == expected(0..<12))
    }
}
