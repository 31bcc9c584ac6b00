import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import DispatchService
@testable import EncompassModels
@testable import IntakeService
@testable import SchedulingService
@testable import SchoolResolutionService
@testable import Spreadsheets

/// The fuzz pass: every input parser gets random and mutated inputs and must either
/// read them or throw an error that says what is wrong — never crash, hang or return garbage.
///
/// Reproducible: the seed is printed (`fuzz <parser>: … seed N`); `ENCOMPASS_FUZZ_SEED=N` replays
/// it, `ENCOMPASS_FUZZ_ITERATIONS=N` sets the inputs per parser, `ENCOMPASS_FUZZ_SAVE_DIR=DIR`
/// keeps each parser's last input on disk (the input of a crash).
@Suite("Fuzz pass over every input parser", .tags(.peers, .slow))
struct FuzzTests {
    init() { print("fuzz seed \(FuzzConfig.seed) (replay with ENCOMPASS_FUZZ_SEED=\(FuzzConfig.seed))") }

    /// Picks a seed input and damages it: byte mutations, JSON-aware mutations, or random input.
    static func generator(_ seeds: [Data], json: Bool = false, dictionary: [[UInt8]] = []) -> (inout FuzzRandom, Int) -> Data {
        { random, iteration in
            let seed = seeds[random.below(seeds.count)]
            if iteration == 0 { return seed }
            let choice = random.below(10)
            if choice == 0 { return Mutator.random(&random) }
            if json, choice <= 3 { return JSONMutator.mutate(seed, &random) }
            if json, choice == 4 { return Mutator.mutate(JSONMutator.mutate(seed, &random), &random, dictionary: dictionary) }
            return Mutator.mutate(seed, &random, dictionary: dictionary)
        }
    }

    static let jsonWords: [[UInt8]] = [
        "\"occurrenceNumber\"", "\"children\"", "\"dateOfBirth\"", "\"payload\"", "\"schema\"", "\"version\"",
        "\"id\"", ":null", ":[]", ":{}", ":\"\"", ",\"x\":1",
    ].map { Array($0.utf8) }
    static let csvWords: [[UInt8]] = ["\",\"", "\"\"\"", ",,,,", "\r\n\"", "occurrence_number", "child_dob", "URN", "Name", "urn"].map {
        Array($0.utf8)
    }
    static let xmlWords: [[UInt8]] = [
        "<c r=\"XFD1048577\" t=\"s\"><v>99999</v></c>", "<c r=\"A1\" t=\"n\" s=\"1\"><v>1e308</v></c>",
        "<c r=\"B2\" s=\"1\"><v>NaN</v></c>", "<row r=\"9223372036854775807\">", "<row>", "</row>",
        "<c r=\"AAAAAAAAAAAAAAAAAAAAAAAAAAAA1\"><v>1</v></c>", "<f>1+1</f>", "<si><t>x</t></si>", "&lt;", "&#xFFFF;",
        "<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>",
        "&c;", "<!ENTITY e SYSTEM \"file:///etc/passwd\">", "&e;",
    ].map { Array($0.utf8) }

    // MARK: intake

    @Test("incident JSON: body splitting, decoding, LPA preparation and validation")
    func incidentJSON() throws {
        let validator = IncidentValidator(forces: try ForceRegistry(ForceRegistry.builtIn))
        let report = fuzz(
            "incident-json", iterations: FuzzConfig.iterations(default: 5_000),
            generate: Self.generator(Samples.incidentBodies, json: true, dictionary: Self.jsonWords)
        ) { data in
            let items: [Data]
            switch IncidentAPI.split(Array(data)) {
            case .failure(let problem): return .rejected(problem.description)
            case .success(let list): items = list
            }
            var accepted = 0
            var firstProblem: String?
            for item in items {
                do {
                    let incident = validator.forces.prepare(try WireFormat.decoder().decode(Incident.self, from: item))
                    let problems = validator.validate(incident, now: Samples.now)
                    if problems.isEmpty {
                        // Accepted: it must survive the trip to the topic.
                        let again = try WireFormat.decode(
                            Incident.self, from: WireFormat.encode(Envelope(id: "x", key: "k", producer: "fuzz", payload: incident)))
                        guard !again.payload.occurrenceNumber.isEmpty else { return .rejected("accepted an incident without an occurrence number") }
                        accepted += 1
                    } else if let unclear = problems.first(where: { unclearError($0.description) != nil || $0.message.isEmpty }) {
                        return .rejected(unclear.message) // flagged: says nothing
                    } else if firstProblem == nil {
                        firstProblem = problems.map(\.description).joined(separator: "; ")
                    }
                } catch {
                    let text = WireFormat.describe(error)
                    if unclearError(text) != nil { return .rejected(text) }
                    if firstProblem == nil { firstProblem = text }
                }
            }
            return accepted > 0 || firstProblem == nil ? .parsed : .rejected(firstProblem!)
        }
        expectClean(report)
    }

    @Test("history import: JSON Lines and CSV chunks")
    func historyImport() throws {
        let report = fuzz(
            "history-import", iterations: FuzzConfig.iterations(default: 3_000),
            generate: Self.generator(Samples.historyFiles, dictionary: Self.jsonWords + Self.csvWords)
        ) { data in
            let file = try HistoryFile.parse(Array(data), first: 1 + Int(data.count % 7))
            for problem in file.problems {
                if let bad = problem.errors.first(where: { unclearError($0.description) != nil }) { return .rejected(bad.description) }
                if problem.errors.isEmpty { return .rejected("a record was refused without a reason") }
            }
            for (place, _) in file.incidents where place < 1 { return .rejected("record placed at line \(place)") }
            return .parsed
        }
        expectClean(report)
        // `first` is added to every place: an absurd value is refused, not overflowed.
        #expect(throws: SheetError.self) { try HistoryFile.parse(Array(Samples.historyFiles[0]), first: Int.max) }
        #expect(throws: SheetError.self) { try HistoryFile.parse(Array(Samples.historyFiles[1]), first: -5) }
    }

