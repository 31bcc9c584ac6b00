import CRdKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import Testing

@testable import EncompassKafka
@testable import ServiceRuntime

struct TransientTestError: Error, CustomStringConvertible {
    var description: String { "simulated transient failure" }
}

/// A small service for runtime tests: stores each note, optionally publishes it upper-cased.
/// Text "always-fails" fails transiently forever; names in `flaky` fail that many times first;
/// text "reject" is refused permanently by the handler.
func noteService(input: String, output: String?, flaky: Locked<[String: Int]> = Locked([:])) -> ServiceDefinition {
    ServiceDefinition(
        service: .intake,
        migrations: [
            StoreMigration("notes-v1") { db in
                try db.create(table: "note") { t in
                    t.primaryKey("messageId", .text)
                    t.column("text", .text).notNull()
                    t.column("sequence", .integer).notNull()
                }
            }
        ],
        handlers: [
            .on(input, TestNote.self) { envelope, context in
                let text = envelope.payload.text
                if text == "always-fails" { throw TransientTestError() }
                if text == "reject" { throw RejectedMessage(errorClass: "note.rejected", reason: "notes saying 'reject' are refused") }
                let failNow = flaky.withLock { remaining -> Bool in
                    guard let n = remaining[text], n > 0 else { return false }
                    remaining[text] = n - 1
                    return true
                }
                if failNow { throw TransientTestError() }
                try context.db.execute(
                    sql: "INSERT INTO note (messageId, text, sequence) VALUES (?, ?, ?)",
                    arguments: [envelope.id, text, envelope.payload.sequence])
                if let output {
                    try context.outbox.publish(
                        TestNote(text: text.uppercased(), sequence: envelope.payload.sequence), to: output, key: envelope.key,
                        id: MessageID.derived(from: envelope.id, "upper"), causationId: envelope.id, now: context.now)
                }
            }
        ],
        produces: output.map { [$0] } ?? []
    )
}

/// Queues notes `n<i>` (sequence i, message id `out-<i>`, key `k`) for `topic`, in one transaction.
func queueNotes(_ store: ServiceStore, to topic: String, _ range: Range<Int>) async throws {
    try await store.pool.write { db in
        let outbox = Outbox(db: db, producer: "test")
        for i in range { try outbox.publish(TestNote(text: "n\(i)", sequence: i), to: topic, key: "k", id: "out-\(i)") }
    }
}

func configuration(_ kafka: TestKafka, dataDirectory: String, group: String, maxAttempts: Int = 3) -> ServiceConfiguration {
    ServiceConfiguration(
        service: .intake, kafka: kafka.client("svc"), groupId: group, dataDirectory: dataDirectory,
        instanceId: "test", httpPort: 0, maxAttempts: maxAttempts, retryBackoff: .milliseconds(20)
    )
}

/// Runs a host in the background until `stop()`.
final class RunningHost: Sendable {
    let host: ServiceHost
    let task: Task<Void, any Error>

    init(_ definition: ServiceDefinition, _ configuration: ServiceConfiguration) async throws {
        let host = try await ServiceHost(definition: definition, configuration: configuration, logger: TestLog.logger("host"))
        self.host = host
        self.task = Task { try await host.run(handleSignals: false) }
    }

    func stop() async throws {
        await host.shutdown()
        try await task.value
    }

    func notes() async throws -> [String] {
        try await host.store.pool.read { try String.fetchAll($0, sql: "SELECT text FROM note ORDER BY sequence") }
    }
}

func produce(_ kafka: TestKafka, topic: String, _ values: [(key: String, value: [UInt8])]) async throws {
    let producer = try KafkaProducer(configuration: .init(client: kafka.client("feeder")), logger: TestLog.logger("feeder"))
    for item in values {
        try await producer.send(ProducerRecord(topic: topic, key: item.key, value: item.value))
    }
    await producer.close()
}

