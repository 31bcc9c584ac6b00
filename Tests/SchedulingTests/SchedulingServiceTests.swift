import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchedulingService

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A simulated clock shared by the instances of a test (rate 0: moves only when told).
final class TestClock: Sendable {
    let path: String

    init(_ start: String) throws {
        path = TestPaths.temporaryDirectory("clock") + "/clock.json"
        try SimulatedClockFile(simulated: instant(start), real: Date(), rate: 0).write(to: path)
    }

    /// Moves the clock and waits until every reader has seen it (they re-read the file at most
    /// every 100 ms): otherwise a message sent straight after a move can be handled at the
    /// previous time.
    func set(_ time: String) async throws {
        try SimulatedClockFile(simulated: instant(time), real: Date(), rate: 0).write(to: path)
        try await Task.sleep(for: .milliseconds(250))
    }
}

final class RunningScheduler: Sendable {
    let host: ServiceHost
    let task: Task<Void, any Error>
    let port: Int

    init(
        _ kafka: TestKafka, group: String, instance: String, dataDirectory: String, clock: TestClock, token: String? = "tok",
        releaseInterval: Duration = .milliseconds(50), restoreGrace: Duration = .milliseconds(300)
    ) async throws {
        let settings = SchedulingService.Settings(
            calendars: try SchoolCalendars.load(), protocols: try SchedulingProtocol.loadAll(ForceProtocols.load()),
            releaseInterval: releaseInterval, restoreGrace: restoreGrace)
        let configuration = ServiceConfiguration(
            service: .scheduling, kafka: kafka.client(instance), groupId: group, dataDirectory: dataDirectory,
            instanceId: instance, httpPort: 0, apiToken: token, clockFile: clock.path)
        let host = try await ServiceHost(
            definition: SchedulingService.definition(settings: settings), configuration: configuration,
            logger: TestLog.logger(instance))
        self.host = host
        self.task = Task { try await host.run(handleSignals: false) }
        self.port = await host.httpPort()
    }

    func stop() async throws {
        await host.shutdown()
        try await task.value
    }

    func rows() async throws -> [PendingNoticeRow] {
        try await host.store.pool.read { try PendingNoticeRow.order(Column("noticeId")).fetchAll($0) }
    }

    var owned: Set<TopicPartition> { host.environment.ownedPartitions() }
}

func noticeRequest(_ n: Int, occurred: String, risk: RiskLevel = .standard, la: String = "931", revision: Int = 1, force: String = "43")
    -> NoticeRequested
{
    let occurrence = force == "43" ? String(format: "432511%05d", n) : String(format: "CC-20251103-%04d", n)
    let incident = Incident(
        occurrenceNumber: occurrence, forceCode: force, occurredAt: instant(occurred), reportedAt: instant(occurred),
        incidentAddress: PostalAddress(lines: ["1 High Street"], town: "Oxford", postcode: "OX1 1AA"), riskLevel: risk, crime: true)
    let child = IdentifiedChild(childId: "c-\(n)", givenName: "Alex", familyName: "Smith", ageYears: 9)
    let school = ResolvedSchool(
        urn: String(format: "1%05d", n), name: "Test Primary \(n)", localAuthorityCode: la, localAuthorityName: "Oxfordshire",
        contacts: [SchoolContact(role: "dsl", name: "DSL", email: "dsl@school.example")])
    let id = NoticeID.make(forceCode: force, occurrenceNumber: occurrence, childId: child.childId)
    return NoticeRequested(
        noticeId: id, incident: incident, incidentRevision: revision, child: child, childSource: .officer,
        school: school, resolution: ["test"])
}

