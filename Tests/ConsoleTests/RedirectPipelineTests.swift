import DispatchService
import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import SchedulingService
import SchoolResolutionService
import ServiceRuntime
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// "This pupil no longer attends" across school resolution, scheduling and dispatch over the
/// in-process Kafka cluster, on a simulated clock that moves only when told.
@Suite("No longer attends across the services: cancel, ask CSC, send to the current school", .serialized, .tags(.kafka))
struct RedirectPipelineTests {
    static let token = "redirect-test-token-0123456789"

    @Test(
        "a school's 'no longer attends' cancels the child's pending notice to it, and CSC's answer reaches the current school through scheduling and dispatch; the audit shows each step"
    )
    func loop() async throws {
        let world = try await RedirectPipeline()
        let child = world.child
        let schools = world.hosts[.schoolResolution]!, scheduling = world.hosts[.scheduling]!, dispatch = world.hosts[.dispatch]!
        func setClock(_ time: String) async throws { try await world.setClock(time) }
        func call(_ method: String, _ service: ServiceName, _ path: String, _ body: Data) async throws -> (Int, Data) {
            try await world.call(method, service, path, body)
        }
        func childMessage(_ occurrence: String, occurred: String) -> ChildIdentified { world.childMessage(occurrence, occurred: occurred) }
        func publish<P: MessagePayload>(_ payload: P, topic: String, key: String, id: String, producerName: String) async throws {
            try await world.publish(payload, topic: topic, key: key, id: id, producerName: producerName)
        }

        // Monday night's incident: the notice goes to Caversham on Tuesday at 08:00.
        let first = childMessage("43260000501", occurred: "2026-11-23T21:00:00Z")
        try await publish(first, topic: Topics.children.name, key: child.childId, id: "child-1", producerName: "child-research")
        try await eventually("first notice scheduled") {
            try await scheduling.store.pool.read { try PendingNoticeRow.fetchOne($0, key: first.noticeKey) } != nil
        }
        try await setClock("2026-11-24T08:00:05Z")
        try await eventually("first notice sent", timeout: .seconds(60)) {
            try await dispatch.store.pool.read { try NoticeRow.fetchOne($0, key: first.noticeKey)?.sentAt } != nil
        }
        // Tuesday afternoon's incident, after the release window: pending until Wednesday 08:00.
        try await setClock("2026-11-24T16:00:00Z")
        let second = childMessage("43260000502", occurred: "2026-11-24T15:30:00Z")
        try await publish(second, topic: Topics.children.name, key: child.childId, id: "child-2", producerName: "child-research")
        try await eventually("second notice pending") {
            try await scheduling.store.pool.read { try PendingNoticeRow.fetchOne($0, key: second.noticeKey)?.state } == .pending
        }

        // Caversham reads the first notice and answers that the pupil no longer attends.
        let feedback = SchoolFeedback(
            childId: child.childId, noticeId: first.noticeKey, schoolURN: "109778", kind: .noLongerAttends,
            reportedAt: Timestamp.parse("2026-11-24T16:05:00Z")!, reportedBy: "dsl@caversham.example")
        try await publish(feedback, topic: Topics.schoolFeedback.name, key: child.childId, id: "feedback-1", producerName: "dispatch")
        try await eventually("second notice cancelled") {
            try await scheduling.store.pool.read { try PendingNoticeRow.fetchOne($0, key: second.noticeKey)?.state } == .cancelled
        }
        let redirects = [NoticeID.redirect(of: first.noticeKey, awayFrom: "109778"), NoticeID.redirect(of: second.noticeKey, awayFrom: "109778")]
        try await eventually("two redirect requests open") {
            try await schools.store.pool.read {
                try SchoolRequestRow.filter(redirects.contains(Column("requestId")) && Column("status") == "open").fetchCount($0)
            } == 2
        }

        // Children's Social Care answers: Coley Primary.
        let sheet = "request_id,school_urn\n\(redirects[0]),109779\n\(redirects[1]),109779\n"
        let (status, answer) = try await call("POST", .schoolResolution, "/v1/requests/import?name=returned.csv", Data(sheet.utf8))
        #expect(status == 202, "\(String(decoding: answer, as: UTF8.self))")
        try await eventually("redirects scheduled") {
            try await scheduling.store.pool.read { try PendingNoticeRow.filter(redirects.contains(Column("noticeId"))).fetchCount($0) } == 2
        }
        try await setClock("2026-11-25T08:00:05Z")
        try await eventually("both redirects sent to Coley", timeout: .seconds(60)) {
            try await dispatch.store.pool.read { db in
                try NoticeRow.filter(redirects.contains(Column("noticeId"))).fetchAll(db).filter { $0.sentAt != nil && $0.schoolURN == "109779" }
                    .count == 2
            }
        }
        #expect(
            try await dispatch.store.pool.read { try NoticeRow.fetchOne($0, key: second.noticeKey) } == nil,
            "the cancelled notice never reached dispatch")
        #expect(
            try await dispatch.store.pool.read { try NoticeRow.filter(Column("schoolURN") == "109778").fetchCount($0) } == 1,
            "Caversham got only the notice it answered on")
        // The audit every dispatch instance keeps shows each step on the original notices.
        try await eventually("audit complete") {
            let kinds = try await dispatch.store.pool.read { db in
                try AuditEntry.filter([first.noticeKey, second.noticeKey].contains(Column("noticeId"))).fetchAll(db).map {
                    "\($0.noticeId == first.noticeKey ? "first" : "second"):\($0.kind)"
                }
            }
            return Set(kinds).isSuperset(of: [
                "first:sent", "first:redirect-requested", "first:redirected",
                "second:scheduled", "second:redirect-requested", "second:cancelled", "second:redirected",
            ])
        }
        try await world.stop()
    }

    @Test(
        "released together and not yet sent (mail held for the school's password): the school's 'no longer attends' on one stops the other in dispatch, which never sends it, its audit saying why"
    )
    func releasedThenWithdrawn() async throws {
        let world = try await RedirectPipeline(passwords: false)
        let scheduling = world.hosts[.scheduling]!, dispatch = world.hosts[.dispatch]!
        // Two incidents on Monday evening: both notices to Caversham are released on Tuesday at
        // 08:00, and held by dispatch: Caversham has no notice password yet.
        let first = world.childMessage("43260000601", occurred: "2026-11-23T19:00:00Z")
        let second = world.childMessage("43260000602", occurred: "2026-11-23T21:00:00Z")
        try await world.publish(first, topic: Topics.children.name, key: world.child.childId, id: "child-601", producerName: "child-research")
        try await world.publish(second, topic: Topics.children.name, key: world.child.childId, id: "child-602", producerName: "child-research")
        try await eventually("both scheduled") {
            try await scheduling.store.pool.read {
                try PendingNoticeRow.filter([first.noticeKey, second.noticeKey].contains(Column("noticeId"))).fetchCount($0)
            } == 2
        }
        try await world.setClock("2026-11-24T08:00:05Z")
        try await eventually("both held in dispatch", timeout: .seconds(60)) {
            try await dispatch.store.pool.read { db in
                try OutgoingMail.filter(
                    [first.noticeKey, second.noticeKey].contains(Column("noticeId")) && Column("state") == MailState.pending.rawValue
                ).fetchCount(db)
            } == 2
        }
        // Caversham tells the MASH (which records it) that the pupil no longer attends.
        let feedback = SchoolFeedback(
            childId: world.child.childId, noticeId: first.noticeKey, schoolURN: "109778", kind: .noLongerAttends,
            reportedAt: Timestamp.parse("2026-11-24T08:10:00Z")!, reportedBy: "dsl@caversham.example")
        try await world.publish(feedback, topic: Topics.schoolFeedback.name, key: world.child.childId, id: "feedback-601", producerName: "dispatch")
        try await eventually("the second notice withdrawn in dispatch", timeout: .seconds(60)) {
            try await dispatch.store.pool.read { try NoticeRow.fetchOne($0, key: second.noticeKey)?.state } == .cancelled
        }
        #expect(try await scheduling.store.pool.read { try PendingNoticeRow.fetchOne($0, key: second.noticeKey)?.state } == .released)
        // Caversham's password is set: the notice it answered on goes; the withdrawn one never does.
        try await world.setPassword("109778")
        try await eventually("the first notice sent", timeout: .seconds(60)) {
            try await dispatch.store.pool.read { try NoticeRow.fetchOne($0, key: first.noticeKey)?.sentAt } != nil
        }
        try await Task.sleep(for: .seconds(1))
        let withdrawn = try #require(try await dispatch.store.pool.read { try NoticeRow.fetchOne($0, key: second.noticeKey) })
        #expect(withdrawn.state == .cancelled && withdrawn.sentAt == nil)
        #expect(try await dispatch.store.pool.read { try OutgoingMail.fetchOne($0, key: second.noticeKey)?.state } == .cancelled)
        let audit = try await dispatch.store.pool.read { db in
            try AuditEntry.filter(Column("noticeId") == second.noticeKey).order(Column("id")).fetchAll(db)
        }
        #expect(!audit.contains { $0.kind == NoticeEvent.Kind.sent.rawValue }, "never handed to the mail transport")
        #expect(
            audit.contains {
                $0.kind == "cancelled" && $0.detail?.contains("withdrawn after release") == true && $0.detail?.contains("no longer attends") == true
            },
            "\(audit.map { "\($0.kind): \($0.detail ?? "")" })")
        #expect(audit.contains { $0.kind == "withdrawn" && $0.detail?.contains("not sent") == true })
        #expect(audit.contains { $0.kind == NoticeEvent.Kind.redirectRequested.rawValue }, "and its redirect to CSC is open")
        try await world.stop()
    }
}

