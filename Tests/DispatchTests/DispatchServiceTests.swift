import EncompassKafka
import EncompassModels
import EncompassSecrets
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing
import WebSupport

@testable import DispatchService

/// A dispatch instance on the mock Kafka cluster with a simulated clock (stopped; the test moves it).
final class RunningDispatch: Sendable {
    /// The broker outlives the service: without it, stopping waits out the producer's delivery timeout.
    let kafka: TestKafka
    let host: ServiceHost
    let task: Task<Void, any Error>
    let port: Int
    let clockFile: String
    let mailFolder: String
    static let token = "dispatch-test-token-0123456789"

    /// `groupId`: the work consumer group; two instances in different groups both get every
    /// `NoticeDue`, as after a rebalance before the first one's offsets were committed.
    /// `passwords`: accounts given a notice password before the service starts (dated in the
    /// distant past, so any password a test sets replaces it), since mail to an account without
    /// one is held (`HeldNotices`).
    init(
        _ kafka: TestKafka, start: Date, mail: MailRoute? = nil, retryBase: TimeInterval = 60, maxAttempts: Int = 8,
        groupId: String = "dispatch-\(UUID())", passwords: [String] = Fixtures.accounts
    ) async throws {
        self.kafka = kafka
        let dir = TestPaths.temporaryDirectory("dispatch-service")
        clockFile = dir + "/clock.json"
        mailFolder = dir + "/mail"
        try SimulatedClockFile(simulated: start, real: Date(), rate: 0).write(to: clockFile)
        let settings = try Fixtures.settings(
            mail: mail ?? .folder(directory: mailFolder), publicURL: "http://127.0.0.1:1",
            retryBase: retryBase, maxAttempts: maxAttempts)
        let configuration = ServiceConfiguration(
            service: .dispatch, kafka: kafka.client("dispatch"), groupId: groupId, dataDirectory: dir,
            instanceId: "dispatch-test-\(UUID().uuidString.prefix(6))", httpPort: 0, apiToken: Self.token, clockFile: clockFile)
        let host = try await ServiceHost(
            definition: DispatchService.definition(settings: settings), configuration: configuration,
            logger: TestLog.logger("dispatch"))
        try await Fixtures.givePasswords(passwords, store: host.store)
        self.host = host
        self.task = Task { try await host.run(handleSignals: false) }
        self.port = await host.httpPort()
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// Moves the simulated clock (every process re-reads the file within 100 ms).
    func setClock(_ date: Date) async throws {
        try SimulatedClockFile(simulated: date, real: Date(), rate: 0).write(to: clockFile)
        try await Task.sleep(for: .milliseconds(250))
    }

    /// The notice page URL from the mail for `noticeId`, on this host.
    func noticeURL(waitingFor count: Int = 1) async throws -> [String] {
        try await eventually("\(count) .eml files", timeout: .seconds(30)) {
            ((try? FileManager.default.contentsOfDirectory(atPath: mailFolder)) ?? []).filter { $0.hasSuffix(".eml") }.count >= count
        }
        return try FileManager.default.contentsOfDirectory(atPath: mailFolder).filter { $0.hasSuffix(".eml") }.sorted().compactMap { name in
            let text = try String(contentsOfFile: mailFolder + "/" + name, encoding: .utf8)
            return link(in: text).map { base + "/notice/" + ($0.components(separatedBy: "/notice/").last ?? "") }
        }
    }

    func stop() async throws {
        await host.shutdown()
        try await task.value
    }
}

func publish<P: MessagePayload>(_ kafka: TestKafka, _ payload: P, topic: String, key: String, producer: String = "scheduling") async throws {
    let producerClient = try KafkaProducer(configuration: .init(client: kafka.client(producer)), logger: TestLog.logger(producer))
    try await producerClient.send(
        ProducerRecord(
            topic: topic, key: key,
            value: try WireFormat.encode(
                Envelope(id: MessageID.fresh(), key: key, producer: producer, payload: payload))))
    await producerClient.close()
}

/// Each test starts its own cluster, dispatch and relay on ports of its own: the tests run side by side.
@Suite("Dispatch service over Kafka and HTTP", .tags(.kafka, .peers))
struct DispatchServiceTests {
    let start = Timestamp.parse("2026-11-24T08:00:05Z")!
    let http = Browserless()

