import CRdKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceLifecycle
import Testing

@testable import EncompassKafka
@testable import ServiceRuntime

/// One record Kafka refuses must not hold back the records behind it, silently.
@Suite("Poison records and the outbox", .serialized, .tags(.kafka))
struct PoisonRecordTests {
    /// Inserts an outbox row as it is, without `Outbox`'s size check: a row queued before the
    /// check existed, or under a larger limit than the brokers take.
    func insertRaw(_ store: ServiceStore, topic: String, id: String, value: [UInt8]) async throws {
        try await store.pool.write { db in
            var row = OutboxMessage(
                messageId: id, topic: topic, key: "k", value: Data(value),
                headers: #"{"encompass-message-id":"\#(id)"}"#, createdAt: Date())
            try row.insert(db)
        }
    }

    /// Relays until the outbox is empty; fails if five passes leave rows behind (a jam).
    func drain(_ relay: OutboxRelay, _ store: ServiceStore) async throws {
        var passes = 0
        while try await store.pool.read({ try OutboxMessage.fetchCount($0) }) > 0 {
            passes += 1
            try #require(passes <= 5, "the outbox still holds rows after 5 passes")
            try await relay.relayOnce()
        }
    }

    @Test(
        "a shutdown while the broker does not answer ends after the relay's grace, not the producer's delivery timeout; the rows stay in the outbox")
    func shutdownWithBrokerDown() async throws {
        let kafka = try TestKafka()
        let output = try kafka.uniqueTopic("out", partitions: 1)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("broker-down") + "/svc.sqlite")
        let logger = TestLog.logger("broker-down")
        kafka.cluster.setBrokerDown(1)
        try await queueNotes(store, to: output, 0..<3)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        let relay = OutboxRelay(
            store: store, producer: producer, metrics: ServiceMetrics(service: "intake"), logger: logger,
            service: .intake, shutdownGrace: .seconds(2))
        let group = ServiceGroup(services: [relay], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        let running = Task { try await group.run() }
        try await Task.sleep(for: .seconds(1))
        let asked = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await running.value
        let took = ContinuousClock.now - asked
        #expect(took < .seconds(20), "shutdown took \(took)")
        #expect(try await store.pool.read { try OutboxMessage.fetchCount($0) } == 3)
    }

    @Test("an over-size record in the outbox becomes a dead letter with its reason; the records behind it are published in order")
    func overSizeRowIsDeadLettered() async throws {
        let kafka = try TestKafka()
        let output = try kafka.uniqueTopic("out", partitions: 1)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("poison") + "/svc.sqlite")
        let logger = TestLog.logger("poison")
        try await queueNotes(store, to: output, 0..<5)
        let poison = try TestNote(text: String(repeating: "x", count: 1_200_000), sequence: 99).envelope()
        try await insertRaw(store, topic: output, id: "poison", value: poison)
        try await queueNotes(store, to: output, 5..<10)

        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        let metrics = ServiceMetrics(service: "intake")
        let relay = OutboxRelay(store: store, producer: producer, metrics: metrics, logger: logger, service: .intake, batchSize: 100)
        try await drain(relay, store)
        await producer.close()

        // The rows the batch published before the poison are published again by the row-by-row
        // pass (same message ids: consumers' inboxes drop them): 5 + 10 records.
        let records = try await readRecords(kafka, topic: output, count: 15)
        let sequences = try records.map { try WireFormat.decode(TestNote.self, from: $0.value).payload.sequence }
        var firstSeen: [Int] = []
        for sequence in sequences where !firstSeen.contains(sequence) { firstSeen.append(sequence) }
        #expect(firstSeen == Array(0..<10))
        #expect(Array(sequences.suffix(10)) == Array(0..<10))

        let letters = try await store.pool.read { try DeadLetter.fetchAll($0) }
        try #require(letters.count == 1)
        let letter = letters[0]
        #expect(letter.errorClass == "outbox.refused")
        #expect(letter.originalTopic == output)
        #expect(letter.originalPartition == DeadLetter.outboxPartition)
        #expect(letter.originalMessageId == "poison")
        #expect(letter.originalValue.count == poison.count)
        #expect(letter.errorMessage.contains("MSG_SIZE_TOO_LARGE"))
        #expect(letter.errorMessage.contains("replay"))
        #expect(metrics.exposition().contains(#"error_class="outbox.refused""#))

        // The dead-letter topic hears of it too; the 1.2 MB original stays in the table only.
        let events = try await readRecords(kafka, topic: ServiceName.intake.deadLetterTopic, count: 1)
        let event = try WireFormat.decode(DeadLetterEvent.self, from: try #require(events.first).value).payload
        #expect(event.errorClass == "outbox.refused")
        #expect(event.originalValue == nil && event.originalValueBase64 == nil)
        #expect(event.errorMessage.contains("kept in intake's deadLetter table"))

        // A replay goes back to the topic the row was for; as it is, it would be refused again,
        // so the size is checked first; an edited, smaller one is queued.
        PayloadSchemas.register(TestNote.self)
        let id = try #require(letter.id)
        try await store.pool.write { db in
            let outbox = Outbox(db: db, producer: "test")
            #expect(throws: OutboxError.self) { try DeadLetterOps.replay(db, id: id, actor: "test", editedValue: nil, outbox: outbox, now: Date()) }
            let fixed = try TestNote(text: "fixed", sequence: 99).envelope(id: "poison")
            let outcome = try DeadLetterOps.replay(db, id: id, actor: "test", editedValue: fixed, outbox: outbox, now: Date())
            #expect(outcome.topic == output && outcome.messageId == "poison")
        }
        #expect(try await store.pool.read { try OutboxMessage.fetchAll($0).map(\.topic) } == [output])
    }

    @Test("a record the broker refuses (INVALID_RECORD on produce) is dead-lettered; later ones flow")
    func brokerRefusal() async throws {
        let kafka = try TestKafka()
        let output = try kafka.uniqueTopic("out", partitions: 1)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("refused") + "/svc.sqlite")
        let logger = TestLog.logger("refused")
        try await queueNotes(store, to: output, 0..<1)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        _ = try await producer.send(ProducerRecord(topic: output, key: "warm-up", value: Array("{}".utf8))) // metadata and producer id first
        // The batch's try and the row's own try are both refused.
        kafka.cluster.pushRequestErrors(apiKey: KafkaApiKey.produce, errors: [RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR_INVALID_RECORD])
        let relay = OutboxRelay(store: store, producer: producer, metrics: ServiceMetrics(service: "intake"), logger: logger, service: .intake)
        #expect(try await relay.relayOnce() == 1)
        try await queueNotes(store, to: output, 1..<2)
        try await drain(relay, store)
        await producer.close()
        let letters = try await store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.map(\.errorClass) == ["outbox.refused"])
        #expect(letters.first?.errorMessage.contains("INVALID_RECORD") == true)
        let records = try await readRecords(kafka, topic: output, count: 2)
        #expect(records.compactMap { try? WireFormat.decode(TestNote.self, from: $0.value).payload.text } == ["n1"])
    }

    @Test("the outbox refuses a message over message.max.bytes before inserting it, with a typed error")
    func sizeCheckBeforeInsert() async throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("size") + "/svc.sqlite")
        let big = TestNote(text: String(repeating: "y", count: 1_000_000), sequence: 1)
        try await store.pool.write { db in
            let outbox = Outbox(db: db, producer: "test")
            #expect(throws: OutboxError.self) { try outbox.publish(big, to: "t", key: "k", id: "big") }
            do {
                try outbox.publish(big, to: "t", key: "k", id: "big")
            } catch let error as OutboxError {
                guard case .messageTooLarge(let topic, let bytes, let limit) = error else {
                    Issue.record("\(error)")
                    return
                }
                #expect(topic == "t" && bytes > 1_000_000 && limit == Outbox.defaultMaxMessageBytes)
                #expect(error.errorClass == "outbox.message-too-large")
                #expect(error.description.contains("ENCOMPASS_KAFKA_PROPERTY_MESSAGE_MAX_BYTES"))
            }
            // Just under the limit goes in; a smaller configured limit is honoured.
            try outbox.publish(TestNote(text: String(repeating: "y", count: 990_000), sequence: 2), to: "t", key: "k", id: "fits")
            let small = Outbox(db: db, producer: "test", maxMessageBytes: 10_000)
            #expect(throws: OutboxError.self) {
                try small.publish(TestNote(text: String(repeating: "z", count: 10_000), sequence: 3), to: "t", key: "k", id: "z")
            }
        }
        #expect(try await store.pool.read { try String.fetchAll($0, sql: "SELECT messageId FROM outbox") } == ["fits"])
        #expect(
            ServiceConfiguration(
                service: .intake, kafka: .init(bootstrapServers: "x", properties: ["message.max.bytes": "200000"]),
                dataDirectory: "/tmp"
            ).maxMessageBytes == 200_000)
    }

    @Test("a handler whose output would be too large: its input is dead-lettered with the reason, the records behind it are applied")
    func handlerOutputTooLarge() async throws {
        let kafka = try TestKafka()
        let input = try kafka.uniqueTopic("in", partitions: 1)
        let output = try kafka.uniqueTopic("out", partitions: 1)
        var config = configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: "g-\(UUID())")
        config.kafka.properties["message.max.bytes"] = "200000"
        let running = try await RunningHost(noteService(input: input, output: output), config)
        try await produce(
            kafka, topic: input,
            [
                ("k", try TestNote(text: "before", sequence: 1).envelope()),
                ("k", try TestNote(text: String(repeating: "g", count: 300_000), sequence: 2).envelope()),
                ("k", try TestNote(text: "after", sequence: 3).envelope()),
            ])
        try await eventually("both small notes applied") { try await running.notes() == ["before", "after"] }
        let letters = try await running.host.store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.map(\.errorClass) == ["outbox.message-too-large"])
        #expect(letters.first?.errorMessage.contains("200000 bytes Kafka takes") == true)
        let published = try await readRecords(kafka, topic: output, count: 2)
        #expect(published.compactMap { try? WireFormat.decode(TestNote.self, from: $0.value).payload.text } == ["BEFORE", "AFTER"])
        let events = try await readRecords(kafka, topic: ServiceName.intake.deadLetterTopic, count: 1)
        #expect(events.count == 1)
        try await running.stop()
    }

    @Test(
        "/readyz is not ready, with the reason, while the oldest outbox row waits longer than ENCOMPASS_OUTBOX_MAX_AGE_SECONDS; the age is a metric")
    func readinessFollowsOutboxAge() async throws {
        let kafka = try TestKafka()
        let input = try kafka.uniqueTopic("in", partitions: 1)
        let output = try kafka.uniqueTopic("out", partitions: 1)
        var config = configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: "g-\(UUID())")
        config.outboxMaxAge = .seconds(1)
        let running = try await RunningHost(noteService(input: input, output: output), config)
        let port = await running.host.httpPort()
        try await eventually("ready") { try await httpGet("http://127.0.0.1:\(port)/readyz").status == 200 }
        kafka.cluster.setBrokerDown(1)
        try await running.host.environment.write { _, outbox in
            _ = try outbox.publish(TestNote(text: "waits", sequence: 1), to: output, key: "k", id: "waits")
        }
        try await eventually("not ready", timeout: .seconds(20)) {
            let answer = try await httpGet("http://127.0.0.1:\(port)/readyz")
            return answer.status == 503 && answer.body.contains("oldest outbox row has waited")
        }
        let metrics = try await httpGet("http://127.0.0.1:\(port)/metrics").body
        let age = metrics.split(separator: "\n").first { $0.hasPrefix("encompass_outbox_oldest_age_seconds{") }
        #expect((age?.split(separator: " ").last.flatMap { Double($0) } ?? 0) >= 1)
        kafka.cluster.setBrokerUp(1)
        try await eventually("published and ready again", timeout: .seconds(30)) {
            let pending = try await running.host.store.pool.read { try OutboxMessage.fetchCount($0) }
            guard pending == 0 else { return false }
            return try await httpGet("http://127.0.0.1:\(port)/readyz").status == 200
        }
        try await running.stop()
    }
}
