import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing
import WebSupport

/// Two instances of a service (one consumer group, a store and an API each) that both
/// dead-lettered the same Kafka record: the first failed it, its offset commit was refused in a
/// rebalance, and the partition's next owner read it again and failed it too.
struct TwoCopies {
    let kafka: TestKafka
    let topic: String
    let hosts: [RunningHost]
    let records: DeadLetterRecords
    /// Each instance's dead letter of the record.
    let ids: [Int64]
    static let token = "ops-token"

    init(_ label: String) async throws {
        PayloadSchemas.register(TestNote.self)
        kafka = try TestKafka(partitions: 2)
        topic = try kafka.uniqueTopic(label)
        let group = "dlq-records-\(UUID())"
        var hosts: [RunningHost] = []
        var clients: [ServiceClient] = []
        for name in ["a", "b"] {
            var config = configuration(kafka, dataDirectory: TestPaths.temporaryDirectory("\(label)-\(name)"), group: group)
            config.instanceId = name
            config.apiToken = Self.token
            let host = try await RunningHost(noteService(input: topic, output: nil), config)
            hosts.append(host)
            clients.append(ServiceClient(service: .intake, baseURL: "http://127.0.0.1:\(await host.host.httpPort())", token: Self.token, timeout: 20))
        }
        let record = KafkaRecord(
            topic: topic, partition: 1, offset: 7, key: Array("43000000009".utf8),
            value: try TestNote(text: "reject", sequence: 9).envelope(id: "poisoned-9", key: "43000000009"))
        var ids: [Int64] = []
        for (n, host) in hosts.enumerated() {
            ids.append(
                try await host.host.store.pool.write { db in
                    try DeadLetterWriter.write(
                        db: db, service: .intake, record: record, errorClass: "note.rejected",
                        message: "notes saying 'reject' are refused (read by instance \(n + 1))", attempts: 1, firstFailedAt: Date(), now: Date(),
                        outbox: Outbox(db: db, producer: "test"))
                    return try #require(try DeadLetter.fetchOne(db)?.id)
                })
        }
        self.hosts = hosts
        self.ids = ids
        records = DeadLetterRecords(service: .intake, clients: clients)
    }

    /// Instance n's (0-based) copy, as listed.
    func address(_ n: Int) -> DeadLetterAddress { DeadLetterAddress(service: .intake, instance: n + 1, id: ids[n]) }

    func statuses() async throws -> [String?] {
        var statuses: [String?] = []
        for (n, host) in hosts.enumerated() {
            statuses.append(try await host.host.store.pool.read { try DeadLetter.fetchOne($0, key: ids[n])?.status })
        }
        return statuses
    }

    func actions(_ n: Int) async throws -> [DeadLetterAction] {
        try await hosts[n].host.store.pool.read { try DeadLetterAction.filter(Column("deadLetterId") == ids[n]).fetchAll($0) }
    }

    var endpoints: [String] { records.clients.flatMap { ["--endpoint", "intake=\($0.baseURL)"] } + ["--token", Self.token] }

    func stop() async throws {
        for host in hosts { try await host.stop() }
    }
}