    /// A running dispatch that has mailed one notice to school 110001 (password `Oakwood-DSL-2026!`): the notice and its page's URL.
    func dispatchWithNotice(_ kafka: TestKafka) async throws -> (RunningDispatch, NoticeDue, String) {
        let dispatch = try await RunningDispatch(kafka, start: start)
        let due = Fixtures.due()
        try await publish(kafka, due, topic: Topics.noticesDue.name, key: due.noticeId)
        let url = try #require(try await dispatch.noticeURL().first)
        let body = try JSONSerialization.data(withJSONObject: ["password": "Oakwood-DSL-2026!"])
        #expect(try await http.send("PUT", dispatch.base + "/v1/schools/110001/password", json: body, token: RunningDispatch.token).status == 200)
        return (dispatch, due, url)
    }

    @Test("NoticeDue in → mail → events out; the school signs in, reads, acknowledges, reports the pupil gone → SchoolFeedback out; audit listed")
    func endToEnd() async throws {
        let kafka = try TestKafka()
        let dispatch = try await RunningDispatch(kafka, start: start)
        let due = Fixtures.due(childGiven: "Amy<script>alert(1)</script>")
        try await publish(
            kafka,
            NoticeEvent(
                noticeId: due.noticeId, kind: .scheduled, at: start.addingTimeInterval(-3600), forceCode: "43",
                occurrenceNumber: Sentinel.occurrence, schoolURN: "110001", detail: "release 08:00 next school day"),
            topic: Topics.noticeEvents.name, key: due.noticeId)
        try await publish(kafka, due, topic: Topics.noticesDue.name, key: due.noticeId)
        let url = try #require(try await dispatch.noticeURL().first)

        let events = try await readRecords(kafka, topic: Topics.noticeEvents.name, count: 4, timeout: .seconds(20))
            .map { try WireFormat.decode(NoticeEvent.self, from: $0.value).payload }
        #expect(events.map(\.kind) == [.scheduled, .claimed, .sent, .deliveredToRelay])

        // MASH sets the school's password (token-guarded); a weak one is refused.
        let passwordURL = dispatch.base + "/v1/schools/110001/password"
        let good = try JSONSerialization.data(withJSONObject: ["password": "Oakwood-DSL-2026!", "setBy": "mash-officer-1"])
        #expect(try await http.send("PUT", passwordURL, json: good).status == 401)
        #expect(try await http.send("PUT", passwordURL, json: Data(#"{"password":"short"}"#.utf8), token: RunningDispatch.token).status == 422)
        #expect(try await http.send("PUT", dispatch.base + "/v1/schools/11x/password", json: good, token: RunningDispatch.token).status == 400)
        #expect(try await http.send("PUT", passwordURL, json: good, token: RunningDispatch.token).status == 200)
        let otherSchool = try JSONSerialization.data(withJSONObject: ["password": "Another-school-pass-99"])
        #expect(
            try await http.send("PUT", dispatch.base + "/v1/schools/110002/password", json: otherSchool, token: RunningDispatch.token).status == 200)
        let stored = try await dispatch.host.store.pool.read { try SchoolPassword.fetchOne($0, key: "110001") }
        #expect(stored?.hash.hasPrefix("pbkdf2-sha256$210000$") == true)

        // The sign-in page: URN shown, no notice content, strict headers.
        let signIn = try await http.send("GET", url)
        #expect(signIn.status == 200)
        #expect(signIn.body.contains("110001"))
        #expect(!signIn.body.contains(Sentinel.childFamily))
        #expect(signIn.header("Content-Security-Policy")?.contains("default-src 'none'") == true)
        #expect(signIn.header("Cache-Control")?.contains("no-store") == true)
        #expect(!signIn.body.lowercased().contains("<script"))
        #expect(try await http.send("GET", dispatch.base + "/notice/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").status == 404)

        // Wrong password, another school's password: refused.
        let wrong = try await http.send("POST", url, form: ["action": "sign-in", "name": "Ms Head", "password": "not-the-password"])
        #expect(wrong.status == 401)
        #expect(wrong.cookie == nil)
        #expect(try await http.send("POST", url, form: ["action": "sign-in", "name": "Ms Head", "password": "Another-school-pass-99"]).status == 401)
        // Acting without a session: refused.
        #expect(try await http.send("POST", url, form: ["action": "acknowledge"]).status == 401)

