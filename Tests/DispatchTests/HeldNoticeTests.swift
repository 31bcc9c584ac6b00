import EncompassKafka
import EncompassModels
import EncompassSecrets
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Spreadsheets
import Testing

@testable import DispatchService

/// Notices to a school with no notice password, held then sent; the bulk password file; the
/// Navigator's audit export. Dispatch runs as a service on the mock Kafka cluster and mails
/// through a real SMTP server on loopback (aiosmtpd).
@Suite("Held notices, password files and the audit export", .serialized, .tags(.kafka, .peers))
struct HeldNoticeTests {
    let start = Timestamp.parse("2026-11-24T08:00:05Z")!
    let http = Browserless()

    func metric(_ dispatch: RunningDispatch, _ name: String) async throws -> Double? {
        let text = try await http.send("GET", dispatch.base + "/metrics").body
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
    }

    @Test(
        "mail to a school without a password is held (store, audit, metric, list, readiness), other mail goes; the password file sets the good rows, reports the bad ones by row without echoing a password, and the held mail then goes out once"
    )
    func heldThenSent() async throws {
        let kafka = try TestKafka()
        let peer = try await SMTPPeer()
        defer { peer.stop() }
        let dispatch = try await RunningDispatch(kafka, start: start, mail: .smtp(url: peer.url, tls: .none), passwords: ["110001"])
        let store = dispatch.host.store
        let open = Fixtures.due(urn: "110001")
        let held = Fixtures.due(urn: "110003")
        var early = Fixtures.due(urn: "EY123456")
        early.request.school.name = "Little Acorns Nursery"
        try await publishAll(kafka, [open, held, early])

        try await eventually("the school with a password got its mail", timeout: .seconds(60)) { peer.messages().count == 1 }
        try await eventually("both others held and counted", timeout: .seconds(30)) {
            try await metric(dispatch, "encompass_dispatch_held_notices") == 2
        }
        #expect(try await mail(store, open.noticeId)?.state == .sent)
        for due in [held, early] {
            #expect(try await mail(store, due.noticeId)?.state == .pending, "held mail stays queued in the store")
            #expect(try await auditKinds(store, due.noticeId).contains("held-no-password"))
        }
        #expect(try await metric(dispatch, "encompass_dispatch_held_oldest_age_seconds") != nil)

        let listing = try await http.send("GET", dispatch.base + "/v1/held", token: RunningDispatch.token).json
        #expect((listing["held"] as? [[String: Any]])?.compactMap { $0["noticeId"] as? String }.sorted() == [early.noticeId, held.noticeId].sorted())
        #expect(listing["accountsWithoutPassword"] as? [String] == ["110003", "EY123456"])
        #expect(try await http.send("GET", dispatch.base + "/v1/held").status == 401)
        let readiness = try await http.send("GET", dispatch.base + "/v1/readiness", token: RunningDispatch.token).json
        #expect(readiness["status"] as? String == "warning")
        let warnings = readiness["warnings"] as? [String] ?? []
        #expect(warnings.count == 2 && warnings.contains { $0.contains("110003") && $0.contains("no notice password") }, "\(warnings)")
        #expect(warnings.contains { $0.contains("EY123456") && $0.contains("Little Acorns Nursery") })

        // Held for as long as it takes: ten minutes on, still nothing more to the relay.
        try await dispatch.setClock(start.addingTimeInterval(600))
        try await Task.sleep(for: .milliseconds(500))
        #expect(peer.messages().count == 1)

        // The password file: two good rows (a URN and an EY reference), a bad reference, a weak
        // password, a repeated school and an empty password, each reported by its row number.
        let secrets = ["Held-school-pass-2026", "Nursery-pass-2026-xyz", "short", "Second-copy-pass-2026"]
        let csv = """
            URN,Password\r
            110003,\(secrets[0])\r
            11x,Whatever-pass-2026-q\r
            110004,\(secrets[2])\r
            ey123456,\(secrets[1])\r
            110003,\(secrets[3])\r
            110005,\r

            """
        let file = TestPaths.temporaryDirectory("passwords") + "/passwords.csv"
        try Data(csv.utf8).write(to: URL(fileURLWithPath: file))
        let cli = try executable("encompass")
        let common = ["--url", dispatch.base, "--token", RunningDispatch.token]
        let result = try await offPool { try runCLI(cli, ["notifications", "set-password", "--file", file, "--by", "mash-officer-1"] + common) }
        #expect(result.status == 1, "some rows refused: \(result.output)")
        #expect(result.output.contains("2 passwords set, 4 rows refused"), "\(result.output)")
        #expect(result.output.contains("row 2: 110003 set") && result.output.contains("row 5: EY123456 set"), "\(result.output)")
        #expect(result.output.contains("row 3: REFUSED urn: '11x'"), "\(result.output)")
        #expect(result.output.contains("row 4: REFUSED password: password must have at least 12 characters"), "\(result.output)")
        #expect(result.output.contains("row 6: REFUSED urn: 110003 is also on row 2"), "\(result.output)")
        #expect(result.output.contains("row 7: REFUSED password: is empty"), "\(result.output)")
        for secret in secrets + ["Whatever-pass-2026-q"] { #expect(!result.output.contains(secret), "a password was echoed") }

        try await eventually("the held mail went out once its passwords were set", timeout: .seconds(60)) { peer.messages().count == 3 }
        try await eventually("nothing held", timeout: .seconds(30)) { try await metric(dispatch, "encompass_dispatch_held_notices") == 0 }
        #expect(try await mail(store, held.noticeId)?.state == .sent)
        #expect(try await mail(store, early.noticeId)?.state == .sent)
        let stored = try await store.pool.read { try SchoolPassword.fetchOne($0, key: "110003") }
        #expect(stored?.setBy == "mash-officer-1")
        #expect(try await store.pool.read { try SchoolPassword.fetchOne($0, key: "110004") } == nil)
        let ready = try await http.send("GET", dispatch.base + "/v1/readiness", token: RunningDispatch.token).json
        #expect((ready["warnings"] as? [String])?.isEmpty == true && ready["status"] as? String == "ready")
        try await Task.sleep(for: .milliseconds(300))
        #expect(peer.messages().count == 3, "each notice mailed once")
        try await dispatch.stop()
    }

    @Test("a password file as XLSX; one that cannot be read is refused whole (exit 2) without echoing a cell")
    func xlsxPasswords() async throws {
        let kafka = try TestKafka()
        let dispatch = try await RunningDispatch(kafka, start: start, passwords: [])
        let dir = TestPaths.temporaryDirectory("passwords-xlsx")
        let xlsx = dir + "/passwords.xlsx"
        try SheetWriter.xlsx(
            sheetName: "Passwords", header: ["Reference", "Password"],
            rows: [
                ["110007", "Xlsx-school-pass-2026"], ["LA872", "Esm-password-2026-la"], ["ESM43", "Esm-password-2026-force"],
                ["LA87", "Esm-password-2026-la2"],
            ]
        )
        .write(to: URL(fileURLWithPath: xlsx))
        let cli = try executable("encompass")
        let common = ["--url", dispatch.base, "--token", RunningDispatch.token]
        let result = try await offPool { try runCLI(cli, ["notifications", "set-password", "--file", xlsx] + common) }
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("3 passwords set, 1 row refused") && result.output.contains("row 5: REFUSED urn: 'LA87'"), "\(result.output)")
        #expect(!result.output.contains("Esm-password"))
        #expect(try await dispatch.host.store.pool.read { try SchoolPassword.fetchCount($0) } == 3)

        let noColumn = dir + "/no-password-column.csv"
        try Data("urn,secret\r\n110008,Not-shown-anywhere-2026\r\n".utf8).write(to: URL(fileURLWithPath: noColumn))
        let refused = try await offPool { try runCLI(cli, ["notifications", "set-password", "--file", noColumn] + common) }
        #expect(refused.status == 2 && refused.output.contains("no password column"), "\(refused.output)")
        #expect(!refused.output.contains("Not-shown-anywhere-2026"))
        let both = try await offPool { try runCLI(cli, ["notifications", "set-password", "--file", noColumn, "--urn", "110001"] + common) }
        #expect(both.status != 0 && both.output.contains("either --urn"), "\(both.output)")
        try await dispatch.stop()
    }