/// School resolution, scheduling and dispatch on the in-process Kafka cluster and a simulated
/// clock; Caversham Primary (109778), where the records place the child, and Coley Primary
/// (109779), where the child is now, with contacts (and, unless told, notice passwords).
final class RedirectPipeline: Sendable {
    static let token = RedirectPipelineTests.token
    let kafka: TestKafka
    let clockFile: String
    let hosts: [ServiceName: ServiceHost]
    let tasks: [Task<Void, any Error>]
    let base: [ServiceName: String]
    let producer: KafkaProducer
    let child = IdentifiedChild(
        childId: "child-redirect", givenName: "Amelia", familyName: "Hughes", ageYears: 8,
        homeAddress: PostalAddress(lines: ["12 Oxford Road"], town: "Reading", postcode: "RG1 7LL"),
        recordedSchool: RecordedSchool(urn: "109778"))

    init(passwords: Bool = true) async throws {
        kafka = try TestKafka()
        let directory = TestPaths.temporaryDirectory("redirect-pipeline")
        clockFile = directory + "/clock.json"
        try SimulatedClockFile(simulated: Timestamp.parse("2026-11-23T22:00:00Z")!, real: Date(), rate: 0).write(to: clockFile)
        let env = [
            "ENCOMPASS_MAIL_DIR": directory + "/mail", "ENCOMPASS_PUBLIC_URL": "http://127.0.0.1:1",
            "ENCOMPASS_DISPATCH_POLL_MS": "100", "ENCOMPASS_SCHEDULING_INTERVAL_MS": "100",
        ]
        let definitions: [ServiceName: ServiceDefinition] = [
            .schoolResolution: SchoolResolutionService.definition(settings: try .fromEnvironment(env)),
            .scheduling: SchedulingService.definition(settings: try .fromEnvironment(env)),
            .dispatch: DispatchService.definition(settings: try .fromEnvironment(env)),
        ]
        var hosts: [ServiceName: ServiceHost] = [:]
        var tasks: [Task<Void, any Error>] = []
        var base: [ServiceName: String] = [:]
        for (service, definition) in definitions {
            let configuration = ServiceConfiguration(
                service: service, kafka: kafka.client(service.rawValue), groupId: "\(service.rawValue)-\(UUID())",
                dataDirectory: directory + "/" + service.rawValue, instanceId: "\(service.rawValue)-redirect-test", httpPort: 0,
                apiToken: Self.token, clockFile: clockFile)
            let host = try await ServiceHost(definition: definition, configuration: configuration, logger: TestLog.logger(service.rawValue))
            hosts[service] = host
            tasks.append(Task { try await host.run(handleSignals: false) })
            base[service] = "http://127.0.0.1:\(await host.httpPort())"
        }
        self.hosts = hosts
        self.tasks = tasks
        self.base = base
        producer = try KafkaProducer(configuration: .init(client: kafka.client("feed")), logger: TestLog.logger("feed"))
        for (urn, email) in [("109778", "dsl@caversham.example"), ("109779", "dsl@coley.example")] {
            let contacts = try JSONSerialization.data(withJSONObject: [
                "contacts": [["role": "dsl", "name": "DSL", "email": email]], "updatedBy": "test",
            ])
            #expect(try await call("PUT", .schoolResolution, "/v1/schools/\(urn)/contacts", contacts).0 == 202)
            if passwords { try await setPassword(urn) }
        }
        let schools = hosts[.schoolResolution]!
        try await eventually("contacts applied") {
            try await schools.store.pool.read { try SchoolContactRow.filter(["109778", "109779"].contains(Column("urn"))).fetchCount($0) } == 2
        }
    }