        let right = try await http.send("POST", url, form: ["action": "sign-in", "name": "Ms Head", "password": "Oakwood-DSL-2026!"])
        #expect(right.status == 200)
        let cookie = try #require(right.cookie)
        #expect(right.header("Set-Cookie")?.contains("HttpOnly") == true)
        #expect(right.header("Set-Cookie")?.contains("SameSite=Strict") == true)
        #expect(right.body.contains(Sentinel.childFamily))
        #expect(right.body.contains("Amy&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!right.body.contains("<script>"))
        for sentinel in Sentinel.forbidden { #expect(!right.body.contains(sentinel), "page shows \(sentinel)") }

        #expect(try await http.send("GET", url, cookie: cookie).body.contains(Sentinel.homeLine))
        let csrf = try #require(right.csrf)
        let acknowledged = try await http.send("POST", url, form: ["action": "acknowledge", "csrf": csrf], cookie: cookie)
        #expect(acknowledged.status == 200)
        #expect(acknowledged.body.contains("id=\"acknowledged\""))
        let gone = try await http.send("POST", url, form: ["action": "no-longer-attends", "csrf": csrf], cookie: cookie)
        #expect(gone.body.contains("no longer attends"))

        let feedback = try await readRecords(kafka, topic: Topics.schoolFeedback.name, count: 1, timeout: .seconds(20))
        #expect(feedback.count == 1)
        #expect(feedback.first?.keyString == due.request.child.childId)
        let payload = try WireFormat.decode(SchoolFeedback.self, from: try #require(feedback.first).value).payload
        #expect(payload.kind == .noLongerAttends)
        #expect(payload.schoolURN == "110001")
        #expect(payload.noticeId == due.noticeId)

        // The audit trail over HTTP.
        #expect(try await http.send("GET", dispatch.base + "/v1/notifications?date=2026-11-24").status == 401)
        #expect(try await http.send("GET", dispatch.base + "/v1/notifications?date=24/11/2026", token: RunningDispatch.token).status == 400)
        try await eventually("audit complete") {
            let list = try await http.send("GET", dispatch.base + "/v1/notifications?date=2026-11-24", token: RunningDispatch.token).json
            let kinds = ((list["notifications"] as? [[String: Any]])?.first?["events"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
            return ["scheduled", "sent", "delivered-to-relay", "viewed", "acknowledged", "feedback"].allSatisfy(kinds.contains)
        }
        let list = try await http.send("GET", dispatch.base + "/v1/notifications?date=2026-11-24", token: RunningDispatch.token).json
        let first = try #require((list["notifications"] as? [[String: Any]])?.first)
        #expect(first["noticeId"] as? String == due.noticeId)
        #expect(first["state"] as? String == "no-longer-attends")
        #expect(first["acknowledgedBy"] as? String == "Ms Head")
        try await dispatch.stop()
    }

    @Test(
        "two instances both handed the same notices (a partition moved before the commit): each notice mailed once, by the first claim's instance; a password set on one opens notices on both"
    )
    func twoInstancesMailOnce() async throws {
        let kafka = try TestKafka()
        let first = try await RunningDispatch(kafka, start: start, groupId: "dispatch-a-\(UUID())")
        let second = try await RunningDispatch(kafka, start: start, groupId: "dispatch-b-\(UUID())")
        let notices = (0..<8).map { _ in Fixtures.due() }
        try await publishAll(kafka, notices)
        func emls(_ dispatch: RunningDispatch) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dispatch.mailFolder)) ?? []).filter { $0.hasSuffix(".eml") }
        }
        func settled(_ dispatch: RunningDispatch) async throws -> Int {
            try await dispatch.host.store.pool.read { db in
                try NoticeClaim.fetchCount(db) + AuditEntry.filter(Column("kind") == "claim-lost").fetchCount(db)
                    + OutgoingMail.filter(Column("state") == MailState.sent.rawValue).fetchCount(db)
            }
        }
        try await eventually("every notice mailed by one instance and dropped by the other", timeout: .seconds(60)) {
            let mailed = emls(first).count + emls(second).count
            let done = try await settled(first) + settled(second)
            return mailed >= notices.count && done == 4 * notices.count
        }
        try await Task.sleep(for: .seconds(1))
        #expect(emls(first).count + emls(second).count == notices.count, "one mail per notice: \(emls(first)) \(emls(second))")
        for due in notices {
            var winners: [String?] = [], holders = 0
            for dispatch in [first, second] {
                winners.append(try await dispatch.host.store.pool.read { try NoticeClaims.winner(of: due.noticeId, db: $0) })
                if try await notice(dispatch.host.store, due.noticeId) != nil { holders += 1 }
            }
            #expect(winners[0] != nil && winners[0] == winners[1], "both read the same first claim")
            #expect(holders == 1, "exactly one instance keeps the notice")
        }

