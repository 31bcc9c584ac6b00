import EncompassModels
import EncompassSecrets
import EncompassTestSupport
import Foundation
import GRDB
import Hummingbird
import ServiceRuntime
import Testing

@testable import ConsoleService
@testable import EncompassKafka

/// Settings of a console whose services all listen on closed ports.
func unreachableSettings(_ label: String = "console") -> ConsoleService.Settings {
    var settings = ConsoleService.Settings()
    settings.dataDirectory = TestPaths.temporaryDirectory(label)
    settings.httpPort = 0
    settings.apiToken = "console-test-token"
    settings.passwordIterations = 1_000
    settings.maxFailedSignIns = 3
    for (index, service) in ServiceName.allCases.enumerated() { settings.serviceURLs[service] = "http://127.0.0.1:\(9 + index)" }
    settings.serviceTimeout = 3
    return settings
}

/// A console running in this process.
final class RunningConsole: Sendable {
    let app: ConsoleApp
    let task: Task<Void, any Error>
    let port: Int

    init(_ settings: ConsoleService.Settings, clock: ServiceClock? = nil) async throws {
        let app = try ConsoleApp(settings: settings, logger: TestLog.logger("console"), clock: clock)
        self.app = app
        self.task = Task { try await app.run(handleSignals: false) }
        self.port = await app.httpPort()
    }

    var base: String { "http://127.0.0.1:\(port)" }

    func stop() async throws {
        await app.shutdown()
        try await task.value
    }
}

