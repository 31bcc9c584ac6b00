import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import IntakeService
import ServiceRuntime
import Spreadsheets
import Testing

@testable import ConsoleService
@testable import SchoolResolutionService

@Suite("CSC sheet of a scaled school resolution: one export of every instance, each returned row answered once")
struct ScaledSheetTests {
    typealias Row = CSCImportAnswer.Row

    func answer(_ rows: [Row]) -> CSCImportAnswer {
        CSCImportAnswer(file: "returned.csv", rows: 4, answers: rows, notices: ["a note"], error: nil)
    }

    @Test("the export merges every instance's rows into one list ordered by incident date, occurrence and request id; other columns are refused")
    func mergeRows() throws {
        let header = CSCRequests.header
        func row(_ id: String, date: String, occurrence: String) -> [String] {
            header.map { column in
                switch column {
                case "request_id": id
                case "incident_date": date
                case "occurrence_number": occurrence
                default: ""
                }
            }
        }
        let one = CSCRequestRows(
            header: header,
            rows: [
                row("n-b", date: "2026-11-23", occurrence: "43260000002"),
                row("n-d", date: "2026-11-24", occurrence: "43260000001"),
            ])
        let two = CSCRequestRows(
            header: header,
            rows: [
                row("n-a", date: "2026-11-23", occurrence: "43260000002"),
                row("n-c", date: "2026-11-23", occurrence: "43260000003"),
            ])
        let merged = try CSCRequestRows.merge([one, two]).get()
        let id = try #require(header.firstIndex(of: "request_id"))
        #expect(merged.rows.map { $0[id] } == ["n-a", "n-b", "n-c", "n-d"])
        // The same request listed by two instances (a store copied by mistake) is written once.
        #expect(try CSCRequestRows.merge([one, one]).get().rows.count == 2)
        #expect(try CSCRequestRows.merge([]).get().rows.isEmpty)
        let older = CSCRequestRows(header: Array(header.dropLast()), rows: [])
        guard case .failure(let problem) = CSCRequestRows.merge([one, older]) else {
            Issue.record("different columns were merged")
            return
        }
        #expect(problem.description.contains("same version"))
    }

    @Test("import: each row takes the answer of the instance that held it; a row no instance held takes the rejection of the unheld pass")
    func combineAnswers() {
        let first = answer([
            Row(outcome: "notice", row: 2, requestId: "n-1", urn: "110111", reasons: ["verified"]),
            Row(outcome: "not-held", row: 3, requestId: "n-2", reasons: ["not held by this instance"]),
            Row(outcome: "not-held", row: 4, requestId: "n-x", reasons: ["not held by this instance"]),
            Row(outcome: "not-held", row: 5, requestId: nil, reasons: ["not held by this instance"]),
        ])
        let second = answer([
            Row(outcome: "not-held", row: 2, requestId: "n-1", reasons: ["not held by this instance"]),
            Row(outcome: "review", row: 3, requestId: "n-2", urn: "110001", reasons: ["age"]),
            Row(outcome: "not-held", row: 4, requestId: "n-x", reasons: ["not held by this instance"]),
            Row(outcome: "not-held", row: 5, requestId: nil, reasons: ["not held by this instance"]),
        ])
        let unheld = CSCImportAnswer.unheldRows([first, second])
        #expect(unheld == [4, 5])
        let rejections = answer([
            Row(
                outcome: "rejected", row: 4, requestId: "n-x",
                reasons: ["request n-x is held by no school resolution instance: check request_id against the exported sheet"]),
            Row(outcome: "rejected", row: 5, requestId: nil, reasons: ["request_id is empty"]),
        ])
        let combined = CSCImportAnswer.combine([first, second], unheld: unheld, rejections: .ok(rejections))
        #expect(combined.answers.map(\.row) == [2, 3, 4, 5])
        #expect(combined.answers.map(\.outcome) == ["notice", "review", "rejected", "rejected"])
        #expect(combined.answers[1].urn == "110001")
        #expect(combined.answers[3].reasons == ["request_id is empty"])
        #expect(combined.rows == 4 && combined.notices == ["a note"] && combined.file == "returned.csv")
        // The unheld pass could not be made: those rows are still answered, rejected, saying why.
        let failed = CSCImportAnswer.combine(
            [first, second], unheld: unheld, rejections: .unreachable("school-resolution is unreachable at http://x: refused"))
        #expect(failed.answers.map(\.outcome) == ["notice", "review", "rejected", "rejected"])
        #expect(
            failed.answers[2].reasons.first?.contains(
                "held by no school resolution instance; it could not be kept as a dead letter: school-resolution is unreachable") == true)
        #expect(failed.answers[2].requestId == "n-x")
        // Every row held somewhere: no unheld pass.
        #expect(
            CSCImportAnswer.unheldRows([
                first,
                answer([
                    Row(outcome: "open", row: 3, requestId: "n-2", reasons: []), Row(outcome: "open", row: 4, requestId: "n-x", reasons: []),
                    Row(outcome: "rejected", row: 5, requestId: nil, reasons: ["x"]),
                ]),
            ]).isEmpty)
    }
}