/// Each test starts its own mock cluster and stores: the tests run side by side.
@Suite("Service runtime over TCP against the mock cluster", .tags(.kafka))
struct ServiceRuntimeTests {
    @Test("a redelivered message is applied once (inbox in the same transaction)")
    func inboxDedupe() async throws {
        let kafka = try TestKafka()
        let input = try kafka.uniqueTopic("in", partitions: 1)
        let running = try await RunningHost(
            noteService(input: input, output: nil),
            configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: "g-\(UUID())"))
        let same = try TestNote(text: "first", sequence: 1).envelope(id: "dup-1")
        try await produce(
            kafka, topic: input, [("k", same), ("k", same), ("k", try TestNote(text: "second", sequence: 2).envelope(id: "m-2")), ("k", same)])
        try await eventually("both notes applied") { try await running.notes() == ["first", "second"] }
        let inbox = try await running.host.store.pool.read { try InboxEntry.fetchCount($0) }
        #expect(inbox == 2)
        let metrics = running.host.metrics.exposition()
        #expect(metrics.contains(#"encompass_messages_processed_total{service="intake",topic="\#(input)",outcome="duplicate"} 2"#))
        try await running.stop()
    }

    @Test("malformed messages land in the dead-letter table and topic with their reason; the consumer carries on")
    func malformedToDeadLetter() async throws {
        let kafka = try TestKafka()
        let input = try kafka.uniqueTopic("in", partitions: 1)
        let running = try await RunningHost(
            noteService(input: input, output: nil),
            configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: "g-\(UUID())"))
        let wrongSchema = Array(
            #"{"schema":"encompass.incident","version":1,"id":"x1","key":"k","producer":"t","createdAt":"2026-01-01T00:00:00Z","payload":{}}"#.utf8)
        let futureVersion = Array(
            #"{"schema":"encompass.test-note","version":9,"id":"x2","key":"k","producer":"t","createdAt":"2026-01-01T00:00:00Z","payload":{}}"#.utf8)
        let missingField = Array(
            #"{"schema":"encompass.test-note","version":1,"id":"x3","key":"k","producer":"t","createdAt":"2026-01-01T00:00:00Z","payload":{"text":"a"}}"#
                .utf8)
        try await produce(
            kafka, topic: input,
            [
                ("bad-1", Array("this is not json\u{0}".utf8)),
                ("bad-2", wrongSchema),
                ("bad-3", futureVersion),
                ("bad-4", missingField),
                ("bad-5", try TestNote(text: "", sequence: 5).envelope(id: "x5")),
                ("bad-6", try TestNote(text: "reject", sequence: 6).envelope(id: "x6")),
                ("good", try TestNote(text: "after the bad ones", sequence: 7).envelope(id: "x7")),
            ])
        try await eventually("good message applied after the bad ones") { try await running.notes() == ["after the bad ones"] }
        let letters = try await running.host.store.pool.read { try DeadLetter.order(Column("originalOffset")).fetchAll($0) }
        #expect(
            letters.map(\.errorClass) == [
                "envelope.not-json", "envelope.wrong-schema", "envelope.unsupported-version",
                "payload.invalid", "payload.validation", "note.rejected",
            ])
        #expect(letters.map(\.originalKey) == ["bad-1", "bad-2", "bad-3", "bad-4", "bad-5", "bad-6"])
        #expect(letters.allSatisfy { $0.originalTopic == input && $0.status == "open" && $0.attempts == 1 })
        #expect(letters[3].errorMessage.contains("payload.sequence: required field missing"))
        #expect(letters[4].errorMessage.contains("text: must not be empty"))
        #expect(letters[0].originalValue == Data("this is not json\u{0}".utf8))

        let events = try await readRecords(kafka, topic: ServiceName.intake.deadLetterTopic, count: 6)
        let decoded = try events.map { try WireFormat.decode(DeadLetterEvent.self, from: $0.value).payload }
        #expect(Set(decoded.map(\.errorClass)) == Set(letters.map(\.errorClass)))
        let notJSON = try #require(decoded.first { $0.errorClass == "envelope.not-json" })
        #expect(notJSON.originalBytes == Array("this is not json\u{0}".utf8))
        #expect(notJSON.originalValue == nil && notJSON.originalValueBase64 != nil)
        #expect(running.host.metrics.exposition().contains("encompass_dead_letters_total"))
        try await running.stop()
    }

    @Test("transient failures are retried with backoff; exhausted retries are dead-lettered; order is kept")
    func retriesThenDeadLetter() async throws {
        let kafka = try TestKafka()
        let input = try kafka.uniqueTopic("in", partitions: 1)
        let flaky = Locked(["flaky": 2])
        let running = try await RunningHost(
            noteService(input: input, output: nil, flaky: flaky),
            configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: "g-\(UUID())", maxAttempts: 3))
        try await produce(
            kafka, topic: input,
            [
                ("k", try TestNote(text: "one", sequence: 1).envelope()),
                ("k", try TestNote(text: "flaky", sequence: 2).envelope()),
                ("k", try TestNote(text: "always-fails", sequence: 3).envelope()),
                ("k", try TestNote(text: "four", sequence: 4).envelope()),
            ])
        try await eventually("all processed") { try await running.notes() == ["one", "flaky", "four"] }
        let letters = try await running.host.store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.count == 1)
        #expect(letters.first?.errorClass == "retries-exhausted")
        #expect(letters.first?.attempts == 3)
        #expect(letters.first?.errorMessage.contains("simulated transient failure") == true)
        #expect(flaky.withLock { $0["flaky"] } == 0)
        try await running.stop()
    }

    @Test("the relay publishes the oldest rows in order and removes exactly those, not rows committed meanwhile")
    func relayRemovesWhatItPublished() async throws {
        let kafka = try TestKafka()
        let output = try kafka.uniqueTopic("out", partitions: 1)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("relay-range") + "/svc.sqlite")
        let logger = TestLog.logger("relay-range")
        try await queueNotes(store, to: output, 0..<25)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        let relay = OutboxRelay(
            store: store, producer: producer, metrics: ServiceMetrics(service: "test"), logger: logger, service: .intake, batchSize: 10)
        #expect(try await relay.relayOnce() == 10)
        try await queueNotes(store, to: output, 25..<30)
        func pending() async throws -> [String] {
            try await store.pool.read { try OutboxMessage.order(Column("id")).fetchAll($0).map(\.messageId) }
        }
        #expect(try await pending() == (10..<30).map { "out-\($0)" })
        #expect(try await relay.relayOnce() == 10)
        #expect(try await relay.relayOnce() == 10)
        #expect(try await pending() == [])
        #expect(try await relay.relayOnce() == 0)
        await producer.close()
        let records = try await readRecords(kafka, topic: output, count: 30)
        #expect(try records.map { try WireFormat.decode(TestNote.self, from: $0.value).payload.sequence } == Array(0..<30))
    }

    @Test("the outbox survives a crash between commit and publish, and after publish before delete")
    func outboxSurvivesCrash() async throws {
        let kafka = try TestKafka()
        let output = try kafka.uniqueTopic("out", partitions: 2)
        let directory = TestPaths.temporaryDirectory()
        let path = (directory as NSString).appendingPathComponent("svc.sqlite")
        let logger = TestLog.logger("outbox")

        // A handler committed its state and outbox rows, then the process died before relaying.
        do {
            let store = try ServiceStore(path: path)
            try await store.pool.write { db in
                let outbox = Outbox(db: db, producer: "test")
                for i in 0..<20 {
                    try outbox.publish(TestNote(text: "n\(i)", sequence: i), to: output, key: "k\(i % 3)", id: "out-\(i)")
                }
            }
        }
        // Restart: a new store on the same file and a new relay publish what was committed.
        let store = try ServiceStore(path: path)
        #expect(try await store.pool.read { try OutboxMessage.fetchCount($0) } == 20)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        let relay = OutboxRelay(store: store, producer: producer, metrics: ServiceMetrics(service: "test"), logger: logger, service: .intake)
        #expect(try await relay.relayOnce() == 20)
        #expect(try await store.pool.read { try OutboxMessage.fetchCount($0) } == 0)

        // Crash after publish and before delete: the rows are published again on restart.
        try await store.pool.write { db in
            let outbox = Outbox(db: db, producer: "test")
            for i in 20..<30 { try outbox.publish(TestNote(text: "n\(i)", sequence: i), to: output, key: "k", id: "out-\(i)") }
        }
        let pending = try await store.pool.read { try OutboxMessage.order(Column("id")).fetchAll($0) }
        for row in pending {
            try await producer.send(ProducerRecord(topic: output, key: row.key, value: Array(row.value)))
        }
        #expect(try await relay.relayOnce() == 10) // re-published: same message ids
        await producer.close()

        let records = try await readRecords(kafka, topic: output, count: 40)
        #expect(records.count == 40)
        let ids = try records.map { try WireFormat.decode(TestNote.self, from: $0.value).id }
        #expect(Set(ids).count == 30)

        // A downstream service applies each effect once: its inbox drops the re-published copies.
        let downstream = try await RunningHost(
            noteService(input: output, output: nil),
            configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: "down-\(UUID())"))
        try await eventually("downstream applied 30") { try await downstream.notes().count == 30 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await downstream.notes().count == 30)
        #expect(downstream.host.metrics.exposition().contains(#"outcome="duplicate"} 10"#))
        try await downstream.stop()
    }

    @Test("graceful shutdown finishes work, publishes the outbox and commits offsets")
    func gracefulShutdown() async throws {
        let kafka = try TestKafka()
        let input = try kafka.uniqueTopic("in", partitions: 2)
        let output = try kafka.uniqueTopic("out", partitions: 2)
        let group = "g-\(UUID())"
        let running = try await RunningHost(
            noteService(input: input, output: output),
            configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: group))
        try await produce(kafka, topic: input, try (0..<50).map { ("k\($0)", try TestNote(text: "t\($0)", sequence: $0).envelope()) })
        try await eventually("50 applied") { try await running.notes().count == 50 }
        try await running.stop()
        #expect(try await running.host.store.pool.read { try OutboxMessage.fetchCount($0) } == 0)
        let committed = try await KafkaAdmin.committedOffsets(
            client: kafka.client(), group: group, partitions: [TopicPartition(input, 0), TopicPartition(input, 1)],
            logger: TestLog.logger("admin"))
        #expect(committed.values.reduce(0, +) == 50)
        let published = try await readRecords(kafka, topic: output, count: 50)
        #expect(Set(try published.map { try WireFormat.decode(TestNote.self, from: $0.value).payload.text }) == Set((0..<50).map { "T\($0)" }))
    }

    @Test("/healthz, /readyz and /metrics answer over HTTP")
    func httpEndpoints() async throws {
        let kafka = try TestKafka()
        let input = try kafka.uniqueTopic("in", partitions: 1)
        let running = try await RunningHost(
            noteService(input: input, output: nil),
            configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: "g-\(UUID())"))
        let port = await running.host.httpPort()
        let health = try await httpGet("http://127.0.0.1:\(port)/healthz")
        #expect(health.status == 200 && health.body.contains(#""status":"ok""#))
        try await eventually("ready") { try await httpGet("http://127.0.0.1:\(port)/readyz").status == 200 }
        try await produce(kafka, topic: input, [("k", try TestNote(text: "x", sequence: 1).envelope())])
        try await eventually("processed") { try await running.notes() == ["x"] }
        let metrics = try await httpGet("http://127.0.0.1:\(port)/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("encompass_messages_processed_total"))
        #expect(metrics.body.contains("encompass_processing_duration_seconds_bucket"))
        #expect(metrics.body.contains("encompass_outbox_pending"))
        try await running.stop()
    }

    @Test("processed message ids are forgotten after the inbox retention, not before")
    func inboxRetention() async throws {
        let kafka = try TestKafka()
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("inbox") + "/svc.sqlite")
        let now = Date()
        try await store.pool.write { db in
            for (id, age) in [("old", 15.0 * 86_400), ("edge", 13.9 * 86_400), ("new", 60.0)] {
                try InboxEntry(messageId: id, topic: "t", partition: 0, offset: 0, processedAt: now.addingTimeInterval(-age)).insert(db)
            }
        }
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: TestLog.logger("p"))
        let relay = OutboxRelay(
            store: store, producer: producer, metrics: ServiceMetrics(service: "t"), logger: TestLog.logger("r"), service: .intake,
            inboxRetention: .seconds(14 * 86_400))
        #expect(try await relay.pruneInbox(now: now) == 1)
        #expect(try await store.pool.read { try String.fetchAll($0, sql: "SELECT messageId FROM inbox ORDER BY messageId") } == ["edge", "new"])
        await producer.close()
    }

    @Test("configuration is read from the environment, with errors naming the variable")
    func configurationFromEnvironment() throws {
        let config = try ServiceConfiguration.fromEnvironment(
            service: .scheduling,
            environment: [
                "ENCOMPASS_KAFKA_BOOTSTRAP_SERVERS": "broker1:9092,broker2:9092",
                "ENCOMPASS_DATA_DIR": "/data/scheduling",
                "ENCOMPASS_INSTANCE_ID": "sched-2",
                "ENCOMPASS_HTTP_PORT": "9000",
                "ENCOMPASS_KAFKA_PROPERTY_SECURITY_PROTOCOL": "SASL_SSL",
                "ENCOMPASS_KAFKA_PROPERTY_SASL_MECHANISMS": "PLAIN",
            ])
        #expect(config.kafka.bootstrapServers == "broker1:9092,broker2:9092")
        #expect(config.kafka.properties == ["security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN"])
        // Consumer-only properties, named by the same rule the demo and benchmarks use to pass them.
        let consumer = try ServiceConfiguration.fromEnvironment(
            service: .scheduling,
            environment: [
                ServiceConfiguration.kafkaPropertyVariable("fetch.wait.max.ms", for: .consumers): "10",
                ServiceConfiguration.kafkaPropertyVariable("max.in.flight.requests.per.connection", for: .producers): "1",
                ServiceConfiguration.kafkaPropertyVariable("socket.keepalive.enable"): "true",
            ])
        #expect(
            ServiceConfiguration.kafkaPropertyVariable("fetch.wait.max.ms", for: .consumers)
                == "ENCOMPASS_KAFKA_CONSUMER_PROPERTY_FETCH_WAIT_MAX_MS")
        #expect(
            ServiceConfiguration.kafkaPropertyVariable("max.in.flight.requests.per.connection", for: .producers)
                == "ENCOMPASS_KAFKA_PRODUCER_PROPERTY_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION")
        #expect(consumer.kafka.consumerProperties == ["fetch.wait.max.ms": "10"])
        #expect(consumer.kafka.producerProperties == ["max.in.flight.requests.per.connection": "1"])
        #expect(consumer.kafka.properties == ["socket.keepalive.enable": "true"])
        #expect(config.groupId == "encompass-scheduling")
        #expect(config.databasePath == "/data/scheduling/scheduling.sqlite")
        #expect(config.httpPort == 9000 && config.instanceId == "sched-2")
        let defaults = try ServiceConfiguration.fromEnvironment(service: .dispatch, environment: [:])
        #expect(defaults.httpPort == 8085 && defaults.topicPartitions == 12)

        let error = #expect(throws: ConfigurationError.self) {
            _ = try ServiceConfiguration.fromEnvironment(service: .intake, environment: ["ENCOMPASS_HTTP_PORT": "eighty"])
        }
        #expect(error?.variable == "ENCOMPASS_HTTP_PORT")
        #expect(error?.description.contains("whole number") == true)
    }
}

