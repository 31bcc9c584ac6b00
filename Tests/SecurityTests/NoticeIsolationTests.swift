import EncompassKafka
import EncompassModels
import EncompassSecrets
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import DispatchService

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Markup and quotes that must never reach a page unescaped.
enum Injection {
    static let script = "<script>alert('x')</script>"
    static let attribute = "\" onmouseover=\"alert(1)\" x=\""
    static let image = "'><img src=x onerror=alert(1)>"
    static let all = [script, attribute, image]
}

/// A notice for one child at one school, with markup in every free-text field.
func notice(urn: String, childGiven: String, email: String, occurrence: String, releaseAt: Date) -> NoticeDue {
    let incident = Incident(
        occurrenceNumber: occurrence, forceCode: "43", occurredAt: releaseAt.addingTimeInterval(-36 * 3600),
        reportedAt: releaseAt.addingTimeInterval(-30 * 3600),
        incidentAddress: PostalAddress(lines: ["1 High Street" + Injection.image], town: "Reading" + Injection.attribute, postcode: "RG1 7LL"),
        localPolicingArea: "Reading", riskLevel: .medium, crime: false,
        children: [RecordedChild(givenName: childGiven, familyName: "Family" + Injection.script, dateOfBirth: "2016-05-04")])
    let child = IdentifiedChild(
        childId: "c-\(urn)", givenName: childGiven, familyName: "Family" + Injection.script, dateOfBirth: "2016-05-04",
        homeAddress: PostalAddress(lines: ["2 Low Road" + Injection.attribute], town: "Reading", postcode: "RG2 0AA"), presence: .witness,
        relationship: "child of " + Injection.image)
    let school = ResolvedSchool(
        urn: urn, name: "School \(urn) " + Injection.attribute + Injection.script, localAuthorityCode: "870",
        localAuthorityName: "Reading", contacts: [SchoolContact(role: "dsl", name: "DSL", email: email)], channel: .email)
    let request = NoticeRequested(
        noticeId: NoticeID.make(forceCode: "43", occurrenceNumber: occurrence, childId: child.childId),
        incident: incident, incidentRevision: 1, child: child, childSource: .officer, school: school, resolution: ["URN given"])
    return NoticeDue(request: request, releaseAt: releaseAt, rules: ["test"])
}

struct Page {
    var status: Int
    var body: String
    var setCookie: String?
    var cookie: String? { setCookie?.split(separator: ";").first.map(String.init) }
}

func page(_ method: String, _ url: String, form: [String: String]? = nil, cookie: String? = nil) async throws -> Page {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    if let form {
        request.httpBody = Data(
            form.sorted { $0.key < $1.key }.map { key, value in
                "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
            }.joined(separator: "&").utf8)
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
    }
    if let cookie { request.setValue(cookie, forHTTPHeaderField: "Cookie") }
    let (data, response) = try await plainSession.data(for: request)
    let http = response as? HTTPURLResponse
    let setCookie = http?.allHeaderFields.first { "\($0.key)".lowercased() == "set-cookie" }.map { "\($0.value)" }
    return Page(status: http?.statusCode ?? 0, body: String(decoding: data, as: UTF8.self), setCookie: setCookie)
}

@Suite("One school can never see another school's notice", .serialized, .tags(.kafka))
struct NoticeIsolationTests {
    let start = Timestamp.parse("2026-11-24T08:00:05Z")!