    @Test("CSV reader: encodings, quoting, ragged rows; then the incident sheet's columns")
    func csvReader() throws {
        let report = fuzz(
            "csv", iterations: FuzzConfig.iterations(default: 5_000),
            generate: Self.generator(Samples.csvFiles, dictionary: Self.csvWords)
        ) { data in
            let sheet = try SpreadsheetReader.read(data)
            guard !sheet.headers.isEmpty, Set(sheet.headers).count == sheet.headers.count else {
                return .rejected("read a sheet with empty or repeated headers: \(sheet.headers)")
            }
            var last = 0
            for row in sheet.rows {
                guard row.number > last else { return .rejected("row numbers out of order: \(row.number) after \(last)") }
                last = row.number
            }
            try IncidentSheet.checkColumns(sheet)
            let (_, problems) = IncidentSheet.incidents(from: sheet)
            if let bad = problems.flatMap(\.errors).first(where: { unclearError($0.description) != nil }) { return .rejected(bad.description) }
            return .parsed
        }
        expectClean(report)
    }

    @Test("XLSX reader: damaged ZIPs and damaged XML parts of real workbooks")
    func xlsxReader() throws {
        let books = Samples.workbooks
        try #require(!books.isEmpty, "no seed workbook (openpyxl and SheetWriter both failed)")
        // The seeds themselves must read.
        for book in books { _ = try SpreadsheetReader.read(book) }
        let parts = books.map(Samples.entries)
        let report = fuzz(
            "xlsx", iterations: FuzzConfig.iterations(default: 1_500),
            generate: { random, iteration in
                let which = random.below(books.count)
                if iteration == 0 { return books[which] }
                if random.chance(25) { return Mutator.mutate(books[which], &random) } // the ZIP container itself
                var entries = parts[which]
                guard !entries.isEmpty else { return books[which] }
                // Prefer the parts the reader reads.
                let wanted = entries.indices.filter {
                    ["xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml"].contains(
                        entries[$0].path)
                }
                let index = wanted.isEmpty || random.chance(10) ? random.below(entries.count) : random.pick(wanted)
                switch random.below(10) {
                case 0: entries.remove(at: index)
                case 1:
                    entries[index].data = Data("<?xml version=\"1.0\"?>".utf8) + Data(String(repeating: "<a>", count: 1 + random.below(200_000)).utf8)
                case 2: // entity expansion ("billion laughs") and external entities
                    entries[index].data = Data(
                        """
                        <?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY x SYSTEM "file:///etc/passwd">]>
                        <sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&f;</t></si><si><t>&x;</t></si></sst>
                        """.utf8)
                default: entries[index].data = Mutator.mutate(entries[index].data, &random, dictionary: Self.xmlWords)
                }
                return Samples.zip(entries)
            }
        ) { data in
            let sheet = try SpreadsheetReader.read(data)
            guard !sheet.headers.isEmpty else { return .rejected("read a sheet without headers") }
            if sheet.rows.contains(where: { $0.cells.values.contains { $0.contains("root:") } }) {
                return .rejected("an external entity was resolved into a cell")
            }
            return .parsed
        }
        expectClean(report)
    }

    // MARK: messages

    @Test("message envelopes of every schema: header, version, payload shape and validation")
    func envelopes() throws {
        let report = fuzz(
            "envelope", iterations: FuzzConfig.iterations(default: 6_000),
            generate: Self.generator(Samples.envelopes, json: true, dictionary: Self.jsonWords)
        ) { data in
            let schema = try PayloadSchemas.validate(Array(data))
            guard PayloadSchemas.names.contains(schema) else { return .rejected("accepted an unknown schema \(schema)") }
            return .parsed
        }
        expectClean(report)
        // The typed decoders give the same verdicts as the catalogue (a handler uses these).
        var random = FuzzRandom(seed: FuzzConfig.seed)
        for _ in 0..<FuzzConfig.iterations(default: 300) {
            let input = Array(JSONMutator.mutate(Samples.envelopes[6], &random))
            do { _ = try WireFormat.decode(NoticeDue.self, from: input) } catch {
                #expect(unclearError(error.description) == nil, "\(error.description)")
                #expect(!error.errorClass.isEmpty)
            }
        }
    }

    // MARK: school resolution

    @Test("school register import (GIAS and the 2018 list) and the contacts sheet")
    func registerImport() throws {
        let report = fuzz(
            "register", iterations: FuzzConfig.iterations(default: 3_000),
            generate: Self.generator(Samples.registerFiles, dictionary: Self.csvWords)
        ) { data in
            let file = try RegisterImporter.read(data)
            if let bad = file.schools.first(where: { !RegisterImporter.isURN($0.urn) || $0.name.trimmingCharacters(in: .whitespaces).isEmpty }) {
                return .rejected("accepted a school without a valid URN or name: \(bad.urn) \(bad.name)")
            }
            if let bad = file.rejected.first(where: { unclearError($0.reason) != nil }) { return .rejected(bad.reason) }
            return .parsed
        }
        expectClean(report)
        let contacts = fuzz(
            "contacts", iterations: FuzzConfig.iterations(default: 1_500),
            generate: Self.generator(Samples.contactsFiles, dictionary: Self.csvWords)
        ) { data in
            let sheet = try RegisterDesk.contactsSheet(data)
            if let bad = sheet.rejected.first(where: { unclearError($0.reason) != nil }) { return .rejected(bad.reason) }
            return .parsed
        }
        expectClean(contacts)
    }