@Suite("Outbox and inbox rows")
struct OutboxRowTests {
    @Test("outbox headers written by hand are JSON that reads back exactly, whatever the characters")
    func headerText() throws {
        for text in ["plain", "quote \" and backslash \\", "line\nbreak\ttab\r", "\u{01}\u{1F} control", "café ✓ 😀", ""] {
            let json = "{" + JSONText.quoted("k") + ":" + JSONText.quoted(text) + "}"
            let decoded = try JSONDecoder().decode([String: String].self, from: Data(json.utf8))
            #expect(decoded == ["k": text], "\(json)")
            var appended = "{"
            JSONText.append(text, to: &appended)
            #expect(appended == "{" + JSONText.quoted(text))
        }
    }

    @Test("a published message carries its id, schema and version headers; the inbox applies a message id once")
    func publishAndApplyOnce() throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("outbox-rows") + "/store.sqlite")
        let record = KafkaRecord(topic: "t", partition: 3, offset: 7, key: nil, value: [], headers: [], timestamp: nil)
        let outcomes = try store.pool.write { db -> [HandleOutcome] in
            let outbox = Outbox(db: db, producer: "intake")
            return try (0..<2).map { _ in
                try InboxEntry.applyOnce(messageId: "m-1", record: record, db: db, now: Date()) {
                    try outbox.publish(TestNote(text: "x", sequence: 1), to: "out", key: "k", id: "id-\"1\"")
                }
            }
        }
        #expect(outcomes == [.applied, .duplicate])
        let rows = try store.pool.read { try OutboxMessage.fetchAll($0) }
        #expect(rows.count == 1)
        let headers = try #require(rows.first?.producerRecord.headers)
        #expect(headers.map(\.key) == ["encompass-message-id", "encompass-schema", "encompass-version"])
        #expect(headers.first?.value.map { String(decoding: $0, as: UTF8.self) } == "id-\"1\"")
        let inbox = try store.pool.read { try InboxEntry.fetchAll($0) }
        #expect(inbox.map(\.messageId) == ["m-1"] && inbox.first?.partition == 3 && inbox.first?.offset == 7)
        #expect(rows.first?.producerRecord.isTombstone == false)
    }

    @Test("a raw statement stores what GRDB's arguments store: text, null, integers, blobs (empty too), dates in and out of range")
    func rawStatementBindsAsGRDB() throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("raw-statement") + "/store.sqlite")
        let dates = [
            Date(timeIntervalSince1970: 1_764_000_000.1234), Date(timeIntervalSince1970: 0), Date.distantPast, Date.distantFuture,
            Date(timeIntervalSinceReferenceDate: 1e12),
        ]
        let texts: [String?] = ["", "plain", "café ✓ 😀", "nul\u{0}inside", nil]
        let integers: [Int64?] = [0, -1, .min, .max, nil]
        let blobs = [Data(), Data([0, 1, 2, 255])]
        try store.pool.write { db in
            try db.execute(sql: "CREATE TABLE probe (via TEXT, t, i, b, d)")
            for (n, date) in dates.enumerated() {
                let text = texts[n % texts.count], integer = integers[n % integers.count], blob = blobs[n % blobs.count]
                var raw = RawStatement(try db.cachedStatement(sql: "INSERT INTO probe VALUES ('raw', ?, ?, ?, ?)"), db: db)
                raw.bind(text)
                raw.bind(integer)
                raw.bind(blob)
                raw.bind(date)
                try raw.run()
                try db.execute(sql: "INSERT INTO probe VALUES ('grdb', ?, ?, ?, ?)", arguments: [text, integer, blob, date])
                let rows = try Row.fetchAll(
                    db, sql: "SELECT t, i, b, d, typeof(t), typeof(i), typeof(b), typeof(d) FROM probe ORDER BY rowid DESC LIMIT 2")
                #expect(rows[0] == rows[1], "\(date)")
            }
        }
    }

    @Test("the relay reads any headers JSON: the hand-written form, other spacing and escapes, and a tombstone's")
    func headersRead() throws {
        func row(_ headers: String) -> OutboxMessage {
            OutboxMessage(id: 1, messageId: "m", topic: "t", key: "k", value: Data(), headers: headers, createdAt: Date())
        }
        let spaced = row(#" { "b" : "2" , "a\u0041" : "x\"y" } "#).producerRecord
        #expect(spaced.headers.map(\.key) == ["aA", "b"])
        #expect(spaced.headers.map { $0.value.map { String(decoding: $0, as: UTF8.self) } } == ["x\"y", "2"])
        #expect(row(#"{"encompass-message-id":"m","encompass-tombstone":"true"}"#).producerRecord.isTombstone)
        #expect(row("{}").producerRecord.headers.isEmpty && !row("{}").producerRecord.isTombstone)
    }

    @Test("a store's writer setup runs on the writing connection only; the readers keep SQLite's defaults")
    func writerSetup() async throws {
        let store = try ServiceStore(
            path: TestPaths.temporaryDirectory("writer-setup") + "/store.sqlite",
            writerSetup: { db in try db.execute(sql: "PRAGMA cache_size = -16384") })
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA cache_size") } == -16384)
        #expect(try await store.pool.read { try Int.fetchOne($0, sql: "PRAGMA cache_size") } == -2000)
        // The consumers' prefetch: 8 MiB for work, less for a replica, and a property overrides it.
        let client = KafkaClientConfiguration(bootstrapServers: "127.0.0.1:9")
        #expect(KafkaConsumerConfiguration(client: client, groupId: "g", topics: ["t"]).properties["queued.max.messages.kbytes"] == "8192")
        #expect(
            KafkaConsumerConfiguration(client: client, groupId: "g", topics: ["t"], prefetchKiB: 4096).properties["queued.max.messages.kbytes"]
                == "4096")
        let overridden = KafkaClientConfiguration(bootstrapServers: "127.0.0.1:9", consumerProperties: ["queued.max.messages.kbytes": "65536"])
        #expect(KafkaConsumerConfiguration(client: overridden, groupId: "g", topics: ["t"]).properties["queued.max.messages.kbytes"] == "65536")
    }

    @Test("consumers set fetch.queue.backoff.ms exactly where the linked librdkafka has it (2.2.0 on); librdkafka takes every consumer default")
    func fetchQueueBackoff() {
        let properties = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(bootstrapServers: "127.0.0.1:9"), groupId: "g", topics: ["t"]
        ).properties
        // rd_kafka_version() is 0xMMmmrrpp: 2.2.0 is 0x020200ff (Debian 12's 2.0.2 is 0x020002ff).
        #expect((properties["fetch.queue.backoff.ms"] == "20") == (rd_kafka_version() >= 0x0202_00ff))
        #expect(!librdkafkaAccepts("fetch.queue.backof.ms", "20"))
        #expect(!librdkafkaAccepts("queued.max.messages.kbytes", "none"))
        for (name, value) in properties {
            #expect(librdkafkaAccepts(name, value), "librdkafka refuses \(name)=\(value)")
        }
    }

    @Test("a queued tombstone leaves the outbox as a record with no value, its id and the tombstone header")
    func tombstoneRow() throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("outbox-tombstone") + "/store.sqlite")
        try store.pool.write { db in try Outbox(db: db, producer: "scheduling").tombstone(topic: "compacted", key: "n-1", id: "t-1") }
        let record = try #require(try store.pool.read { try OutboxMessage.fetchAll($0) }.first?.producerRecord)
        #expect(record.isTombstone && record.value.isEmpty && record.topic == "compacted" && record.key == Array("n-1".utf8))
        #expect(record.headers.map(\.key) == [MessageHeader.messageId, MessageHeader.tombstone])
    }
}

