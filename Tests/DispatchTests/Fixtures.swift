import EncompassKafka
import EncompassModels
import EncompassSecrets
import EncompassTestSupport
import Foundation
import GRDB
import Logging
import ServiceRuntime

@testable import DispatchService

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Distinctive strings in every field of an incident, so a test can tell which ones reach a school.
enum Sentinel {
    static let childGiven = "SentinelChildGiven"
    static let childFamily = "SentinelChildFamily"
    static let childDOB = "2016-05-04"
    static let childDOBShown = "4 May 2016"
    static let homeLine = "SENTINEL-HOME-LINE"
    static let incidentLine = "SENTINEL-INCIDENT-LINE"
    static let relationship = "SENTINEL-RELATIONSHIP"
    static let circumstances = "witnessed it"
    static let officerCircumstances = "SENTINEL-CIRCUMSTANCES"
    static let safeguarding = "SENTINEL-SAFEGUARDING-INFORMATION"
    static let occurrence = "43269990001"

    /// Never on any notice, under any protocol.
    static let forbidden = [
        "SENTINEL-VICTIM-GIVEN", "SENTINEL-VICTIM-FAMILY", "SENTINEL-VICTIM-ADDRESS", "1971-03-17", "17 March 1971",
        "SENTINEL-SUSPECT-GIVEN", "SENTINEL-SUSPECT-FAMILY", "SENTINEL-SUSPECT-ADDRESS", "1969-08-09", "9 August 1969",
        "SENTINEL-OTHER-PARTY", "SENTINEL-LPA", "SENTINEL-OTHERCHILD-GIVEN", "SENTINEL-OTHERCHILD-FAMILY", "SENTINEL-OTHERCHILD-SCHOOL",
        "SENTINEL-RECORDED-SCHOOL", "SENTINEL-RESOLUTION", "SENTINEL-RULE", "SENTINEL-CONTACT-NAME", "SENTINEL-PHASE",
        "SENTINEL-LA-NAME", "SENTINEL-ESM-NAME", "03:47", "2016-05-04",
        "high", "High", "HIGH", "risk", "Risk", "crime", "Crime", "DASH", "suspect", "Suspect", "victim", "Victim",
    ]

    /// The sentinels each allowed field brings.
    static let byField: [NoticeField: [String]] = [
        .childName: [childGiven, childFamily], .dateOfBirth: [childDOBShown], .homeAddress: [homeLine],
        .incidentAddress: [incidentLine], .relationships: [relationship], .circumstances: [circumstances, officerCircumstances],
        .safeguardingInformation: [safeguarding],
        .occurrenceNumber: [occurrence], .childAge: ["10 years"], .occurredAt: ["Sunday 22 November 2026 at 21:15"],
    ]
}

enum Fixtures {
    static let occurredAt = Timestamp.parse("2026-11-22T21:15:00Z")!
    static let reportedAt = Timestamp.parse("2026-11-23T03:47:00Z")!
    static let releaseAt = Timestamp.parse("2026-11-24T08:00:00Z")!