/// Each test runs its own console (data folder, port): the tests run side by side.
@Suite("Console: staff accounts, sessions, CSRF and pages, without Kafka")
struct ConsoleLogicTests {
    @Test(
        "accounts: weak passwords and unknown roles refused; wrong password refused; sessions stored hashed, expire and end at sign-out; a name is locked after repeated wrong passwords"
    )
    func staffAccounts() async throws {
        let settings = unreachableSettings()
        let clock = ManualClock(Timestamp.parse("2026-11-24T08:00:00Z")!)
        let staff = StaffDirectory(store: try StaffDirectory.openStore(settings), settings: settings, clock: .manual(clock))
        await #expect(throws: StaffError.weakPassword("password must have at least 12 characters")) {
            try await staff.addUser(name: "j.smith", role: "officer", password: "short", by: "test")
        }
        await #expect(throws: StaffError.invalidRole("boss")) {
            try await staff.addUser(name: "j.smith", role: "boss", password: "a-long-password-1", by: "test")
        }
        await #expect(throws: StaffError.invalidName("<b>")) {
            try await staff.addUser(name: "<b>", role: "officer", password: "a-long-password-1", by: "test")
        }
        try await staff.addUser(name: "j.smith", role: "officer", password: "a-long-password-1", by: "test")
        await #expect(throws: StaffError.exists("j.smith")) {
            try await staff.addUser(name: "j.smith", role: "officer", password: "a-long-password-2", by: "test")
        }
        let stored = try #require(try await staff.users().first)
        #expect(stored.passwordHash.hasPrefix("pbkdf2-sha256$1000$") && !stored.passwordHash.contains("a-long-password-1"))

        await #expect(throws: StaffError.badCredentials) {
            try await staff.signIn(name: "j.smith", password: "a-long-password-2", source: "10.0.0.1")
        }
        await #expect(throws: StaffError.badCredentials) { try await staff.signIn(name: "nobody", password: "a-long-password-1", source: "10.0.0.1") }
        let (session, token) = try await staff.signIn(name: "j.smith", password: "a-long-password-1", source: "10.0.0.1")
        #expect(token.count == 43 && session.sessionHash == Secrets.sha256Hex(token) && session.sessionHash != token)
        let rows = try await staff.store.pool.read { try String.fetchAll($0, sql: "SELECT sessionHash FROM staffSession") }
        #expect(rows == [Secrets.sha256Hex(token)], "only the token's hash is stored")
        #expect(try await staff.session(token: token)?.staffName == "j.smith")
        #expect(try await staff.session(token: String(token.dropLast()) + "x") == nil)
        clock.advance(by: settings.sessionLifetime + 1)
        #expect(try await staff.session(token: token) == nil, "expired")
        let (second, secondToken) = try await staff.signIn(name: "j.smith", password: "a-long-password-1", source: "10.0.0.1")
        try await staff.signOut(second)
        #expect(try await staff.session(token: secondToken) == nil, "signed out")

        // Three wrong passwords lock the name, even against the right password, until the lockout ends.
        for _ in 0..<3 {
            await #expect(throws: StaffError.badCredentials) {
                try await staff.signIn(name: "j.smith", password: "guess-guess-guess", source: "10.0.0.1")
            }
        }
        await #expect(throws: StaffError.self) { try await staff.signIn(name: "j.smith", password: "a-long-password-1", source: "10.0.0.1") }
        clock.advance(by: settings.lockout + 1)
        _ = try await staff.signIn(name: "j.smith", password: "a-long-password-1", source: "10.0.0.1")

        let actions = try await staff.auditTrail().map(\.action)
        #expect(actions.filter { $0 == "sign-in-refused" }.count == 6)
        #expect(actions.contains("sign-out") && actions.contains("account-added"))
    }

    @Test(
        "over HTTP: pages need a session; sign-in needs its CSRF token and the right password; cookies HttpOnly SameSite=Strict; forms without the session's CSRF token refused; services down shown as unreachable; actions audited"
    )
    func http() async throws {
        var settings = unreachableSettings()
        settings.bootstrapUser = ("mash.test", "officer", "console-password-1")
        let console = try await RunningConsole(settings)
        let web = WebClient(base: console.base)

        let anonymous = try await web.get("/overview")
        #expect(anonymous.status == 303 && anonymous.headers["location"] == "/sign-in")
        let anonymousContacts = try await web.get("/la-contacts")
        #expect(
            anonymousContacts.status == 303 && anonymousContacts.headers["location"] == "/sign-in"
                && !anonymousContacts.text.contains("la-contacts-summary"))
        #expect(try await web.get("/").headers["location"] == "/sign-in")
        let css = try await web.get("/static/console.css")
        #expect(css.status == 200 && css.headers["content-type"]?.hasPrefix("text/css") == true)
        let signInPage = try await web.get("/sign-in")
        #expect(signInPage.status == 200)
        #expect(signInPage.headers["content-security-policy"]?.contains("default-src 'none'") == true)
        #expect(!signInPage.text.contains("<script"))
        let signInToken = try #require(WebClient.csrf(in: signInPage.text))
        #expect(web.cookies[ConsoleApp.signInCookie] == signInToken)

        // No CSRF token: refused even with the right password.
        let forged = try await web.post("/sign-in", form: ["name": "mash.test", "password": "console-password-1"])
        #expect(forged.status == 403 && web.cookies[ConsoleApp.sessionCookie] == nil)
        // Wrong password: refused.
        let wrong = try await web.post("/sign-in", form: ["name": "mash.test", "password": "not-the-password", "csrf": signInToken])
        #expect(wrong.status == 401 && wrong.text.contains("not right") && web.cookies[ConsoleApp.sessionCookie] == nil)
        let signedIn = try await web.post("/sign-in", form: ["name": "mash.test", "password": "console-password-1", "csrf": signInToken])
        #expect(signedIn.status == 303 && signedIn.headers["location"] == "/overview")
        let sessionCookie = try #require(signedIn.setCookies.first { $0.hasPrefix(ConsoleApp.sessionCookie + "=") })
        #expect(sessionCookie.contains("HttpOnly") && sessionCookie.contains("SameSite=Strict") && sessionCookie.contains("Max-Age=28800"))

        let overview = try await web.get("/overview")
        #expect(overview.status == 200 && overview.text.contains("mash.test"))
        #expect(overview.text.contains("<a href=\"/la-contacts\" id=\"nav-la-contacts\">LA contacts</a>"), "the menu links the LA contacts page")
        #expect(try await web.get("/").headers["location"] == "/overview")
        for service in ServiceName.allCases {
            #expect(overview.text.contains("id=\"stage-\(service.rawValue)\" data-state=\"unreachable\""), "\(service.rawValue) shown unreachable")
        }
        #expect(overview.text.components(separatedBy: "service unreachable").count == 6)
        for path in ["/review", "/requests", "/notices", "/la-contacts"] {
            let page = try await web.get(path)
            #expect(page.status == 200 && page.text.contains("is unreachable at http://127.0.0.1:"), "\(path)")
        }

        // A form without the session's token is refused and audited; with it, the action is tried and audited.
        let csrf = try #require(WebClient.csrf(in: overview.text))
        let noToken = try await web.post("/review/r-1/confirm", form: ["note": "x"])
        #expect(noToken.status == 403)
        let badToken = try await web.post("/review/r-1/confirm", form: ["note": "x", "csrf": String(csrf.reversed())])
        #expect(badToken.status == 403)
        let tried = try await web.post("/review/r-1/confirm", form: ["note": "checked", "csrf": csrf])
        #expect(tried.status == 200 && tried.text.contains("child-research is unreachable"))
        let uploadNoToken = try await web.postMultipart(
            "/requests/upload", fields: [:], file: ("sheet", "r.csv", Data("request_id,school_urn\r\n".utf8)))
        #expect(uploadNoToken.status == 403)

        let trail = try await console.app.staff.auditTrail()
        #expect(trail.filter { $0.action == "csrf-refused" }.count == 4)
        #expect(trail.contains { $0.action == "review-confirm" && $0.staffName == "mash.test" && $0.target == "r-1" && $0.outcome == "failed" })

        let signOut = try await web.post("/sign-out", form: ["csrf": csrf])
        #expect(signOut.status == 303 && signOut.headers["location"] == "/sign-in")
        #expect(try await web.get("/overview").status == 303, "the session ended")
        let metrics = try await web.get("/metrics")
        #expect(metrics.text.contains("encompass_console_sign_ins_total{outcome=\"wrong_password\"} 1"))
        try await console.stop()
    }

    @Test("pages escape what the services say: markup in names, schools, reasons and explanations is shown as text")
    func escaping() throws {
        let session = StaffSession(
            sessionHash: "h", staffName: "PS <b>1234</b>", role: "officer", csrfToken: "tok\"en", createdAt: Date(), expiresAt: Date())
        let evil = "<script>alert(1)</script>"
        let proposal = ReviewProposalState(
            proposalId: "r-1", forceCode: "43", occurrenceNumber: "43260000999",
            child: IdentifiedChild(
                childId: "c", givenName: evil, familyName: "O'Brien & Sons", dateOfBirth: "2019-01-30",
                homeAddress: PostalAddress(lines: ["<img src=x onerror=alert(1)>"], postcode: "RG1 7LL")),
            evidence: ResearchEvidence(score: 0.91, explanation: ["address: \"same\" <flat>"], sourceOccurrences: ["43230000101"]),
            status: "pending", createdAt: Date(), version: 1)
        let review = ConsolePages.review(.ok([proposal]), calibration: .unreachable(evil), session: session, now: Date())
        #expect(!review.contains("<script>") && !review.contains("<img") && !review.contains("<b>1234"))
        #expect(review.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && review.contains("O&#39;Brien &amp; Sons"))
        #expect(review.contains("value=\"tok&quot;en\""))
        #expect(review.contains("0.91") && review.contains("address: &quot;same&quot; &lt;flat&gt;"))
        #expect(review.contains("id=\"calibration-unavailable\">&lt;script&gt;"))

        let notice = NotificationSummary(
            noticeId: "n-1", forceCode: "43", occurrenceNumber: "1", schoolURN: "110001", schoolName: evil, channel: "email",
            state: "sent", releaseAt: Date(), sentAt: Date(), acknowledgeBy: nil, acknowledgedAt: nil, acknowledgedBy: nil,
            flagged: true, flagReason: "<i>late</i>")
        let notices = ConsolePages.notices(
            .ok(NotificationList(date: "2026-11-24", notifications: [notice], flagged: 1)), day: CalendarDate(iso: "2026-11-24")!,
            session: session, now: Date())
        #expect(!notices.contains("<script>") && !notices.contains("<i>late") && notices.contains("FOLLOW UP"))
        let requests = ConsolePages.requests(
            .ok([CSCRequest(fields: ["request_id": "q", "lpa": "<LPA>", "child_given_name": evil])]),
            imported: CSCImportAnswer(
                file: "<f>.csv", rows: 1, answers: [.init(outcome: "rejected", row: 2, requestId: "q", urn: nil, reasons: [evil])], notices: [],
                error: nil),
            session: session, now: Date())
        #expect(!requests.contains("<script>") && !requests.contains("<LPA>") && !requests.contains("<f>") && requests.contains("1 rejected"))
        let contacts = ConsolePages.laContacts(
            .ok(
                LAContactsList(localAuthorities: [
                    LAContactsList.Entry(
                        laCode: "873", localAuthority: evil,
                        contacts: [SchoolContact(role: "encompass", name: "<b>Duty</b> & co", email: "oe@cambs.example", phone: "01223 000000")],
                        updatedAt: Date(), source: "la-contacts:<f>.csv")
                ])), session: session, now: Date())
        #expect(!contacts.contains("<script>") && !contacts.contains("<b>Duty") && !contacts.contains("<f>"))
        #expect(contacts.contains("&lt;b&gt;Duty&lt;/b&gt; &amp; co") && contacts.contains("PLACEHOLDER"))
        #expect(ConsolePages.laContacts(.unreachable(evil), session: session, now: Date()).contains("id=\"la-contacts-unavailable\">&lt;script&gt;"))
        let down = ConsolePages.overview([.intake: .init(status: .unreachable(evil), deadLetters: .unreachable(evil))], session: session, now: Date())
        #expect(!down.contains("<script>") && down.contains("service unreachable"))
    }

    @Test("the pipeline page shows a record two instances dead-lettered as one row naming both copies and their reasons")
    func deadLetterCopiesMerged() throws {
        let session = StaffSession(sessionHash: "h", staffName: "PS 1", role: "officer", csrfToken: "t", createdAt: Date(), expiresAt: Date())
        // As the two instances' APIs answer, each addressed as the console does.
        func copy(_ instance: Int, id: Int64, partition: Int32, offset: Int64, reason: String) throws -> DeadLetterView {
            var view = try WireFormat.decoder().decode(
                DeadLetterView.self,
                from: Data(
                    """
                    {"id": \(id), "service": "intake", "originalTopic": "encompass.incidents.raw", "originalPartition": \(partition),
                     "originalOffset": \(offset), "originalKey": "43260000001", "errorClass": "payload.validation", "errorMessage": "\(reason)",
                     "attempts": 1, "firstFailedAt": "2026-11-23T21:00:00Z", "deadLetteredAt": "2026-11-23T21:0\(instance):00Z", "status": "open"}
                    """.utf8))
            view.address = DeadLetterAddress(service: .intake, instance: instance, id: id).description
            return view
        }
        let letters = DeadLetterRecords.merge([
            try copy(1, id: 4, partition: 2, offset: 17, reason: "<bad> postcode"), try copy(2, id: 9, partition: 2, offset: 17, reason: "bad date"),
            try copy(2, id: 10, partition: 2, offset: 18, reason: "bad date"),
        ])
        #expect(letters.count == 2 && letters.map(\.copies?.count) == [2, 1])
        let page = ConsolePages.overview(
            [.intake: .init(status: .ok(StageStatus(service: .intake)), deadLetters: .ok(letters))], session: session, now: Date())
        #expect(page.contains("<span data-field=\"open-dead-letters\">2</span>"), "open counts records")
        #expect(page.contains("<td>intake/2:9<br>intake/1:4</td>"), "\(page)")
        #expect(page.contains("bad date<br>&lt;bad&gt; postcode"))
        #expect(page.components(separatedBy: "intake/2:10").count == 2)
    }

    @Test("the review page shows past decisions by score: decided and share confirmed per band, counts exact, automatic ones apart")
    func calibrationTable() throws {
        let session = StaffSession(sessionHash: "h", staffName: "PS 1", role: "officer", csrfToken: "t", createdAt: Date(), expiresAt: Date())
        // Officers decided 5: 0.55 rejected, 0.62 rejected, 0.81 confirmed, 0.93 confirmed, 0.97 confirmed.
        let decisions = [(0.55, false), (0.62, false), (0.81, true), (0.93, true), (0.97, true)].map {
            ReviewCalibration.Decision(score: $0.0, confirmed: $0.1)
        }
        let table = ReviewCalibration(decisions: decisions, automatic: 2)
        let page = ConsolePages.review(.ok([]), calibration: .ok(table), session: session, now: Date())
        func band(_ bound: String) -> String? {
            guard let start = page.range(of: "<tr class=\"band\" id=\"band-\(bound)\">"), let end = page[start.upperBound...].range(of: "</tr>")
            else { return nil }
            return String(page[start.upperBound..<end.lowerBound])
        }
        #expect(page.contains("<table id=\"calibration\">") && page.contains("Past decisions by score"))
        #expect(band("0.50") == "<td>0.50</td><td class=\"decided\">5</td><td class=\"confirmed\">3</td><td class=\"share\">60%</td>")
        #expect(band("0.60") == "<td>0.60</td><td class=\"decided\">4</td><td class=\"confirmed\">3</td><td class=\"share\">75%</td>")
        #expect(band("0.70") == "<td>0.70</td><td class=\"decided\">3</td><td class=\"confirmed\">3</td><td class=\"share\">100%</td>")
        #expect(band("0.95") == "<td>0.95</td><td class=\"decided\">1</td><td class=\"confirmed\">1</td><td class=\"share\">100%</td>")
        #expect(band("0.99") == "<td>0.99</td><td class=\"decided\">0</td><td class=\"confirmed\">0</td><td class=\"share\">–</td>")
        #expect(page.contains("5 decided by officers (3 confirmed); 2 confirmed automatically, not counted."))
    }

    @Test("the overview reads a service's real /metrics text: processed by outcome, failures, dead letters, lag per group")
    func metricsParsing() throws {
        let metrics = ServiceMetrics(service: "school-resolution")
        for _ in 0..<7 { metrics.processed(topic: Topics.children.name, outcome: .applied) }
        metrics.processed(topic: Topics.children.name, outcome: .duplicate)
        metrics.processed(topic: Topics.children.name, outcome: .deadLettered)
        metrics.failed(topic: Topics.children.name)
        metrics.deadLettered(topic: Topics.children.name, errorClass: "payload.validation")
        metrics.updateLag(
            group: "encompass-school-resolution",
            lag: [
                TopicPartition(Topics.children.name, 0): PartitionLag(
                    topicPartition: TopicPartition(Topics.children.name, 0), committedOffset: 1, highWatermark: 4, lag: 3),
                TopicPartition(Topics.children.name, 1): PartitionLag(
                    topicPartition: TopicPartition(Topics.children.name, 1), committedOffset: 1, highWatermark: 3, lag: 2),
            ])
        let status = StageStatus.parse(.schoolResolution, metrics: metrics.exposition())
        #expect(status.processed["applied"] == 7 && status.processed["duplicate"] == 1 && status.processed["dead_lettered"] == 1)
        #expect(status.failed == 1 && status.deadLettered == 1)
        #expect(
            status.lagByGroup.count == 1 && status.lagByGroup.first?.messages == 5 && status.lagByGroup.first?.group == "encompass-school-resolution")
        #expect(PrometheusLine(#"a_total{x="q\"uote",y="2"} 4.5"#)?.labels == ["x": "q\"uote", "y": "2"])
    }

    @Test("forms: URL-encoded fields and multipart parts (the uploaded sheet's bytes intact)")
    func forms() throws {
        let signIn = try URLEncodedFormDecoder().decode(SignInForm.self, from: "name=j.smith&password=a%26b+c%3D&csrf=x")
        #expect(signIn.name == "j.smith" && signIn.password == "a&b c=" && signIn.csrf == "x")
        let note = try URLEncodedFormDecoder().decode(NoteForm.self, from: "csrf=t&verdict=confirm")
        #expect(note.csrf == "t" && note.note == nil)
        let bytes = Data([0x50, 0x4B, 0x03, 0x04, 0x0D, 0x0A, 0x2D, 0x2D, 0x00, 0xFF])
        var body = Data(
            "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntoken\r\n--XyZ\r\nContent-Disposition: form-data; name=\"sheet\"; filename=\"back.xlsx\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                .utf8)
        body.append(bytes)
        body.append(Data("\r\n--XyZ--\r\n".utf8))
        #expect(FormData.boundary(contentType: "multipart/form-data; boundary=XyZ") == "XyZ")
        let parts = try FormData.multipart(body, boundary: "XyZ")
        #expect(parts.map(\.name) == ["csrf", "sheet"])
        #expect(String(decoding: parts[0].data, as: UTF8.self) == "token")
        #expect(parts[1].fileName == "back.xlsx" && parts[1].data == bytes)
        #expect(throws: FormData.Failure.malformed) { try FormData.multipart(Data("garbage".utf8), boundary: "XyZ") }
        #expect(ConsoleApp.safeFileName("../../etc/pass wd.csv") == "pass_wd.csv")
    }

    @Test("a notice needs a follow-up when not acknowledged by its acknowledge-by time (10:00), or when dispatch flagged it")
    func followUp() {
        let sent = Timestamp.parse("2026-11-24T07:30:00Z")!
        var notice = NotificationSummary(
            noticeId: "n", forceCode: "43", occurrenceNumber: "1", schoolURN: "1", schoolName: "S", channel: "email", state: "sent",
            releaseAt: sent, sentAt: sent, acknowledgeBy: Timestamp.parse("2026-11-24T10:00:00Z")!, acknowledgedAt: nil,
            acknowledgedBy: nil, flagged: false, flagReason: nil)
        #expect(!ConsolePages.needsFollowUp(notice, now: Timestamp.parse("2026-11-24T09:59:00Z")!))
        #expect(ConsolePages.needsFollowUp(notice, now: Timestamp.parse("2026-11-24T10:00:01Z")!))
        notice.acknowledgedAt = Timestamp.parse("2026-11-24T09:00:00Z")!
        #expect(!ConsolePages.needsFollowUp(notice, now: Timestamp.parse("2026-11-24T11:00:00Z")!))
        notice.acknowledgedAt = nil
        notice.acknowledgeBy = nil
        notice.flagged = true
        #expect(ConsolePages.needsFollowUp(notice, now: Timestamp.parse("2026-11-24T08:00:00Z")!))
    }

    @Test("settings: service URLs, bootstrap account and bad values named by variable")
    func settings() throws {
        let settings = try ConsoleService.Settings.fromEnvironment([
            "ENCOMPASS_DISPATCH_URL": "http://10.0.0.5:8085", "ENCOMPASS_CONSOLE_BOOTSTRAP_USER": "mash.demo:officer",
            "ENCOMPASS_CONSOLE_BOOTSTRAP_PASSWORD": "demo-password-123", "ENCOMPASS_API_TOKEN": "t",
        ])
        #expect(settings.serviceURLs[.dispatch] == "http://10.0.0.5:8085" && settings.serviceURLs[.intake] == "http://127.0.0.1:8081")
        #expect(settings.httpPort == 8086 && settings.bootstrapUser?.name == "mash.demo")
        #expect(throws: ConfigurationError.self) { try ConsoleService.Settings.fromEnvironment(["ENCOMPASS_CONSOLE_BOOTSTRAP_USER": "x:boss"]) }
        #expect(throws: ConfigurationError.self) {
            try ConsoleService.Settings.fromEnvironment([
                "ENCOMPASS_CONSOLE_BOOTSTRAP_USER": "mash.demo:officer", "ENCOMPASS_CONSOLE_BOOTSTRAP_PASSWORD": "short",
            ])
        }
        #expect(throws: ConfigurationError.self) { try ConsoleService.Settings.fromEnvironment(["ENCOMPASS_HTTP_PORT": "99999"]) }
        // A scaled service: every instance listed, blanks and repeats dropped; else the one URL.
        let scaled = try ConsoleService.Settings.fromEnvironment([
            "ENCOMPASS_SCHOOL_RESOLUTION_URLS": " http://sr-1:8083, http://sr-2:8083,,http://sr-1:8083",
            "ENCOMPASS_DISPATCH_URL": "http://10.0.0.5:8085",
        ])
        #expect(scaled.serviceInstances[.schoolResolution] == ["http://sr-1:8083", "http://sr-2:8083"])
        #expect(scaled.serviceInstances[.dispatch] == ["http://10.0.0.5:8085"])
        #expect(throws: ConfigurationError.self) {
            try ConsoleService.Settings.fromEnvironment(["ENCOMPASS_DISPATCH_URLS": "http://d-1:8085,not a url"])
        }
    }
}