@Suite("Dates written to SQLite without GRDB's DateFormatter")
struct StoredDateTests {
    @Test("Date.stored is GRDB's own text for the date: whole, fractional and a-hair-off milliseconds, at random, and the limits")
    func sameTextAsGRDB() throws {
        var random = SystemRandomNumberGenerator()
        var dates = [
            Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -0.0005), Date(timeIntervalSince1970: 1.2349999999),
            Date(timeIntervalSince1970: 1_764_000_000.9995), Date(timeIntervalSinceReferenceDate: 0.000_000_1),
            Timestamp.parse("2026-11-23T23:30:00.125Z")!, Timestamp.parse("0001-01-01T00:00:00.000Z")!, Timestamp.parse("1582-10-14T12:00:00.000Z")!,
            Timestamp.parse("1583-01-01T00:00:00.000Z")!, Timestamp.parse("9999-12-31T23:59:59.999Z")!, Date(timeIntervalSince1970: 0.0015),
            Date(timeIntervalSince1970: -0.0015), Date(timeIntervalSince1970: 1_764_000_000.0025),
        ]
        for _ in 0..<20_000 {
            let seconds = Double(Int64.random(in: -62_000_000_000...250_000_000_000, using: &random))
            switch Int.random(in: 0..<3, using: &random) {
            case 0: dates.append(Date(timeIntervalSince1970: seconds / 1000)) // whole milliseconds
            case 1: dates.append(Date(timeIntervalSince1970: seconds / 1000 + Double.random(in: 0..<0.001, using: &random)))
            default: dates.append(Date(timeIntervalSinceReferenceDate: Double.random(in: -1e9...1e9, using: &random)))
            }
        }
        for date in dates {
            #expect(date.stored.databaseValue == date.databaseValue, "\(date.timeIntervalSinceReferenceDate)")
        }
    }
}

