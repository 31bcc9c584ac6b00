import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchoolResolutionService

/// One school resolution instance of a consumer group, on its own store.
final class SchoolInstance: Sendable {
    let host: ServiceHost
    let task: Task<Void, any Error>
    let port: Int

    init(_ kafka: TestKafka, group: String, instance: String) async throws {
        let settings = SchoolResolutionService.Settings(protocols: Fixtures.protocols, seedRegister: true, restoreGrace: .milliseconds(300))
        let configuration = ServiceConfiguration(
            service: .schoolResolution, kafka: kafka.client(instance), groupId: group,
            dataDirectory: TestPaths.temporaryDirectory("schools-\(instance)"), instanceId: instance, httpPort: 0, apiToken: "tok")
        host = try await ServiceHost(
            definition: SchoolResolutionService.definition(settings: settings), configuration: configuration,
            logger: TestLog.logger(instance))
        let host = self.host
        task = Task { try await host.run(handleSignals: false) }
        port = await host.httpPort()
    }

    func stop() async throws {
        await host.shutdown()
        try await task.value
    }

    /// Open requests and held answers, by request id.
    func open() async throws -> [String: String] {
        try await host.store.pool.read { db in
            Dictionary(
                uniqueKeysWithValues: try SchoolRequestRow.filter(["open", "review"].contains(Column("status"))).fetchAll(db).map {
                    ($0.requestId, $0.status)
                })
        }
    }

    func standbyOwners() async throws -> [String: String] {
        try await host.store.pool.read { db in
            Dictionary(uniqueKeysWithValues: try StandbyRecord.filter(Column("value") != nil).fetchAll(db).map { ($0.key, $0.owner) })
        }
    }

    func storeName() async throws -> String { try await host.store.pool.read { try WorkChangelogStore.owner($0) } }

    var ownedChildren: Set<Int32> { Set(host.environment.ownedPartitions().filter { $0.topic == Topics.children.name }.map(\.partition)) }
}

/// Children whose recorded school matches nothing: each gets a request to Children's Social Care.
func sendUnknownSchoolChildren(_ kafka: TestKafka, ids: [String]) async throws -> [ChildIdentified] {
    let producer = try KafkaProducer(configuration: .init(client: kafka.client("research")), logger: TestLog.logger("research"))
    var messages: [ChildIdentified] = []
    for (n, id) in ids.enumerated() {
        let message = Fixtures.message(
            occurrence: "4326000\(String(format: "%04d", n))",
            child: Fixtures.child(id: id, age: 8, school: RecordedSchool(name: "Quxworth Zyzzyva Academy")))
        try await producer.send(
            ProducerRecord(
                topic: Topics.children.name, key: id,
                value: try WireFormat.encode(Envelope(id: "child-msg-\(id)", key: id, producer: "child-research", payload: message))))
        messages.append(message)
    }
    await producer.close()
    return messages
}