    @Test("returned CSC request sheet (CSV and XLSX) against a store with open requests")
    func returnedRequestSheet() async throws {
        let store = try ServiceStore(
            path: TestPaths.temporaryDirectory("fuzz-csc") + "/s.sqlite",
            migrations: SchoolStore.migrations(seed: false))
        let protocols = try SchoolsProtocol.loadAll(ForceProtocols.load(directory: ForceProtocols.bundledDirectory))
        let flow = SchoolFlow(protocols: protocols)
        let now = Samples.now
        // Two children whose school is unknown: two open requests to export and fill in.
        try await store.pool.write { db in
            for (i, name) in ["Nowhere Academy", "=HYPERLINK(\"http://evil.example\")"].enumerated() {
                var child = Samples.child
                child.childId = "c-\(i)"
                child.recordedSchool = RecordedSchool(name: name)
                let message = ChildIdentified(incident: Samples.incident("4326000000\(i)"), incidentRevision: 1, child: child, source: .officer)
                _ = try flow.handleChild(
                    message, messageId: "m-\(i)", db: db, outbox: Outbox(db: db, producer: "fuzz"), now: now, logger: TestLog.logger("fuzz"))
            }
        }
        let open = try await store.pool.read { db in try CSCRequests.open(db, lpa: "Reading") }
        try #require(!open.isEmpty, "no open request to export")
        let table = CSCRequests.rows(open)
        let header = CSCRequests.header
        // Filled in: a URN on the first, a name on the second.
        var filled = table
        if let urnColumn = header.firstIndex(of: "school_urn"), let nameColumn = header.firstIndex(of: "school_name") {
            filled[0][urnColumn] = "110001"
            if filled.count > 1 { filled[1][nameColumn] = "Caversham Primary School" }
        }
        let seeds = [
            SheetWriter.csv(header: header, rows: filled), try SheetWriter.xlsx(sheetName: "Requests", header: header, rows: filled),
            SheetWriter.csv(header: header, rows: table),
        ]
        let report = fuzz(
            "csc-returned", iterations: FuzzConfig.iterations(default: 1_200),
            generate: Self.generator(seeds, dictionary: Self.csvWords)
        ) { data in
            // Each input in a transaction that is rolled back: every input meets the same requests.
            var outcome = FuzzOutcome.parsed
            try store.pool.writeWithoutTransaction { db in
                try db.inTransaction {
                    let answer = try CSCRequests.importReturned(
                        data, name: "returned", flow: flow, db: db, outbox: Outbox(db: db, producer: "fuzz"), now: now)
                    if let bad = answer.answers.flatMap(\.reasons).first(where: { unclearError($0) != nil }) { outcome = .rejected(bad) }
                    return .rollback
                }
            }
            return outcome
        }
        expectClean(report)
    }

    // MARK: scheduling, force files

    @Test("bank holidays and term dates files (ENCOMPASS_BANK_HOLIDAYS_FILE, ENCOMPASS_TERM_DATES_DIR)")
    func calendarFiles() throws {
        let holidays = fuzz(
            "bank-holidays", iterations: FuzzConfig.iterations(default: 1_000),
            generate: Self.generator([Samples.bankHolidays], json: true, dictionary: Self.jsonWords)
        ) { data in
            let decoded = try BankHolidays.decode(data, source: "fuzz.json")
            return decoded.days.isEmpty ? .rejected("read a bank holiday file with no days") : .parsed
        }
        expectClean(holidays)
        let terms = fuzz(
            "term-dates", iterations: FuzzConfig.iterations(default: 2_000),
            generate: Self.generator(Samples.termDates, json: true, dictionary: Self.jsonWords)
        ) { data in
            let calendar = try TermCalendar.decode(data, label: "fuzz.json")
            // Asking about a day must not trap, whatever the dates said.
            for day in [
                CalendarDate(year: 2026, month: 11, day: 24), CalendarDate(year: 1, month: 1, day: 1), CalendarDate(year: 9999, month: 12, day: 31),
            ] {
                _ = calendar.kind(of: day)
            }
            return .parsed
        }
        expectClean(terms)
    }

    @Test("force protocols folder (ENCOMPASS_PROTOCOLS_DIR) and forces file (ENCOMPASS_FORCES_FILE)")
    func forceFiles() throws {
        let folder = TestPaths.temporaryDirectory("fuzz-protocols")
        let seeds = Samples.protocols
        try #require(!seeds.isEmpty)
        let protocols = fuzz(
            "force-protocols", iterations: FuzzConfig.iterations(default: 800),
            generate: Self.generator(seeds, json: true, dictionary: Self.jsonWords)
        ) { data in
            try data.write(to: URL(fileURLWithPath: folder + "/force.json"))
            let loaded = try ForceProtocols.load(directory: folder)
            // Each service reads its own section: each must read it or say what is wrong.
            _ = try SchoolsProtocol.loadAll(loaded)
            _ = try SchedulingProtocol.loadAll(loaded)
            _ = try DispatchProtocols.load(loaded)
            return .parsed
        }
        expectClean(protocols)
        let path = folder + "/forces.json"
        let forces = fuzz(
            "forces-file", iterations: FuzzConfig.iterations(default: 800),
            generate: Self.generator([Samples.forces], json: true, dictionary: Self.jsonWords)
        ) { data in
            try data.write(to: URL(fileURLWithPath: path))
            let registry = try ForceRegistry.load(path: path)
            _ = registry.prepare(Samples.incident())
            _ = registry.matchesOccurrence("43260001234", force: "43")
            return .parsed
        }
        expectClean(forces)
    }