    static func due(
        force: String = "43", noticeId: String? = nil, childGiven: String = Sentinel.childGiven,
        channel: NoticeChannel = .email, email: String? = "dsl@school.example", escalation: Bool = false,
        urn: String = "110001", releaseAt: Date = releaseAt
    ) -> NoticeDue {
        let incident = Incident(
            occurrenceNumber: Sentinel.occurrence, forceCode: force, occurredAt: occurredAt, reportedAt: reportedAt,
            incidentAddress: PostalAddress(lines: [Sentinel.incidentLine], town: "Reading", postcode: "RG1 7LL"),
            localPolicingArea: "SENTINEL-LPA", riskLevel: .high, crime: true,
            parties: [
                Party(
                    role: .victim, givenName: "SENTINEL-VICTIM-GIVEN", familyName: "SENTINEL-VICTIM-FAMILY", dateOfBirth: "1971-03-17",
                    address: PostalAddress(lines: ["SENTINEL-VICTIM-ADDRESS"], postcode: "RG1 1AA")),
                Party(
                    role: .suspect, givenName: "SENTINEL-SUSPECT-GIVEN", familyName: "SENTINEL-SUSPECT-FAMILY", dateOfBirth: "1969-08-09",
                    address: PostalAddress(lines: ["SENTINEL-SUSPECT-ADDRESS"], postcode: "RG1 2BB")),
                Party(role: .other, givenName: "SENTINEL-OTHER-PARTY", familyName: "SENTINEL-OTHER-PARTY"),
            ],
            children: [
                RecordedChild(givenName: childGiven, familyName: Sentinel.childFamily, dateOfBirth: Sentinel.childDOB),
                RecordedChild(
                    givenName: "SENTINEL-OTHERCHILD-GIVEN", familyName: "SENTINEL-OTHERCHILD-FAMILY", ageYears: 4,
                    school: RecordedSchool(name: "SENTINEL-OTHERCHILD-SCHOOL")),
            ],
            circumstances: Sentinel.officerCircumstances, safeguardingInformation: Sentinel.safeguarding)
        let child = IdentifiedChild(
            childId: "c-\(UUID().uuidString.prefix(8))", givenName: childGiven, familyName: Sentinel.childFamily, dateOfBirth: Sentinel.childDOB,
            homeAddress: PostalAddress(lines: [Sentinel.homeLine], town: "Reading", postcode: "RG2 0AA"), presence: .witness,
            recordedSchool: RecordedSchool(name: "SENTINEL-RECORDED-SCHOOL"), relationship: Sentinel.relationship)
        let school = ResolvedSchool(
            urn: urn, name: "Oakwood Primary School", localAuthorityCode: "872", localAuthorityName: "SENTINEL-LA-NAME",
            phase: "SENTINEL-PHASE", earlyYears: channel == .telephone, postcode: "RG1 5AQ",
            contacts: [SchoolContact(role: "dsl", name: "SENTINEL-CONTACT-NAME", email: email, phone: "0118 000 0000")], channel: channel)
        let request = NoticeRequested(
            noticeId: noticeId ?? NoticeID.make(forceCode: force, occurrenceNumber: incident.occurrenceNumber, childId: child.childId),
            incident: incident, incidentRevision: 1, child: child, childSource: .officer, school: school, resolution: ["SENTINEL-RESOLUTION"])
        return NoticeDue(
            request: request, releaseAt: releaseAt, escalation: escalation,
            escalationContact: escalation ? SchoolContact(role: "esm", name: "SENTINEL-ESM-NAME", email: "esm@la.example") : nil,
            rules: ["SENTINEL-RULE"])
    }

    static func protocols() throws -> DispatchProtocols {
        try DispatchProtocols.load(try ForceProtocols.load(directory: ForceProtocols.bundledDirectory))
    }

    static func settings(
        mail: MailRoute, publicURL: String = "https://notices.example.test",
        retryBase: TimeInterval = 60, maxAttempts: Int = 8
    ) throws -> DispatchService.Settings {
        DispatchService.Settings(
            mail: mail, fromAddress: "mash@police.example", publicURL: publicURL,
            protocols: try protocols(), pollInterval: .milliseconds(100), retryBase: retryBase, maxAttempts: maxAttempts)
    }

    static func store() throws -> ServiceStore {
        try ServiceStore(path: TestPaths.temporaryDirectory("dispatch") + "/dispatch.sqlite", migrations: DispatchStore.migrations)
    }

    /// The accounts the fixtures' notices go to: school 110001 (the default), 110002, a local
    /// authority, and each force's Education Safeguarding Manager (escalations).
    static let accounts = ["110001", "110002", "LA872", "ESM43", "ESM05"]

    /// One hash of a test password, made once (PBKDF2 is slow on purpose).
    static let testPasswordHash: String = try! Secrets.hashPasswordBlocking("Fixture-password-2026!")

