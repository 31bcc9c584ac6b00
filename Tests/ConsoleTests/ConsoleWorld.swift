import ConsoleService
import DispatchService
import EncompassKafka
import EncompassModels
import EncompassSecrets
import EncompassTestSupport
import Foundation
import GRDB
import IntakeService
import SchedulingService
import ServiceRuntime

@testable import ChildResearchService
@testable import SchoolResolutionService

/// The five real services in this process against the in-process Kafka cluster, on one
/// simulated clock, with a console in front of them and a little data: a household's history,
/// today's incident without children recorded (child research proposes two children for
/// review), a notice released this morning, and a bad record (a dead letter at school resolution).
final class ConsoleWorld: Sendable {
    static let token = "console-world-token-0123456789"
    static let staff = "mash.officer"
    static let password = "console-world-password-1"
    static let start = Timestamp.parse("2026-11-24T08:00:05Z")!

    let kafka: TestKafka
    let hosts: [ServiceName: ServiceHost]
    let tasks: [Task<Void, any Error>]
    let console: RunningConsole
    let directory: String
    let clockFile: String

    init() async throws {
        kafka = try TestKafka()
        directory = TestPaths.temporaryDirectory("console-world")
        clockFile = directory + "/clock.json"
        try SimulatedClockFile(simulated: Self.start, real: Date(), rate: 1).write(to: clockFile)
        let env = [
            "ENCOMPASS_MAIL_DIR": directory + "/mail",
            "ENCOMPASS_PUBLIC_URL": "http://127.0.0.1:1",
            "ENCOMPASS_DISPATCH_POLL_MS": "100",
            "ENCOMPASS_SCHEDULING_INTERVAL_MS": "100",
            "ENCOMPASS_INTAKE_API_TOKEN": "intake-token-0123456789",
        ]
        let definitions: [ServiceName: ServiceDefinition] = [
            .intake: IntakeService.definition(settings: try .fromEnvironment(env)),
            .childResearch: ChildResearchService.definition(settings: try .fromEnvironment(env)),
            .schoolResolution: SchoolResolutionService.definition(settings: try .fromEnvironment(env)),
            .scheduling: SchedulingService.definition(settings: try .fromEnvironment(env)),
            .dispatch: DispatchService.definition(settings: try .fromEnvironment(env)),
        ]
        var hosts: [ServiceName: ServiceHost] = [:]
        var tasks: [Task<Void, any Error>] = []
        var settings = ConsoleService.Settings()
        for service in ServiceName.allCases {
            let configuration = ServiceConfiguration(
                service: service, kafka: kafka.client(service.rawValue), groupId: "\(service.rawValue)-\(UUID())",
                dataDirectory: directory + "/" + service.rawValue, instanceId: "\(service.rawValue)-console-test", httpPort: 0,
                apiToken: Self.token, clockFile: clockFile)
            let host = try await ServiceHost(
                definition: definitions[service]!, configuration: configuration, logger: TestLog.logger(service.rawValue))
            hosts[service] = host
            tasks.append(Task { try await host.run(handleSignals: false) })
            settings.serviceURLs[service] = "http://127.0.0.1:\(await host.httpPort())"
        }
        self.hosts = hosts
        self.tasks = tasks
        settings.dataDirectory = directory + "/console"
        settings.httpPort = 0
        settings.apiToken = Self.token
        settings.passwordIterations = 10_000
        settings.serviceTimeout = 20 // the suites share 2 cores with chromium and other services
        settings.clockFile = clockFile
        settings.bootstrapUser = (Self.staff, "officer", Self.password)
        console = try await RunningConsole(settings)
    }

    var links: ServiceLinks { console.app.links }

    /// Today's incident in Reading: Sarah Hughes's flat, no child recorded by the officer.
    static let today = Incident(
        occurrenceNumber: "43260000999", forceCode: "43", occurredAt: Timestamp.parse("2026-11-23T21:10:00Z")!,
        reportedAt: Timestamp.parse("2026-11-23T21:40:00Z")!,
        incidentAddress: PostalAddress(lines: ["2/10 High St"], town: "Reading", postcode: "rg17ll"), localPolicingArea: "Reading",
        riskLevel: .medium, crime: true,
        parties: [Party(role: .victim, givenName: "Sara", familyName: "Hughes", dateOfBirth: "1988-07-12")])