/// `MessageWorker.process` on batches given by hand (no consumer loop): the whole-batch path
/// without savepoints, and its fall-back when a record fails.
@Suite("Message worker batches", .tags(.kafka))
struct MessageWorkerBatchTests {
    @Test("a batch with a bad and a flaky record: the rest applied once, the bad one dead-lettered, nothing of the rolled-back try left")
    func failingRecordInBatch() async throws {
        let kafka = try TestKafka()
        let flaky = Locked(["flaky": 1])
        let definition = noteService(input: "notes.in", output: "notes.out", flaky: flaky)
        let configuration = configuration(kafka, dataDirectory: TestPaths.temporaryDirectory(), group: "g-\(UUID())")
        let store = try ServiceStore(path: configuration.databasePath, migrations: definition.migrations)
        let metrics = ServiceMetrics(service: "intake")
        let logger = TestLog.logger("worker")
        let producer = try KafkaProducer(configuration: .init(client: configuration.kafka), logger: logger)
        let consumer = try KafkaConsumer(
            configuration: .init(client: configuration.kafka, groupId: configuration.groupId, topics: ["notes.in"]),
            logger: logger)
        let worker = MessageWorker(
            consumer: consumer, store: store, handlers: definition.handlers, configuration: configuration,
            metrics: metrics, relay: OutboxRelay(store: store, producer: producer, metrics: metrics, logger: logger, service: .intake),
            logger: logger)
        func record(_ offset: Int64, _ text: String, id: String) throws -> KafkaRecord {
            KafkaRecord(
                topic: "notes.in", partition: 0, offset: offset, key: Array("k".utf8),
                value: try TestNote(text: text, sequence: Int(offset)).envelope(id: id))
        }

        // A clean batch goes through whole.
        try await worker.process([try record(0, "zero", id: "m0")])
        // One bad record (permanent), one that fails once (transient), a re-delivered id.
        try await worker.process([
            try record(1, "one", id: "m1"), try record(2, "reject", id: "m2"), try record(3, "two", id: "m3"),
            try record(4, "flaky", id: "m4"), try record(5, "two", id: "m3"), try record(6, "three", id: "m6"),
        ])

        let (notes, letters, outbox, inbox) = try await store.pool.read { db in
            (
                try String.fetchAll(db, sql: "SELECT text FROM note ORDER BY sequence"), try DeadLetter.fetchAll(db),
                try OutboxMessage.order(Column("id")).fetchAll(db), try String.fetchAll(db, sql: "SELECT messageId FROM inbox ORDER BY messageId")
            )
        }
        #expect(notes == ["zero", "one", "two", "flaky", "three"])
        #expect(letters.map(\.errorClass) == ["note.rejected"])
        #expect(letters.map(\.originalOffset) == [2])
        // One upper-cased note per applied message, in order, then the dead letter's event.
        #expect(
            outbox.filter { $0.topic == "notes.out" }.map(\.messageId)
                == ["m0", "m1", "m3", "m4", "m6"].map { MessageID.derived(from: $0, "upper") })
        #expect(outbox.filter { $0.topic == ServiceName.intake.deadLetterTopic }.count == 1)
        #expect(inbox == ["m0", "m1", "m3", "m4", "m6"])
        #expect(flaky.withLock { $0["flaky"] } == 0)
        let exposition = metrics.exposition()
        #expect(exposition.contains("encompass_dead_letters_total"))
        await consumer.close()
        await producer.close()
    }
}