        // A password set through one instance's API opens the notices of both.
        let password = try JSONSerialization.data(withJSONObject: ["password": "Oakwood-DSL-2026!", "setBy": "mash-officer-1"])
        #expect(try await http.send("PUT", second.base + "/v1/schools/110001/password", json: password, token: RunningDispatch.token).status == 200)
        try await eventually("the password reached the other instance", timeout: .seconds(30)) {
            try await first.host.store.pool.read { try SchoolPassword.fetchOne($0, key: "110001")?.setBy } == "mash-officer-1"
        }
        let hashes = [
            try await first.host.store.pool.read { try SchoolPassword.fetchOne($0, key: "110001")?.hash },
            try await second.host.store.pool.read { try SchoolPassword.fetchOne($0, key: "110001")?.hash },
        ]
        #expect(hashes[0] != nil && hashes[0] == hashes[1])
        for dispatch in [first, second] where !emls(dispatch).isEmpty {
            let url = try #require(try await dispatch.noticeURL().first)
            let signedIn = try await http.send("POST", url, form: ["action": "sign-in", "name": "Ms Head", "password": "Oakwood-DSL-2026!"])
            #expect(signedIn.status == 200 && signedIn.body.contains(Sentinel.childFamily))
        }
        try await first.stop()
        try await second.stop()
    }

    @Test("a claimed event without its claimant and a password record that is no PBKDF2 hash: dead letters with the reason, nothing applied")
    func badClaimsAndPasswordsDeadLettered() async throws {
        let kafka = try TestKafka()
        let dispatch = try await RunningDispatch(kafka, start: start, passwords: [])
        let claim = NoticeEvent(noticeId: "n-bad-claim", kind: .claimed, at: start, forceCode: "43", occurrenceNumber: "43260000001")
        try await publish(kafka, claim, topic: Topics.noticeEvents.name, key: claim.noticeId, producer: "dispatch")
        let password = AccountPassword(account: "110001", hash: "plain-text-password", setAt: start, setBy: "mash-officer-1")
        try await publish(kafka, password, topic: Topics.dispatchAccounts.name, key: password.account, producer: "dispatch")
        let store = dispatch.host.store
        try await eventually("both dead-lettered", timeout: .seconds(30)) {
            try await store.pool.read { try DeadLetter.fetchCount($0) } == 2
        }
        let letters = try await store.pool.read { try DeadLetter.order(Column("originalTopic")).fetchAll($0) }
        #expect(letters.map(\.originalTopic) == [Topics.dispatchAccounts.name, Topics.noticeEvents.name])
        #expect(letters.allSatisfy { $0.errorClass == "payload.validation" })
        #expect(letters[0].errorMessage.contains("hash: is not a pbkdf2-sha256 hash"), "\(letters[0].errorMessage)")
        #expect(letters[1].errorMessage.contains("claimant: is required for a claimed event"), "\(letters[1].errorMessage)")
        #expect(try await store.pool.read { try SchoolPassword.fetchCount($0) } == 0)
        #expect(try await store.pool.read { try NoticeClaim.fetchCount($0) } == 0)
        try await dispatch.stop()
    }

