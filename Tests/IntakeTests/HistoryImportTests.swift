import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import IntakeService

func runCLI(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let run = try runBuilt("encompass", arguments)
    return (run.status, run.output)
}

@Suite("History import", .serialized, .tags(.kafka))
struct HistoryImportTests {
    @Test("JSON Lines in chunks: good records reach encompass.history, bad ones are named by file line and kept; re-import is idempotent")
    func jsonLines() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "t0ken")
        var tooOld = incident(occurrence: "43190000004", occurred: "2019-06-01T12:00:00")
        tooOld.children[0].dateOfBirth = "1999-01-01"
        let lines = [
            String(decoding: try WireFormat.encoder().encode(incident(occurrence: "43190000001", occurred: "2019-03-02T20:00:00")), as: UTF8.self),
            String(decoding: try WireFormat.encoder().encode(incident(occurrence: "43190000002", occurred: "2020-03-02T20:00:00")), as: UTF8.self),
            "{\"occurrenceNumber\": \"43190000003\", truncated",
            String(decoding: try WireFormat.encoder().encode(tooOld), as: UTF8.self),
            "",
            String(
                decoding: try WireFormat.encoder().encode(incident(occurrence: "43190000005", occurred: "2021-03-02T20:00:00", children: [])),
                as: UTF8.self),
        ]
        let path = TestPaths.temporaryDirectory("history") + "/niche-export.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let arguments = ["history", "import", path, "--url", "http://127.0.0.1:\(intake.port)", "--token", "t0ken", "--chunk", "2"]
        let first = try await offPool { try runCLI(arguments) }
        #expect(first.status == 1, "\(first.output)")
        #expect(first.output.contains("line 3:"), "\(first.output)")
        #expect(first.output.contains("line 4: children[0].dateOfBirth"), "\(first.output)")
        #expect(first.output.contains("5 records, 3 accepted into encompass.history, 2 rejected"), "\(first.output)")
        let second = try await offPool { try runCLI(arguments) }
        #expect(second.status == 1)

        let records = try await readRecords(kafka, topic: Topics.history.name, count: 6)
        let envelopes = try records.map { try WireFormat.decode(HistoricalIncident.self, from: $0.value) }
        #expect(envelopes.count == 6)
        #expect(Set(envelopes.map(\.id)).count == 3) // the second import repeats the same ids
        #expect(Set(envelopes.map(\.payload.incident.occurrenceNumber)) == ["43190000001", "43190000002", "43190000005"])
        #expect(envelopes.allSatisfy { $0.payload.source == "history:niche-export.jsonl" })
        let letters = try await intake.host.store.pool.read { try DeadLetter.order(Column("originalOffset")).fetchAll($0) }
        #expect(letters.map(\.originalOffset) == [3, 4]) // the second import's copies are not recorded twice
        #expect(letters.allSatisfy { $0.originalTopic == "history:niche-export.jsonl" && $0.errorClass == "history.record" })
        try await intake.stop()
    }

    @Test("CSV history in chunks keeps file row numbers, also across quoted multi-line values")
    func csv() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "t0ken")
        let rows = [
            header,
            csvRow("43190000001", child: ("Amelia", "Hughes", "2012-05-04")),
            csvRow("43190000002").replacingOccurrences(of: "\"Flat 2, 14 Oxford Road\"", with: "\"Flat 2\n14 Oxford Road\""),
            csvRow("43190000003", child: ("Zed", "Hughes", "not a date")),
            csvRow("43190000004"),
        ]
        let path = TestPaths.temporaryDirectory("history") + "/old.csv"
        try rows.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let arguments = ["history", "import", path, "--url", "http://127.0.0.1:\(intake.port)", "--token", "t0ken", "--chunk", "2"]
        let result = try await offPool { try runCLI(arguments) }
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("row 5:"), "\(result.output)") // physical line 5: after the two-line address
        #expect(result.output.contains("3 accepted"), "\(result.output)")
        let records = try await readRecords(kafka, topic: Topics.history.name, count: 3)
        let second = try #require(
            records.map { try WireFormat.decode(HistoricalIncident.self, from: $0.value).payload.incident }
                .first { $0.occurrenceNumber == "43190000002" })
        #expect(second.incidentAddress.lines == ["Flat 2", "14 Oxford Road"])
        try await intake.stop()
    }
}
