import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Spreadsheets
import Testing
import WebSupport

@testable import DispatchService
@testable import SchoolResolutionService

/// Runs python3 with a script; returns status and output.
func python(_ script: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let run = try await offPool { try runPython(script, arguments) }
    return (run.status, run.output)
}

@Suite("Outputs neutralise injected markup and formulas", .tags(.peers))
struct OutputNeutralisationTests {
    /// Values a spreadsheet would run as a formula (or a DDE command) if written as they are.
    static let formulas = [
        "=1+1", "=HYPERLINK(\"http://evil.example\",\"click\")", "+44 118 000", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1",
        "=cmd|'/c calc'!A1", "\u{FF1D}1+1", "-", "+", "@", "=", "'=already quoted",
    ]

    @Test("notice and sign-in pages: markup in every value is escaped; the page's tags are exactly those of a page with plain values")
    func noticePages() throws {
        let rules = try #require(try DispatchProtocols.load(ForceProtocols.load(directory: ForceProtocols.bundledDirectory))["43"])
        let release = Timestamp.parse("2026-11-24T08:00:00Z")!
        func render(_ name: String) -> (notice: String, signIn: String, problem: String) {
            let due = notice(urn: "110001", childGiven: name, email: "dsl@a.example", occurrence: "43260000001", releaseAt: release)
            let content = NoticeContent.render(due, under: rules)
            return (
                NoticeHTML.notice(
                    content, account: "110001", signedInAs: name, csrf: "Csrf-token_0123456789", acknowledgedAt: release, acknowledgedBy: name,
                    feedbackAt: nil, message: name),
                NoticeHTML.signIn(account: "110001" + name, schoolName: content.schoolName + name, message: name, isError: true),
                NoticeHTML.problem("Problem " + name, name)
            )
        }
        let plain = render("Plain")
        for injected in Injection.all + ["</dd></dl><form action=\"http://evil.example\">", "<!--", "]]>", "&lt;script&gt;", "\u{0}<b>"] {
            let hostile = render(injected)
            for (page, reference) in [(hostile.notice, plain.notice), (hostile.signIn, plain.signIn), (hostile.problem, plain.problem)] {
                expectNoInjection(page)
                // Same markup skeleton: the data added no tag and no attribute.
                #expect(tagsOf(page) == tagsOf(reference), "\(injected): tags differ")
                // The value is shown, escaped.
                #expect(page.contains(htmlEscape(injected)), "\(injected.debugDescription) not shown escaped")
            }
        }
    }

    @Test("CSC request export: every cell a spreadsheet would run is neutralised, CSV and XLSX (read back by openpyxl and Python's csv)")
    func requestExports() async throws {
        // Real export rows, from children whose names and schools are formulas.
        let store = try ServiceStore(
            path: TestPaths.temporaryDirectory("security-csc") + "/s.sqlite",
            migrations: SchoolStore.migrations(seed: false))
        let flow = SchoolFlow(protocols: try SchoolsProtocol.loadAll(ForceProtocols.load(directory: ForceProtocols.bundledDirectory)))
        let now = Timestamp.parse("2026-11-23T10:00:00Z")!
        try await store.pool.write { db in
            for (i, formula) in Self.formulas.enumerated() {
                let child = IdentifiedChild(
                    childId: "c-\(i)", givenName: formula, familyName: formula, ageYears: 8,
                    homeAddress: PostalAddress(lines: [formula], town: formula, postcode: "RG1 7LL"),
                    recordedSchool: RecordedSchool(name: formula))
                let incident = Incident(
                    occurrenceNumber: "432600000\(10 + i)", forceCode: "43", occurredAt: now.addingTimeInterval(-86_400),
                    reportedAt: now.addingTimeInterval(-80_000),
                    incidentAddress: PostalAddress(lines: ["1 High Street"], town: "Reading", postcode: "RG1 7LL"),
                    localPolicingArea: "Reading", riskLevel: .medium, crime: false)
                _ = try flow.handleChild(
                    ChildIdentified(incident: incident, incidentRevision: 1, child: child, source: .officer),
                    messageId: "m-\(i)", db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
            }
        }
        let open = try await store.pool.read { db in try CSCRequests.open(db, lpa: "all") }
        #expect(open.count == Self.formulas.count)
        var rows = CSCRequests.rows(open)
        // And a row of nothing but formulas, in every column.
        rows.append(CSCRequests.header.indices.map { Self.formulas[$0 % Self.formulas.count] })
        let dir = TestPaths.temporaryDirectory("security-sheets")
        let xlsx = dir + "/requests.xlsx"
        let csv = dir + "/requests.csv"
        try SheetWriter.xlsx(sheetName: "Requests =1+1", header: CSCRequests.header, rows: rows).write(to: URL(fileURLWithPath: xlsx))
        try SheetWriter.csv(header: CSCRequests.header, rows: rows).write(to: URL(fileURLWithPath: csv))

        let script = """
            import csv, sys, openpyxl
            danger = ("=", "+", "-", "@", "\\t", "\\r", "\\uff1d", "\\uff0b", "\\uff0d", "\\uff20")
            bad, cells = [], 0
            wb = openpyxl.load_workbook(sys.argv[1])
            for row in wb.active.iter_rows():
                for cell in row:
                    if cell.value is None: continue
                    cells += 1
                    if cell.data_type == "f" or (isinstance(cell.value, str) and cell.value.startswith(danger)):
                        bad.append("xlsx %s: %r" % (cell.coordinate, cell.value))
            with open(sys.argv[2], newline="", encoding="utf-8-sig") as f:
                for r, row in enumerate(csv.reader(f)):
                    for c, value in enumerate(row):
                        cells += 1
                        if value.startswith(danger):
                            bad.append("csv r%d c%d: %r" % (r, c, value))
            print("cells", cells)
            for b in bad: print(b)
            sys.exit(1 if bad else 0)
            """
        let result = try await python(script, [xlsx, csv])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("cells"))
        // The formulas are still there as text (neutralised, not dropped).
        #expect(rows.last.map { $0.allSatisfy { !$0.isEmpty } } == true)
        for formula in Self.formulas where SheetWriter.neutralise(formula) != formula {
            #expect(SheetWriter.restore(SheetWriter.neutralise(formula)) == formula || formula.hasPrefix("\u{FF1D}"))
        }
    }
}