func send(_ kafka: TestKafka, _ requests: [NoticeRequested], envelopeId: ((NoticeRequested) -> String)? = nil) async throws {
    let producer = try KafkaProducer(configuration: .init(client: kafka.client("school-resolution")), logger: TestLog.logger("producer"))
    for request in requests {
        let id = envelopeId?(request) ?? MessageID.derived(from: "\(request.noticeId)/\(request.incidentRevision)", "request")
        let envelope = Envelope(id: id, key: request.noticeId, producer: "school-resolution", payload: request)
        _ = try await producer.send(
            ProducerRecord(topic: Topics.noticeRequests.name, key: Array(request.noticeId.utf8), value: try WireFormat.encode(envelope)))
    }
    try await producer.flush()
    await producer.close()
}

/// The first `count` NoticeDue records, and (with `watchForExtra`, after a second's settling) how
/// many records the topic holds in all, so that a duplicate beyond the first `count` would show.
func dueNotices(_ kafka: TestKafka, atLeast count: Int, watchForExtra: Bool = false) async throws -> [Envelope<NoticeDue>] {
    let records = try await readRecords(kafka, topic: Topics.noticesDue.name, count: count, timeout: .seconds(30))
        .map { try WireFormat.decode(NoticeDue.self, from: $0.value) }
    guard watchForExtra else { return records }
    try await Task.sleep(for: .seconds(1))
    let total = try await recordCount(kafka, topic: Topics.noticesDue.name)
    guard total > records.count else { return records }
    return try await readRecords(kafka, topic: Topics.noticesDue.name, count: total, timeout: .seconds(30))
        .map { try WireFormat.decode(NoticeDue.self, from: $0.value) }
}

/// Records in all partitions of a topic (high minus low watermark).
func recordCount(_ kafka: TestKafka, topic: String) async throws -> Int {
    let admin = try KafkaAdmin(client: kafka.client("admin"), logger: TestLog.logger("admin"))
    var total: Int64 = 0
    for partition in 0..<kafka.partitions {
        let marks = try await admin.watermarks(TopicPartition(topic, Int32(partition)))
        total += marks.high - marks.low
    }
    await admin.close()
    return Int(total)
}