    @Test(
        "the Navigator's audit export: one row per notice released in the range (and LA), with its school, DSL and DA lead, sent, viewed and acknowledged times; read back with openpyxl, formula-like cells neutralised; CSV alike"
    )
    func auditExport() async throws {
        let kafka = try TestKafka()
        let dispatch = try await RunningDispatch(kafka, start: start)
        var hostile = Fixtures.due(urn: "110001")
        hostile.request.school.name = "=HYPERLINK(\"http://evil.example\",\"x\")"
        hostile.request.school.contacts = [
            SchoolContact(role: "dsl", name: "+Ms Head", email: "dsl@school.example", phone: nil),
            SchoolContact(role: "da-lead", name: "@Mr Lead", email: "lead@school.example", phone: nil),
        ]
        var otherLA = Fixtures.due(urn: "110002")
        otherLA.request.school.localAuthorityCode = "873"
        otherLA.request.school.name = "-Fen School"
        let nextWeek = Fixtures.due(urn: "110001", releaseAt: Timestamp.parse("2026-12-01T08:00:00Z")!)
        try await publishAll(kafka, [hostile, otherLA, nextWeek])
        // The school signs in and acknowledges the first notice (once its mail, with the link, is written whole).
        let store = dispatch.host.store
        let hostileId = hostile.noticeId
        var found: String?
        try await eventually("the first notice's mail with its link") {
            let hostileHash = try await store.pool.read { try NoticeRow.fetchOne($0, key: hostileId)?.linkTokenHash }
            found = try await dispatch.noticeURL(waitingFor: 2).first {
                Secrets.sha256Hex($0.components(separatedBy: "/notice/").last ?? "") == hostileHash
            }
            return found != nil
        }
        let hostileURL = try #require(found)
        let signedIn = try await http.send("POST", hostileURL, form: ["action": "sign-in", "name": "Ms Head", "password": "Fixture-password-2026!"])
        #expect(signedIn.status == 200)
        let acknowledged = try await http.send(
            "POST", hostileURL, form: ["action": "acknowledge", "csrf": try #require(signedIn.csrf)],
            cookie: signedIn.cookie)
        #expect(acknowledged.status == 200)

        let cli = try executable("encompass")
        let common = ["--url", dispatch.base, "--token", RunningDispatch.token]
        let dir = TestPaths.temporaryDirectory("export")
        let xlsx = dir + "/navigator.xlsx"
        let result = try await offPool { try runCLI(cli, ["notifications", "export", "--from", "2026-11-24", "--to", "2026-11-24", xlsx] + common) }
        #expect(result.status == 0, "\(result.output)")
        let script = """
            import json, sys, openpyxl
            wb = openpyxl.load_workbook(sys.argv[1])
            ws = wb.worksheets[0]
            print(json.dumps([[c.value if c.value is not None else "" for c in row] for row in ws.iter_rows()]))
            """
        let read = try await offPool { try Peers.run(Peers.python, ["-c", script, xlsx], standardErrorToo: false) }
        #expect(read.status == 0, "openpyxl failed (pip install openpyxl): \(read.output)")
        let table = try #require(try JSONSerialization.jsonObject(with: Data(read.output.utf8)) as? [[String]])
        #expect(table.first == NoticeExport.header)
        let rows = Array(table.dropFirst())
        #expect(rows.count == 2, "two notices released on 24 November: \(rows)")
        func column(_ name: String, _ row: [String]) -> String { row[NoticeExport.header.firstIndex(of: name)!] }
        let first = try #require(rows.first { column("notice_id", $0) == hostile.noticeId })
        #expect(column("occurrence_number", first) == Sentinel.occurrence)
        #expect(column("school_urn", first) == "110001")
        #expect(column("school_name", first) == "'=HYPERLINK(\"http://evil.example\",\"x\")", "neutralised")
        #expect(column("dsl", first) == "'+Ms Head dsl@school.example")
        #expect(column("da_lead", first) == "'@Mr Lead lead@school.example")
        #expect(column("release_at", first) == "2026-11-24 08:00")
        #expect(column("sent_at", first) == "2026-11-24 08:00")
        #expect(column("viewed_at", first) == "2026-11-24 08:00" && column("viewed_by", first) == "Ms Head")
        #expect(column("acknowledged_at", first) == "2026-11-24 08:00" && column("acknowledged_by", first) == "Ms Head")
        #expect(column("state", first) == "acknowledged")
        let second = try #require(rows.first { column("notice_id", $0) == otherLA.noticeId })
        #expect(column("school_name", second) == "'-Fen School" && column("local_authority", second) == "873")
        #expect(column("acknowledged_at", second).isEmpty)
        for row in rows {
            for cell in row { #expect(!["=", "+", "-", "@"].contains(cell.first.map(String.init) ?? ""), "cell \(cell) not neutralised") }
        }

        // One LA, as CSV.
        let csv = dir + "/navigator-873.csv"
        let byLA = try await offPool {
            try runCLI(cli, ["notifications", "export", "--from", "2026-11-01", "--to", "2026-11-30", "--la", "873", csv] + common)
        }
        #expect(byLA.status == 0, "\(byLA.output)")
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\r\n")
        #expect(lines.count == 2 && lines[1].contains(otherLA.noticeId) && lines[1].contains("'-Fen School"), "\(lines)")
        // Bad input: a clear refusal, exit 1.
        let bad = try await offPool { try runCLI(cli, ["notifications", "export", "--from", "2026-11-30", "--to", "2026-11-01", csv] + common) }
        #expect(bad.status == 1 && bad.output.contains("is before from"), "\(bad.output)")
        try await dispatch.stop()
    }
}
