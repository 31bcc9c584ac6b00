import ArgumentParser
import EncompassModels
import Foundation
import IntakeService

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Past incidents for child research.",
        subcommands: [HistoryImport.self]
    )
}

/// Sends a file of past incidents to intake in chunks; intake publishes them on `encompass.history`.
struct HistoryImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import past incidents (JSON Lines, one incident per line, or CSV with the daily spreadsheet's columns).",
        discussion: """
            The file is sent in chunks, so any size works. Re-importing a file is harmless: each \
            incident's message id is derived from its content. Exit status: 0 everything accepted, \
            1 some records rejected (kept as dead letters with their line or row), 2 refused or unreachable.
            """
    )

    @Argument(help: "The history file (.jsonl or .csv).")
    var file: String

    @OptionGroup var intake: IntakeOptions

    @Option(help: "Records per request.")
    var chunk: Int = 5_000

    func validate() throws {
        guard chunk >= 1 else { throw ValidationError("--chunk must be at least 1") }
    }

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        let client = try intake.client()
        let name = (file as NSString).lastPathComponent
        let bytes = [UInt8](data)
        let lines = Self.lines(bytes)
        let isJSONLines = bytes.first { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) } == UInt8(ascii: "{")
        var chunks: [(first: Int, body: Data)] = []
        if isJSONLines {
            var start = 0
            while start < lines.count {
                let end = min(start + chunk, lines.count)
                chunks.append((start + 1, Data(lines[start..<end].joined(separator: [0x0A]))))
                start = end
            }
        } else {
            let records = Self.csvRecords(lines)
            guard let header = records.first else { throw ValidationError("\(file) is empty") }
            var start = 1
            while start < records.count {
                let end = min(start + chunk, records.count)
                let body = ([header.bytes] + records[start..<end].map(\.bytes)).joined(separator: [0x0A])
                chunks.append((records[start].line, Data(body)))
                start = end
            }
        }
        var total = 0, accepted = 0, rejected = 0
        for (first, body) in chunks {
            let place = "\(name) at \(isJSONLines ? "line" : "row") \(first)"
            let (status, answer, _) = try await client.post(
                "/v1/history", query: ["name": name, "first": String(first)], body: body,
                as: HistoryAnswer.self, what: place)
            if let error = answer.error {
                FileHandle.standardError.write(Data("\(name) refused (\(status)) at \(isJSONLines ? "line" : "row") \(first): \(error)\n".utf8))
                throw ExitCode(2)
            }
            total += answer.records
            accepted += answer.accepted
            for item in answer.rejected {
                rejected += 1
                print("\(isJSONLines ? "line" : "row") \(item.place): \(item.errors.map(\.description).joined(separator: "; "))")
            }
        }
        print("\(name): \(total) records, \(accepted) accepted into encompass.history, \(rejected) rejected")
        if rejected > 0 { throw ExitCode(1) }
    }

    /// Physical lines without their line ends.
    static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            line.last == 0x0D ? line.dropLast() : line
        }
        if lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }

    /// CSV records (a record spans lines while a quoted value is open), with their first line number.
    static func csvRecords(_ lines: [ArraySlice<UInt8>]) -> [(line: Int, bytes: [UInt8])] {
        var records: [(line: Int, bytes: [UInt8])] = []
        var current: [UInt8] = []
        var startLine = 1
        var quotes = 0
        for (i, line) in lines.enumerated() {
            if current.isEmpty && quotes == 0 { startLine = i + 1 } else { current.append(0x0A) }
            current += line
            quotes += line.filter { $0 == UInt8(ascii: "\"") }.count
            if quotes % 2 == 0 {
                records.append((startLine, current))
                current = []
                quotes = 0
            }
        }
        if !current.isEmpty { records.append((startLine, current)) }
        return records
    }
}