@Suite("Scheduling service over Kafka", .tags(.kafka))
struct SchedulingServiceTests {
    @Test("request → pending → simulated morning → one NoticeDue; duplicates and later requests ignored; escalation now; HTTP")
    func flow() async throws {
        let kafka = try TestKafka()
        let clock = try TestClock("2025-11-03 22:00")
        let scheduler = try await RunningScheduler(
            kafka, group: "sched-\(UUID())", instance: "a", dataDirectory: TestPaths.temporaryDirectory("sched"), clock: clock)
        let monday = noticeRequest(1, occurred: "2025-11-03 21:00")
        try await send(kafka, [monday])
        try await eventually("scheduled") { try await scheduler.rows().count == 1 }
        var row = try #require(try await scheduler.rows().first)
        #expect(row.state == .pending)
        #expect(row.releaseAt == instant("2025-11-04 08:00"))

        // The same message again, and a stale revision: no change.
        try await send(kafka, [monday])
        try await clock.set("2025-11-04 07:59")
        try await Task.sleep(for: .milliseconds(400))
        row = try #require(try await scheduler.rows().first)
        #expect(row.state == .pending, "not before the release time")

        // The HTTP list shows it, without personal data, behind the token.
        let unauthorised = try await httpGet("http://127.0.0.1:\(scheduler.port)/v1/pending")
        #expect(unauthorised.status == 401)
        let list = try await httpGet("http://127.0.0.1:\(scheduler.port)/v1/pending", headers: ["Authorization": "Bearer tok"])
        #expect(list.status == 200)
        #expect(list.body.contains(monday.noticeId))
        #expect(!list.body.contains("Alex"))
        let noOverride = try await httpGet("http://127.0.0.1:\(scheduler.port)/v1/term-dates/school/100001", headers: ["Authorization": "Bearer tok"])
        #expect(noOverride.status == 404)
        let badState = try await httpGet("http://127.0.0.1:\(scheduler.port)/v1/pending?state=nope", headers: ["Authorization": "Bearer tok"])
        #expect(badState.status == 400)

        // A school with its own half term (3-7 Nov), uploaded as the CSV it publishes: its notice
        // waits for its first day back.
        var put = URLRequest(url: URL(string: "http://127.0.0.1:\(scheduler.port)/v1/term-dates/school/100009")!)
        put.httpMethod = "PUT"
        put.setValue("Bearer tok", forHTTPHeaderField: "Authorization")
        put.setValue("text/csv; charset=utf-8", forHTTPHeaderField: "Content-Type")
        put.httpBody = Data("Type,Start,End,Notes\nAutumn term,03/09/2025,19/12/2025,\nHalf term,03/11/2025,07/11/2025,\"academy, own dates\"\n".utf8)
        let (_, stored) = try await URLSession.shared.data(for: put)
        #expect((stored as? HTTPURLResponse)?.statusCode == 200)
        let academy = noticeRequest(9, occurred: "2025-11-03 21:00")
        try await send(kafka, [academy])
        try await eventually("academy scheduled") { try await scheduler.rows().contains { $0.noticeId == academy.noticeId } }
        #expect(try await scheduler.rows().first { $0.noticeId == academy.noticeId }?.releaseAt == instant("2025-11-10 08:00"))

        try await clock.set("2025-11-04 08:00")
        try await eventually("released") { try await scheduler.rows().first { $0.noticeId == monday.noticeId }?.state == .released }

        // A request for a notice already released (an amendment) is ignored.
        var amended = monday
        amended.incidentRevision = 2
        try await send(kafka, [amended])

        // High risk in half term: escalated at once to the force's ESM.
        try await clock.set("2025-10-29 15:00")
        let halfTerm = noticeRequest(2, occurred: "2025-10-29 14:00", risk: .high)
        try await send(kafka, [halfTerm])

        try await eventually("escalated") { try await scheduler.rows().filter { $0.state == .released }.count == 2 }
        let due = try await dueNotices(kafka, atLeast: 2)
        #expect(due.count == 2)
        #expect(try await scheduler.rows().first { $0.noticeId == monday.noticeId }?.incidentRevision == 1, "the late amendment was ignored")
        #expect(try await scheduler.rows().first { $0.noticeId == academy.noticeId }?.state == .pending)
        let first = try #require(due.first { $0.payload.noticeId == monday.noticeId })
        #expect(first.id == MessageID.derived(from: monday.noticeId, "due"))
        #expect(first.payload.releaseAt == instant("2025-11-04 08:00"))
        #expect(first.payload.request.incidentRevision == 1)
        #expect(!first.payload.escalation)
        #expect(first.payload.rules.contains { $0.contains("next school day: Tuesday 2025-11-04, notices go at 08:00") })
        let escalationId = Scheduler.escalationId(of: halfTerm.noticeId)
        let escalated = try #require(due.first { $0.payload.noticeId == escalationId })
        #expect(escalated.payload.escalation)
        #expect(escalated.payload.escalationContact?.role == "esm")
        #expect(escalated.payload.releaseAt == instant("2025-10-29 15:00"))
        #expect(!due.contains { $0.payload.noticeId == halfTerm.noticeId }, "the school's own notice waits for its first day back")

        // The school's own notice goes on its first day back, under the notice's own id: a
        // NoticeDue with another id than the escalation's, so dispatch keeps both.
        let schoolRow = try #require(try await scheduler.rows().first { $0.noticeId == halfTerm.noticeId })
        #expect(schoolRow.state == .pending && !schoolRow.escalate && schoolRow.releaseAt == instant("2025-11-03 08:00"))
        try await clock.set("2025-11-03 08:00")
        try await eventually("school's own notice released") {
            try await scheduler.rows().first { $0.noticeId == halfTerm.noticeId }?.state == .released
        }
        let afterHoliday = try await dueNotices(kafka, atLeast: 3)
        let schoolNotice = try #require(afterHoliday.first { $0.payload.noticeId == halfTerm.noticeId })
        #expect(!schoolNotice.payload.escalation && schoolNotice.payload.escalationContact == nil)
        #expect(schoolNotice.payload.releaseAt == instant("2025-11-03 08:00"))
        #expect(schoolNotice.payload.request.school.urn == halfTerm.school.urn)
        #expect(schoolNotice.id != escalated.id)
        #expect(schoolNotice.payload.rules.contains { $0.contains("the school's own notice") && $0.contains(escalationId) })

        // The shipped escalation contacts are placeholders: the readiness detail says so.
        let readiness = try await httpGet("http://127.0.0.1:\(scheduler.port)/v1/readiness", headers: ["Authorization": "Bearer tok"])
        #expect(readiness.status == 200 && readiness.body.contains("ENCOMPASS_ESM_EMAIL_43") && readiness.body.contains("force 05"))
        #expect(try await httpGet("http://127.0.0.1:\(scheduler.port)/v1/readiness", headers: [:]).status == 401)
        // With the term dates' state: every LA approximate for 2026-27, so a warning.
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(readiness.body.utf8)) as? [String: Any])
        #expect(answer["status"] as? String == "warning")
        let calendars = answer["calendars"] as? [[String: Any]] ?? []
        let oxfordshire = try #require(calendars.first { $0["la"] as? String == "931" })
        #expect(calendars.count == 11 && oxfordshire["lastDay"] as? String == "2027-08-31" && oxfordshire["daysLeft"] as? Int == 666)
        #expect(oxfordshire["approximateYears"] as? [String] == ["2026-27"] && oxfordshire["warning"] as? Bool == true)
        // And as metrics, by the service clock (3 November 2025).
        let metrics = try await httpGet("http://127.0.0.1:\(scheduler.port)/metrics", headers: [:]).body
        let left = metrics.split(separator: "\n").first { $0.hasPrefix("encompass_scheduling_term_dates_left_days{") && $0.contains("la=\"931\"") }
        #expect(left.map { $0.hasSuffix(" 666") || $0.hasSuffix(" 666.0") } == true, "\(left ?? "no gauge")")
        let approximate = metrics.split(separator: "\n").first {
            $0.hasPrefix("encompass_scheduling_term_dates_approximate{") && $0.contains("la=\"931\"")
        }
        #expect(approximate.map { $0.hasSuffix(" 1") || $0.hasSuffix(" 1.0") } == true, "\(approximate ?? "no gauge")")

        // Every event so far (other notices have events too), not just the first four to arrive.
        try await Task.sleep(for: .seconds(1))
        let events = try await readRecords(kafka, topic: Topics.noticeEvents.name, count: 1_000, timeout: .seconds(8))
            .map { try WireFormat.decode(NoticeEvent.self, from: $0.value).payload }
        #expect(events.filter { $0.noticeId == monday.noticeId }.map(\.kind) == [.scheduled, .released])
        #expect(events.filter { $0.noticeId == halfTerm.noticeId }.map(\.kind) == [.scheduled, .released])
        #expect(events.filter { $0.noticeId == escalationId }.map(\.kind) == [.scheduled, .escalated])
        try await scheduler.stop()
    }

    @Test("one child identified twice under two child ids is scheduled once for its school; a sibling of another name still is")
    func sameChildTwice() async throws {
        let kafka = try TestKafka()
        let clock = try TestClock("2025-10-24 21:00")
        let scheduler = try await RunningScheduler(
            kafka, group: "sched-\(UUID())", instance: "a", dataDirectory: TestPaths.temporaryDirectory("sched"), clock: clock)
        let first = noticeRequest(5, occurred: "2025-10-24 20:00")
        func another(_ childId: String, given: String, dateOfBirth: String?) -> NoticeRequested {
            var request = first
            request.child = IdentifiedChild(
                childId: childId, givenName: given, familyName: "SMITH", dateOfBirth: dateOfBirth,
                ageYears: dateOfBirth == nil ? 9 : nil)
            request.noticeId = NoticeID.make(forceCode: "43", occurrenceNumber: first.incident.occurrenceNumber, childId: childId)
            return request
        }
        try await send(kafka, [first])
        try await eventually("scheduled") { try await scheduler.rows().count == 1 }
        // The same Alex Smith (age 9 on the incident's day from the date of birth), and his sister.
        let twice = another("c-5-again", given: "alex", dateOfBirth: "2016-03-01")
        let sister = another("c-5-sister", given: "Sam", dateOfBirth: nil)
        let older = another("c-5-older", given: "Alex", dateOfBirth: "2012-03-01")
        try await send(kafka, [twice, sister, older])
        try await eventually("the sister and the older Alex scheduled") { try await scheduler.rows().count == 3 }
        try await Task.sleep(for: .seconds(1))
        let held = Set(try await scheduler.rows().map(\.noticeId))
        #expect(held == [first.noticeId, sister.noticeId, older.noticeId])
        try await scheduler.stop()
    }

    @Test("an amendment before release reschedules; a bad request is dead-lettered and the next one still goes")
    func amendmentAndBadInput() async throws {
        let kafka = try TestKafka()
        let clock = try TestClock("2025-10-24 21:00")
        let scheduler = try await RunningScheduler(
            kafka, group: "sched-\(UUID())", instance: "a", dataDirectory: TestPaths.temporaryDirectory("sched"), clock: clock, token: nil)
        let refused = try await httpGet("http://127.0.0.1:\(scheduler.port)/v1/pending", headers: ["Authorization": "Bearer tok"])
        #expect(refused.status == 503 && refused.body.contains("ENCOMPASS_API_TOKEN"))
        let friday = noticeRequest(3, occurred: "2025-10-24 20:00")
        var unknownForce = noticeRequest(4, occurred: "2025-10-24 20:00")
        unknownForce.incident.forceCode = "99"
        try await send(kafka, [friday, unknownForce])
        try await eventually("scheduled") { try await scheduler.rows().count == 1 }
        #expect(try await scheduler.rows().first?.releaseAt == instant("2025-11-03 08:00"))
        try await eventually("dead letter") { try await scheduler.host.store.pool.read { try DeadLetter.fetchCount($0) } == 1 }
        let letter = try #require(try await scheduler.host.store.pool.read { try DeadLetter.fetchOne($0) })
        #expect(letter.errorClass == "scheduling.unknown-force")

        var amended = noticeRequest(3, occurred: "2025-10-24 20:00", risk: .high, revision: 2)
        amended.noticeId = friday.noticeId
        try await send(kafka, [amended])
        let escalationId = Scheduler.escalationId(of: friday.noticeId)
        try await eventually("rescheduled as escalation") { try await scheduler.rows().first { $0.noticeId == escalationId }?.state == .released }
        let due = try await dueNotices(kafka, atLeast: 1)
        #expect(due.count == 1)
        #expect(due.first?.payload.noticeId == escalationId)
        #expect(due.first?.payload.escalation == true)
        #expect(due.first?.payload.request.incidentRevision == 2)
        let school = try #require(try await scheduler.rows().first { $0.noticeId == friday.noticeId })
        #expect(
            school.state == .pending && !school.escalate && school.incidentRevision == 2 && school.releaseAt == instant("2025-11-03 08:00"),
            "the school still gets its own notice on its first day back")
        try await scheduler.stop()
    }

    @Test("restart with pending notices: a new host on the same store releases each once")
    func restart() async throws {
        let kafka = try TestKafka()
        let clock = try TestClock("2025-11-07 19:00")
        let directory = TestPaths.temporaryDirectory("sched")
        let group = "sched-\(UUID())"
        let requests = (10..<16).map { noticeRequest($0, occurred: "2025-11-07 18:00") }
        var first: RunningScheduler? = try await RunningScheduler(kafka, group: group, instance: "a", dataDirectory: directory, clock: clock)
        try await send(kafka, requests)
        try await eventually("all pending") { try await first!.rows().count == requests.count }
        try await first!.stop()
        first = nil

        try await clock.set("2025-11-10 08:00")
        let second = try await RunningScheduler(kafka, group: group, instance: "a", dataDirectory: directory, clock: clock)
        try await eventually("all released", timeout: .seconds(60)) { try await second.rows().allSatisfy { $0.state == .released } }
        let due = try await dueNotices(kafka, atLeast: requests.count, watchForExtra: true)
        #expect(due.count == requests.count)
        #expect(Set(due.map(\.id)).count == requests.count)
        #expect(due.allSatisfy { $0.payload.releaseAt == instant("2025-11-10 08:00") })
        try await second.stop()
    }

    @Test("loss of an instance: a new instance on an empty disk restores the pending notices from the changelog and releases them")
    func lostInstance() async throws {
        let kafka = try TestKafka()
        let clock = try TestClock("2025-11-07 19:00")
        let group = "sched-\(UUID())"
        let requests = (30..<34).map { noticeRequest($0, occurred: "2025-11-07 18:00") }
        let lost = try await RunningScheduler(
            kafka, group: group, instance: "lost", dataDirectory: TestPaths.temporaryDirectory("sched"), clock: clock)
        try await send(kafka, requests)
        try await eventually("all pending") { try await lost.rows().count == requests.count }
        try await lost.stop() // and its disk is never seen again

        try await clock.set("2025-11-10 08:00")
        let fresh = try await RunningScheduler(
            kafka, group: group, instance: "fresh", dataDirectory: TestPaths.temporaryDirectory("sched"), clock: clock)
        try await eventually("restored and released", timeout: .seconds(60)) {
            let rows = try await fresh.rows()
            return rows.count == requests.count && rows.allSatisfy { $0.state == .released }
        }
        let due = try await dueNotices(kafka, atLeast: requests.count, watchForExtra: true)
        #expect(Set(due.map(\.payload.noticeId)) == Set(requests.map(\.noticeId)))
        #expect(due.count == requests.count)
        try await fresh.stop()
    }

    @Test("two instances with a rebalance: every notice released exactly once in effect; term-date overrides replicate")
    func rebalance() async throws {
        let kafka = try TestKafka()
        let clock = try TestClock("2025-11-03 22:00")
        let group = "sched-\(UUID())"
        let a = try await RunningScheduler(kafka, group: group, instance: "a", dataDirectory: TestPaths.temporaryDirectory("sched-a"), clock: clock)
        // Four due Tuesday, four due Wednesday.
        let tuesday = (20..<24).map { noticeRequest($0, occurred: "2025-11-03 21:00") }
        let wednesday = (24..<28).map { noticeRequest($0, occurred: "2025-11-04 21:00") }
        try await send(kafka, tuesday + wednesday)
        try await eventually("A holds all") { try await a.rows().count == 8 }
        #expect(Set(try await a.rows().map(\.partition)).count > 1, "spread over partitions")

        let b = try await RunningScheduler(kafka, group: group, instance: "b", dataDirectory: TestPaths.temporaryDirectory("sched-b"), clock: clock)
        try await eventually("B restored every pending notice from the changelog") { try await b.rows().count == 8 }
        try await eventually("partitions split", timeout: .seconds(60)) { !b.owned.isEmpty && !a.owned.isEmpty }

        // A school's own term dates, set on A, reach B.
        var put = URLRequest(url: URL(string: "http://127.0.0.1:\(a.port)/v1/term-dates/school/123456")!)
        put.httpMethod = "PUT"
        put.setValue("Bearer tok", forHTTPHeaderField: "Authorization")
        put.httpBody = Data(#"{"years":[{"schoolYear":"2025-26","terms":[{"name":"autumn","start":"2025-09-03","end":"2025-12-17"}]}]}"#.utf8)
        let (_, response) = try await URLSession.shared.data(for: put)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        put.httpBody = Data(#"{"years":[{"schoolYear":"2025-26","terms":[{"name":"autumn","start":"2025-12-17","end":"2025-09-03"}]}]}"#.utf8)
        let (_, refused) = try await URLSession.shared.data(for: put)
        #expect((refused as? HTTPURLResponse)?.statusCode == 422)
        try await eventually("override replicated") {
            try await b.host.store.pool.read { try SchoolTermDatesRow.fetchOne($0, key: "123456") } != nil
        }
        let fetched = try await httpGet("http://127.0.0.1:\(b.port)/v1/term-dates/school/123456", headers: ["Authorization": "Bearer tok"])
        #expect(fetched.status == 200 && fetched.body.contains("2025-12-17"))
        var delete = URLRequest(url: URL(string: "http://127.0.0.1:\(b.port)/v1/term-dates/school/123456")!)
        delete.httpMethod = "DELETE"
        delete.setValue("Bearer tok", forHTTPHeaderField: "Authorization")
        let (_, deleted) = try await URLSession.shared.data(for: delete)
        #expect((deleted as? HTTPURLResponse)?.statusCode == 200)
        try await eventually("removal replicated to A") {
            try await a.host.store.pool.read { try SchoolTermDatesRow.fetchOne($0, key: "123456") } == nil
        }

        // Tuesday morning: both instances release the notices of their own partitions.
        try await clock.set("2025-11-04 08:00")
        try await eventually("Tuesday's released") {
            let released = Set(try await a.rows().filter { $0.state == .released }.map(\.noticeId))
                .union(try await b.rows().filter { $0.state == .released }.map(\.noticeId))
            return released.isSuperset(of: tuesday.map(\.noticeId))
        }
        try await a.stop()
        try await eventually("B owns every partition", timeout: .seconds(60)) {
            b.owned.filter { $0.topic == Topics.noticeRequests.name }.count == kafka.partitions
        }
        try await clock.set("2025-11-05 08:00")
        try await eventually("B released the rest", timeout: .seconds(60)) { try await b.rows().allSatisfy { $0.state == .released } }

        let due = try await dueNotices(kafka, atLeast: 8, watchForExtra: true)
        let ids = due.map(\.id)
        #expect(Set(ids).count == 8, "every notice released")
        #expect(Set(due.map(\.payload.noticeId)) == Set((tuesday + wednesday).map(\.noticeId)))
        #expect(ids.count == 8, "no second release (total \(ids.count))")
        #expect(
            due.filter { wednesday.map(\.noticeId).contains($0.payload.noticeId) }.allSatisfy { $0.payload.releaseAt == instant("2025-11-05 08:00") })
        try await b.stop()
    }
}

