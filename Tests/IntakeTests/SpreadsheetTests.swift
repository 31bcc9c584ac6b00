import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Spreadsheets
import Testing

@testable import IntakeService

let header =
    "occurrence_number,force_code,occurred_at,reported_at,incident_address,incident_town,incident_postcode,lpa,risk_level,crime,victim_given_name,victim_family_name,child_given_name,child_family_name,child_dob,child_age,child_presence,child_school,child_school_urn"

func csvRow(
    _ occurrence: String, child: (String, String, String)? = nil, age: String = "", school: String = "", occurred: String = "2026-11-22 21:15"
) -> String {
    let (given, family, dob) = child ?? ("", "", "")
    return
        "\(occurrence),43,\(occurred),2026-11-22 22:40,\"Flat 2, 14 Oxford Road\",Reading,RG1 7LL,Reading,medium,Y,Sarah,Hughes,\(given),\(family),\(dob),\(age),present,\"\(school)\","
}

/// Writes an XLSX with openpyxl (an independent writer) from a JSON description.
func makeXLSX(_ path: String, rows: [[Any]], formulaCell: (row: Int, column: Int, formula: String)? = nil, dateColumns: [Int] = []) async throws {
    let spec = try JSONSerialization.data(withJSONObject: [
        "path": path, "rows": rows, "dateColumns": dateColumns,
        "formula": formulaCell.map { [$0.row, $0.column, $0.formula] as [Any] } ?? NSNull(),
    ])
    let specPath = path + ".json"
    try spec.write(to: URL(fileURLWithPath: specPath))
    let script = """
        import json, sys, datetime, openpyxl
        spec = json.load(open(sys.argv[1]))
        wb = openpyxl.Workbook()
        ws = wb.active
        for r, row in enumerate(spec["rows"], start=1):
            for c, value in enumerate(row, start=1):
                if r > 1 and c in spec["dateColumns"] and value:
                    value = datetime.datetime.fromisoformat(value)
                ws.cell(row=r, column=c, value=value)
        if spec["formula"]:
            r, c, f = spec["formula"]
            ws.cell(row=r, column=c, value=f)
        wb.save(spec["path"])
        """
    let run = try await offPool { try runPython(script, [specPath]) }
    guard run.status == 0 else { throw SheetError("openpyxl failed (pip install openpyxl): \(run.output)") }
}

@Suite("Spreadsheet reading", .tags(.peers))
struct SpreadsheetReaderTests {
    @Test(
        "the free-text columns: brief circumstances and other safeguarding information (quoted, with commas and a line break) reach the incident; rows of one occurrence must agree on them"
    )
    func freeTextColumns() throws {
        let free = ",circumstances,safeguarding_information"
        let text =
            header + free + "\r\n"
            + csvRow("43261234567", child: ("Amelia", "Hughes", "2016-05-04"))
            + ",\"Argument in the kitchen, children upstairs.\nNo injuries.\",Tired in school\r\n"
            + csvRow("43261234567", child: ("Oliver", "Hughes", "2018-01-02"))
            + ",\"Argument in the kitchen, children upstairs.\nNo injuries.\",Tired in school\r\n"
            + csvRow("43261234568", child: ("Noah", "Patel", "2015-03-03")) + ",One version,\r\n"
            + csvRow("43261234568", child: ("Ava", "Patel", "2017-03-03")) + ",Another version,\r\n"
        let (groups, problems) = IncidentSheet.incidents(from: try SpreadsheetReader.read(Data(text.utf8)))
        let first = try #require(groups.first { $0.incident.occurrenceNumber == "43261234567" })
        #expect(first.incident.children.count == 2)
        #expect(first.incident.circumstances == "Argument in the kitchen, children upstairs.\nNo injuries.")
        #expect(first.incident.safeguardingInformation == "Tired in school")
        #expect(IncidentSheet.unknownColumns(try SpreadsheetReader.read(Data(text.utf8))).isEmpty)
        // The second occurrence's rows disagree on an incident column: not merged silently.
        #expect(!groups.contains { $0.incident.occurrenceNumber == "43261234568" && $0.incident.children.count == 2 })
        #expect(problems.contains { $0.errors.contains { $0.field == "circumstances" || $0.message.contains("circumstances") } }, "\(problems)")
    }

