import Foundation

/// RFC 4180 CSV read incrementally: bytes are fed as they arrive (chunks may split a quoted
/// field, a CRLF, a UTF-8 sequence or the byte-order mark anywhere) and rows are parsed as soon
/// as they end. With `maximumRows`, `feed` throws as soon as the row after the limit ends, so a
/// huge file is refused after reading only its first rows; memory is bounded by the rows kept
/// (at most `maximumRows`), not by the file.
///
/// Encodings as Excel writes them: UTF-8 (with or without a byte-order mark), UTF-16 with a
/// byte-order mark (transcoded to UTF-8 as it arrives), and Windows-1252. Rows are kept as raw
/// bytes and decoded at the end: a file whose bytes are not all UTF-8 (and has no byte-order
/// mark) is read as Windows-1252, with a notice.
public struct CSVStreamReader: Sendable {
    private enum Encoding: Sendable { case undecided, utf8, utf8WithBOM, utf16(bigEndian: Bool) }

    /// A row as parsed, its fields still bytes.
    struct RawRow: Sendable {
        var number: Int
        var fields: [[UInt8]]
        var problem: String?
    }

    private let limit: Int
    private let maximumRows: Int?
    private var encoding = Encoding.undecided
    /// The first bytes, held until the byte-order mark (if any) is known.
    private var head: [UInt8] = []
    /// UTF-16: an odd byte waiting for its pair, and a high surrogate waiting for its low one.
    private var pendingByte: UInt8?
    private var pendingHighSurrogate: UInt16?

    private(set) var rows: [RawRow] = []
    private var fields: [[UInt8]] = []
    private var field: [UInt8] = []
    private var inQuotes = false
    /// In quotes, a quote was met: the next byte says whether it was doubled or closed the value.
    private var quotePending = false
    /// Outside quotes, a CR ended a row: a LF right after it belongs to that row end.
    private var afterCR = false
    private var afterQuote = false
    private var line = 1
    private var rowStart = 1
    private var quoteStart = 0
    private var problem: String?
    private var finished = false

    public init(maximumRows: Int? = nil) {
        self.maximumRows = maximumRows
        self.limit = maximumRows.map { $0 + 1 } ?? Int.max // the header row and the rows under it
    }

    /// Data rows read so far (the header row included).
    public var rowCount: Int { rows.count }