    /// The household three years ago, with two children.
    static let history = Incident(
        occurrenceNumber: "43230000101", forceCode: "43", occurredAt: Timestamp.parse("2023-05-10T20:00:00Z")!,
        reportedAt: Timestamp.parse("2023-05-10T20:30:00Z")!,
        incidentAddress: PostalAddress(lines: ["Flat 2", "10 High Street"], town: "Reading", postcode: "RG1 7LL"), riskLevel: .medium, crime: true,
        parties: [
            Party(role: .victim, givenName: "Sarah", familyName: "Hughes", dateOfBirth: "1988-07-21"),
            Party(role: .suspect, givenName: "Mark", familyName: "Hughes", dateOfBirth: "1985-02-02"),
        ],
        children: [
            RecordedChild(givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12", school: RecordedSchool(name: "St Mary's CE Primary")),
            RecordedChild(givenName: "Amelia", familyName: "Smith-Hughes", dateOfBirth: "2019-01-30"),
        ])

    /// A notice for Oakwood Primary released at 08:00 today.
    static func noticeDue() -> NoticeDue {
        let child = IdentifiedChild(
            childId: "c-console-1", givenName: "Noah", familyName: "Patel", dateOfBirth: "2016-04-04",
            homeAddress: PostalAddress(lines: ["22 Station Road"], town: "Reading", postcode: "RG1 1AA"), presence: .witness)
        let incident = Incident(
            occurrenceNumber: "43260000777", forceCode: "43", occurredAt: Timestamp.parse("2026-11-23T19:00:00Z")!,
            reportedAt: Timestamp.parse("2026-11-23T19:30:00Z")!,
            incidentAddress: PostalAddress(lines: ["22 Station Road"], town: "Reading", postcode: "RG1 1AA"),
            localPolicingArea: "Reading", riskLevel: .high, crime: true,
            parties: [Party(role: .victim, givenName: "Priya", familyName: "Patel")],
            children: [RecordedChild(givenName: "Noah", familyName: "Patel", dateOfBirth: "2016-04-04")])
        let school = ResolvedSchool(
            urn: "110001", name: "Oakwood Primary School", localAuthorityCode: "872", localAuthorityName: "Wokingham",
            phase: "Primary", earlyYears: false, postcode: "RG1 5AQ",
            contacts: [SchoolContact(role: "dsl", name: "Ms Head", email: "dsl@oakwood.example", phone: "0118 000 0000")], channel: .email)
        let request = NoticeRequested(
            noticeId: NoticeID.make(forceCode: "43", occurrenceNumber: incident.occurrenceNumber, childId: child.childId),
            incident: incident, incidentRevision: 1, child: child, childSource: .officer, school: school, resolution: ["test"])
        return NoticeDue(
            request: request, releaseAt: Timestamp.parse("2026-11-24T08:00:00Z")!, escalation: false, escalationContact: nil, rules: ["test"])
    }

    /// Publishes the world's data and waits until the review queue holds the two proposals and dispatch the notice.
    func seed() async throws {
        let producer = try KafkaProducer(configuration: .init(client: kafka.client("feed")), logger: TestLog.logger("feed"))
        let past = Envelope(
            id: "history-1", key: Self.history.occurrenceNumber, producer: "intake",
            payload: HistoricalIncident(source: "history:console-test.jsonl", incident: Self.history))
        try await producer.send(ProducerRecord(topic: Topics.history.name, key: Self.history.occurrenceNumber, value: try WireFormat.encode(past)))
        let research = hosts[.childResearch]!
        try await eventually("history indexed", timeout: .seconds(60)) {
            try await research.store.pool.read { try HistoryIndex.counts($0).incidents } == 1
        }
        let recorded = Envelope(
            id: "incident-1", key: Self.today.occurrenceNumber, producer: "intake",
            payload: IncidentRecorded(kind: .new, revision: 1, changes: [], source: "http", incident: Self.today))
        try await producer.send(
            ProducerRecord(topic: Topics.incidents.name, key: Self.today.occurrenceNumber, value: try WireFormat.encode(recorded)))
        // Dispatch holds mail to a school without a notice password: Oakwood has one.
        let hash = try Secrets.hashPasswordBlocking("Oakwood-console-2026", iterations: 10_000)
        _ = try await hosts[.dispatch]!.store.pool.write { db in
            try AccountPasswords.apply(SchoolPassword(account: "110001", hash: hash, setAt: Self.start, setBy: "test"), db: db)
        }
        let due = Self.noticeDue()
        try await producer.send(
            ProducerRecord(
                topic: Topics.noticesDue.name, key: due.noticeId,
                value: try WireFormat.encode(Envelope(id: "due-1", key: due.noticeId, producer: "scheduling", payload: due))))
        try await producer.send(ProducerRecord(topic: Topics.children.name, key: "bad", value: Array("not json".utf8)))
        await producer.close()
        let links = self.links
        try await eventually("two proposals", timeout: .seconds(60)) { (await links.pendingProposals().value?.count ?? 0) == 2 }
        try await eventually("today's notice listed", timeout: .seconds(60)) {
            (await links.notices(on: CalendarDate(Self.start)).value?.notifications.count ?? 0) == 1
        }
        try await eventually("a dead letter at school resolution", timeout: .seconds(60)) {
            (await links.stage(.schoolResolution).deadLetters.value?.count ?? 0) == 1
        }
    }

    /// Waits until school resolution holds an open request to CSC for `lpa`.
    func waitForRequest(lpa: String) async throws -> CSCRequest {
        let links = self.links
        try await eventually("an open CSC request for \(lpa)", timeout: .seconds(60)) {
            await links.openRequests().value?.contains { $0.lpa == lpa } == true
        }
        guard let request = await links.openRequests().value?.first(where: { $0.lpa == lpa }) else {
            throw TimeoutError(what: "the CSC request for \(lpa)")
        }
        return request
    }

    func stop() async throws {
        try await console.stop()
        for host in hosts.values { await host.shutdown() }
        for task in tasks { try await task.value }
    }
}