    @Test("CSV: quotes, doubled quotes, commas and new lines inside quotes, CRLF, BOM")
    func csvQuoting() throws {
        let text = "\u{FEFF}A,B,C\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n1,2,3\r\n\r\n"
        let sheet = try SpreadsheetReader.read(Data(text.utf8))
        #expect(sheet.headers == ["a", "b", "c"])
        #expect(sheet.rows.count == 2)
        #expect(sheet.rows[0].cells == ["a": "x, y", "b": "say \"hi\"", "c": "two\nlines"])
        #expect(sheet.rows[1].number == 4) // line numbers count the quoted new line
        #expect(sheet.rows.allSatisfy { $0.problem == nil })
    }

    @Test("CSV in Windows-1252 (Excel's default) is read, with a notice")
    func windows1252() throws {
        var bytes = Array("first,last\r\nZo".utf8)
        bytes += [0xEB] // ë in Windows-1252, invalid as UTF-8
        bytes += Array(",O'Brien\r\n".utf8)
        let sheet = try SpreadsheetReader.read(Data(bytes))
        #expect(sheet.rows.first?.cells["first"] == "Zoë")
        #expect(sheet.notices.first?.contains("Windows-1252") == true)
    }

    @Test(
        "bad files and bad rows get clear errors",
        arguments: [
            ("", "empty"),
            ("a,b\n\"unclosed,1\n", "never closed"),
            ("a,a\n1,2\n", "appears twice"),
        ])
    func badFiles(text: String, message: String) {
        let error = #expect(throws: SheetError.self) { try SpreadsheetReader.read(Data(text.utf8)) }
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }

    @Test("rows with NULs, stray quotes or values beyond the header are refused one by one")
    func badRows() throws {
        let sheet = try SpreadsheetReader.read(Data("a,b\nok,1\nnu\u{0}l,2\nst\"ray,3\nx,y,z\nfine,4\n".utf8))
        #expect(sheet.rows.map { $0.problem == nil } == [true, false, false, false, true])
        #expect(sheet.rows[1].problem?.contains("NUL") == true)
        #expect(sheet.rows[2].problem?.contains("quote") == true)
        #expect(sheet.rows[3].problem?.contains("no header") == true)
    }

    @Test("XLSX from openpyxl: shared strings, numbers, real dates, and formula cells refused")
    func xlsx() async throws {
        let path = TestPaths.temporaryDirectory("xlsx") + "/desk.xlsx"
        try await makeXLSX(
            path,
            rows: [
                ["Occurrence Number", "Occurred At", "Child DOB", "Count"],
                ["43260001234", "2026-11-22T21:15:00", "2016-05-04T00:00:00", 3],
                ["43260001235", "2026-07-01T08:05:30", "", 4],
            ], formulaCell: (3, 4, "=SUM(1,2)"), dateColumns: [2, 3])
        let sheet = try SpreadsheetReader.read(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(sheet.headers == ["occurrence_number", "occurred_at", "child_dob", "count"])
        #expect(
            sheet.rows[0].cells == [
                "occurrence_number": "43260001234", "occurred_at": "2026-11-22T21:15:00", "child_dob": "2016-05-04", "count": "3",
            ])
        #expect(sheet.rows[0].problem == nil)
        #expect(sheet.rows[1].problem?.contains("formula") == true)
        #expect(sheet.rows[1].problem?.contains("D3") == true)
    }