    /// Gives `accounts` a notice password dated in the distant past (so any password a test sets
    /// replaces it): mail to an account without one is held (`HeldNotices`).
    static func givePasswords(_ accounts: [String], store: ServiceStore) async throws {
        let hash = testPasswordHash
        try await store.pool.write { db in
            for account in accounts {
                try AccountPasswords.apply(SchoolPassword(account: account, hash: hash, setAt: .distantPast, setBy: "fixture"), db: db)
            }
        }
    }

    /// Accepts `due` into `store` as the Kafka handler would, then reads the instance's own
    /// `claimed` event back as its events consumer would (`echoEvents`), so the sender may send.
    /// `password`: give the notice's account a password first (`givePasswords`), else its mail is held.
    @discardableResult
    static func accept(
        _ due: NoticeDue, settings: DispatchService.Settings, store: ServiceStore, now: Date, echo: Bool = true,
        password: Bool = true
    ) async throws -> NoticeIntake.Outcome {
        if password {
            try await givePasswords(
                [due.escalation ? NoticeAccount.educationSafeguardingManager(forceCode: due.request.incident.forceCode) : due.request.school.urn],
                store: store)
        }
        let outcome = try await store.pool.write { db in
            try NoticeIntake.accept(
                due, messageId: MessageID.fresh(), settings: settings, db: db, outbox: Outbox(db: db, producer: "dispatch"), now: now)
        }
        if echo { try await echoEvents(store, now: now) }
        return outcome
    }

    /// What the outbox relay and the replicated events consumer do without Kafka: the outbox's
    /// `encompass.notice.events` records are applied by the events handler's code (idempotent,
    /// so rows echoed before may be applied again; the rows stay for the test to inspect).
    static func echoEvents(_ store: ServiceStore, now: Date) async throws {
        try await store.pool.write { db in
            let rows = try OutboxMessage.filter(Column("topic") == Topics.noticeEvents.name).order(Column("id")).fetchAll(db)
            for row in rows {
                let envelope = try WireFormat.decode(NoticeEvent.self, from: Array(row.value))
                try DispatchService.applyEvent(
                    envelope.payload, eventId: envelope.id, producer: envelope.producer, db: db, now: now,
                    logger: TestLog.logger("events"))
            }
        }
    }

    static func sender(_ settings: DispatchService.Settings, _ store: ServiceStore, clock: ManualClock) -> MailSender {
        MailSender(settings: settings, store: store, wake: {}, clock: .manual(clock), logger: TestLog.logger("sender"))
    }
}

/// The Python test peers beside this file.
enum Peers {
    static var directory: String { (URL(fileURLWithPath: #filePath).deletingLastPathComponent().path as NSString).appendingPathComponent("Peers") }

    /// `standardErrorToo: false` leaves the program's standard error out of `output` (e.g. notes beside JSON).
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        standardErrorToo: Bool = true
    ) throws -> (status: Int32, output: String) {
        let run = try TestProcess(
            executable, arguments, environment: environment ?? [:], inheritEnvironment: environment == nil,
            errors: standardErrorToo ? .merged : .discarded
        ).waitForOutput()
        return (run.status, run.output)
    }

    /// `python3` as found on PATH (where ./dev pip-installs the test peers' packages).
    static let python: String = {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/python3"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/bin/python3"
    }()
}

/// A self-signed certificate for 127.0.0.1 made with `openssl req`.
struct TestCertificate {
    let cert: String
    let key: String

    init() throws {
        let dir = TestPaths.temporaryDirectory("tls")
        cert = dir + "/cert.pem"
        key = dir + "/key.pem"
        let result = try Peers.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ])
        guard result.status == 0 else { throw TimeoutError(what: "openssl req failed: \(result.output)") }
    }
}