    // MARK: dispatch

    @Test("the notice page's form body")
    func noticeForm() {
        let seeds = [Data("action=sign-in&name=Ms+Head&password=p%40ss%20word".utf8), Data("action=acknowledge".utf8)]
        let report = fuzz(
            "notice-form", iterations: FuzzConfig.iterations(default: 3_000),
            generate: Self.generator(seeds, dictionary: ["%", "%zz", "%00", "=", "&&", "+"].map { Array($0.utf8) })
        ) { data in
            // Hummingbird's decoder reads it; an odd body must be refused with an error that says why.
            _ = try NoticeForm(body: String(decoding: data, as: UTF8.self))
            return .parsed
        }
        expectClean(report)
    }
}

/// The inputs that crashed a parser before it was fixed, kept as plain tests.
@Suite("Fuzz pass regressions", .tags(.peers))
struct FuzzRegressionTests {
    /// The openpyxl workbook (or our own) with `sheet1.xml` replaced.
    func workbook(sheet: String) throws -> Data {
        let book = try #require(Samples.workbooks.first)
        var parts = Samples.entries(of: book)
        let index = try #require(parts.firstIndex { $0.path == "xl/worksheets/sheet1.xml" })
        parts[index].data = Data(
            """
            <?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>\(sheet)</sheetData></worksheet>
            """.utf8)
        return Samples.zip(parts)
    }

    @Test("a ZIP whose central directory offset points past its end: an error, not a trap in ZIPFoundation's in-memory reader")
    func zipOffsetPastEnd() throws {
        let book = try #require(Samples.workbooks.first)
        var bytes = [UInt8](book)
        // End of central directory record: signature 50 4B 05 06; the directory's offset is at +16.
        let eocd = try #require(Self.signatures([0x50, 0x4B, 0x05, 0x06], in: bytes).last)
        for (i, byte) in [UInt8](arrayLiteral: 0xF0, 0xFF, 0xFF, 0x7F).enumerated() { bytes[eocd + 16 + i] = byte }
        #expect(throws: SheetError.self) { try SpreadsheetReader.read(Data(bytes)) }
        // Local header offsets (central directory entry +42) past the end, too.
        var other = [UInt8](book)
        let entries = Self.signatures([0x50, 0x4B, 0x01, 0x02], in: other)
        #expect(!entries.isEmpty)
        for entry in entries where entry + 46 <= other.count {
            for i in 0..<4 { other[entry + 42 + i] = 0x7F }
        }
        #expect(throws: SheetError.self) { try SpreadsheetReader.read(Data(other)) }
    }

    /// Where a 4-byte ZIP signature occurs.
    static func signatures(_ signature: [UInt8], in bytes: [UInt8]) -> [Int] {
        guard bytes.count >= 4 else { return [] }
        var found: [Int] = []
        for i in 0...(bytes.count - 4)
        where bytes[i] == signature[0] && bytes[i + 1] == signature[1] && bytes[i + 2] == signature[2] && bytes[i + 3] == signature[3] {
            found.append(i)
        }
        return found
    }

    @Test("cell references with a long run of letters: out of range, not an overflow")
    func longColumnLetters() throws {
        let data = try workbook(sheet: "<row r=\"1\"><c r=\"AAAAAAAAAAAAAAAAAAAAAAAAAAAA1\" t=\"inlineStr\"><is><t>x</t></is></c></row>")
        let error = #expect(throws: SheetError.self) { try SpreadsheetReader.read(data) }
        #expect(error?.description.contains("out of range") == true)
    }

    @Test("row numbers at Int.max or past Excel's last row: an error, not an overflow")
    func hugeRowNumbers() throws {
        for sheet in [
            "<row r=\"9223372036854775807\"><c r=\"A1\" t=\"inlineStr\"><is><t>x</t></is></c></row><row><c t=\"inlineStr\"><is><t>y</t></is></c></row>",
            "<row r=\"1048577\"><c t=\"inlineStr\"><is><t>x</t></is></c></row>", "<row r=\"-3\"></row>",
        ] {
            let error = #expect(throws: SheetError.self) { try SpreadsheetReader.read(try workbook(sheet: sheet)) }
            #expect(error?.description.contains("row number") == true)
        }
    }

    @Test("date-styled cells holding NaN, infinity or 1e308: kept as text, not a trap")
    func impossibleDates() {
        for value in [Double.nan, .infinity, -.infinity, 1e308, -1, 2_958_466] { #expect(XLSX.excelDate(value) == nil) }
        #expect(XLSX.excelDate(46_348) == "2026-11-22")
        #expect(XLSX.excelDate(46_348.5) == "2026-11-22T12:00:00")
    }

    @Test("history chunk numbering: first=Int.max is refused before any place overflows")
    func historyFirst() {
        #expect(throws: SheetError.self) { try HistoryFile.parse(Array("{}\n{}".utf8), first: Int.max) }
        #expect(throws: SheetError.self) { try HistoryFile.parse(Array("{}".utf8), first: 0) }
        #expect((try? HistoryFile.parse(Array("{}".utf8), first: HistoryFile.maximumFirst)) != nil)
    }
}

extension FuzzRegressionTests {
    @Test("invalid UTF-8 inside an element name of a worksheet: an error, not a trap in XMLParser")
    func invalidUTF8InXML() throws {
        var sheet = Data("<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>x</t>".utf8)
        sheet += Data([0x3C, 0xFE, 0xFF]) + Data("/is></c></row>".utf8)
        let book = try #require(Samples.workbooks.first)
        var parts = Samples.entries(of: book)
        let index = try #require(parts.firstIndex { $0.path == "xl/worksheets/sheet1.xml" })
        parts[index].data =
            Data(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>"
                    .utf8)
            + sheet + Data("</sheetData></worksheet>".utf8)
        let error = #expect(throws: SheetError.self) { try SpreadsheetReader.read(Samples.zip(parts)) }
        #expect(error?.description.contains("UTF-8") == true)
    }