@Suite("Dead letters stored with their value last")
struct DeadLetterValueLastTests {
    @Test("a store made before the value moved keeps its dead letters, their actions and indexes; the value is the last column")
    func migratesExistingStore() throws {
        let path = TestPaths.temporaryDirectory("dead-letter-value-last") + "/old.sqlite"
        let at = Date(timeIntervalSince1970: 1_795_000_000)
        do {
            let old = try DatabaseQueue(path: path)
            var migrator = DatabaseMigrator()
            for migration in ServiceStore.runtimeMigrations + [DeadLetterOps.migration] {
                migrator.registerMigration(migration.identifier, migrate: migration.migrate)
            }
            try migrator.migrate(old)
            try old.write { db in
                var letter = DeadLetter(
                    service: "intake", originalTopic: "http:/v1/incidents", originalPartition: -1, originalOffset: 7,
                    originalKey: "k", originalValue: Data([0, 1, 2, 0xFF]), originalHeaders: "{}", originalMessageId: "m1",
                    errorClass: "payload.validation", errorMessage: "bad", attempts: 1, firstFailedAt: at,
                    deadLetteredAt: at, status: "open")
                try letter.insert(db)
                try db.execute(
                    sql: "INSERT INTO deadLetterAction (deadLetterId, action, actor, at) VALUES (?, 'discard', 'ops', ?)",
                    arguments: [letter.id, at])
            }
            try old.close()
        }
        let store = try ServiceStore(path: path)
        try store.pool.read { db in
            let letters = try DeadLetter.fetchAll(db)
            #expect(letters.count == 1)
            #expect(letters.first?.originalValue == Data([0, 1, 2, 0xFF]) && letters.first?.originalMessageId == "m1")
            #expect(try db.columns(in: DeadLetter.databaseTableName).last?.name == "originalValue")
            let indexes = try db.indexes(on: DeadLetter.databaseTableName).map(\.name)
            #expect(
                Set(["deadLetter_on_originalMessageId", "deadLetter_on_errorClass", "deadLetter_on_deadLetteredAt"]).isSubset(of: Set(indexes)),
                "\(indexes)")
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM deadLetterAction JOIN deadLetter ON deadLetter.id = deadLetterId") == 1)
            #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty)
        }
        // The same bad input again is still recorded once (the unique key came across).
        try store.pool.write { db in
            var again = DeadLetter(
                service: "intake", originalTopic: "http:/v1/incidents", originalPartition: -1, originalOffset: 7,
                originalKey: "k", originalValue: Data(), originalHeaders: "{}", originalMessageId: nil,
                errorClass: "payload.validation", errorMessage: "bad", attempts: 1, firstFailedAt: at,
                deadLetteredAt: at, status: "open")
            try again.insert(db)
            #expect(try DeadLetter.fetchCount(db) == 1)
        }
    }
}