/// Two school resolution instances in one consumer group, each holding the requests of the
/// children in its partitions, reached as the console and `encompass schools requests` reach them.
@Suite("CSC sheet over two real school resolution instances", .serialized, .tags(.kafka))
struct ScaledSheetServiceTests {
    static let token = "scaled-sheet-token-0123456789"

    @Test(
        "the sheet holds both instances' open requests; a returned sheet's rows each reach the instance that holds them, a row no instance holds is rejected once and kept as one dead letter"
    )
    func twoInstances() async throws {
        let kafka = try TestKafka()
        let directory = TestPaths.temporaryDirectory("scaled-sheet")
        let group = "school-resolution-\(UUID())"
        var hosts: [ServiceHost] = []
        var tasks: [Task<Void, any Error>] = []
        // The instances run on a simulated clock stopped at 07:00 on the 24th: the sheet is named by it.
        let clockFile = directory + "/clock.json"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try SimulatedClockFile(simulated: Timestamp.parse("2026-11-24T07:00:00Z")!, rate: 0).write(to: clockFile)
        for n in 1...2 {
            let configuration = ServiceConfiguration(
                service: .schoolResolution, kafka: kafka.client("schools-\(n)"), groupId: group,
                dataDirectory: directory + "/school-resolution-\(n)", instanceId: "school-resolution-\(n)", httpPort: 0, apiToken: Self.token,
                clockFile: clockFile)
            let host = try await ServiceHost(
                definition: SchoolResolutionService.definition(settings: try .fromEnvironment([:])),
                configuration: configuration, logger: TestLog.logger("schools-\(n)"))
            hosts.append(host)
            tasks.append(Task { try await host.run(handleSignals: false) })
        }
        var urls: [String] = []
        for host in hosts { urls.append("http://127.0.0.1:\(await host.httpPort())") }
        defer { for task in tasks { task.cancel() } }
        // Both instances hold partitions of the children topic before any child is published.
        try await eventually("the group shares the partitions", timeout: .seconds(60)) {
            hosts.allSatisfy { !($0.consumer?.assignment.filter { $0.topic == Topics.children.name }.isEmpty ?? true) }
        }

        // Sixteen children without a recorded school, keyed by child id: spread over both instances.
        let producer = try KafkaProducer(configuration: .init(client: kafka.client("research")), logger: TestLog.logger("research"))
        for n in 1...16 {
            let occurrence = String(format: "432600010%02d", n)
            let incident = Incident(
                occurrenceNumber: occurrence, forceCode: "43", occurredAt: Timestamp.parse("2026-11-23T21:10:00Z")!,
                reportedAt: Timestamp.parse("2026-11-23T21:40:00Z")!,
                incidentAddress: PostalAddress(lines: ["\(n) High St"], town: "Reading", postcode: "RG1 7LL"), localPolicingArea: "Reading",
                riskLevel: .medium, crime: true, parties: [Party(role: .victim, givenName: "Sara", familyName: "Hughes")])
            let child = IdentifiedChild(
                childId: "c-scaled-\(n)", givenName: "Child\(n)", familyName: "Hughes", ageYears: 10,
                homeAddress: PostalAddress(lines: ["\(n) High St"], town: "Reading", postcode: "RG1 7LL"), presence: .witness)
            let message = ChildIdentified(incident: incident, incidentRevision: 1, child: child, source: .officer)
            try await producer.send(
                ProducerRecord(
                    topic: Topics.children.name, key: child.childId,
                    value: try WireFormat.encode(Envelope(id: "child-\(n)", key: child.childId, producer: "child-research", payload: message))))
        }
        await producer.close()
        func held(_ host: ServiceHost) async throws -> [SchoolRequestRow] { try await host.store.pool.read { try CSCRequests.open($0, lpa: "all") } }
        try await eventually("16 requests made", timeout: .seconds(60)) {
            var total = 0
            for host in hosts { total += try await held(host).count }
            return total == 16
        }
        let firstHeld = try await held(hosts[0]).map(\.requestId)
        let secondHeld = try await held(hosts[1]).map(\.requestId)
        #expect(!firstHeld.isEmpty && !secondHeld.isEmpty, "one instance holds every request: \(firstHeld.count) and \(secondHeld.count)")

        let links = ServiceLinks(urls: [.schoolResolution: urls[0]], instances: [.schoolResolution: urls], token: Self.token, timeout: 20)
        let only = ServiceLinks(urls: [.schoolResolution: urls[0]], token: Self.token, timeout: 20)
        #expect(await links.openRequests().value?.count == 16)
        // One sheet with every instance's requests (the first instance alone has only its own).
        let sheet = try #require(await links.exportRequests(lpa: "Reading", format: "csv").value)
        #expect(sheet.requests == 16 && sheet.fileName == "csc-requests-Reading-2026-11-24.csv", "named by the service clock: \(sheet.fileName)")
        let table = try SpreadsheetReader.read(sheet.data)
        #expect(Set(table.rows.compactMap { $0.cells["request_id"] }) == Set(firstHeld + secondHeld))
        #expect(
            try #require(await only.exportRequests(lpa: "Reading", format: "csv", day: CalendarDate(year: 2026, month: 11, day: 24)).value).requests
                == firstHeld.count)
        let xlsx = try #require(await links.exportRequests(lpa: "Reading", format: "xlsx", day: CalendarDate(year: 2026, month: 11, day: 24)).value)
        #expect(xlsx.requests == 16)
        #expect(try SpreadsheetReader.read(xlsx.data).rows.count == 16)
        for host in hosts {
            #expect(try await host.store.pool.read { try SchoolRequestRow.filter(Column("exportedAt") == nil).fetchCount($0) } == 0)
        }