@Suite("Dead letters: a record two instances dead-lettered is one record", .serialized)
struct DeadLetterRecordTests {
    @Test("listed once, naming both instances' copies and their reasons (the API, `encompass dlq list`); HTTP input of the same number is not merged")
    func listedOnce() async throws {
        let two = try await TwoCopies("dlq-list")
        // Input that did not come from Kafka is numbered by the store that holds it: the same
        // "offset" in two stores is two records.
        for host in two.hosts {
            try await host.host.store.pool.write { db in
                try DeadLetterWriter.write(
                    db: db, service: .intake,
                    record: KafkaRecord(topic: "http:/v1/incidents", partition: -1, offset: 1, key: nil, value: Array("{}".utf8)),
                    errorClass: "incident.invalid", message: "not an incident", attempts: 1, firstFailedAt: Date(), now: Date(),
                    outbox: Outbox(db: db, producer: "test"))
            }
        }
        let listed = await two.records.copies(query: ["status": "open"])
        #expect(listed.failures.isEmpty && listed.views.count == 4)
        let merged = DeadLetterRecords.merge(listed.views)
        #expect(merged.count == 3, "\(merged.map(\.address))")
        let record = try #require(merged.first { $0.originalTopic == two.topic })
        #expect(Set(record.copies?.map(\.address) ?? []) == Set([two.address(0).description, two.address(1).description]))
        #expect(Set(record.copies?.map(\.errorMessage) ?? []).count == 2)
        #expect(record.status == "open" && record.originalPartition == 1 && record.originalOffset == 7)
        #expect(merged.filter { $0.originalPartition == -1 }.allSatisfy { $0.copies?.count == 1 })

        let cli = try await runExecutable("encompass", ["dlq", "list", "--service", "intake"] + two.endpoints)
        #expect(cli.status == 0, "\(cli.output)")
        #expect(cli.output.contains("3 dead letters (open)"), "\(cli.output)")
        #expect(cli.output.components(separatedBy: "\(two.topic)[1]@7").count == 2, "one line for the record: \(cli.output)")
        #expect(
            cli.output.contains("2 copies: ") && cli.output.contains(two.address(0).description) && cli.output.contains(two.address(1).description))
        #expect(cli.output.contains("(read by instance 1)") && cli.output.contains("(read by instance 2)"), "\(cli.output)")
        let json = try await runExecutable("encompass", ["dlq", "list", "--service", "intake", "--json"] + two.endpoints)
        let views = try WireFormat.decoder().decode([DeadLetterView].self, from: Data(json.output.utf8))
        #expect(views.count == 3 && views.first { $0.originalTopic == two.topic }?.copies?.count == 2)
        try await two.stop()
    }

    @Test("a replay publishes the record once and marks both copies; replayed again (through either copy) it publishes nothing")
    func replayedOnce() async throws {
        let two = try await TwoCopies("dlq-replay")
        let fixed = String(decoding: try TestNote(text: "fixed", sequence: 9).envelope(id: "fixed-9", key: "43000000009"), as: UTF8.self)
        let result = try await two.records.replay(two.address(1), by: "ops-anna", payload: .text(fixed))
        #expect(result.failures.isEmpty, "\(result.failures)")
        #expect(result.publishedBy == two.address(1) && result.marked == [two.address(0)])
        #expect(!result.outcome.alreadyReplayed && result.outcome.topic == two.topic && result.outcome.messageId == "fixed-9")
        #expect(try await two.statuses() == ["replayed", "replayed"])
        let marked = try #require(try await two.actions(0).first)
        #expect(marked.action == "replay" && marked.actor == "ops-anna" && marked.messageId == "fixed-9")
        #expect(marked.detail?.contains("as \(two.address(1))") == true, "\(marked)")

        let again = try await two.records.replay(two.address(0), by: "ops-bob", payload: nil)
        #expect(again.outcome.alreadyReplayed && again.outcome.replayedBy == "ops-anna" && again.marked.isEmpty)
        let cli = try await runExecutable("encompass", ["dlq", "replay", two.address(1).description, "--by", "ops-bob"] + two.endpoints)
        #expect(cli.status == 0 && cli.output.contains("already replayed by ops-anna"), "\(cli.output)")

        // Counted on the topic, not by what the consumers' inboxes would drop: one record.
        let published = try await readRecords(two.kafka, topic: two.topic, count: 2, timeout: .seconds(5))
        #expect(published.count == 1)
        #expect(published.first.map { try? WireFormat.decode(TestNote.self, from: $0.value).payload.text } == "fixed")
        try await eventually("the fixed note is applied") {
            var notes: [String] = []
            for host in two.hosts { notes += try await host.notes() }
            return notes == ["fixed"]
        }
        for n in 0..<2 { #expect(try await two.actions(n).count == 1) }
        try await two.stop()
    }

    @Test("the CLI replays the record through the copy named, once, and says which copies it marked")
    func replayedFromTheCLI() async throws {
        let two = try await TwoCopies("dlq-cli-replay")
        let file = TestPaths.temporaryDirectory("dlq-cli-replay") + "/fixed.json"
        try Data(try TestNote(text: "fixed", sequence: 9).envelope(id: "fixed-9", key: "43000000009")).write(to: URL(fileURLWithPath: file))
        let cli = try await runExecutable(
            "encompass", ["dlq", "replay", two.address(0).description, "--by", "ops-anna", "--payload", file] + two.endpoints)
        #expect(cli.status == 0, "\(cli.output)")
        #expect(cli.output.contains("\(two.address(0)) replayed to \(two.topic)") && cli.output.contains("marked replayed"), "\(cli.output)")
        #expect(cli.output.contains(two.address(1).description), "\(cli.output)")
        #expect(try await two.statuses() == ["replayed", "replayed"])
        #expect(try await readRecords(two.kafka, topic: two.topic, count: 2, timeout: .seconds(5)).count == 1)
        try await two.stop()
    }

    @Test("a discard marks every copy; the record cannot be replayed after; a copy discarded alone keeps the record from replay")
    func discardedEverywhere() async throws {
        let two = try await TwoCopies("dlq-discard")
        let cli = try await runExecutable(
            "encompass", ["dlq", "discard", two.address(0).description, "--by", "ops-anna", "--reason", "test data"] + two.endpoints)
        #expect(cli.status == 0, "\(cli.output)")
        #expect(cli.output.contains("\(two.address(0)) discarded") && cli.output.contains("discarded too: \(two.address(1))"), "\(cli.output)")
        #expect(try await two.statuses() == ["discarded", "discarded"])
        for n in 0..<2 { #expect(try await two.actions(n).map(\.detail) == ["test data"]) }
        await #expect(throws: ServiceCallError.self) { try await two.records.replay(two.address(1), by: "ops-bob", payload: nil) }
        try await two.stop()

        // One copy discarded on its own instance (before record-wide discards, or by its API):
        // replaying through the other is refused, naming it, and publishes nothing.
        let mixed = try await TwoCopies("dlq-mixed")
        let (status, _) = try await mixed.records.clients[0].call(
            "POST", "/v1/dead-letters/\(mixed.ids[0])/discard", json: DeadLetterDiscardRequest(by: "ops-anna", reason: "duplicate"))
        #expect(status == 200)
        do {
            _ = try await mixed.records.replay(mixed.address(1), by: "ops-bob", payload: nil)
            Issue.record("a record with a discarded copy was replayed")
        } catch {
            #expect("\(error)".contains("copy \(mixed.address(0)) was discarded"), "\(error)")
        }
        #expect(try await mixed.statuses() == ["discarded", "open"])
        // A copy is marked replayed only as a copy of its own record.
        let other = DeadLetterReplayedCopy(
            address: "intake/1:1", originalTopic: mixed.topic, originalPartition: 0, originalOffset: 7, topic: mixed.topic, messageId: nil)
        let (refused, body) = try await mixed.records.clients[1].call(
            "POST", "/v1/dead-letters/\(mixed.ids[1])/replay", json: DeadLetterReplayRequest(by: "ops-bob", replayedAs: other))
        #expect(refused == 422 && String(decoding: body, as: UTF8.self).contains("not a copy of"), "\(String(decoding: body, as: UTF8.self))")
        #expect(try await readRecords(mixed.kafka, topic: mixed.topic, count: 1, timeout: .seconds(3)).isEmpty)
        try await mixed.stop()
    }
}
