import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One child-research instance of a two-instance group.
final class RunningResearch: Sendable {
    let host: ServiceHost
    let task: Task<Void, any Error>
    let base: String

    init(_ kafka: TestKafka, group: String, instance: String, token: String) async throws {
        let settings = ChildResearchService.Settings() // automatic confirmation off: every found child waits for review
        let configuration = ServiceConfiguration(
            service: .childResearch, kafka: kafka.client(instance), groupId: group,
            dataDirectory: TestPaths.temporaryDirectory("research-\(instance)"), instanceId: instance, httpPort: 0, apiToken: token)
        let host = try await ServiceHost(
            definition: ChildResearchService.definition(settings: settings), configuration: configuration,
            logger: TestLog.logger(instance))
        self.host = host
        self.task = Task { try await host.run(handleSignals: false) }
        self.base = "http://127.0.0.1:\(await host.httpPort())/v1/review"
    }

    func stop() async throws {
        await host.shutdown()
        try await task.value
    }

    func list(_ status: String, token: String) async throws -> [ReviewQueue.Proposal] {
        let answer = try await request("GET", "\(base)?status=\(status)", token: token)
        return try WireFormat.decoder().decode(Listing.self, from: answer.body).proposals
    }

    /// Whether this instance's work consumer applied the message (it owns the occurrence).
    func handled(_ messageId: String) async throws -> Bool {
        try await host.store.pool.read { try InboxEntry.fetchOne($0, key: messageId) != nil }
    }
}

@Suite("Review queue across two instances", .serialized, .tags(.kafka))
struct ReviewAcrossInstancesTests {
    @Test("both instances list the whole queue and accept a decision for any proposal; decisions are idempotent and rejections replicate")
    func twoInstances() async throws {
        let kafka = try TestKafka()
        let token = "review-token-456"
        let group = "research-\(UUID())"
        let a = try await RunningResearch(kafka, group: group, instance: "a", token: token)
        let b = try await RunningResearch(kafka, group: group, instance: "b", token: token)
        try await eventually("partitions split", timeout: .seconds(60)) {
            !a.host.environment.ownedPartitions().isEmpty && !b.host.environment.ownedPartitions().isEmpty
        }

        let producer = try KafkaProducer(configuration: .init(client: kafka.client("feed")), logger: TestLog.logger("feed"))
        for (i, past) in [History.h1, History.h2, History.h3].enumerated() {
            let envelope = Envelope(
                id: "history-\(i)", key: past.occurrenceNumber, producer: "intake",
                payload: HistoricalIncident(source: "history:test.jsonl", incident: past))
            try await producer.send(ProducerRecord(topic: Topics.history.name, key: past.occurrenceNumber, value: try WireFormat.encode(envelope)))
        }
        for host in [a, b] {
            try await eventually("history indexed") { try await host.host.store.pool.read { try HistoryIndex.counts($0).incidents } >= 3 }
        }
        // Eight incidents at the Hughes flat without children, spread over the partitions.
        let occurrences = (0..<8).map { String(43_260_001_000 + $0 * 7) }
        for (i, occurrence) in occurrences.enumerated() {
            var incident = History.today
            incident.occurrenceNumber = occurrence
            let recorded = IncidentRecorded(kind: .new, revision: 1, changes: [], source: "http", incident: incident)
            try await producer.send(
                ProducerRecord(
                    topic: Topics.incidents.name, key: occurrence,
                    value: try WireFormat.encode(Envelope(id: "incident-\(i)", key: occurrence, producer: "intake", payload: recorded))))
        }
        for instance in [a, b] {
            try await eventually("the whole queue on \(instance.host.configuration.instanceId)") {
                try await instance.list("pending", token: token).count == 24
            }
        }
        var ownedByA: [String] = [], ownedByB: [String] = []
        for (i, occurrence) in occurrences.enumerated() {
            if try await a.handled("incident-\(i)") { ownedByA.append(occurrence) }
            if try await b.handled("incident-\(i)") { ownedByB.append(occurrence) }
        }
        #expect(ownedByA.count + ownedByB.count == 8 && !ownedByA.isEmpty && !ownedByB.isEmpty, "A \(ownedByA), B \(ownedByB)")
        let queue = try await a.list("pending", token: token)
        // Confirm on A a proposal that B owns; reject on B one that A owns.
        let confirm = try #require(queue.first { ownedByB.contains($0.occurrenceNumber) && $0.child.givenName == "Oliver" })
        let reject = try #require(queue.first { ownedByA.contains($0.occurrenceNumber) && $0.child.givenName == "Lily" })
        #expect(try await request("POST", "\(a.base)/\(confirm.proposalId)/confirm", token: token, body: ["reviewer": "PS 1234"]).status == 202)
        #expect(
            try await request("POST", "\(b.base)/\(reject.proposalId)/reject", token: token, body: ["reviewer": "PS 5678", "note": "moved away"])
                .status == 202)

        let children = try await readRecords(kafka, topic: Topics.children.name, count: 1, timeout: .seconds(30))
            .map { try WireFormat.decode(ChildIdentified.self, from: $0.value) }
        #expect(children.map(\.payload.incident.occurrenceNumber) == [confirm.occurrenceNumber])
        #expect(children.first?.payload.evidence?.confirmedBy == "PS 1234")

        for instance in [a, b] {
            try await eventually("decisions replicated to \(instance.host.configuration.instanceId)") {
                let all = try await instance.list("all", token: token)
                return all.first { $0.proposalId == confirm.proposalId }?.status == "confirmed"
                    && all.first { $0.proposalId == reject.proposalId }?.status == "rejected"
            }
            let rejected = try await instance.host.store.pool.read {
                try ReviewQueue.rejectedChildren($0, forceCode: "43", occurrenceNumber: reject.occurrenceNumber)
            }
            #expect(rejected == [reject.child.childId])
            #expect(try await instance.list("pending", token: token).count == 22)
        }
        // The same decisions again, on the other instance: refused as already made.
        #expect(try await request("POST", "\(b.base)/\(confirm.proposalId)/confirm", token: token, body: ["reviewer": "PS 1234"]).status == 409)
        #expect(try await request("POST", "\(a.base)/\(reject.proposalId)/reject", token: token, body: ["reviewer": "PS 5678"]).status == 409)
        // A duplicate decision that reaches the topic anyway (a race between two officers) changes nothing.
        let duplicate = ReviewDecision(
            forceCode: "43", occurrenceNumber: confirm.occurrenceNumber, proposalId: confirm.proposalId,
            verdict: .confirm, reviewer: "PS 9999", decidedAt: Date())
        try await producer.send(
            ProducerRecord(
                topic: Topics.reviewDecisions.name, key: confirm.occurrenceNumber,
                value: try WireFormat.encode(
                    Envelope(
                        id: "duplicate-decision", key: confirm.occurrenceNumber,
                        producer: "child-research", payload: duplicate))))
        await producer.close()
        try await eventually("duplicate consumed by the owner") { try await b.handled("duplicate-decision") }
        let again = try await readRecords(kafka, topic: Topics.children.name, count: 2, timeout: .seconds(4))
        #expect(again.count == 1)
        let held = try #require(try await a.list("confirmed", token: token).first { $0.proposalId == confirm.proposalId })
        #expect(held.decidedBy == "PS 1234")

        try await a.stop()
        try await b.stop()
    }
}