/// Sends a cancellation on the requests topic as school resolution's outbox does (with the
/// schema header the topic's router reads), or without headers (as a replayed dead letter).
func sendCancellation(_ kafka: TestKafka, _ cancellation: NoticeCancelled, id: String, headers: Bool = true) async throws {
    let producer = try KafkaProducer(configuration: .init(client: kafka.client("school-resolution")), logger: TestLog.logger("producer"))
    let envelope = Envelope(id: id, key: cancellation.noticeId, producer: "school-resolution", payload: cancellation)
    _ = try await producer.send(
        ProducerRecord(
            topic: Topics.noticeRequests.name, key: Array(cancellation.noticeId.utf8), value: try WireFormat.encode(envelope),
            headers: headers
                ? [
                    KafkaHeader(key: MessageHeader.messageId, string: id), KafkaHeader(key: MessageHeader.schema, string: NoticeCancelled.schema),
                    KafkaHeader(key: MessageHeader.version, string: "1"),
                ] : []))
    try await producer.flush()
    await producer.close()
}

@Suite("Scheduling: cancellations when a school says the pupil no longer attends", .tags(.kafka))
struct SchedulingCancellationTests {
    @Test(
        "a pending notice to the school is cancelled and never released; a released one, or one now for another school, is not, and the event says why; a later request is ignored"
    )
    func cancellations() async throws {
        let kafka = try TestKafka()
        let clock = try TestClock("2025-11-03 22:00")
        let scheduler = try await RunningScheduler(
            kafka, group: "sched-\(UUID())", instance: "a", dataDirectory: TestPaths.temporaryDirectory("sched"), clock: clock)
        let released = noticeRequest(11, occurred: "2025-11-03 21:00")
        let cancelled = noticeRequest(12, occurred: "2025-11-03 21:00")
        let elsewhere = noticeRequest(13, occurred: "2025-11-03 21:00")
        try await send(kafka, [released, cancelled, elsewhere])
        try await eventually("scheduled") { try await scheduler.rows().count == 3 }
        func cancellation(_ request: NoticeRequested, urn: String? = nil) -> NoticeCancelled {
            let urn = urn ?? request.school.urn
            return NoticeCancelled(
                noticeId: request.noticeId, forceCode: "43", occurrenceNumber: request.incident.occurrenceNumber,
                schoolURN: urn, reason: "URN \(urn) reported that the pupil no longer attends",
                requestedAt: instant("2025-11-03 22:00"), replacedBy: request.noticeId + "-r0000")
        }
        try await sendCancellation(kafka, cancellation(cancelled), id: "cancel-1")
        // Without headers: routed by the envelope's schema.
        try await sendCancellation(kafka, cancellation(elsewhere, urn: "199999"), id: "cancel-2", headers: false)
        try await eventually("cancelled") { try await scheduler.rows().first { $0.noticeId == cancelled.noticeId }?.state == .cancelled }

        try await clock.set("2025-11-04 08:00")
        try await eventually("released") { try await scheduler.rows().filter { $0.state == .released }.count == 2 }
        #expect(try await scheduler.rows().first { $0.noticeId == cancelled.noticeId }?.state == .cancelled, "a cancelled notice is never released")
        try await sendCancellation(kafka, cancellation(released), id: "cancel-3")
        // A later revision of the cancelled notice's request does not bring it back.
        var amended = cancelled
        amended.incidentRevision = 2
        try await send(kafka, [amended])

        let due = try await dueNotices(kafka, atLeast: 2, watchForExtra: true)
        #expect(Set(due.map(\.payload.noticeId)) == [released.noticeId, elsewhere.noticeId])
        let events = try await readRecords(kafka, topic: Topics.noticeEvents.name, count: 8, timeout: .seconds(20))
            .map { try WireFormat.decode(NoticeEvent.self, from: $0.value).payload }
        let cancelledEvent = try #require(events.first { $0.noticeId == cancelled.noticeId && $0.kind == .cancelled })
        #expect(
            cancelledEvent.detail?.contains("no longer attends") == true && cancelledEvent.detail?.contains(cancelled.noticeId + "-r0000") == true)
        #expect(
            events.first { $0.noticeId == elsewhere.noticeId && $0.kind == .flagged }?.detail?.contains("now for URN \(elsewhere.school.urn)") == true
        )
        // Released already: dispatch is told to withdraw it if it has not sent it yet.
        #expect(events.first { $0.noticeId == released.noticeId && $0.kind == .cancelled }?.detail?.contains("withdrawn after release") == true)
        #expect(try await scheduler.rows().first { $0.noticeId == cancelled.noticeId }?.state == .cancelled)
        #expect(try await scheduler.host.store.pool.read { try DeadLetter.fetchCount($0) } == 0)
        try await scheduler.stop()
    }
}
