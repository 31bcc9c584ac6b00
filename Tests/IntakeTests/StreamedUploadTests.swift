import EncompassKafka
import EncompassModels
import EncompassSecrets
import EncompassTestSupport
import Foundation
import GRDB
import NIOCore
import ServiceRuntime
import Spreadsheets
import Testing

@testable import IntakeService

@Suite("Spreadsheet uploads read as they arrive", .serialized, .tags(.kafka))
struct StreamedUploadTests {
    /// The body as Hummingbird hands it over: a sequence of buffers.
    static func body(_ data: Data, chunk: Int) -> AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            for start in stride(from: 0, to: data.count, by: chunk) {
                continuation.yield(ByteBuffer(bytes: data[start..<min(start + chunk, data.count)]))
            }
            continuation.finish()
        }
    }

    @Test("the receiver spools the bytes as sent, hashes them and parses CSV the same whatever the chunks; XLSX is read whole from the spool")
    func receiverChunks() async throws {
        let directory = URL(fileURLWithPath: TestPaths.temporaryDirectory("spool"))
        let csv =
            Data([0xEF, 0xBB, 0xBF])
            + Data(
                ([header, csvRow("43260001234", child: ("Zoë", "Hughes", "2016-05-04"), school: "St Mary's, \"Reading\"")]
                    .joined(separator: "\r\n") + "\r\n").utf8)
        let whole = try SpreadsheetReader.read(csv, maximumRows: 10)
        for chunk in [1, 2, 3, 4, 5, 64, csv.count] {
            let received = try await SpreadsheetReceiver.receive(
                Self.body(csv, chunk: chunk), into: directory, maximumBytes: 1 << 20, maximumRows: 10)
            defer { received.discard() }
            #expect(try Data(contentsOf: received.file) == csv, "chunk \(chunk)")
            #expect(received.bytes == csv.count)
            #expect(received.hash == StableHash.hex128(String(decoding: csv, as: UTF8.self)))
            let sheet = try received.sheet.get()
            #expect(sheet.rows == whole.rows && sheet.headers == whole.headers, "chunk \(chunk)")
            #expect(sheet.rows.first?.cells["child_given_name"] == "Zoë")
        }
        // A workbook arrives in pieces too; its first bytes say it is a ZIP.
        let path = directory.appendingPathComponent("desk.xlsx").path
        try await makeXLSX(path, rows: [["occurrence_number", "child_given_name"], ["43260001234", "Zoë"]])
        let book = try Data(contentsOf: URL(fileURLWithPath: path))
        let received = try await SpreadsheetReceiver.receive(Self.body(book, chunk: 3), into: directory, maximumBytes: 1 << 20, maximumRows: 10)
        #expect(try received.sheet.get().rows.first?.cells["child_given_name"] == "Zoë")
        received.discard()
        // Over the byte limit: refused, and the spool is gone.
        await #expect(throws: SpreadsheetReceiver.TooLarge.self) {
            _ = try await SpreadsheetReceiver.receive(Self.body(csv, chunk: 7), into: directory, maximumBytes: csv.count - 1, maximumRows: 10)
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".spool") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("spool files a crash left beside the store are removed when intake starts")
    func staleSpoolsRemoved() async throws {
        let kafka = try TestKafka()
        let first = try await RunningIntake(kafka, token: "t0ken")
        let directory = URL(fileURLWithPath: first.host.store.path).deletingLastPathComponent()
        try await first.stop()
        let stale = directory.appendingPathComponent("upload-\(UUID().uuidString).spool")
        try Data("occurrence_number\n43260001234\n".utf8).write(to: stale)
        let other = directory.appendingPathComponent("notes.txt")
        try Data("kept".utf8).write(to: other)
        let intake = try await RunningIntake(kafka, token: "t0ken", dataDirectory: directory.path)
        #expect(!FileManager.default.fileExists(atPath: stale.path))
        #expect(FileManager.default.fileExists(atPath: other.path))
        try await intake.stop()
    }

    @Test(
        "a streamed file over the row limit is refused over HTTP and kept whole as one dead letter, its exact bytes in the store and only a reference on the dead-letter topic"
    )
    func refusedFileKeptWhole() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "t0ken")
        // About 4 MB, over a Kafka message: rows with quoted commas and newlines, a few bytes
        // that are not UTF-8 (the file is kept as sent, not as decoded).
        var file = Data((header + "\r\n").utf8)
        for i in 0..<(IncidentAPI.maximumUploadRows + 5_000) {
            file.append(
                Data((csvRow(String(43_260_100_000 + i), child: ("Amelia", "Hughes", "2016-05-04"), school: "School \(i),\nline two") + "\r\n").utf8))
            if i % 1_000 == 0 { file.append(contentsOf: [0x22, 0xE9, 0xFF, 0x22, 0x0D, 0x0A]) }
        }
        try #require(file.count > 2 * Outbox.defaultMaxMessageBytes)
        let answer = try await post("http://127.0.0.1:\(intake.port)/v1/spreadsheets?name=huge.csv", token: "t0ken", body: file)
        #expect(answer.status == 422)
        #expect((answer.body["error"] as? String)?.contains("more than \(IncidentAPI.maximumUploadRows) rows") == true, "\(answer.body)")

        let letters = try await intake.host.store.pool.read { try DeadLetter.fetchAll($0) }
        try #require(letters.count == 1)
        #expect(letters[0].errorClass == "spreadsheet.unreadable")
        #expect(letters[0].originalValue.count == file.count)
        #expect(Secrets.sha256(Array(letters[0].originalValue)) == Secrets.sha256(Array(file)))

        // The dead-letter event names the row that keeps the file instead of carrying it.
        let events = try await readRecords(kafka, topic: ServiceName.intake.deadLetterTopic, count: 1, timeout: .seconds(20))
        try #require(events.count == 1)
        #expect(events[0].value.count < 8_192)
        let event = try WireFormat.decode(DeadLetterEvent.self, from: events[0].value).payload
        #expect(event.originalValue == nil && event.originalValueBase64 == nil)
        #expect(event.errorMessage.contains("\(file.count) bytes") && event.errorMessage.contains("deadLetter table, id \(letters[0].id ?? 0)"))

        // Sent again: the same file, one dead letter still; no spool file is left beside the store.
        #expect(try await post("http://127.0.0.1:\(intake.port)/v1/spreadsheets?name=huge.csv", token: "t0ken", body: file).status == 422)
        #expect(try await intake.host.store.pool.read { try DeadLetter.fetchCount($0) } == 1)
        let directory = URL(fileURLWithPath: intake.host.store.path).deletingLastPathComponent().path
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".spool") }.isEmpty)
        try await intake.stop()
    }
}