        // CSC returns a school for one request of each instance, nothing for another, and a request id nobody holds.
        let returned = Data(
            """
            request_id,school_urn,school_name
            \(firstHeld[0]),110111,
            \(secondHeld[0]),110111,
            \(secondHeld.count > 1 ? secondHeld[1] : firstHeld[1]),,
            n-nobody-holds-this,110111,

            """.utf8)
        func deadLetters() async throws -> [Int] {
            var counts: [Int] = []
            for host in hosts { counts.append(try await host.store.pool.read { try DeadLetter.fetchCount($0) }) }
            return counts
        }
        let answer = try #require(await links.importReturned(returned, name: "csc-returned.csv").value)
        #expect(answer.answers.map(\.row) == [2, 3, 4, 5], "\(answer.answers)")
        #expect(answer.answers.allSatisfy { $0.outcome != "not-held" })
        #expect(answer.answers[0].urn == "110111" && answer.answers[1].urn == "110111", "\(answer.answers)")
        #expect(
            !["rejected", "open"].contains(answer.answers[0].outcome) && !["rejected", "open"].contains(answer.answers[1].outcome),
            "\(answer.answers)")
        #expect(answer.answers[2].outcome == "open")
        #expect(answer.answers[3].outcome == "rejected" && answer.answers[3].reasons.first?.contains("held by no school resolution instance") == true)
        // Each applied row changed its own instance's request; the stray row is one dead letter, at the first instance.
        #expect(try await hosts[0].store.pool.read { try SchoolRequestRow.fetchOne($0, key: firstHeld[0])?.status } != "open")
        #expect(try await hosts[1].store.pool.read { try SchoolRequestRow.fetchOne($0, key: secondHeld[0])?.status } != "open")
        #expect(try await deadLetters() == [1, 0])
        #expect(await links.openRequests().value?.count == 14)

        // The same sheet again: applied rows answer unchanged; the stray row is answered again
        // (its file is another import of the same bytes: its dead letter is the same one).
        let again = try #require(await links.importReturned(returned, name: "csc-returned.csv").value)
        #expect(again.answers.prefix(2).map(\.outcome) == ["unchanged", "unchanged"], "\(again.answers)")
        #expect(try await deadLetters() == [1, 0])

        // The CLI: the same through `encompass schools requests` and `encompass dlq` with both instances listed.
        let cli = ["--token", Self.token]
        let out = directory + "/csc"
        let exported = try await runExecutable(
            "encompass", ["schools", "requests", "export", "--lpa", "Reading", "--out", out, "--url", urls[0], "--url", urls[1]] + cli)
        #expect(exported.status == 0 && exported.output.contains("14 open request(s) for Reading"), "\(exported.output)")
        let file = out + "/csc-returned.csv" // the name the console imported it under: the same dead letter
        try returned.write(to: URL(fileURLWithPath: file))
        let imported = try await runExecutable("encompass", ["schools", "requests", "import", file, "--url", "\(urls[0]),\(urls[1])"] + cli)
        #expect(imported.status == 1, "\(imported.output)")
        #expect(
            imported.output.contains("row 5 n-nobody-holds-this: rejected") && imported.output.contains("4 row(s), 1 rejected"), "\(imported.output)")
        #expect(!imported.output.contains("not-held"), "\(imported.output)")
        let letter = try #require(try await hosts[0].store.pool.read { try DeadLetter.fetchOne($0) })
        let id = try #require(letter.id)
        // The console's pipeline page names it as the CLI does.
        #expect(await links.stage(.schoolResolution).deadLetters.value?.map(\.address) == ["school-resolution/1:\(id)"])
        #expect(await only.stage(.schoolResolution).deadLetters.value?.map(\.address) == ["school-resolution/\(id)"])
        let endpoints = urls.flatMap { ["--endpoint", "school-resolution=\($0)"] } + cli
        let listed = try await runExecutable("encompass", ["dlq", "list", "--service", "school-resolution"] + endpoints)
        #expect(
            listed.status == 0 && listed.output.contains("1 dead letter (open)") && listed.output.contains("school-resolution/1:\(id) "),
            "\(listed.output)")
        let bare = try await runExecutable("encompass", ["dlq", "show", "school-resolution/\(id)"] + endpoints)
        #expect(bare.status != 0 && bare.output.contains("school-resolution/N:\(id)"), "\(bare.output)")
        let elsewhere = try await runExecutable("encompass", ["dlq", "show", "school-resolution/2:\(id)"] + endpoints)
        #expect(elsewhere.status != 0, "\(elsewhere.output)")
        let shown = try await runExecutable("encompass", ["dlq", "show", "school-resolution/1:\(id)"] + endpoints)
        #expect(
            shown.status == 0 && shown.output.contains("school-resolution/1:\(id)  open")
                && shown.output.contains("held by no school resolution instance"), "\(shown.output)")
        let discarded = try await runExecutable(
            "encompass", ["dlq", "discard", "school-resolution/1:\(id)", "--by", "mash.officer", "--reason", "a typo in the sheet"] + endpoints)
        #expect(discarded.status == 0 && discarded.output.contains("school-resolution/1:\(id) discarded"), "\(discarded.output)")
        #expect(try await hosts[0].store.pool.read { try DeadLetter.fetchOne($0, key: id)?.status } == "discarded")

        for host in hosts { await host.shutdown() }
        for task in tasks { try await task.value }
    }
}