    @Test("an XLSX with more rows than the limit is refused; at the limit it is read")
    func xlsxRowLimit() async throws {
        let path = TestPaths.temporaryDirectory("rows") + "/rows.xlsx"
        try await makeXLSX(path, rows: [["a", "b"], ["1", "2"], ["3", "4"], ["5", "6"]])
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(try SpreadsheetReader.read(data, maximumRows: 3).rows.count == 3)
        #expect(throws: SheetError("the file has more than 2 rows; one upload takes at most 2: split it into smaller files")) {
            try SpreadsheetReader.read(data, maximumRows: 2)
        }
    }

    @Test("a truncated XLSX is refused with a clear error")
    func truncatedXLSX() async throws {
        let path = TestPaths.temporaryDirectory("xlsx") + "/cut.xlsx"
        try await makeXLSX(path, rows: [["occurrence_number"], ["43260001234"]])
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        for length in [data.count / 2, data.count - 30, 10] {
            let error = #expect(throws: SheetError.self) { try SpreadsheetReader.read(data.prefix(length)) }
            #expect(error?.description.contains("XLSX") == true || error?.description.contains("ZIP") == true, "\(String(describing: error))")
        }
    }
}

@Suite("Spreadsheet upload to intake", .serialized, .tags(.kafka))
struct SpreadsheetUploadTests {
    func upload(_ intake: RunningIntake, name: String, data: Data) async throws -> (status: Int, body: [String: Any]) {
        try await post("http://127.0.0.1:\(intake.port)/v1/spreadsheets?name=\(name)", token: "t0ken", body: data)
    }