    func setClock(_ time: String) async throws {
        try SimulatedClockFile(simulated: Timestamp.parse(time)!, real: Date(), rate: 0).write(to: clockFile)
        try await Task.sleep(for: .milliseconds(250))
    }

    func setPassword(_ urn: String) async throws {
        let password = try JSONSerialization.data(withJSONObject: ["password": "Redirect-Test-\(urn)!"])
        #expect(try await call("PUT", .dispatch, "/v1/schools/\(urn)/password", password).0 == 200)
    }

    func call(_ method: String, _ service: ServiceName, _ path: String, _ body: Data) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: base[service]! + path)!)
        request.httpMethod = method
        request.httpBody = body
        request.setValue("Bearer \(Self.token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    func childMessage(_ occurrence: String, occurred: String) -> ChildIdentified {
        let at = Timestamp.parse(occurred)!
        let incident = Incident(
            occurrenceNumber: occurrence, forceCode: "43", occurredAt: at, reportedAt: at,
            incidentAddress: PostalAddress(lines: ["12 Oxford Road"], town: "Reading", postcode: "RG1 7LL"),
            localPolicingArea: "Reading", riskLevel: .medium, crime: true)
        return ChildIdentified(incident: incident, incidentRevision: 1, child: child, source: .officer)
    }

    func publish<P: MessagePayload>(_ payload: P, topic: String, key: String, id: String, producerName: String) async throws {
        try await producer.send(
            ProducerRecord(topic: topic, key: key, value: try WireFormat.encode(Envelope(id: id, key: key, producer: producerName, payload: payload)))
        )
    }

    func stop() async throws {
        await producer.close()
        for host in hosts.values { await host.shutdown() }
        for task in tasks { try await task.value }
    }
}