    /// Parses `bytes`, the next part of the file. Throws `SheetError` when the file has more
    /// rows than `maximumRows` (stop feeding then) or is not valid UTF-16 after a UTF-16 mark.
    public mutating func feed(_ bytes: some ContiguousBytes) throws(SheetError) {
        var failure: SheetError?
        bytes.withUnsafeBytes { raw in
            do throws(SheetError) { try feed(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// `feed` over memory the caller holds (a request body's buffer).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(SheetError) {
        precondition(!finished, "feed after finish")
        for byte in bytes {
            switch encoding {
            case .undecided:
                head.append(byte)
                if let decided = Self.decide(head, final: false) { try start(decided) }
            case .utf8, .utf8WithBOM:
                try parse(byte)
            case .utf16(let bigEndian):
                try transcode(byte, bigEndian: bigEndian)
            }
        }
    }

    /// The end of the file: the last row, and the sheet (header row found, cells by header).
    public mutating func finish() throws(SheetError) -> Sheet {
        precondition(!finished, "finish twice")
        if case .undecided = encoding { try start(Self.decide(head, final: true) ?? .utf8) }
        if case .utf16 = encoding, pendingByte != nil || pendingHighSurrogate != nil {
            throw SheetError("the file starts as UTF-16 but is not valid UTF-16")
        }
        finished = true
        if quotePending {
            quotePending = false
            inQuotes = false
            afterQuote = true
        }
        if inQuotes { throw SheetError("a quoted value starting on line \(quoteStart) is never closed; the file may be truncated") }
        if !field.isEmpty || !fields.isEmpty { try endRow() }
        return try SpreadsheetReader.makeSheet(try decodedRows(), notices: notices)
    }

    private var notices: [String] = []

    /// The encoding the first bytes show, or nil while they could still be a byte-order mark.
    private static func decide(_ head: [UInt8], final: Bool) -> Encoding? {
        if head.starts(with: [0xFF, 0xFE]) { return .utf16(bigEndian: false) }
        if head.starts(with: [0xFE, 0xFF]) { return .utf16(bigEndian: true) }
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { return .utf8WithBOM }
        let couldBeMark = [[0xFF, 0xFE], [0xFE, 0xFF], [0xEF, 0xBB, 0xBF]].contains { mark in mark.starts(with: head) }
        return couldBeMark && !final ? nil : .utf8
    }

    private mutating func start(_ decided: Encoding) throws(SheetError) {
        encoding = decided
        let held = head
        head = []
        switch decided {
        case .utf8WithBOM: for byte in held.dropFirst(3) { try parse(byte) }
        case .utf16(let bigEndian): for byte in held.dropFirst(2) { try transcode(byte, bigEndian: bigEndian) }
        default: for byte in held { try parse(byte) }
        }
    }

    private mutating func transcode(_ byte: UInt8, bigEndian: Bool) throws(SheetError) {
        guard let first = pendingByte else {
            pendingByte = byte
            return
        }
        pendingByte = nil
        let unit = bigEndian ? UInt16(first) << 8 | UInt16(byte) : UInt16(byte) << 8 | UInt16(first)
        let scalar: Unicode.Scalar?
        if let high = pendingHighSurrogate {
            pendingHighSurrogate = nil
            guard (0xDC00...0xDFFF).contains(unit) else { throw SheetError("the file starts as UTF-16 but is not valid UTF-16") }
            scalar = Unicode.Scalar(0x10000 + (UInt32(high - 0xD800) << 10 | UInt32(unit - 0xDC00)))
        } else if (0xD800...0xDBFF).contains(unit) {
            pendingHighSurrogate = unit
            return
        } else {
            scalar = Unicode.Scalar(unit)
        }
        guard let scalar, let encoded = UTF8.encode(scalar) else { throw SheetError("the file starts as UTF-16 but is not valid UTF-16") }
        for utf8 in encoded { try parse(utf8) }
    }

    /// One byte of ASCII-compatible text (UTF-8 or Windows-1252: every byte of a multi-byte
    /// UTF-8 sequence is 0x80 or above, so none is taken for a comma, quote or line end).
    private mutating func parse(_ c: UInt8) throws(SheetError) {
        if afterCR {
            afterCR = false
            if c == UInt8(ascii: "\n") { return }
        }
        if inQuotes {
            if quotePending {
                quotePending = false
                if c == UInt8(ascii: "\"") {
                    field.append(c)
                    return
                }
                inQuotes = false
                afterQuote = true
                // The quote closed the value: `c` is read as outside quotes, below.
            } else {
                if c == UInt8(ascii: "\"") {
                    quotePending = true
                    return
                }
                if c == UInt8(ascii: "\n") { line += 1 }
                field.append(c)
                return
            }
        }
        switch c {
        case UInt8(ascii: ","):
            fields.append(field)
            field = []
            afterQuote = false
        case UInt8(ascii: "\r"):
            try endRow()
            line += 1
            rowStart = line
            afterCR = true
        case UInt8(ascii: "\n"):
            try endRow()
            line += 1
            rowStart = line
        case UInt8(ascii: "\""):
            if field.isEmpty && !afterQuote {
                inQuotes = true
                quoteStart = line
            } else {
                if problem == nil { problem = "a quote inside an unquoted value (line \(line)); quote the whole value and double inner quotes" }
                field.append(c)
            }
        default:
            if afterQuote, problem == nil { problem = "text after a closing quote (line \(line))" }
            field.append(c)
        }
    }

    private mutating func endRow() throws(SheetError) {
        fields.append(field)
        rows.append(RawRow(number: rowStart, fields: fields, problem: problem))
        fields = []
        field = []
        problem = nil
        afterQuote = false
        if rows.count > limit, let maximumRows { throw SpreadsheetReader.tooManyRows(maximumRows) }
    }

    /// The rows as text: UTF-8 if every field is (always after a UTF-8 or UTF-16 mark), else
    /// Windows-1252 for the whole file.
    private mutating func decodedRows() throws(SheetError) -> [(number: Int, fields: [String], problem: String?)] {
        var utf8: [(number: Int, fields: [String], problem: String?)] = []
        utf8.reserveCapacity(rows.count)
        var valid = true
        outer: for row in rows {
            var texts: [String] = []
            texts.reserveCapacity(row.fields.count)
            for field in row.fields {
                guard let text = String(validating: field, as: UTF8.self) else {
                    valid = false
                    break outer
                }
                texts.append(text)
            }
            utf8.append((row.number, texts, row.problem))
        }
        if valid { return utf8 }
        if case .utf8WithBOM = encoding { throw SheetError("the file starts as UTF-8 but is not valid UTF-8") }
        var windows: [(number: Int, fields: [String], problem: String?)] = []
        windows.reserveCapacity(rows.count)
        for row in rows {
            var texts: [String] = []
            for field in row.fields {
                guard let text = String(data: Data(field), encoding: .windowsCP1252) else {
                    throw SheetError("the file's text encoding is not UTF-8, UTF-16 or Windows-1252; save it as 'CSV UTF-8'")
                }
                texts.append(text)
            }
            windows.append((row.number, texts, row.problem))
        }
        notices.append("the file is not UTF-8; it was read as Windows-1252 (Excel's 'CSV' encoding). Check names with accents.")
        return windows
    }
}
