import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Spreadsheets
import Testing

@testable import SchoolResolutionService

/// Runs python3 with a script and arguments, off the concurrency pool (`offPool`): the exit
/// status, standard output and standard error.
func python(_ script: String, _ arguments: [String] = []) async throws -> (status: Int32, output: String, error: String) {
    let run = try await offPool { try runPython(script, arguments, errors: .separate) }
    return (run.status, run.output, run.error)
}

@Suite("Requests to Children's Social Care: export, return, import", .serialized, .tags(.peers))
struct RequestSheetTests {
    let flow = SchoolFlow(protocols: Fixtures.protocols)
    let now = Fixtures.incidentDate.addingTimeInterval(3_600)

    /// Three children of Reading and one of Slough without a verified school.
    func storeWithRequests() throws -> ServiceStore {
        let store = try Fixtures.store()
        let children: [(String, String, IdentifiedChild)] = [
            ("43260000001", "Reading", Fixtures.child(id: "c-1", age: 8, school: RecordedSchool(name: "St Marys"))),
            (
                "43260000002", "Reading",
                IdentifiedChild(
                    childId: "c-2", givenName: "=HYPERLINK(\"http://evil.example\",\"x\")", familyName: "+Jones",
                    ageYears: 9, recordedSchool: RecordedSchool(name: "@SUM(A1:A9)"))
            ),
            ("43260000003", "reading", Fixtures.child(id: "c-3", age: 10, school: nil)),
            ("43260000004", "Slough", Fixtures.child(id: "c-4", age: 7, school: RecordedSchool(name: "Primary School"))),
        ]
        try store.pool.write { db in
            for (i, (occurrence, lpa, child)) in children.enumerated() {
                let outcome = try flow.handleChild(
                    Fixtures.message(occurrence: occurrence, lpa: lpa, child: child), messageId: "m-\(i)",
                    db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
                #expect(outcome == .request)
            }
        }
        return store
    }

    func export(_ store: ServiceStore, lpa: String) throws -> (rows: [SchoolRequestRow], table: [[String]]) {
        let rows = try store.pool.read { try CSCRequests.open($0, lpa: lpa) }
        return (rows, CSCRequests.rows(rows))
    }

    @Test("the export per LPA opens in openpyxl; every cell is text and formula-like cells are neutralised")
    func exportOpensInOpenpyxl() async throws {
        let store = try storeWithRequests()
        let (rows, table) = try export(store, lpa: "Reading")
        #expect(rows.count == 3) // LPA matched case-insensitively; Slough's is not in it
        let directory = TestPaths.temporaryDirectory("export")
        let xlsx = directory + "/reading.xlsx", csv = directory + "/reading.csv"
        try SheetWriter.xlsx(sheetName: "Requests Reading", header: CSCRequests.header, rows: table).write(to: URL(fileURLWithPath: xlsx))
        try SheetWriter.csv(header: CSCRequests.header, rows: table).write(to: URL(fileURLWithPath: csv))
        let script = """
            import sys, json, csv, openpyxl
            wb = openpyxl.load_workbook(sys.argv[1])
            ws = wb.worksheets[0]
            rows = [[c.value for c in r] for r in ws.iter_rows()]
            types = sorted({c.data_type for r in ws.iter_rows() for c in r if c.value is not None})
            with open(sys.argv[2], encoding='utf-8-sig', newline='') as f:
                csv_rows = list(csv.reader(f))
            print(json.dumps({"title": ws.title, "rows": rows, "types": types, "csv": csv_rows}))
            """
        let result = try await python(script, [xlsx, csv])
        #expect(result.status == 0, "\(result.error)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
        let sheet = object["rows"] as? [[Any]] ?? []
        #expect(object["title"] as? String == "Requests Reading")
        #expect(object["types"] as? [String] == ["s"]) // strings only: no formula ('f') cells
        #expect(sheet.first?.compactMap { $0 as? String } == CSCRequests.header)
        #expect(sheet.count == 4)
        let header = CSCRequests.header
        let byId = Dictionary(
            uniqueKeysWithValues: sheet.dropFirst().map { row in
                (row[0] as? String ?? "", Dictionary(uniqueKeysWithValues: zip(header, row.map { $0 as? String ?? "" })))
            })
        let evil = byId[Fixtures.message(occurrence: "43260000002", child: Fixtures.child(id: "c-2", school: nil)).noticeKey]
        #expect(evil?["child_given_name"] == "'=HYPERLINK(\"http://evil.example\",\"x\")")
        #expect(evil?["child_family_name"] == "'+Jones")
        #expect(evil?["recorded_school"] == "'@SUM(A1:A9)")
        let ambiguous = byId[rows[0].requestId]
        #expect(ambiguous?["reason"]?.contains("not guessed") == true)
        #expect(ambiguous?["candidates"]?.contains(";") == true)
        #expect(ambiguous?["child_age"] == "8")
        // The CSV says the same, with the same protection.
        let csvRows = object["csv"] as? [[String]] ?? []
        #expect(csvRows.count == 4)
        #expect(csvRows.first == header)
        #expect(csvRows.contains { $0.contains("'=HYPERLINK(\"http://evil.example\",\"x\")") && $0.contains("'+Jones") })
        #expect(!csvRows.joined().joined().contains(",="))
    }

    @Test("a returned sheet written by openpyxl is imported: verified rows become notice requests, bad rows are answered and kept")
    func returnedRoundTrip() async throws {
        let store = try storeWithRequests()
        let (rows, table) = try export(store, lpa: "Reading")
        let directory = TestPaths.temporaryDirectory("return")
        let exported = directory + "/reading.xlsx", returned = directory + "/returned.xlsx"
        try SheetWriter.xlsx(sheetName: "Requests", header: CSCRequests.header, rows: table).write(to: URL(fileURLWithPath: exported))
        // CSC fills in: row 2 a URN, row 3 a misspelt name with a town, row 4 a school that does not exist.
        let script = """
            import sys, openpyxl
            wb = openpyxl.load_workbook(sys.argv[1])
            ws = wb.worksheets[0]
            head = [c.value for c in ws[1]]
            urn, name, note = head.index('school_urn') + 1, head.index('school_name') + 1, head.index('csc_note') + 1
            ws.cell(row=2, column=urn, value='109779')
            ws.cell(row=3, column=name, value='Cavresham Prim, Reading')
            ws.cell(row=4, column=name, value='Hogwarts School of Witchcraft')
            ws.cell(row=4, column=note, value='=1+1')
            wb.save(sys.argv[2])
            """
        let written = try await python(script, [exported, returned])
        #expect(written.status == 0, "\(written.error)")
        let data = try Data(contentsOf: URL(fileURLWithPath: returned))
        let answer = try await store.pool.write { db in
            try CSCRequests.importReturned(data, name: "returned.xlsx", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now)
        }
        #expect(answer.answers.map(\.outcome) == ["notice", "notice", "rejected"])
        #expect(answer.answers[0].urn == "109779" && answer.answers[1].urn == "109778")
        #expect(answer.answers[2].reasons.joined().contains("formula")) // openpyxl wrote a formula: refused
        let published = try await store.pool.read { try OutboxMessage.filter(Column("topic") == Topics.noticeRequests.name).fetchAll($0) }
        #expect(published.count == 2)
        let requests = try published.map { try WireFormat.decode(NoticeRequested.self, from: Array($0.value)).payload }
        #expect(Set(requests.map(\.school.urn)) == ["109779", "109778"])
        #expect(Set(requests.map(\.noticeId)) == Set([rows[0].requestId, rows[1].requestId]))
        #expect(requests.allSatisfy { $0.resolution.contains { $0.contains("returned by Children's Social Care") } })
        let statuses = try await store.pool.read { try SchoolRequestRow.order(Column("occurrenceNumber")).fetchAll($0).map(\.status) }
        #expect(statuses == ["resolved", "resolved", "open", "open"])
        let links = try await store.pool.read { try ChildSchoolRow.fetchAll($0).map(\.urn) }
        #expect(Set(links) == ["109779", "109778"])
        var letters = try await store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.count == 1 && letters[0].errorClass == "requests.row" && letters[0].originalOffset == 4)

        // The same file again: resolved rows are unchanged, nothing is published twice.
        let again = try await store.pool.write { db in
            try CSCRequests.importReturned(data, name: "returned.xlsx", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now)
        }
        #expect(again.answers.map(\.outcome) == ["unchanged", "unchanged", "rejected"])
        #expect(try await store.pool.read { try OutboxMessage.filter(Column("topic") == Topics.noticeRequests.name).fetchCount($0) } == 2)
        letters = try await store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.count == 1)
    }

    @Test("bad returned files: unreadable files are refused whole; unusable rows are answered one by one")
    func badReturnedFiles() throws {
        let store = try storeWithRequests()
        let (rows, table) = try export(store, lpa: "Reading")
        func importing(_ data: Data) throws -> CSCImportAnswer {
            try store.pool.write { db in
                try CSCRequests.importReturned(data, name: "bad", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now)
            }
        }
        // Not a spreadsheet, a truncated XLSX, a sheet without the request_id column.
        #expect(throws: SheetError.self) { try importing(Data([0x50, 0x4B, 0x03, 0x04, 0x00, 0x01])) }
        let xlsx = try SheetWriter.xlsx(sheetName: "R", header: CSCRequests.header, rows: table)
        #expect(throws: SheetError.self) { try importing(xlsx.prefix(xlsx.count / 2)) }
        #expect(throws: SheetError.self) { try importing(Data("urn,name\n109779,Coley\n".utf8)) }
        #expect(throws: SheetError.self) { try importing(Data("request_id,csc_note\nx,y\n".utf8)) }
        // Row by row: unknown id, empty id, no school given (stays open), an age mismatch, a closed school.
        let csv = """
            request_id,school_urn,school_name
            n-doesnotexist,109779,
            ,109779,
            \(rows[0].requestId),,
            \(rows[1].requestId),,Holly Spring Junior School
            \(rows[2].requestId),110111,
            """
        let answer = try importing(Data(csv.utf8))
        #expect(answer.answers.map(\.outcome) == ["rejected", "rejected", "open", "rejected", "notice"])
        #expect(answer.answers[0].reasons.first?.contains("not held here") == true)
        #expect(answer.answers[3].reasons.joined().contains("closed"))
        #expect(answer.answers[4].urn == "110111") // St Joseph's College, Reading, 3-18, for a 10-year-old
        let letters = try store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.map(\.originalOffset) == [2, 3, 5])
    }

    @Test(
        "a scaled group: each instance applies only the rows it holds (the others answered not-held, nothing written); the rows no instance holds are rejected and dead-lettered once"
    )
    func scaledImport() throws {
        // Instance 1 holds the fixture's requests; instance 2 one more child's.
        let first = try storeWithRequests()
        let second = try Fixtures.store()
        try second.pool.write { db in
            let outcome = try flow.handleChild(
                Fixtures.message(occurrence: "43260000009", lpa: "Reading", child: Fixtures.child(id: "c-9", age: 10, school: nil)),
                messageId: "m-9", db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
            #expect(outcome == .request)
        }
        let (rows, _) = try export(first, lpa: "Reading")
        let theirs = try second.pool.read { try CSCRequests.open($0, lpa: "all") }
        #expect(theirs.count == 1)
        let csv = Data(
            """
            request_id,school_urn,school_name
            \(rows[2].requestId),110111,
            \(theirs[0].requestId),110111,
            n-doesnotexist,110111,
            ,110111,
            """.utf8)
        func importing(_ store: ServiceStore, _ scope: CSCRequests.ImportScope) throws -> CSCImportAnswer {
            try store.pool.write { db in
                try CSCRequests.importReturned(
                    csv, name: "returned.csv", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now, scope: scope)
            }
        }
        func counts(_ store: ServiceStore) throws -> (letters: Int, requests: Int) {
            try store.pool.read {
                (try DeadLetter.fetchCount($0), try OutboxMessage.filter(Column("topic") == Topics.noticeRequests.name).fetchCount($0))
            }
        }
        let one = try importing(first, .held)
        let two = try importing(second, .held)
        #expect(one.answers.map(\.outcome) == ["notice", "not-held", "not-held", "not-held"])
        #expect(two.answers.map(\.outcome) == ["not-held", "notice", "not-held", "not-held"])
        #expect(one.answers.map(\.row) == [2, 3, 4, 5])
        // Each instance wrote only its own row's notice request and no dead letter.
        #expect(try counts(first) == (0, 1))
        #expect(try counts(second) == (0, 1))
        // The rows nobody holds, given to one instance: rejected with a reason, kept as dead letters there.
        let rest = try importing(first, .unheld([4, 5]))
        #expect(rest.answers.map(\.row) == [4, 5])
        #expect(rest.answers.map(\.outcome) == ["rejected", "rejected"])
        #expect(rest.answers[0].reasons.first?.contains("held by no school resolution instance") == true)
        #expect(rest.answers[1].reasons == ["request_id is empty"])
        #expect(try counts(first) == (2, 1))
        #expect(try counts(second) == (0, 1))
        // Imported again: the applied rows answer unchanged, nothing written twice.
        #expect(try importing(first, .held).answers.map(\.outcome) == ["unchanged", "not-held", "not-held", "not-held"])
        #expect(try counts(first) == (2, 1))
    }

    @Test("an import for one force's console rejects the rows of another force's requests (dead letters) and applies its own")
    func importForOneForce() throws {
        let store = try storeWithRequests()
        let (rows, _) = try export(store, lpa: "Reading")
        let csv = Data(
            """
            request_id,school_urn,school_name
            \(rows[2].requestId),110111,
            """.utf8)
        func importing(_ forces: Set<String>) throws -> CSCImportAnswer {
            try store.pool.write { db in
                try CSCRequests.importReturned(
                    csv, name: "returned.csv", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now, forces: forces)
            }
        }
        let refused = try importing(["05"])
        #expect(refused.answers.map(\.outcome) == ["rejected"])
        #expect(refused.answers[0].reasons.first?.contains("is force 43's; this import is for force 05 only") == true)
        #expect(try store.pool.read { try DeadLetter.fetchCount($0) } == 1)
        #expect(try store.pool.read { try SchoolRequestRow.fetchOne($0, key: rows[2].requestId)?.status } == "open")
        #expect(try importing(["43"]).answers.map(\.outcome) == ["notice"])
    }

    @Test("cells are neutralised and restored symmetrically")
    func neutralise() {
        for text in ["=1+1", "+44 118", "-2", "@SUM(A1)", "\tx", "\rx"] {
            #expect(SheetWriter.neutralise(text) == "'" + text)
            #expect(SheetWriter.restore(SheetWriter.neutralise(text)) == text)
        }
        #expect(SheetWriter.neutralise("St Mary's") == "St Mary's")
        #expect(SheetWriter.restore("'quoted") == "'quoted")
        #expect(SheetWriter.column(0) == "A" && SheetWriter.column(25) == "Z" && SheetWriter.column(26) == "AA")
    }

    @Test(
        "CSC is the authority on school: it corrects a mistyped date of birth; an age conflict it leaves is held for a MASH officer, never dead-lettered"
    )
    func cscCorrectsAndMASHDecides() throws {
        let store = try Fixtures.store()
        // Two pupils of Blessed Hugh Faringdon (110107, 11-18) whose dates of birth the officer
        // typed as 2021 (for 2012): aged 5 on paper, so the recorded school is not verified.
        let typed = [("43260000011", "c-11"), ("43260000012", "c-12")]
        try store.pool.write { db in
            for (i, (occurrence, id)) in typed.enumerated() {
                let child = Fixtures.child(
                    id: id, age: nil, dob: "2021-04-09", school: RecordedSchool(name: "Blessed Hugh Faringdon Catholic School"))
                let outcome = try flow.handleChild(
                    Fixtures.message(occurrence: occurrence, child: child), messageId: "m-\(i)",
                    db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
                #expect(outcome == .request)
            }
        }
        let (rows, table) = try export(store, lpa: "Reading")
        let header = CSCRequests.header
        #expect(header.suffix(3) == ["corrected_given_name", "corrected_family_name", "corrected_date_of_birth"])
        // CSC returns the school for both; for the first it corrects the date of birth (UK order).
        var returned = table
        for i in returned.indices { returned[i][header.firstIndex(of: "school_urn")!] = "110107" }
        let first = returned.firstIndex { $0[0] == rows.first { $0.occurrenceNumber == "43260000011" }!.requestId }!
        returned[first][header.firstIndex(of: "corrected_date_of_birth")!] = "09/04/2012"
        let sheet = SheetWriter.csv(header: header, rows: returned)
        let answer = try store.pool.write { db in
            try CSCRequests.importReturned(sheet, name: "returned.csv", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now)
        }
        let byOccurrence = Dictionary(
            uniqueKeysWithValues: answer.answers.map { answer in
                (rows.first { $0.requestId == answer.requestId }!.occurrenceNumber, answer)
            })
        #expect(byOccurrence["43260000011"]?.outcome == "notice")
        #expect(byOccurrence["43260000011"]?.reasons.contains { $0.contains("date of birth 2021-04-09 → 2012-04-09") } == true)
        #expect(byOccurrence["43260000012"]?.outcome == "review", "\(answer.answers)")
        #expect(try store.pool.read { try DeadLetter.fetchCount($0) } == 0, "a CSC answer is never thrown away on a police typo")
        let published = try store.pool.read { try OutboxMessage.filter(Column("topic") == Topics.noticeRequests.name).fetchAll($0) }
        let corrected = try WireFormat.decode(NoticeRequested.self, from: Array(published[0].value)).payload
        #expect(published.count == 1 && corrected.child.dateOfBirth == "2012-04-09" && corrected.school.urn == "110107")

        // The held answer, as the console and the CLI list it; declined, it goes back to CSC;
        // returned again and accepted, the notice goes out, saying the age was not checked and who decided.
        let heldId = rows.first { $0.occurrenceNumber == "43260000012" }!.requestId
        let held = try store.pool.read { try CSCRequests.held($0).map(HeldAnswer.init) }
        #expect(held.map(\.requestId) == [heldId] && held[0].school?.urn == "110107" && held[0].reason.contains("outside the age range"))
        let declined = try store.pool.write { db in
            try CSCRequests.decide(
                heldId, verdict: .decline, reviewer: "officer-7", note: "ask CSC to check", flow: flow, db: db,
                outbox: Outbox(db: db, producer: "test"), now: now)
        }
        #expect(declined?.outcome == "open")
        let reopened = try store.pool.read { try CSCRequests.open($0, lpa: "all").map(\.requestId) }
        #expect(reopened == [heldId], "\(reopened) \(heldId)")
        _ = try store.pool.write { db in
            try CSCRequests.importReturned(sheet, name: "returned-again.csv", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now)
        }
        let accepted = try store.pool.write { db in
            try CSCRequests.decide(
                heldId, verdict: .accept, reviewer: "officer-7", note: nil, flow: flow, db: db,
                outbox: Outbox(db: db, producer: "test"), now: now)
        }
        #expect(accepted?.outcome == "notice" && accepted?.urn == "110107")
        #expect(accepted?.reasons.contains { $0.contains("age range not checked") } == true)
        #expect(accepted?.reasons.contains { $0.contains("accepted by MASH officer officer-7") } == true)
        let status = try store.pool.read { try SchoolRequestRow.fetchOne($0, key: heldId)?.status }
        #expect(status == "resolved")
        #expect(try store.pool.read { try OutboxMessage.filter(Column("topic") == Topics.noticeRequests.name).fetchCount($0) } == 2)
        // A decision on a request that is not held is refused.
        #expect(
            try store.pool.write { db in
                try CSCRequests.decide(
                    heldId, verdict: .accept, reviewer: "x", note: nil, flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now)
            } == nil)
    }

}