    @Test("forms from another site, or without the session's token, are refused (403, audited) and change nothing; the page's own form works")
    func crossSiteForms() async throws {
        let (dispatch, due, url) = try await dispatchWithNotice(try TestKafka())
        let signIn = ["action": "sign-in", "name": "Ms Head", "password": "Oakwood-DSL-2026!"]

        // Another site's sign-in form is refused before the password is looked at.
        #expect(try await http.send("POST", url, form: signIn, headers: ["Origin": "https://evil.example"]).status == 403)
        let right = try await http.send("POST", url, form: signIn, headers: ["Origin": dispatch.base])
        #expect(right.status == 200)
        let cookie = try #require(right.cookie)
        let csrf = try #require(right.csrf)
        #expect(csrf.count >= 43)

        // With the school's valid session cookie, a forged form is still refused.
        let forged: [(form: [String: String], headers: [String: String])] = [
            (["action": "acknowledge"], [:]), // no token
            (["action": "acknowledge", "csrf": String(csrf.dropLast()) + (csrf.hasSuffix("A") ? "E" : "A")], [:]), // a wrong token
            (["action": "no-longer-attends", "csrf": ""], [:]), // an empty token
            (["action": "acknowledge", "csrf": csrf], ["Origin": "https://evil.example"]), // the token, from another site
            (["action": "no-longer-attends", "csrf": csrf], ["Origin": "null"]), // a sandboxed or data: page
            (["action": "acknowledge", "csrf": csrf], ["Origin": "null", "Sec-Fetch-Site": "cross-site"]), // another site's, no referrer
            (["action": "acknowledge", "csrf": csrf], ["Sec-Fetch-Site": "cross-site"]), // no Origin, but cross-site
            (["action": "acknowledge", "csrf": csrf], ["Origin": "http://127.0.0.1:1.evil.example"]),
        ]
        for attempt in forged {
            let answer = try await http.send("POST", url, form: attempt.form, cookie: cookie, headers: attempt.headers)
            #expect(answer.status == 403, "\(attempt)")
            #expect(answer.body.contains("Form refused"))
        }
        let untouched = try await dispatch.host.store.pool.read { try NoticeRow.fetchOne($0, key: due.noticeId) }
        #expect(untouched?.acknowledgedAt == nil && untouched?.feedbackAt == nil)
        #expect(try await auditKinds(dispatch.host.store, due.noticeId).filter { $0 == "form-refused" }.count == forged.count + 1)

        // The public URL's origin (behind a proxy that renames the host, or under a path prefix) is the page's own.
        #expect(
            FormOrigin.check(
                origin: "HTTPS://Notices.Example", fetchSite: nil, host: "10.0.0.5:8085", publicURL: "https://notices.example/dispatch-1")
                == .sameOrigin)
        #expect(
            FormOrigin.check(
                origin: "https://notices.example:8443", fetchSite: nil, host: "10.0.0.5:8085", publicURL: "https://notices.example/dispatch-1")
                != .sameOrigin)
        #expect(FormOrigin.check(origin: nil, fetchSite: nil, host: "10.0.0.5:8085", publicURL: "https://notices.example") == .unstated)

        // The page's own form: same origin (the public URL's, or the host the browser sent it to), the session's token.
        let acknowledged = try await http.send(
            "POST", url, form: ["action": "acknowledge", "csrf": csrf], cookie: cookie,
            headers: ["Origin": dispatch.base, "Sec-Fetch-Site": "same-origin"])
        #expect(acknowledged.status == 200)
        #expect(acknowledged.body.contains("id=\"acknowledged\""))
        let gone = try await http.send(
            "POST", url, form: ["action": "no-longer-attends", "csrf": csrf], cookie: cookie,
            headers: ["Origin": "null", "Sec-Fetch-Site": "same-origin"]) // Chromium's own form under no-referrer
        #expect(gone.status == 200)
        #expect(gone.body.contains("no longer attends"))
        try await dispatch.stop()
    }

    @Test(
        "encompass lag: the default report shows dispatch's work group on notices.due and the instance's own group on notice.events and accounts, and reaches 0 when idle"
    )
    func lagSettles() async throws {
        let kafka = try TestKafka()
        let dispatch = try await RunningDispatch(kafka, start: start)
        try await publishAll(kafka, [Fixtures.due(), Fixtures.due()])
        _ = try await dispatch.noticeURL(waitingFor: 2)
        let health = try await http.send("GET", dispatch.base + "/healthz").json
        let group = try #require(health["group"] as? String)
        let replicaGroup = try #require(health["replicaGroup"] as? String)
        #expect(replicaGroup == group + ".replica." + (health["instance"] as? String ?? "?"))

        // `encompass lag` asks the dispatch of this process: run off the concurrency pool.
        func lag() async throws -> (rows: [[String: Any]], output: String) {
            var environment = ProcessInfo.processInfo.environment
            for service in ServiceName.allCases where service != .dispatch { environment[ServiceClient.variable(service)] = "http://127.0.0.1:9" }
            let encompass = try executable("encompass")
            let arguments = ["lag", "--json", "--bootstrap-servers", kafka.bootstrapServers, "--instance", "dispatch=" + dispatch.base]
            let result = try await offPool { [environment] in
                try Peers.run(encompass, arguments, environment: environment, standardErrorToo: false)
            }
            let rows = (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [[String: Any]] ?? []
            return (rows, "exit \(result.status): \(result.output.prefix(3000))")
        }
        var last = ""
        do {
            try await eventually("encompass lag reaches 0 on every row", timeout: .seconds(60), interval: .milliseconds(500)) {
                let (rows, output) = try await lag()
                last = output
                let pairs = Set(rows.map { "\($0["group"] as? String ?? "")/\($0["topic"] as? String ?? "")" })
                return pairs.contains("\(group)/\(Topics.noticesDue.name)") && pairs.contains("\(replicaGroup)/\(Topics.noticeEvents.name)")
                    && pairs.contains("\(replicaGroup)/\(Topics.dispatchAccounts.name)") && !pairs.contains("\(group)/\(Topics.noticeEvents.name)")
                    && rows.allSatisfy { ($0["lag"] as? Int) == 0 }
            }
        } catch {
            Issue.record("encompass lag's last report: \(last)")
            throw error
        }
        try await dispatch.stop()
    }

    @Test("throttle per school: wrong passwords on several links to one school count together; another school's link is not locked")
    func throttlePerSchool() async throws {
        let kafka = try TestKafka()
        let dispatch = try await RunningDispatch(kafka, start: start)
        let notices = [Fixtures.due(), Fixtures.due(), Fixtures.due(urn: "110002")]
        try await publishAll(kafka, notices)
        let urls = try await dispatch.noticeURL(waitingFor: 3)
        for (account, password) in [("110001", "Oakwood-DSL-2026!"), ("110002", "Another-school-pass-99")] {
            let body = try JSONSerialization.data(withJSONObject: ["password": password])
            #expect(
                try await http.send("PUT", dispatch.base + "/v1/schools/\(account)/password", json: body, token: RunningDispatch.token).status == 200)
        }
        let accounts = try await dispatch.host.store.pool.read { db in
            try Dictionary(uniqueKeysWithValues: NoticeRow.fetchAll(db).map { ($0.linkTokenHash ?? "", $0.account) })
        }
        func account(_ url: String) -> String { accounts[Secrets.sha256Hex(String(url.split(separator: "/").last ?? ""))] ?? "?" }
        let school = urls.filter { account($0) == "110001" }
        let other = try #require(urls.first { account($0) == "110002" })
        #expect(school.count == 2)

        var statuses: [Int] = []
        for attempt in 0..<5 {
            let link = school[attempt % 2]
            statuses.append(try await http.send("POST", link, form: ["action": "sign-in", "name": "X", "password": "guess-guess-guess"]).status)
        }
        #expect(statuses == [401, 401, 401, 401, 429])
        for link in school {
            #expect(try await http.send("POST", link, form: ["action": "sign-in", "name": "X", "password": "Oakwood-DSL-2026!"]).status == 429)
        }
        #expect(try await http.send("POST", other, form: ["action": "sign-in", "name": "X", "password": "Another-school-pass-99"]).status == 200)
        try await dispatch.setClock(start.addingTimeInterval(16 * 60))
        #expect(try await http.send("POST", school[1], form: ["action": "sign-in", "name": "X", "password": "Oakwood-DSL-2026!"]).status == 200)
        try await dispatch.stop()
    }

    @Test("throttle: 5 wrong passwords lock the school's sign-in for 15 minutes (audited); links expire")
    func throttleAndExpiry() async throws {
        let kafka = try TestKafka()
        let (dispatch, due, url) = try await dispatchWithNotice(kafka)

        var statuses: [Int] = []
        for _ in 0..<5 {
            statuses.append(try await http.send("POST", url, form: ["action": "sign-in", "name": "X", "password": "guess-guess-guess"]).status)
        }
        #expect(statuses == [401, 401, 401, 401, 429])
        let locked = try await http.send("POST", url, form: ["action": "sign-in", "name": "X", "password": "Oakwood-DSL-2026!"])
        #expect(locked.status == 429)
        #expect(locked.body.contains("locked"))
        let kinds = try await auditKinds(dispatch.host.store, due.noticeId)
        #expect(kinds.filter { $0 == "sign-in-refused" }.count == 5)
        #expect(kinds.filter { $0 == "sign-in-locked" }.count == 2)

        try await dispatch.setClock(start.addingTimeInterval(16 * 60))
        #expect(try await http.send("POST", url, form: ["action": "sign-in", "name": "X", "password": "Oakwood-DSL-2026!"]).status == 200)

        // A notice for a force without a dispatch protocol: dead-lettered with the reason, nothing sent.
        let unknown = Fixtures.due(force: "99")
        try await publish(kafka, unknown, topic: Topics.noticesDue.name, key: unknown.noticeId)
        try await eventually("dead letter for force 99") {
            try await dispatch.host.store.pool.read { try DeadLetter.filter(Column("errorClass") == "protocol.missing").fetchCount($0) } == 1
        }
        let letter = try await dispatch.host.store.pool.read { try DeadLetter.filter(Column("errorClass") == "protocol.missing").fetchOne($0) }
        #expect(letter?.errorMessage.contains("force 99") == true)
        #expect(try await dispatch.host.store.pool.read { try NoticeRow.fetchOne($0, key: unknown.noticeId) } == nil)

        try await dispatch.setClock(start.addingTimeInterval(7 * 86_400 + 60))
        #expect(try await http.send("GET", url).status == 410)
        #expect(try await http.send("POST", url, form: ["action": "sign-in", "name": "X", "password": "Oakwood-DSL-2026!"]).status == 410)
        try await dispatch.stop()
    }

    @Test(
        "telephone channel over HTTP: a task listed for MASH with the notice's allowed fields, done → acknowledged; unacknowledged email flagged at 10:00"
    )
    func telephoneTasksAndFlags() async throws {
        let kafka = try TestKafka()
        let dispatch = try await RunningDispatch(kafka, start: start)
        let phone = Fixtures.due(force: "05", channel: .telephone)
        let mail = Fixtures.due()
        try await publish(kafka, phone, topic: Topics.noticesDue.name, key: phone.noticeId)
        try await publish(kafka, mail, topic: Topics.noticesDue.name, key: mail.noticeId)
        _ = try await dispatch.noticeURL()
        var tasks: [[String: Any]] = []
        try await eventually("a telephone task") {
            tasks =
                try await http.send("GET", dispatch.base + "/v1/telephone-tasks", token: RunningDispatch.token).json["tasks"] as? [[String: Any]]
                ?? []
            return tasks.count == 1
        }
        let task = try #require(tasks.first)
        #expect(task["noticeId"] as? String == phone.noticeId)
        let taskJSON = String(decoding: try JSONSerialization.data(withJSONObject: task), as: UTF8.self)
        #expect(taskJSON.contains(Sentinel.relationship)) // 05 allows relationships
        #expect(!taskJSON.contains("SENTINEL-SUSPECT-GIVEN"))
        let id = try #require(task["id"] as? String)
        #expect(
            try await http.send(
                "POST", dispatch.base + "/v1/telephone-tasks/\(id)/done", json: Data(#"{"by":""}"#.utf8), token: RunningDispatch.token
            ).status == 422)
        #expect(
            try await http.send(
                "POST", dispatch.base + "/v1/telephone-tasks/\(id)/done",
                json: Data(#"{"by":"PC Smith","note":"spoke to the DSL"}"#.utf8), token: RunningDispatch.token
            ).status == 200)
        #expect(try await http.send("GET", dispatch.base + "/v1/telephone-tasks", token: RunningDispatch.token).json["tasks"] as? [Any] != nil)

        try await dispatch.setClock(Timestamp.parse("2026-11-24T10:00:30Z")!)
        try await eventually("email notice flagged") {
            try await dispatch.host.store.pool.read { try NoticeRow.fetchOne($0, key: mail.noticeId)?.flaggedAt != nil }
        }
        #expect(try await dispatch.host.store.pool.read { try NoticeRow.fetchOne($0, key: phone.noticeId)?.flaggedAt } == nil)
        let events = try await readRecords(kafka, topic: Topics.noticeEvents.name, count: 7, timeout: .seconds(20))
            .map { try WireFormat.decode(NoticeEvent.self, from: $0.value).payload }
        #expect(Set(events.map(\.kind)) == [.claimed, .telephoneTask, .acknowledged, .sent, .deliveredToRelay, .flagged])
        #expect(events.filter { $0.kind == .claimed }.count == 2, "one claim per notice")

        // Resend after an uncertain delivery (MASH checked with the school): sent again once; a sent mail cannot be resent.
        try await dispatch.host.store.pool.write { db in
            // As a crash mid-send leaves it: uncertain, the mail text still kept.
            try db.execute(
                sql: "UPDATE outgoingMail SET state = 'uncertain', message = ? WHERE noticeId = ?",
                arguments: [Data("Subject: resend\r\n\r\nbody\r\n".utf8), mail.noticeId])
        }
        let resendURL = dispatch.base + "/v1/notifications/\(mail.noticeId)/resend"
        #expect(try await http.send("POST", resendURL, json: Data(#"{"by":"PC Smith"}"#.utf8), token: RunningDispatch.token).status == 202)
        try await eventually("resent") {
            try await dispatch.host.store.pool.read { try OutgoingMail.fetchOne($0, key: mail.noticeId)?.state == .sent }
        }
        #expect(try await http.send("POST", resendURL, json: Data(#"{"by":"PC Smith"}"#.utf8), token: RunningDispatch.token).status == 409)
        // A notice this instance does not hold: 404, so the CLI asks the next instance.
        #expect(
            try await http.send(
                "POST", dispatch.base + "/v1/notifications/n-elsewhere/resend", json: Data(#"{"by":"PC Smith"}"#.utf8),
                token: RunningDispatch.token
            ).status == 404)
        #expect(try await auditKinds(dispatch.host.store, mail.noticeId).contains("resend-requested"))

        // The CLI: list (exit 3: something is flagged), JSON, set-password from standard input.
        let cli = try executable("encompass")
        let common = ["--url", dispatch.base, "--token", RunningDispatch.token]
        let listed = try await offPool { try runCLI(cli, ["notifications", "list", "--date", "2026-11-24"] + common) }
        #expect(listed.status == 3, "\(listed.output)")
        #expect(listed.output.contains(mail.noticeId) && listed.output.contains("FLAGGED"))
        #expect(listed.output.contains("1 flagged"))
        let asJSON = try await offPool { try runCLI(cli, ["notifications", "list", "--date", "2026-11-24", "--json"] + common) }
        let object = try JSONSerialization.jsonObject(with: Data(asJSON.output.utf8)) as? [String: Any]
        #expect((object?["notifications"] as? [Any])?.count == 2)
        #expect(object?["flagged"] as? Int == 1)
        // Several instances (--url repeated or comma-separated): listings are merged by notice id,
        // and an instance that does not answer fails the listing rather than leaving its share out.
        let merged = try await offPool {
            try runCLI(
                cli,
                ["notifications", "list", "--date", "2026-11-24", "--url", "\(dispatch.base),\(dispatch.base)/", "--token", RunningDispatch.token])
        }
        #expect(merged.output.contains("2 notices, 1 flagged"), "\(merged.output)")
        let partial = try await offPool {
            try runCLI(
                cli,
                [
                    "notifications", "list", "--date", "2026-11-24", "--url", dispatch.base, "--url", "http://127.0.0.1:9", "--token",
                    RunningDispatch.token,
                ])
        }
        #expect(partial.status == 2, "\(partial.output)")
        let set = try await offPool {
            try runCLI(cli, ["notifications", "set-password", "--urn", "110001"] + common, input: "Cli-set-password-42\n")
        }
        #expect(set.status == 0, "\(set.output)")
        #expect(try await dispatch.host.store.pool.read { try SchoolPassword.fetchOne($0, key: "110001") } != nil)
        let noToken = try await offPool { try runCLI(cli, ["notifications", "list", "--url", dispatch.base, "--token", "wrong"]) }
        #expect(noToken.status == 2)
        try await dispatch.stop()
    }
}

func runCLI(_ path: String, _ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
    let run = try runProcess(path, arguments, input: input ?? "")
    return (run.status, run.output)
}