@Suite("Console: staff accounts from the command line, and the viewer role", .serialized)
struct ConsoleAccountTests {
    @Test("lockout per name and source address: guesses from one address lock the name there only; encompass console unlock ends the lock, audited")
    func lockoutPerSource() async throws {
        var settings = unreachableSettings("console-lockout")
        settings.bootstrapUser = ("mash.test", "officer", "console-password-1")
        let console = try await RunningConsole(settings)
        let base = console.base
        // The peer signs in to the console of this process: run off the concurrency pool.
        func signIn(from source: String, password: String, times: Int = 1) async throws -> [Int] {
            let result = try await offPool {
                try ConsoleBrowser.run([
                    ConsoleBrowser.peers + "/sign_in_from.py", "--base", base, "--source", source,
                    "--name", "mash.test", "--password", password, "--times", String(times),
                ])
            }
            #expect(result.status == 0, "\(result.output)")
            return result.output.split(separator: "\n").compactMap { Int($0) }
        }
        // Someone at 127.0.0.2 guesses: after 3 wrong passwords the name is locked for that address, even with the right one.
        #expect(try await signIn(from: "127.0.0.2", password: "guess-guess-guess", times: 3) == [401, 401, 401])
        #expect(try await signIn(from: "127.0.0.2", password: "console-password-1") == [429])
        // The staff member at their own desk still signs in.
        #expect(try await signIn(from: "127.0.0.1", password: "console-password-1") == [303])
        #expect(try await console.app.staff.locks(name: "MASH.test").map(\.source) == ["127.0.0.2"])

        let encompass = try executable("encompass")
        let dataDirectory = settings.dataDirectory
        let (status, output) = try await offPool {
            try ConsoleBrowser.run(["console", "unlock", "--name", "mash.test", "--data-dir", dataDirectory], executable: encompass)
        }
        #expect(status == 0, "\(output)")
        #expect(output.contains("lock from 127.0.0.2"), "\(output)")
        #expect(try await console.app.staff.locks(name: "mash.test").isEmpty)
        #expect(try await signIn(from: "127.0.0.2", password: "console-password-1") == [303])
        let unlocked = try #require(try await console.app.staff.auditTrail().first { $0.action == "account-unlocked" })
        #expect(unlocked.target == "mash.test" && unlocked.staffName.hasPrefix("cli") && unlocked.detail.contains("127.0.0.2"))
        await #expect(throws: StaffError.invalidName("<b>")) { try await console.app.staff.unlock(name: "<b>", by: "test") }
        try await console.stop()
    }

