import Foundation
import Testing

@testable import Spreadsheets

@Suite("Incremental CSV reader")
struct CSVStreamReaderTests {
    /// Quoted fields with commas, doubled quotes, a quoted CRLF and a quoted LF, CRLF and bare LF
    /// and bare CR row ends, a two-byte and a three-byte UTF-8 character, a blank row.
    static let sample =
        "\u{FEFF}name,note,city\r\n"
        + "\"Hughes, Amelia\",\"said \"\"hello\"\"\",Reading\r\n"
        + "Zoë,\"two\r\nlines\",Slough\n"
        + "\"Ola\",\"x\ny\nz\",\u{20AC}town\r"
        + "\r\n"
        + "last,\"\",end"

    static func sheet(_ chunks: [Data], maximumRows: Int? = nil) throws -> Sheet {
        var reader = CSVStreamReader(maximumRows: maximumRows)
        for chunk in chunks { try reader.feed(chunk) }
        return try reader.finish()
    }

    static func expectSame(_ split: Sheet, _ whole: Sheet, _ comment: Comment) {
        #expect(split.headers == whole.headers, comment)
        #expect(split.rows == whole.rows, comment)
        #expect(split.notices == whole.notices, comment)
    }

    @Test("the sample reads as written")
    func sampleRows() throws {
        let sheet = try Self.sheet([Data(Self.sample.utf8)])
        #expect(sheet.headers == ["name", "note", "city"])
        #expect(sheet.rows.map(\.number) == [2, 3, 5, 9])
        #expect(sheet.rows.map { $0.cells["name"] } == ["Hughes, Amelia", "Zoë", "Ola", "last"])
        #expect(sheet.rows.map { $0.cells["note"] } == ["said \"hello\"", "two\r\nlines", "x\ny\nz", ""])
        #expect(sheet.rows.map { $0.cells["city"] } == ["Reading", "Slough", "\u{20AC}town", "end"])
        #expect(sheet.rows.allSatisfy { $0.problem == nil } && sheet.notices.isEmpty)
    }

    /// The sample in each encoding the reader takes.
    static let encoded: [(String, Data)] = {
        let utf8 = Data(sample.utf8)
        let utf16LE: Data = sample.data(using: .utf16LittleEndian) ?? Data()
        let utf16BE: Data = sample.data(using: .utf16BigEndian) ?? Data()
        let noMark = String(sample.dropFirst())
        let windows: Data = noMark.data(using: .windowsCP1252) ?? Data()
        return [
            ("UTF-8 with BOM", utf8), ("UTF-8", Data(utf8.dropFirst(3))), ("UTF-16LE with BOM", utf16LE),
            ("UTF-16BE with BOM", utf16BE), ("Windows-1252", windows),
        ]
    }()

    @Test(
        "split in two at every byte (inside quotes, between CR and LF, inside the BOM and a UTF-8 character), or fed a byte at a time, it gives the rows of the whole",
        arguments: encoded)
    func everySplit(_ label: String, _ data: Data) throws {
        try #require(data.count > 40, "\(label) could not be encoded")
        let whole = try Self.sheet([data])
        #expect(whole.rows.count == 4, "\(label)")
        for cut in 0...data.count {
            Self.expectSame(try Self.sheet([data.prefix(cut), data.dropFirst(cut)]), whole, "\(label), cut at byte \(cut)")
        }
        Self.expectSame(try Self.sheet(data.map { Data([$0]) }), whole, "\(label), a byte at a time")
        for size in [2, 3, 5, 7] {
            let chunks = stride(from: 0, to: data.count, by: size).map { data[$0..<min($0 + size, data.count)] }
            Self.expectSame(try Self.sheet(chunks.map { Data($0) }), whole, "\(label), \(size) bytes at a time")
        }
    }

    @Test("the UTF-16 files and the UTF-8 one read the same; Windows-1252 is read with a notice")
    func encodings() throws {
        let utf8 = try Self.sheet([Data(Self.sample.utf8)])
        let utf16 = try Self.sheet([try #require(Self.sample.data(using: .utf16LittleEndian))])
        #expect(utf16.rows == utf8.rows)
        let windows = try Self.sheet([try #require("name,city\nZo\u{EB},Reading\n".data(using: .windowsCP1252))])
        #expect(windows.rows.first?.cells["name"] == "Zoë")
        #expect(windows.notices.first?.contains("Windows-1252") == true)
        #expect(throws: SheetError("the file starts as UTF-8 but is not valid UTF-8")) {
            try Self.sheet([Data([0xEF, 0xBB, 0xBF]) + Data("name\nZo".utf8) + Data([0xEB, 0x0A])])
        }
        #expect(throws: SheetError("the file starts as UTF-16 but is not valid UTF-16")) {
            try Self.sheet([Data([0xFF, 0xFE, 0x61, 0x00, 0x00, 0xDC])]) // a lone low surrogate
        }
    }

    @Test("the row limit stops the reader at the row after the limit, long before the end of the file")
    func rowLimitStopsEarly() throws {
        let limit = 100
        var reader = CSVStreamReader(maximumRows: limit)
        let lines = ["a,b\r\n"] + (1...10_000).map { "\"row \($0)\",\"x\r\ny\"\r\n" }
        var fed = 0
        let error = #expect(throws: SheetError.self) {
            for line in lines {
                fed += 1
                try reader.feed(Data(line.utf8))
            }
        }
        #expect(error == SheetError("the file has more than \(limit) rows; one upload takes at most \(limit): split it into smaller files"))
        // The header, the limit's rows and the one after it: nothing further was read.
        #expect(fed == limit + 2)
        #expect(reader.rowCount == limit + 2)

        var atLimit = CSVStreamReader(maximumRows: limit)
        for line in lines.prefix(limit + 1) { try atLimit.feed(Data(line.utf8)) }
        #expect(try atLimit.finish().rows.count == limit)
    }

    @Test("the errors of the whole-file reader: an unclosed quote, stray quotes, text after a closing quote")
    func problems() throws {
        #expect(throws: SheetError("a quoted value starting on line 2 is never closed; the file may be truncated")) {
            try Self.sheet([Data("a,b\n\"open,".utf8), Data("still\n".utf8)])
        }
        let sheet = try Self.sheet([Data("a,b\nst\"ray,1\n\"q\"".utf8), Data("x,2\n".utf8)])
        #expect(sheet.rows[0].problem?.hasPrefix("a quote inside an unquoted value (line 2)") == true)
        #expect(sheet.rows[1].problem == "text after a closing quote (line 3)")
        #expect(throws: SheetError("the spreadsheet is empty")) { try Self.sheet([]) }
    }
}