    @Test(
        "school A's link, password and session open only A's notice; B's link refuses A's password and session; guessed tokens fail; markup is escaped"
    )
    func isolation() async throws {
        let kafka = try TestKafka(partitions: 2)
        let dir = TestPaths.temporaryDirectory("security-dispatch")
        let clockFile = dir + "/clock.json"
        let mail = dir + "/mail"
        try SimulatedClockFile(simulated: start, real: Date(), rate: 0).write(to: clockFile)
        let settings = DispatchService.Settings(
            mail: .folder(directory: mail), publicURL: "http://127.0.0.1:1",
            protocols: try DispatchProtocols.load(ForceProtocols.load(directory: ForceProtocols.bundledDirectory)), pollInterval: .milliseconds(100))
        let configuration = ServiceConfiguration(
            service: .dispatch, kafka: kafka.client("dispatch"), groupId: "dispatch-\(UUID())", dataDirectory: dir,
            instanceId: "dispatch-sec", httpPort: 0, topicPartitions: 2, apiToken: Tokens.operations, clockFile: clockFile)
        let host = try await ServiceHost(
            definition: DispatchService.definition(settings: settings), configuration: configuration, logger: TestLog.logger("dispatch"))
        let task = Task { try await host.run(handleSignals: false) }
        let base = "http://127.0.0.1:\(await host.httpPort())"

        // MASH sets each school's password (mail to a school without one is held).
        for (urn, password) in [("110001", "School-A-password-2026"), ("110002", "School-B-password-2026")] {
            let body = try JSONSerialization.data(withJSONObject: ["password": password, "setBy": "mash"])
            #expect(
                try await send("PUT", base + "/v1/schools/\(urn)/password", authorization: "Bearer " + Tokens.operations, body: body).status == 200)
        }