    @Test("encompass console add-user prints a password once that signs in; a viewer sees the pages but may not act")
    func cliAndViewer() async throws {
        var settings = unreachableSettings("console-cli")
        let (status, output) = try await runExecutable(
            "encompass", ["console", "add-user", "--name", "v.iewer", "--role", "viewer", "--data-dir", settings.dataDirectory])
        #expect(status == 0, "\(output)")
        let password = try #require(output.firstMatch(of: /password: (\S+)/).map { String($0.1) }, "\(output)")
        #expect(password.count == 20)

        settings.passwordIterations = Secrets.defaultIterations
        let console = try await RunningConsole(settings)
        let web = WebClient(base: console.base)
        let token = try #require(WebClient.csrf(in: try await web.get("/sign-in").text))
        #expect(try await web.post("/sign-in", form: ["name": "v.iewer", "password": password, "csrf": token]).status == 303)
        let review = try await web.get("/review")
        #expect(review.status == 200 && review.text.contains("(viewer)"))
        let csrf = try #require(WebClient.csrf(in: review.text))
        let refused = try await web.post("/review/r-1/confirm", form: ["csrf": csrf])
        #expect(refused.status == 403 && refused.text.contains("may look but not act"))
        let download = try await web.post("/requests/download", form: ["lpa": "Reading", "format": "csv", "csrf": csrf])
        #expect(download.status == 403)
        #expect(!(try await web.get("/requests").text.contains("id=\"upload-form\"")), "no upload form for a viewer")
        try await console.stop()
    }
}