    @Test("a timestamp with a combining mark among its digits: refused, not a trap in DateFormatter")
    func combiningMarkInTimestamp() {
        #expect(Timestamp.parse("2026-\u{302D}11-22 21:15") == nil)
        #expect(Timestamp.parse("2026-11-22 21:15") != nil)
        #expect(Timestamp.parse(String(repeating: "9", count: 10_000)) == nil)
    }
}

extension FuzzRegressionTests {
    @Test("entities in a worksheet: an external entity is never read from disk, an exponential one never expands")
    func xmlEntities() throws {
        let book = try #require(Samples.workbooks.first)
        for doctype in [
            "<!DOCTYPE worksheet [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
            "<!DOCTYPE worksheet [<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\"><!ENTITY x \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\">]>",
        ] {
            var parts = Samples.entries(of: book)
            let index = try #require(parts.firstIndex { $0.path == "xl/worksheets/sheet1.xml" })
            parts[index].data = Data(
                """
                <?xml version="1.0" encoding="UTF-8"?>\(doctype)<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>\
                <row r="1"><c r="A1" t="inlineStr"><is><t>occurrence_number</t></is></c><c r="B1" t="inlineStr"><is><t>notes</t></is></c></row>\
                <row r="2"><c r="A2" t="inlineStr"><is><t>43260001234</t></is></c><c r="B2" t="inlineStr"><is><t>&x;</t></is></c></row>\
                </sheetData></worksheet>
                """.utf8)
            let started = ContinuousClock.now
            let sheet = try? SpreadsheetReader.read(Samples.zip(parts))
            #expect(ContinuousClock.now - started < .seconds(2))
            let notes = sheet?.rows.first?.cells["notes"] ?? ""
            #expect(!notes.contains("root:"), "the external entity was read")
            #expect(notes.count < 100_000, "the entity expanded to \(notes.count) characters")
        }
    }
}

extension FuzzRegressionTests {
    /// The workbook (seed 3834866838) on which ZIPFoundation's reader looped for ever: a damaged
    /// deflate stream in a part that is never read (the theme) next to a damaged local header.
    static let endlessDeflate =
        "UEsDBBQAAAAIAPYweF1Gx01IlQAAAM0AAAAQAAAAZG9jUHJvcHMvYXBwLnhtbE3PTQvCMAwG4L9SdreZih6kDkQ9ip68zy51hbYpbYT67+0EP255ecgboi6JIia2mEXxLuRtMzLHDUDWI/o+y8qhiqHke64x3YGMsRoPpB8eA8OibdeAhTEMOMzit7Dp1C5GDXXPlkJ3sjpRJsPiWDQ6sScfq9wcChDneiU+ixNLOZcrBf+LU8sVU57mym/8ZAW/B7oXUEsDBBQAAAAIAPYweF3DLbmx6wAAAMsBAAARAAAAZG9jUHJvcHMvY29yZS54bWylkcFOwzAMhl9l6r112o0iRV0uoJ2GhMQkELco8bZoTRMlRu3enrRsHQhuHOP/82dbaZTnygV8Ds5jIINxMdi2i1z5dXYk8hwgqiNaGYtEdCncu2AlpWc4gJfqJA8IFWM1WCSpJUkYhbmfjdlFqdWs9B+hnQRaAbZosaMIZVHCjSUMNv7ZMCUzOUQzU33fF/1y4tJGJbw9bV+m5XPTRZKdwkw0WnEVUJILYrzIn4e2gW/F5jL7q4B6kSZwOntcZ9fkdfnwuNtkomJVnZdlXq12rObsnq/u3kfXj/6b0Dpt9uYfxqtANPDr38QnUEsDBBQAAAAIAPYweF2ZXJwjEAYAAJwnAAATAAAAeGwvdGhlbWUvdGhlbWUxLnhtbO1aW3PaOBR+76/QeGf2bQvGNoG2tBNzaXbbtJmE7U4fhRFYjWx5ZJGEf79HNhDLlg3tkk26mzwELOn7zkVH5+g4efPuLmLohoiU8nhg2S/b1ru3L97gVzIkEUEwGaev8MAKpUxetVprAMM4fckTEsPcgosIS3gUy9Zc4FsaLyPW6rTb3VaEaWyhGEdkYH1eLGhA0FRRWm9fILTlHzP4FctUjWWjARNXQSa5iLTy+WzF/NrePmXP6TodMoFuMBtYIH/Ob6fkTlqI4VTCxMBqZz9Wa8fR0kiAgsl9lAW6Sfaj0xUIMg07Op1YznZ89sTtn4zK2nQ0bRrg4/F4OLbL0otwHATgUbuewp30bL+kQQm0o2nQZNj22q6RpqqNU0/T933f65tonAqNW0/Ta3fd046Jxq3QeGe+8U+Hw66JxqvQdOtpJif9rmuk6RZoQkbj63oSFbXlQNMgAFhwdtbM0gOWXin6dZQa2R273UFc8FjuOYkR/sbFBNZp0hmWNEZynZAFDgA3xNFMUHyvQbaK4MKS0lyQ1s8ptVAaCJrIgfVHgiHF3K/99Ze7yaQzep19Os5rlH9pqwGn7bubz5P8c+jkn6eT101CznC8LAnx+yNbYYcnbjsTcjocZ0J8z/b2kaUlMs/v+QrrTjxnH1aWsF3Pz+SejHIju932WH32T0duI9epwLMi15RGJEWfyC265BE4tUkNMhM/CJ2GmGpQHAKkCTGWoYb4tMasEeATfbe+CMjfjYj3q2+aPVehWEnahPgQRhrinHPmc9Fs+welRtH2Vbzco5dYFQGXGN80qjUsxdZ4lcDxrZw8HRMSzZQLBkGGlyQmEqk5fk1IE/4rpdr+nNNA8JQvJPpKkY9psyOndCbN6DMawUavG3WHaNI8ev4F+Zw1ChyRGx0CZxuzRiGEabvwHq8kjpqtwhErQj5iGTYacrUWgbZxqYRgWhLG0XhO0rQR/FmsNZM+YMjszZF1ztaRDhGSXjdCPmLOi5ARvx6GOEqa7aJxWAT9nl7DScHogstm/bh+htUzbCyO90fUF0rkDyanP+kyNAejmlkJvYRWap+qhzQ+qB4yCgXxuR4+5Xp4CjeWxrxQroJ7Af/R2jfCq/iCwDl/Ln3Ppe+59D2h0rc3I31nwdOLW95GblvE+64x2tc0LihjV3LNyMdUr5Mp2DmfwOz9aD6e8e362SSEr5pZLSMWkEuBs0EkuPyLyvAqxAnoZFslCctU02U3ihKeQhtu6VP1SpXX5a+5KLg8W+Tpr6F0PizP+Txf57TNCzNDt3JL6raUvrUmOEr0scxwTh7LDDtnPJIdtnegHTX79l125COlMFOXQ7gaQr4Dbbqd3Do4npiRuQrTUpBvw/npxXga4jnZBLl9mFdt59jR0fvnwVGwo+88lh3HiPKiIe6hhpjPw0OHeXtfmGeVxlA0FG1srCQsRrdguNfxLBTgZGAtoAeDr1EC8lJVYDFbxgMrkKJ8TIxF6HDnl1xf49GS49umZbVuryl3GW0iUjnCaZgTZ6vK3mWxwVUdz1Vb8rC+aj20FU7P/lmtyJ8MEU4WCxJIY5QXpkqi8xlTvucrScRVOL9FM7YSlxi84+bHcU5TuBJ2tg8CMrm7Oal6ZTFnpvLfLQwJLFuIWRLiTV3t1eebnK56Inb6l3fBYPL9cMlHD+U751/0XUOufvbd4/pukztITJx5xREBdEUCI5UcBhYXMuRQ7pKQBhMBzZTJRPACgmSmHICY+gu98gy5KRXOrT45f0Usg4ZOXtIlEhSKsAwFIRdy4+/vk2p3jNf6LIFthFQyZNUXykOJwT0zckPYVCXzrtomC4Xb4lTNuxq+JmBLw3punS0n/9te1D20Fz1G86OZ4B6zh3OberjCRaz/WNYe+TLfOXDbOt4DXuYTLEOkfsF9ioqAEativrqvT/klnDu0e/GBIJv81tuk9t3gDHzUq1qlZCsRP0sHfB+SBmOMW/Q0X48UYq2msa3G2jEMeYBY8wyhZjjfh0WaGjPVi6w5jQpvQdVA5T/b1A1o9g00HJEFXjGZtjaj5E4KPNz+7w2wwsSO4e2LvwFQSwMEFAAAAAgA9jB4XSXvGRqHAwAAXhEAABgAAAB4bC93b3Jrc2hlZXRzL3NoZWV0MS54bWyVmF1v2jAUQP9KlNdtzedoV0GktV1btm50oG1SX5BJDLHq2JltYPv3uw4tA+QbAi8ksc+9tvG5SeivpXrWJaXG+1NxoQd+aUx9GQQ6L2lF9JmsqYCWuVQVMXCqFoGuFSVFA1U8iMOwF1SECT/rN9ceVdaXS8OZoI/K08uqIurvFeVyPfAj//XCmC1K01wIsn5NFnRCzY8aADgNtnEKVlGhmRSeovOB/zG6fEobounxk9G13jn27GRmUj7bk2Ex8EM7JsppbmwIAl8rek05t5FgJL9fgvr/k1py9/g1/G0zfxjejGh6LfkvVphy4F/4XkHnZMnNWK7v6cuc3v8f4g0xJOsrufaUnWzWz+2BTQkdmbCLNDEKrjPIZDKZ50ulqMjpVCyrGVX9wMBwbGOQv8BXGAy/EXC5LKiDuj6SspgS48BuMEzRWiqDYZ8wjImcFVSYKSkKRbV2sLdHWSPXwgHeHQVrqQ2yPvcYzGvi6D5E14Xp5ymnK8od1GeMyhVsdAfwBQNWDDZzNV3AhhZTQZzwwxF4TirG/2L0V3SsJeNFe+Zv7Wx74lE7XMiZA3psh6C+OKDv7RCUOW1VdJDjdhKKp5SuDTDpwk2XyrW9nzBWSEMPRAqg4mzLTrwtOzESIU3iXhiGUZyEroKDY65CA711U9iBsTeFVZb2kvTi7OLifRr1mk8/WO3WGCx+HMa9d1H0Lo69OL5MXWP7hLG3nBgvfutFqTf6A5Wx8MaSFK5yg0UYw02OiYWr0KDIXeSdPzy4ysvpWYYYUtGCLStXedkQs2bRo/1F/oJFmxBFSlf1wID75aI83G+bioERHyvKmauKfjs5x2izu+Ld3RWnH9L9yT7utkfhfuN3LOnGd9ftbIwunvG+wsOMfuvhv+NkbzCR9Wx/QE9W0HkWvYHrc+jUPI0cSpxsJU6OShy5JMYxl8TJyRJj8btIjLHdJcYitEiMIrjEp2cZYggucdIiMRYNlRgDcIkxApf45ByjpJPEyZ43BxJjSVskRhevi8QJLvGep+nW0/Sop7HLUxxzeZqe7CkWv4unGNvdUyxCi6cognt6epYhhuCepi2eYtFQTzEA9xQjcE9PzjFKO3ma7qoRH3iKJW3xFF28Lp6mxzwNdt7L7f8OEHLBhPY4nQMYnp3D27vavMhvToysG8Nm0hhZNYcl5KfKdoD2uYTn79cTe+ve/qWS/QNQSwMEFAAAAAgA9jB4XamRqsGGAgAAewsAAA0AAAB4bC9zdHlsZXMueG1s3VZLj9owEP4rUe7bACkRWREOjYRUqa1W2j30arBDLPmROs4K+uvrsb0QdpmsWrWXBiGP5/M3bxPWvT0J9tgyZpOjFKqv0tba7j7L+n3LJOk/6I4phzTaSGLd1hyyvjOM0B5IUmSL2azIJOEq3azVILfS9sleD8pW6eKsSsLymVbpvPiYJsFcrSmr0pN77qS8ozRp76W87/s0yW4SlxjRE7LofbNutLoEMU+DwlkkkiXPRFRpTQTfGe5pDZFcnIJ+4TV7LbRJrMufAR1U/c9wYB63UJxoS3KlTQgguPELRMGFuCoFKDbrjljLjNq6TSB57Vssyk+nzkVxMOQ0XyzTEcMvzs1OG8rMVbpBtVkL1lhgGH5ovWB1B8tOW6slSJSTg1YkRPJCi4KzvWdCPMKEfG+uHBybUV9m0BV1Fl1UUQxm4gYcjM0F4yO7+Z/Z7fiztp8Gl5Dy+x+DtuzBsIYf/f7YXAK4Mh/n8F86WP51B1ks2qg1V405axMY9ir9BtdFjGzsBi4sV3HXckqZetsfZ9+SnfthuHLgTlHWkEHYpzNYpRf5K6N8kOX51AMkFk9d5C8wjPPictOcM64oOzJax6057LyYOMG5jY9nvIa2/kEglBVABAIQ9YWGgbICD/X1P+a1wvMKIBrh6ja0wlkrnBV4N6Haf1BfCKt0D5JyWeZ5UaDlrevbYdRoDYsCvohBNELgoL7A2+9WfmIAJsbmndlAuzw5NmjKEyOKpjxReYCQGgKnLJEBQH0BB20KOlEQBOILRg1h5Tn0GY0QveYTUFmiEAwpMr1FgRWqgA/SL/QS5XlZIhCASBh5jkJwYScgNAwIBIXyPLxIX73Pspf3XHb5u735AFBLAwQUAAAACAD2MHhdt0frisAAAAAWAgAACwAAAF9yZWxzLy5yZWxznZJLbgIxDECvEmVfTKnEAjGs2LBDiAu4ieejmcSRY8T09o3YwCBoEUv/np4trw80oHYcc9ulbMYwxFzZVjWtALJrKWCecaJYKjVLQC2hNJDQ9dgQLObzJcgtw27Wt0xz/En0CpHrunO0ZXcKFPUB+K7DmiNKQ1rZcYAzS//N3M8K1Jqdr6zs/Kc18KbM8/UgkKJHRXAs9JGkTIt2lK8+nt2+pPOlY2K0eN/o//PQqBQ9+b+dMKWJ0tdFCSZvsPkFUEsDBBQAAAAIAPYweF3YIRtENQEAACwCAAAPAAAAeGwvd29ya2Jvb2sueG1sjZDRTsMwDEV/pcoH0G6CSUzrXpiASQgQQ3tPE3e1lsRV4q6wrydpKUzihSfH19bJvV715I8V0TH7sMaFpS9Fw9wu8zyoBqwMV9SCi7OavJUcW3/Iqa5RwYZUZ8FxPi+KRe7BSEZyocE2iJH2H1ZoPUgdGgC2ZkRZiU6sV5OzV5/llx0xqPRTUpOyR+jD70JqsxMGrNAgf5ZieBsQmUWHFs+gS1GILDTUP5LHMzmWZqc8GVOK2TjYg2dUf+RdsvkuqzAoLKu3lLkUiyICa/SBh42BL6PJE8TlseuY7tEw+I1kePDUtegOAybGyC9yDKeYauakhVJsnUIdTx2SjShv9WiJI+sioF9iHPit/qZOKA01OtDPkRXSIAZT8aqpDKT59c3sNgbojLmL2ot7Iql/vE2HXX8BUEsDBBQAAAAIAPYweF0z6+O6rQAAAPsBAAAaAAAAeGwvX3JlbHMvd29ya2Jvb2sueG1sLnJlbHO1kT0OgzAMha8S5QAYqNShAqYurBUXiIL5EYFEsavC7RvBAEgdujBZz5a/92RnLzSKeztR1zsS82gmymXH7B4ApDscFUXW4RQmjfWj4iB9C07pQbUIaRzfwR8ZssiOTFEtDv8h2qbpNT6tfo848Q8wfKwfqENkKSrlW+Rcwmz2NsFakiiQpSjrXPqyTqSAyxIRLwZpj7Ppk396pT+HXdztV7k1z0e4rSHg9OviC1BLAwQUAAAACAD2MHhdm4ZChBsBAADXAwAAEwAAAFtDb250ZW50X1R5cGVzXS54bWytk89OwzAMxl+l6nVqMzhwQOsujCvswAuExF2j5p9ib3Rvj9uySqCxDZVLo8b293P8Jau3YwTMOmc9VnlDFB+FQNWAk1iGCJ4jdUhOEv+mnYhStXIH4n65fBAqeAJPBfUa+Xq1gVruLWXPHW+jCb7KE1jMs6cxsWdVuYzRGiWJ4+Lg9Q9K8UUouXLIwcZEXHBCnomziCH0K+FU+HqAlIyGbCsTvUjHaaKzAuloAcvLGme6DHVtFOig9o5LSowJpMYGgJwtR9HFFTTxkGH83s1uYJC5SOTUbQoR2bUEf+edbOmri8hCkMhcOeSEZO3ZJ4TecQ36VjhP+COkdvAExbDMH/N3nyf9Wxp5D6H973vWr6WTxk8NiOE9rz8BUEsBAhQDFAAAAAgA9jB4XUbHTUiVAAAAzQAAABAAAAAAAAAAAAAAAIABAAAAAGRvY1Byb3BzL2FwcC54bWxQSwECFAMUAAAACAD2MHhdwy25sesAAADLAQAAEQAAAAAAAAAAAAAAgAHDAAAAZG9jUHJvcHMvY29yZS54bWxQSwECFAMUBQAACAD2MHhdmVycIxAGAACcJwAAEwAAAAAAAAAAAAAAgAHdAQAAeGwvdGhlbWUvdGhlbWUxLnhtbFBLAQIUAxQAAAAIAPYweF0l7xkahwMAAF4RAAAYAAAAAAAAAAAAAACAgR4IAAB4bC93b3Jrc2hlZXRzL3NoZWV0MS54bWxQSwECFAMUAAAACAD2MHhdqZGqwYYCAAB7CwAADQAAAAAAAAAAAAAAgAHbCwAAeGwvc3R5bGVzLnhtbFBLAQIUAxQAAAAIAPYweF23R+uKwAAAABYCAAALAAAAAAAAAAAAAACAAYwOAABfcmVscy8ucmVsc1BLAQIUAxQAAAAIAPYweF3YIRtENQEAACwCAAAPAAAAAAAAAAAAAACAAXUPAAB4bC93b3JrYm9vay54bWxQSwECFAMUAAAACAD2MHhdM+vjuq0AAAD7AQAAGgAAAAAAAAAAAAAAgAHXEAAAeGwvX3JlbHMvd29ya2Jvb2sueG1sLnJlbHNQSwECFAMUAAAACAD2MHhdm4ZChBsBAADXAwAAEwAAAAAAAAAAAAAAgAG8EQAAW0NvbnRlbnRfVHlwZXNdLnhtbFBLBQYAAAAACQAJAD4CAAAIEwAAAAA="