        let dueA = notice(urn: "110001", childGiven: "AliceOfA", email: "dsl@a.example", occurrence: "43260000001", releaseAt: start)
        let dueB = notice(urn: "110002", childGiven: "BobOfB", email: "dsl@b.example", occurrence: "43260000002", releaseAt: start)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client("scheduling")), logger: TestLog.logger("producer"))
        for due in [dueA, dueB] {
            try await producer.send(
                ProducerRecord(
                    topic: Topics.noticesDue.name, key: due.noticeId,
                    value: try WireFormat.encode(
                        Envelope(id: MessageID.fresh(), key: due.noticeId, producer: "scheduling", payload: due))))
        }
        await producer.close()

        // The two mails, each with its link.
        try await eventually("two notice mails", timeout: .seconds(30)) {
            ((try? FileManager.default.contentsOfDirectory(atPath: mail)) ?? []).filter { $0.hasSuffix(".eml") }.count >= 2
        }
        var links: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: mail) where name.hasSuffix(".eml") {
            let text = try String(contentsOfFile: mail + "/" + name, encoding: .utf8)
            guard let range = text.range(of: #"/notice/[A-Za-z0-9_-]+"#, options: .regularExpression) else { continue }
            links[text.contains("dsl@a.example") ? "A" : "B"] = base + String(text[range])
        }
        let linkA = try #require(links["A"])
        let linkB = try #require(links["B"])
        #expect(linkA != linkB)

        // A signs in to A's notice and sees A's child, never B's.
        let signedIn = try await page("POST", linkA, form: ["action": "sign-in", "name": "Head of A", "password": "School-A-password-2026"])
        #expect(signedIn.status == 200)
        let cookieA = try #require(signedIn.cookie)
        let csrfA = try #require(
            signedIn.body.range(of: #"name="csrf" value="[A-Za-z0-9_-]+""#, options: .regularExpression)
                .map { String(signedIn.body[$0].dropFirst(#"name="csrf" value=""#.count).dropLast()) })
        #expect(signedIn.body.contains("AliceOfA"))
        #expect(!signedIn.body.contains("BobOfB"))

        // A's password on B's link: refused, nothing of B shown, no session.
        let crossPassword = try await page("POST", linkB, form: ["action": "sign-in", "name": "Head of A", "password": "School-A-password-2026"])
        #expect(crossPassword.status == 401)
        #expect(crossPassword.cookie == nil)
        #expect(!crossPassword.body.contains("BobOfB"))

        // A's session on B's link: the sign-in page, not the notice; acting is refused.
        let crossView = try await page("GET", linkB, cookie: cookieA)
        #expect(!crossView.body.contains("BobOfB"))
        #expect(crossView.body.contains("id=\"sign-in\""))
        for action in ["acknowledge", "no-longer-attends"] {
            let crossAct = try await page("POST", linkB, form: ["action": action, "csrf": csrfA], cookie: cookieA)
            #expect(crossAct.status == 401, "\(action) on B with A's session: \(crossAct.status)")
            #expect(!crossAct.body.contains("BobOfB"))
        }
        let rowB = try await host.store.pool.read { db in try NoticeRow.fetchOne(db, key: dueB.noticeId) }
        #expect(rowB?.acknowledgedAt == nil)
        #expect(rowB?.feedbackAt == nil)

        // Guessing: random tokens, A's token altered by one character, truncated, extended, the
        // notice id itself, traversal: all "not recognised", nothing shown.
        let tokenA = String(linkA.split(separator: "/").last ?? "")
        var guesses = [
            String(tokenA.dropLast()), tokenA + "A", dueB.noticeId, "../v1/notifications", String(repeating: "A", count: 43),
            tokenA.uppercased() == tokenA ? tokenA.lowercased() : tokenA.uppercased(),
        ]
        var altered = Array(tokenA)
        altered[altered.count / 2] = altered[altered.count / 2] == "A" ? "B" : "A"
        guesses.append(String(altered))
        for _ in 0..<20 { guesses.append(try Secrets.newToken()) }
        for guess in guesses {
            let encoded = guess.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? guess
            for answer in [
                try await page("GET", base + "/notice/" + encoded, cookie: cookieA),
                try await page("POST", base + "/notice/" + encoded, form: ["action": "sign-in", "name": "x", "password": "School-A-password-2026"]),
            ] {
                // "../" leaves /notice/ for the MASH API, which wants its bearer token.
                #expect(guess.hasPrefix("../") ? [401, 404].contains(answer.status) : answer.status == 404, "guess \(guess): \(answer.status)")
                #expect(!answer.body.contains("AliceOfA") && !answer.body.contains("BobOfB"))
                #expect(answer.cookie == nil)
            }
        }
        // A forged or altered session cookie is no session.
        for forged in ["encompass_notice=" + (try Secrets.newToken()), cookieA + "x", "encompass_notice="] {
            let answer = try await page("GET", linkA, cookie: forged)
            #expect(!answer.body.contains("AliceOfA"), "cookie \(forged)")
        }

        // A acknowledges A's own notice: only A's changes.
        #expect(try await page("POST", linkA, form: ["action": "acknowledge", "csrf": csrfA], cookie: cookieA).status == 200)
        let rows = try await host.store.pool.read { db in
            (try NoticeRow.fetchOne(db, key: dueA.noticeId), try NoticeRow.fetchOne(db, key: dueB.noticeId))
        }
        #expect(rows.0?.acknowledgedAt != nil)
        #expect(rows.1?.acknowledgedAt == nil)

        // Every injected value is escaped on the notice page: no tag or attribute it brought.
        let shown = try await page("GET", linkA, cookie: cookieA)
        expectNoInjection(shown.body)
        await host.shutdown()
        try await task.value
    }
}

/// The page holds none of the injected markup raw, only escaped: no tag or attribute came
/// from the data (escaped text may still read "onmouseover=", as harmless text).
func expectNoInjection(_ html: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for raw in Injection.all { #expect(!html.contains(raw), "raw \(raw)", sourceLocation: sourceLocation) }
    let tags = tagsOf(html)
    #expect(!tags.isEmpty, sourceLocation: sourceLocation)
    for tag in tags {
        let lower = tag.lowercased()
        #expect(!lower.hasPrefix("<script") && !lower.hasPrefix("<img"), "tag \(tag)", sourceLocation: sourceLocation)
        #expect(lower.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil, "event attribute in \(tag)", sourceLocation: sourceLocation)
    }
}

/// The markup tags of a page, in order.
func tagsOf(_ html: String) -> [String] {
    guard let regex = try? NSRegularExpression(pattern: "<[^>]*>") else { return [] }
    let range = NSRange(html.startIndex..., in: html)
    return regex.matches(in: html, range: range).compactMap { Range($0.range, in: html).map { String(html[$0]) } }
}
