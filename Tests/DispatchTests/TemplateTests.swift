import EncompassModels
import EncompassTestSupport
import Foundation
import ServiceRuntime
import Testing
import WebSupport

@testable import DispatchService

@Suite("Notice templates per force protocol")
struct TemplateTests {
    let now = Timestamp.parse("2026-11-24T08:00:05Z")!

    @Test(
        "the protocol files decide the fields: Thames Valley six, Cambridgeshire adds date of birth, circumstances, relationships, other safeguarding information"
    )
    func protocolFields() throws {
        let protocols = try Fixtures.protocols()
        #expect(protocols["43"]?.fields == [.occurredAt, .childName, .childAge, .homeAddress, .incidentAddress, .occurrenceNumber])
        #expect(
            Set(protocols["05"]?.fields ?? [])
                == Set(protocols["43"]?.fields ?? []).union([.dateOfBirth, .circumstances, .relationships, .safeguardingInformation]))
        for code in ["43", "05"] {
            let wording = protocols[code]?.standardWording.joined(separator: " ") ?? ""
            #expect(wording.contains("not expected to question the child"))
            #expect(wording.contains("does not replace the school's child protection processes"))
            #expect(wording.contains("data protection"))
            #expect(wording.contains("no longer attends"))
            #expect(protocols[code]?.linkExpiryHours == 168)
        }
    }

    @Test("no field outside the protocol ever appears in the page or the email, and the email has no personal data", arguments: ["43", "05"])
    func sentinels(force: String) throws {
        let protocols = try Fixtures.protocols()
        let rules = try #require(protocols[force])
        let due = Fixtures.due(force: force)
        let content = NoticeContent.render(due, under: rules)
        let page = NoticeHTML.notice(
            content, account: "110001", signedInAs: "A Teacher", csrf: "token", acknowledgedAt: nil, acknowledgedBy: nil, feedbackAt: nil,
            message: nil)
        let stored = String(decoding: try JSONEncoder().encode(content), as: UTF8.self)
        let email = NoticeEmail.render(rules, schoolName: due.request.school.name, link: "https://notices.example.test/notice/TOKEN", expiresAt: now)
        let mail = MailMessage.compose(
            fromAddress: "mash@police.example", fromName: rules.senderName, to: "dsl@school.example",
            subject: email.subject, body: email.body, idempotencyKey: "k1", date: now
        ).data

        for sentinel in Sentinel.forbidden {
            #expect(!page.contains(sentinel), "page shows \(sentinel)")
            #expect(!stored.contains(sentinel), "stored content holds \(sentinel)")
            #expect(!mail.contains(sentinel), "email shows \(sentinel)")
        }
        for field in NoticeField.allCases {
            for sentinel in Sentinel.byField[field] ?? [] {
                if rules.fields.contains(field) {
                    #expect(page.contains(sentinel), "\(field) allowed for \(force) but \(sentinel) missing")
                } else {
                    #expect(!page.contains(sentinel), "\(field) not allowed for \(force) but \(sentinel) shown")
                    #expect(!stored.contains(sentinel), "\(field) not allowed for \(force) but stored")
                }
                // The email never carries any field of the notice.
                #expect(!mail.contains(sentinel), "email carries \(field)")
            }
        }
        #expect(content.lines.map(\.field) == rules.fields.map(\.rawValue))
        #expect(mail.contains("https://notices.example.test/notice/TOKEN"))
        #expect(mail.contains("Oakwood Primary School"))
    }

    @Test("a protocol naming a field dispatch does not know, or an email carrying personal data, is refused")
    func badProtocols() throws {
        let dir = TestPaths.temporaryDirectory("protocols")
        func write(_ dispatch: String) throws {
            try Data(
                """
                {"forceCode": "99", "name": "Test Force", "dispatch": \(dispatch)}
                """.utf8
            ).write(to: URL(fileURLWithPath: dir + "/test.json"))
        }
        let base = #""title": "t", "standardWording": [], "linkExpiryHours": 24, "acknowledgeByLocalTime": "10:00", "senderName": "s""#
        try write(#"{"fields": ["childName", "riskLevel"], "email": {"subject": "s", "body": ["{link}"]}, "# + base + "}")
        #expect(throws: ForceProtocolError.self) { try DispatchProtocols.load(try ForceProtocols.load(directory: dir)) }
        try write(#"{"fields": ["childName"], "email": {"subject": "Notice for {childName}", "body": ["{link}"]}, "# + base + "}")
        do {
            _ = try DispatchProtocols.load(try ForceProtocols.load(directory: dir))
            Issue.record("an email template with {childName} was accepted")
        } catch {
            #expect("\(error)".contains("personal data"))
        }
        try write(#"{"fields": ["childName"], "email": {"subject": "s", "body": ["{link}"]}, "# + base + "}")
        #expect(try DispatchProtocols.load(try ForceProtocols.load(directory: dir))["99"]?.fields == [.childName])
    }

    @Test("every value is HTML-escaped on the page")
    func escaping() throws {
        let rules = try #require(try Fixtures.protocols()["43"])
        let due = Fixtures.due(childGiven: "<script>alert('x')</script>&\"")
        let page = NoticeHTML.notice(
            NoticeContent.render(due, under: rules), account: "110001", signedInAs: "<b>me</b>", csrf: "token",
            acknowledgedAt: nil, acknowledgedBy: nil, feedbackAt: nil, message: nil)
        #expect(!page.contains("<script>"))
        #expect(!page.contains("<b>me</b>"))
        #expect(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"))
        #expect(htmlEscape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;")
    }

    @Test("acknowledgement deadline: 10:00 London on the release day, the next day for a release after 10:00")
    func deadline() throws {
        let rules = try #require(try Fixtures.protocols()["43"])
        #expect(
            NoticeIntake.acknowledgeDeadline(releaseAt: Timestamp.parse("2026-11-24T08:00:00Z")!, rules: rules) == Timestamp.parse(
                "2026-11-24T10:00:00Z")!)
        // Summer time: 10:00 London is 09:00 UTC.
        #expect(
            NoticeIntake.acknowledgeDeadline(releaseAt: Timestamp.parse("2026-06-10T07:00:00Z")!, rules: rules) == Timestamp.parse(
                "2026-06-10T09:00:00Z")!)
        #expect(
            NoticeIntake.acknowledgeDeadline(releaseAt: Timestamp.parse("2026-11-24T15:00:00Z")!, rules: rules) == Timestamp.parse(
                "2026-11-25T10:00:00Z")!)
    }
}