/// aiosmtpd on loopback (Peers/smtp_server.py).
final class SMTPPeer: @unchecked Sendable {
    let process: TestProcess
    let out: String
    let port: Int
    let modeFile: String

    /// `port`: listen there (a relay coming back where dispatch expects it); else a free port.
    init(mode: String = "ok", port fixedPort: Int? = nil, certificate: TestCertificate? = nil, user: String? = nil, password: String? = nil)
        async throws
    {
        let dir = TestPaths.temporaryDirectory("smtp")
        out = dir + "/out"
        modeFile = dir + "/mode"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let portFile = dir + "/port"
        var arguments = [Peers.directory + "/smtp_server.py", "--port-file", portFile, "--out", out, "--mode", mode, "--mode-file", modeFile]
        if let fixedPort { arguments += ["--port", String(fixedPort)] }
        if let certificate { arguments += ["--cert", certificate.cert, "--key", certificate.key] }
        if let user, let password { arguments += ["--user", user, "--password", password] }
        // The peer also stops when its input closes: with the test process, however that ends.
        process = try TestProcess(Peers.python, arguments, log: dir + "/smtp.log", holdsInput: true)
        try await process.ready("SMTP peer listening (is aiosmtpd installed? ./dev test installs it)", timeout: .seconds(15)) {
            FileManager.default.fileExists(atPath: portFile)
        }
        guard let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text) else {
            throw TimeoutError(what: "SMTP peer port (python3 -c 'import aiosmtpd' must work)")
        }
        self.port = port
    }

    var url: String { "smtp://127.0.0.1:\(port)" }

    /// Switches the running server's mode (read at its next SMTP command).
    func setMode(_ mode: String) throws {
        try mode.write(toFile: modeFile + ".tmp", atomically: false, encoding: .utf8)
        _ = rename(modeFile + ".tmp", modeFile)
    }

    func messages() -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasSuffix(".eml") }.sorted()
        return names.compactMap { try? String(contentsOfFile: out + "/" + $0, encoding: .utf8) }
    }

    func stop() { process.stop() }
}

/// The link in a notice email.
func link(in mail: String) -> String? {
    guard let range = mail.range(of: #"https?://[^\s]+/notice/[A-Za-z0-9_-]+"#, options: .regularExpression) else { return nil }
    return String(mail[range])
}

/// HTTP without a cookie jar or redirects: the test passes cookies by hand.
struct Browserless {
    let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpShouldSetCookies = false
        configuration.httpCookieAcceptPolicy = .never
        return URLSession(configuration: configuration)
    }()

    struct Answer {
        var status: Int
        var body: String
        var headers: [String: String]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var cookie: String? { headers.first(where: { $0.key.lowercased() == "set-cookie" })?.value.split(separator: ";").first.map(String.init) }
        func header(_ name: String) -> String? { headers.first(where: { $0.key.lowercased() == name.lowercased() })?.value }
        /// The CSRF token the page's forms carry.
        var csrf: String? {
            guard let start = body.range(of: "name=\"csrf\" value=\"")?.upperBound, let end = body[start...].firstIndex(of: "\"") else { return nil }
            return String(body[start..<end])
        }
    }

    func send(
        _ method: String, _ url: String, form: [String: String]? = nil, json: Data? = nil, cookie: String? = nil, token: String? = nil,
        headers extra: [String: String] = [:]
    ) async throws -> Answer {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        for (name, value) in extra { request.setValue(value, forHTTPHeaderField: name) }
        if let form {
            var components = URLComponents()
            components.queryItems = form.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
            request.httpBody = Data((components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B").utf8)
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        }
        if let json {
            request.httpBody = json
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let cookie { request.setValue(cookie, forHTTPHeaderField: "Cookie") }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await session.data(for: request)
        let http = response as? HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http?.allHeaderFields ?? [:] { headers["\(key)"] = "\(value)" }
        return Answer(status: http?.statusCode ?? 0, body: String(decoding: data, as: UTF8.self), headers: headers)
    }
}