    @Test("CSV rows become incidents; rows of one occurrence merge; bad rows are rejected by number and kept")
    func csvUpload() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "t0ken")
        let csv = [
            header,
            csvRow("43260001234", child: ("Amelia", "Hughes", "2016-05-04"), school: "St Marys CE Prim, Reading"),
            csvRow("43260001234", child: ("Oliver", "Hughes", ""), age: "7"),
            csvRow("43260001234", child: ("Grace", "Hughes", "2001-01-01")), // 25 at the incident
            csvRow("43260005678"), // no child listed
            csvRow("43260009999", occurred: "yesterday evening"),
            csvRow("43260005678", occurred: "2026-11-22 21:16"), // disagrees with its first row
        ].joined(separator: "\n")
        let answer = try await upload(intake, name: "desk-2026-11-23.csv", data: Data(csv.utf8))
        #expect(answer.status == 202)
        let rejected = answer.body["rejectedRows"] as? [[String: Any]] ?? []
        #expect(rejected.compactMap { $0["row"] as? Int } == [4, 6, 7])
        let accepted = answer.body["accepted"] as? [[String: Any]] ?? []
        #expect(accepted.compactMap { $0["occurrenceNumber"] as? String } == ["43260001234", "43260005678"])
        let events = try await recorded(kafka, count: 2)
        let main = try #require(events.first { $0.incident.occurrenceNumber == "43260001234" })
        #expect(main.incident.children.map(\.givenName) == ["Amelia", "Oliver"])
        #expect(main.incident.children[0].school?.name == "St Marys CE Prim, Reading")
        #expect(main.incident.incidentAddress.lines == ["Flat 2", "14 Oxford Road"])
        #expect(main.source == "intake-spreadsheet:desk-2026-11-23.csv")
        // One dead letter for the upload: the file as sent, and what was wrong with which rows.
        let letters = try await intake.host.store.pool.read { try DeadLetter.fetchAll($0) }
        try #require(letters.count == 1)
        #expect(letters[0].errorClass == "spreadsheet.rows")
        #expect(letters[0].originalValue == Data(csv.utf8))
        let message = letters[0].errorMessage
        #expect(message.contains("3 of 6 rows rejected") && message.contains("row 4: ") && message.contains("under 18"))
        #expect(message.contains("row 6: ") && message.contains("occurred_at") && message.contains("row 7: "))
        #expect(answer.body["rejectedRowCount"] as? Int == 3)
        try await intake.stop()
    }

    @Test(
        "a big upload is bounded: over 20,000 rows it is refused whole as soon as row 20,001 is read; 1,500 bad rows make one dead letter and an answer listing 1,000 rows with counts by field"
    )
    func bigUploads() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "t0ken")
        let bad = csvRow("43260009999", occurred: "yesterday evening")
        let tooMany = ([header] + Array(repeating: bad, count: IncidentAPI.maximumUploadRows + 1)).joined(separator: "\n")
        let refused = try await upload(intake, name: "huge.csv", data: Data(tooMany.utf8))
        #expect(refused.status == 422)
        #expect((refused.body["error"] as? String)?.contains("more than 20000 rows") == true)
        let atLimit = try SpreadsheetReader.read(Data(([header] + Array(repeating: bad, count: 3)).joined(separator: "\n").utf8), maximumRows: 3)
        #expect(atLimit.rows.count == 3)

        let many = ([header] + (0..<1_500).map { csvRow(String(43_260_010_000 + $0), occurred: "yesterday evening") }).joined(separator: "\n")
        let answer = try await upload(intake, name: "many.csv", data: Data(many.utf8))
        #expect(answer.status == 422)
        #expect((answer.body["rejectedRows"] as? [Any])?.count == IncidentAPI.maximumRejectedRowsAnswered)
        #expect(answer.body["rejectedRowCount"] as? Int == 1_500)
        let byField = answer.body["rejectedByField"] as? [String: Int] ?? [:]
        #expect(byField.values.contains(1_500), "\(byField)")
        let letters = try await intake.host.store.pool.read { try DeadLetter.order(Column("id")).fetchAll($0) }
        #expect(letters.map(\.errorClass) == ["spreadsheet.unreadable", "spreadsheet.rows"])
        #expect(letters.last?.errorMessage.contains("1500 of 1500 rows rejected") == true)
        #expect(letters.last?.errorMessage.contains("and 1480 more rows") == true)
        try await intake.stop()
    }

    @Test("an unreadable file is refused whole and kept as a dead letter")
    func unreadable() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "t0ken")
        let missingColumns = try await upload(intake, name: "wrong.csv", data: Data("name,age\nx,1\n".utf8))
        #expect(missingColumns.status == 422)
        #expect((missingColumns.body["error"] as? String)?.contains("missing column(s): occurrence_number") == true)
        let zip = try await upload(intake, name: "cut.xlsx", data: Data([0x50, 0x4B, 0x03, 0x04, 1, 2, 3]))
        #expect(zip.status == 422)
        let letters = try await intake.host.store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.count == 2 && letters.allSatisfy { $0.errorClass == "spreadsheet.unreadable" })
        #expect(letters.contains { $0.originalValue == Data([0x50, 0x4B, 0x03, 0x04, 1, 2, 3]) })
        try await intake.stop()
    }

    @Test("a 10,000-row XLSX sent with `encompass ingest` goes through whole")
    func tenThousandRows() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "t0ken")
        let path = TestPaths.temporaryDirectory("big") + "/desk-10000.xlsx"
        let columns = header.split(separator: ",").map(String.init)
        var rows: [[Any]] = [columns]
        for i in 0..<10_000 {
            let occurrence = String(format: "4326%07d", i / 2)
            rows.append([
                occurrence, "43", "2026-11-22T21:15:00", "2026-11-22T22:40:00", "\(i / 2) High Street", "Reading", "RG1 7LL",
                "Reading", "standard", "N", "Sam", "Taylor\(i / 2)", "Child\(i)", "Taylor\(i / 2)", "2015-03-0\(1 + i % 9)",
                "", "present", "Reading Primary", "",
            ])
        }
        try await makeXLSX(path, rows: rows, dateColumns: [3, 4])
        let started = ContinuousClock.now
        let (status, output) = try await runExecutable("encompass", ["ingest", path, "--url", "http://127.0.0.1:\(intake.port)", "--token", "t0ken"])
        print("ingest of 10,000 rows took \(ContinuousClock.now - started)")
        #expect(status == 0, "\(output)")
        #expect(output.contains("10000 rows, 5000 incidents accepted, 0 rows rejected"), "\(output)")
        try await eventually("5000 occurrences applied", timeout: .seconds(120)) {
            try await intake.host.store.pool.read { try OccurrenceRow.fetchCount($0) } == 5_000
        }
        let children = try await intake.host.store.pool.read { db in
            try OccurrenceRow.fetchAll(db).map { try WireFormat.decoder().decode(Incident.self, from: $0.incident).children.count }
        }
        #expect(children.allSatisfy { $0 == 2 })
        try await intake.stop()
    }
}