@Suite("School resolution's CSC requests changelog over the mock Kafka cluster", .serialized, .tags(.kafka))
struct CSCChangelogTests {
    @Test(
        "an instance lost for good: a new instance on an empty disk restores every open request and held answer, acts on them, and an answered child's record becomes a tombstone"
    )
    func lostInstance() async throws {
        let kafka = try TestKafka()
        let group = "schools-\(UUID())"
        let lost = try await SchoolInstance(kafka, group: group, instance: "lost")
        let ids = (1...6).map { "child-\($0)" }
        let messages = try await sendUnknownSchoolChildren(kafka, ids: ids)
        try await eventually("requests filed") { try await lost.open().count == ids.count }
        // CSC answered one child with a school outside the child's age range: held for a MASH officer.
        let held = messages[0].noticeKey
        try await lost.host.store.pool.write { db in
            try db.execute(
                sql: "UPDATE schoolRequest SET status = 'review', reviewSchool = ?, reviewReason = ? WHERE requestId = ?",
                arguments: [#"{"urn":"109778"}"#, "the school's age range does not include the child's age", held])
        }
        let lostName = try await lost.storeName()
        try await eventually("every child's record published and read back") {
            let owners = try await lost.standbyOwners()
            let partitions = try await lost.host.store.pool.read {
                try Int.fetchOne($0, sql: "SELECT count(*) FROM changelogStandby WHERE partition IS NOT NULL")
            }
            return owners.count == ids.count && owners.values.allSatisfy { $0 == lostName } && partitions == ids.count
        }
        try await eventually("the held answer published") {
            let value = try await lost.host.store.pool.read {
                try StandbyRecord.fetchOne($0, key: ["topic": Topics.schoolRequestsChangelog.name, "key": ids[0]])?.value
            }
            return try value.map { try WireFormat.decode(SchoolRequestsChangelog.self, from: Array($0)).payload.requests.first?.status } == "review"
        }
        try await lost.stop() // and its disk is never seen again

        let fresh = try await SchoolInstance(kafka, group: group, instance: "fresh")
        try await eventually("restored", timeout: .seconds(60)) { try await fresh.open().count == ids.count }
        let restored = try await fresh.open()
        #expect(restored[held] == "review")
        #expect(restored.filter { $0.value == "open" }.count == ids.count - 1)
        let freshName = try await fresh.storeName()
        #expect(freshName != lostName)
        try await eventually("the new owner published every child again") {
            let owners = try await fresh.standbyOwners()
            return owners.values.allSatisfy { $0 == freshName } && owners.count == ids.count
        }

        // The MASH officer accepts the held answer on the new owner: a notice to Caversham, and
        // the child's record on the changelog becomes a tombstone (nothing open).
        let decided = try await send(
            "POST", "http://127.0.0.1:\(fresh.port)/v1/requests/\(held)/accept", token: "tok",
            body: Data(#"{"reviewer": "officer-7"}"#.utf8))
        #expect(decided.status == 200, "\(String(decoding: decided.body, as: UTF8.self))")
        let requests = try await readRecords(kafka, topic: Topics.noticeRequests.name, count: 1, timeout: .seconds(20))
        let request = try #require(try requests.first.map { try WireFormat.decode(NoticeRequested.self, from: $0.value) })
        #expect(request.payload.noticeId == held && request.payload.school.urn == "109778")
        try await eventually("tombstone read back") { try await fresh.standbyOwners()[ids[0]] == nil }
        // Every child's record by the lost instance, by the new owner, and the tombstone: 2n+1;
        // one more when the lost instance published the held answer as a record of its own
        // (that depends on how its publisher batched the changes). Reading stops at 2n+2 or at
        // the timeout, so both counts end with the tombstone read.
        let records = try await readRecords(kafka, topic: Topics.schoolRequestsChangelog.name, count: 2 * ids.count + 2, timeout: .seconds(20))
        let last = records.last { $0.keyString == ids[0] }
        #expect(
            last?.isTombstone == true, "\(records.filter { $0.keyString == ids[0] }.map { $0.isTombstone ? "tombstone" : "\($0.value.count) bytes" })"
        )
        #expect(last?.header(MessageHeader.owner)?.stringValue == freshName)
        try await fresh.stop()
    }

    @Test(
        "a second instance joins: the children of the partitions it takes are restored there and released by the first, so each open request is held by exactly one instance"
    )
    func scaleOut() async throws {
        let kafka = try TestKafka()
        let group = "schools-\(UUID())"
        let a = try await SchoolInstance(kafka, group: group, instance: "a")
        let ids = (1...12).map { "child-\($0)" }
        _ = try await sendUnknownSchoolChildren(kafka, ids: ids)
        try await eventually("A holds every request") { try await a.open().count == ids.count }
        try await eventually("published") { try await a.standbyOwners().count == ids.count }

        let b = try await SchoolInstance(kafka, group: group, instance: "b")
        try await eventually("partitions split", timeout: .seconds(60)) { !a.ownedChildren.isEmpty && !b.ownedChildren.isEmpty }
        try await eventually("each open request on exactly one instance, its partition's owner", timeout: .seconds(60)) {
            let onA = try await a.open(), onB = try await b.open()
            return Set(onA.keys).isDisjoint(with: onB.keys) && onA.count + onB.count == ids.count && !onB.isEmpty
        }
        // The CSC sheet gathered from both is whole, once.
        let exportA = try await send("GET", "http://127.0.0.1:\(a.port)/v1/requests/export?lpa=all&format=json", token: "tok", body: Data())
        let exportB = try await send("GET", "http://127.0.0.1:\(b.port)/v1/requests/export?lpa=all&format=json", token: "tok", body: Data())
        let rows = [exportA, exportB].map { String(decoding: $0.body, as: UTF8.self) }
        for id in ids {
            let noticeId = NoticeID.make(
                forceCode: "43", occurrenceNumber: "4326000\(String(format: "%04d", Int(id.dropFirst(6))! - 1))", childId: id)
            #expect(rows.filter { $0.contains(noticeId) }.count == 1, "\(id) exported by one instance")
        }
        try await b.stop()
        try await eventually("A owns every partition again and holds every request", timeout: .seconds(60)) {
            let open = try await a.open()
            return a.ownedChildren.count == kafka.partitions && open.count == ids.count
        }
        try await a.stop()
    }
}