@Suite("Dispatch settings from the environment")
struct SettingsTests {
    @Test("no relay: .eml folder (default var/dispatch/mail); a relay needs a sender; plain SMTP only on loopback")
    func settings() throws {
        let folder = try DispatchService.Settings.fromEnvironment([:])
        #expect(folder.mail == .folder(directory: "var/dispatch/mail"))
        #expect(folder.publicURL == "http://127.0.0.1:8085")
        #expect(folder.protocols["43"] != nil && folder.protocols["05"] != nil)

        let smtp = try DispatchService.Settings.fromEnvironment([
            "ENCOMPASS_SMTP_URL": "smtp://relay.example:587", "ENCOMPASS_SMTP_FROM": "mash@police.example",
            "ENCOMPASS_SMTP_USERNAME": "u", "ENCOMPASS_SMTP_PASSWORD": "p", "ENCOMPASS_SMTP_CA_FILE": "/etc/ca.pem",
            "ENCOMPASS_PUBLIC_URL": "https://notices.example/",
        ])
        #expect(smtp.mail == .smtp(url: "smtp://relay.example:587", username: "u", password: "p", tls: .required, caFile: "/etc/ca.pem"))
        #expect(smtp.mail.description == "smtp://relay.example:587", "the relay's password is never in logs or the audit")
        #expect(smtp.publicURL == "https://notices.example")
        #expect(smtp.noticeCookiePath == "/notice/")
        // One public address per instance behind a proxy that routes (and strips) a path prefix.
        let prefixed = try DispatchService.Settings.fromEnvironment(["ENCOMPASS_PUBLIC_URL": "https://notices.example/dispatch-2/"])
        #expect(prefixed.publicURL == "https://notices.example/dispatch-2")
        #expect(prefixed.noticeCookiePath == "/dispatch-2/notice/")

        #expect(throws: ConfigurationError.self) { try DispatchService.Settings.fromEnvironment(["ENCOMPASS_SMTP_URL": "smtp://relay.example:587"]) }
        #expect(throws: ConfigurationError.self) {
            try DispatchService.Settings.fromEnvironment([
                "ENCOMPASS_SMTP_URL": "smtp://relay.example:25", "ENCOMPASS_SMTP_FROM": "a@b", "ENCOMPASS_SMTP_TLS": "none",
            ])
        }
        #expect(throws: ConfigurationError.self) {
            try DispatchService.Settings.fromEnvironment(["ENCOMPASS_SMTP_URL": "http://x", "ENCOMPASS_SMTP_FROM": "a@b"])
        }
        let loopback = try DispatchService.Settings.fromEnvironment([
            "ENCOMPASS_SMTP_URL": "smtp://127.0.0.1:2525", "ENCOMPASS_SMTP_FROM": "a@b", "ENCOMPASS_SMTP_TLS": "none",
        ])
        #expect(loopback.mail == .smtp(url: "smtp://127.0.0.1:2525", tls: .none))
    }
}