    @Test("a workbook whose damaged deflate stream never ends: read or refused within seconds, no endless loop")
    func endlessDeflateStream() throws {
        let data = try #require(Data(base64Encoded: Self.endlessDeflate))
        let done = DispatchSemaphore(value: 0)
        final class Outcome: @unchecked Sendable { var text: String? } // written before the signal, read after it
        let outcome = Outcome()
        DispatchQueue.global().async {
            do { outcome.text = "read \((try SpreadsheetReader.read(data)).rows.count) rows" } catch { outcome.text = describeError(error) }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 10) == .success, "still reading after 10 s")
        #expect(outcome.text != nil)
    }

    @Test("a zip bomb part: stopped at its declared size, and parts declared past 128 MiB are not inflated")
    func zipBomb() throws {
        let book = try #require(Samples.workbooks.first)
        var parts = Samples.entries(of: book)
        let index = try #require(parts.firstIndex { $0.path == "xl/worksheets/sheet1.xml" })
        parts[index].data =
            Data(
                "<?xml version=\"1.0\"?><worksheet><sheetData><row r=\"1\"><c t=\"inlineStr\"><is><t>a</t></is></c></row></sheetData></worksheet>"
                    .utf8)
            + Data(repeating: 0x20, count: 20_000_000)
        var bytes = [UInt8](Samples.zip(parts))
        // Lie about the sheet's size in the central directory: 1000 bytes declared.
        for entry in Self.signatures([0x50, 0x4B, 0x01, 0x02], in: bytes) {
            let nameLength = Int(bytes[entry + 28]) | Int(bytes[entry + 29]) << 8
            let name = String(decoding: bytes[(entry + 46)..<(entry + 46 + nameLength)], as: UTF8.self)
            guard name == "xl/worksheets/sheet1.xml" else { continue }
            for (i, byte) in [UInt8](arrayLiteral: 0xE8, 0x03, 0, 0).enumerated() { bytes[entry + 24 + i] = byte }
        }
        #expect(bytes.count < 1_000_000, "the bomb compresses")
        let error = #expect(throws: SheetError.self) { try SpreadsheetReader.read(Data(bytes)) }
        #expect(error?.description.contains("declared size") == true, "\(error?.description ?? "")")
    }
}
