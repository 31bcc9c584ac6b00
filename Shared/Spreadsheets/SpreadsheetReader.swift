import Foundation
import ZIPFoundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// One data row of a spreadsheet: its 1-based row number in the file, its cells by
/// normalised header, and why it cannot be used, if it cannot.
public struct SheetRow: Sendable, Equatable {
    public var number: Int
    public var cells: [String: String]
    public var problem: String?
}

/// A file that cannot be read at all.
public struct SheetError: Error, Sendable, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public struct Sheet: Sendable {
    public var headers: [String]
    public var rows: [SheetRow]
    /// Things worth telling the sender that did not stop the import (e.g. the encoding used).
    public var notices: [String]
}

/// Reads the DA desk's spreadsheet: CSV (UTF-8, UTF-16 with BOM, or Windows-1252 as Excel
/// writes it) or XLSX (first worksheet). Header names are normalised: lower case, spaces and
/// hyphens as underscores.
public enum SpreadsheetReader {
    /// With `maximumRows`, a file with more rows than that (beyond its header) is refused as
    /// soon as the reader meets the next one, before the rest is read.
    public static func read(_ data: Data, maximumRows: Int? = nil) throws(SheetError) -> Sheet {
        if data.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return try XLSX.read(data, maximumRows: maximumRows) }
        if data.starts(with: [0x50, 0x4B]) { throw SheetError("the file looks like a damaged ZIP/XLSX") }
        return try CSV.read(data, maximumRows: maximumRows)
    }

    /// The refusal of a file over `maximumRows`.
    static func tooManyRows(_ maximumRows: Int) -> SheetError {
        SheetError("the file has more than \(maximumRows) rows; one upload takes at most \(maximumRows): split it into smaller files")
    }

    static func normaliseHeader(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            .replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "-", with: "_")
    }

    static func makeSheet(_ table: [(number: Int, fields: [String], problem: String?)], notices: [String]) throws(SheetError) -> Sheet {
        guard let headerIndex = table.firstIndex(where: { row in row.fields.contains { !$0.trimmingCharacters(in: .whitespaces).isEmpty } }) else {
            throw SheetError("the spreadsheet is empty")
        }
        let headers = table[headerIndex].fields.map(normaliseHeader)
        var seen = Set<String>()
        for header in headers where !header.isEmpty {
            guard seen.insert(header).inserted else { throw SheetError("column '\(header)' appears twice in the header row") }
        }
        var rows: [SheetRow] = []
        for row in table[(headerIndex + 1)...] {
            if row.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) && row.problem == nil { continue }
            var problem = row.problem
            var cells: [String: String] = [:]
            for (i, value) in row.fields.enumerated() {
                if i >= headers.count || headers[i].isEmpty {
                    if !value.trimmingCharacters(in: .whitespaces).isEmpty, problem == nil {
                        problem = "has a value in column \(i + 1), which has no header"
                    }
                    continue
                }
                if value.contains("\u{0}"), problem == nil { problem = "column \(headers[i]) contains NUL characters" }
                cells[headers[i]] = value.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            rows.append(SheetRow(number: row.number, cells: cells, problem: problem))
        }
        return Sheet(headers: headers.filter { !$0.isEmpty }, rows: rows, notices: notices)
    }
}

/// RFC 4180 CSV, read whole through the incremental reader.
enum CSV {
    static func read(_ data: Data, maximumRows: Int? = nil) throws(SheetError) -> Sheet {
        var reader = CSVStreamReader(maximumRows: maximumRows)
        try reader.feed(data)
        return try reader.finish()
    }
}

/// Office Open XML spreadsheets: the first worksheet, shared and inline strings, numbers,
/// booleans and dates (by cell style). Formula cells are refused row by row.
enum XLSX {
    static func read(_ data: Data, maximumRows: Int? = nil) throws(SheetError) -> Sheet {
        // Our own bounds-checked reading of the ZIP container (ZipParts), not ZIPFoundation's
        // Archive: on damaged input its in-memory reader traps and its file reader can loop
        // forever on a deflate stream that never ends (both found by the fuzz pass).
        let bytes = [UInt8](data)
        let parts = try ZipParts.entries(bytes)
        func entry(_ path: String) throws(SheetError) -> Data? {
            guard let item = parts[path] else { return nil }
            let out = try ZipParts.extract(item, from: bytes)
            // Spreadsheet programs write their XML as UTF-8. Anything else is refused before it
            // reaches XMLParser, which traps on invalid UTF-8 in element names on Linux (found
            // by the fuzz pass).
            guard String(validating: out, as: UTF8.self) != nil else {
                throw SheetError("XLSX part \(path) is not UTF-8 text (damaged, or not saved by a spreadsheet program)")
            }
            return out
        }
        guard let workbook = try entry("xl/workbook.xml") else { throw SheetError("not an XLSX workbook: xl/workbook.xml is missing") }
        let sheetPath = try firstSheetPath(workbook: workbook, rels: try entry("xl/_rels/workbook.xml.rels"))
        guard let sheetXML = try entry(sheetPath) else { throw SheetError("the first worksheet (\(sheetPath)) is missing") }
        let shared = try entry("xl/sharedStrings.xml").map(SharedStrings.parse) ?? []
        let dateStyles = try entry("xl/styles.xml").map(DateStyles.parse) ?? []
        let rows = try SheetParser.parse(sheetXML, shared: shared, dateStyles: dateStyles, maximumRows: maximumRows)
        return try SpreadsheetReader.makeSheet(rows, notices: [])
    }

    static func firstSheetPath(workbook: Data, rels: Data?) throws(SheetError) -> String {
        let sheets = XMLElements.collect(workbook, names: ["sheet"])
        guard let first = sheets.first else { throw SheetError("the workbook has no worksheets") }
        let rid = first["r:id"] ?? first.first { $0.key.hasSuffix(":id") }?.value
        if let rels, let rid {
            for relation in XMLElements.collect(rels, names: ["Relationship"]) where relation["Id"] == rid {
                guard let target = relation["Target"] else { break }
                return target.hasPrefix("/") ? String(target.dropFirst()) : "xl/" + target
            }
        }
        return "xl/worksheets/sheet1.xml"
    }

    /// 1900 date system: serial 25569 is 1970-01-01. Excel times are local (Europe/London) wall times.
    static func excelDate(_ serial: Double) -> String? {
        // 0 ... 2958465 is 1899-12-30 ... 9999-12-31; beyond it (or NaN, inf) is not a date.
        guard serial.isFinite, serial >= 0, serial < 2_958_466 else { return nil }
        let seconds = ((serial - 25_569) * 86_400).rounded()
        let date = Date(timeIntervalSince1970: seconds)
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let c = utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        guard let year = c.year, let month = c.month, let dayOfMonth = c.day else { return nil }
        let day = String(format: "%04d-%02d-%02d", year, month, dayOfMonth)
        if serial == serial.rounded(.down) { return day }
        return day + String(format: "T%02d:%02d:%02d", c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }
}

/// Collects attributes of named elements (small XML parts: workbook, rels).
final class XMLElements: NSObject, XMLParserDelegate {
    private let names: Set<String>
    private var found: [[String: String]] = []

    private init(names: Set<String>) { self.names = names }

    static func collect(_ data: Data, names: Set<String>) -> [[String: String]] {
        let delegate = XMLElements(names: names)
        let parser = xmlParser(data)
        parser.delegate = delegate
        _ = parser.parse()
        return delegate.found
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:])
    {
        if names.contains(name) { found.append(attributes) }
    }
}

final class SharedStrings: NSObject, XMLParserDelegate {
    private var strings: [String] = []
    private var current = ""
    private var inText = false

    static func parse(_ data: Data) throws(SheetError) -> [String] {
        let delegate = SharedStrings()
        let parser = xmlParser(data)
        parser.delegate = delegate
        guard parser.parse() else {
            throw SheetError("xl/sharedStrings.xml is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "unknown error")")
        }
        return delegate.strings
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:])
    {
        if name == "si" { current = "" }
        if name == "t" { inText = true }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { if inText { current += string } }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "t" { inText = false }
        if name == "si" { strings.append(current) }
    }
}

/// Which cell style indexes (`s`) format numbers as dates or times.
final class DateStyles: NSObject, XMLParserDelegate {
    private var customFormats: [Int: String] = [:]
    private var inCellXfs = false
    private var xfFormats: [Int] = []

    static func parse(_ data: Data) throws(SheetError) -> Set<Int> {
        let delegate = DateStyles()
        let parser = xmlParser(data)
        parser.delegate = delegate
        guard parser.parse() else { throw SheetError("xl/styles.xml is not well-formed XML") }
        var dates = Set<Int>()
        for (index, format) in delegate.xfFormats.enumerated() {
            if (14...22).contains(format) || (45...47).contains(format) {
                dates.insert(index)
                continue
            }
            if let code = delegate.customFormats[format] {
                let bare = code.lowercased().replacingOccurrences(of: "\\\"[^\"]*\\\"", with: "", options: .regularExpression)
                if bare.contains("y") || bare.contains("d") || bare.contains("h") || bare.contains("ss") { dates.insert(index) }
            }
        }
        return dates
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:])
    {
        switch name {
        case "numFmt":
            if let id = attributes["numFmtId"].flatMap(Int.init), let code = attributes["formatCode"] { customFormats[id] = code }
        case "cellXfs": inCellXfs = true
        case "xf" where inCellXfs: xfFormats.append(attributes["numFmtId"].flatMap(Int.init) ?? 0)
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "cellXfs" { inCellXfs = false }
    }
}

/// Streams a worksheet's rows.
final class SheetParser: NSObject, XMLParserDelegate {
    private let shared: [String]
    private let dateStyles: Set<Int>
    private var rows: [(number: Int, fields: [String], problem: String?)] = []
    private var rowNumber = 0
    private var fields: [String] = []
    private var problem: String?
    private var cellRef = ""
    private var cellType = ""
    private var cellStyle = -1
    private var value = ""
    private var formula = ""
    private var capture: String?
    private var failure: String?
    /// The header row and the rows under it.
    private let limit: Int
    private let maximumRows: Int?

    init(shared: [String], dateStyles: Set<Int>, maximumRows: Int?) {
        self.shared = shared
        self.dateStyles = dateStyles
        self.maximumRows = maximumRows
        self.limit = maximumRows.map { $0 + 1 } ?? Int.max
    }

    static func parse(_ data: Data, shared: [String], dateStyles: Set<Int>, maximumRows: Int? = nil) throws(SheetError) -> [(
        number: Int, fields: [String], problem: String?
    )] {
        let delegate = SheetParser(shared: shared, dateStyles: dateStyles, maximumRows: maximumRows)
        let parser = xmlParser(data)
        parser.delegate = delegate
        guard parser.parse(), delegate.failure == nil else {
            throw SheetError(delegate.failure ?? "the worksheet is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "unknown error")")
        }
        return delegate.rows
    }

    static func columnIndex(_ ref: String) -> Int? {
        var index = 0
        var letters = 0
        for scalar in ref.unicodeScalars {
            guard scalar.properties.isAlphabetic else { break }
            let v = Int(scalar.value) - 64
            guard (1...26).contains(v) else { return nil }
            // XFD (16384) is the last column: stop before a long run of letters overflows.
            guard letters < 3 else { return Int.max }
            index = index * 26 + v
            letters += 1
        }
        return letters == 0 ? nil : index - 1
    }

    /// The last row number Excel allows.
    static let maximumRow = 1_048_576

    /// A row's number: its `r` attribute, else the one after the previous row.
    func nextRowNumber(_ attribute: String?) -> Int? {
        guard let attribute else { return rowNumber < Self.maximumRow ? rowNumber + 1 : nil }
        guard let number = Int(attribute), (1...Self.maximumRow).contains(number) else { return nil }
        return number
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:])
    {
        switch name {
        case "row":
            guard let number = nextRowNumber(attributes["r"]) else {
                failure = "row number \(attributes["r"] ?? "after \(rowNumber)") is out of range (1...\(Self.maximumRow))"
                parser.abortParsing()
                return
            }
            rowNumber = number
            fields = []
            problem = nil
        case "c":
            cellRef = attributes["r"] ?? ""
            cellType = attributes["t"] ?? "n"
            cellStyle = attributes["s"].flatMap(Int.init) ?? -1
            value = ""
            formula = ""
        case "v", "t", "f":
            capture = name
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        switch capture {
        case "v", "t": value += string
        case "f": formula += string
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        switch name {
        case "v", "t", "f":
            capture = nil
        case "c":
            let column = SheetParser.columnIndex(cellRef) ?? fields.count
            if column > 16_384 {
                failure = "cell reference \(cellRef) is out of range"
                parser.abortParsing()
                return
            }
            var text: String
            switch cellType {
            case "s":
                guard let i = Int(value), shared.indices.contains(i) else {
                    problem = problem ?? "cell \(cellRef) refers to a missing shared string"
                    text = ""
                    break
                }
                text = shared[i]
            case "b": text = value == "1" ? "TRUE" : "FALSE"
            case "e":
                text = ""
                problem = problem ?? "cell \(cellRef) holds an error value (\(value))"
            case "n" where dateStyles.contains(cellStyle):
                text = Double(value).flatMap(XLSX.excelDate) ?? value
            default: text = value
            }
            if !formula.isEmpty, problem == nil {
                problem = "cell \(cellRef) holds a formula (=\(formula)); formulas are not accepted, paste the values instead"
            }
            while fields.count < column { fields.append("") }
            if fields.count == column { fields.append(text) } else { fields[column] = text }
        case "row":
            rows.append((rowNumber, fields, problem))
            if rows.count > limit, let maximumRows {
                failure = SpreadsheetReader.tooManyRows(maximumRows).description
                parser.abortParsing()
            }
        default: break
        }
    }
}

/// A parser fed in chunks from a stream: Foundation's XMLParser(data:) on Linux hands libxml2
/// the whole document at once and fails with an internal error past about 10 MB.
func xmlParser(_ data: Data) -> XMLParser {
    XMLParser(stream: InputStream(data: data))
}

/// The parts of a ZIP container (an XLSX), read with every offset and size checked against
/// the file: the central directory, each part's local header, its stored or deflated data
/// (inflated by ZIPFoundation's zlib binding from a provider that never reads past the part),
/// its declared size (a "zip bomb" stops there) and its CRC-32.
enum ZipParts {
    /// Stops inflating (a stream that does not end within its part, or grows past its size).
    struct InflateStop: Error {}

    struct Entry: Sendable {
        var path: String
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
    }

    /// No part of a spreadsheet we read is larger (uploads are at most 32 MiB compressed).
    static let maximumPartSize = 128 * 1024 * 1024

    static func u16(_ bytes: [UInt8], _ at: Int) -> Int? {
        guard at >= 0, at + 2 <= bytes.count else { return nil }
        return Int(bytes[at]) | Int(bytes[at + 1]) << 8
    }

    static func u32(_ bytes: [UInt8], _ at: Int) -> Int? {
        guard at >= 0, at + 4 <= bytes.count else { return nil }
        return Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
    }

    static func entries(_ bytes: [UInt8]) throws(SheetError) -> [String: Entry] {
        let damaged = "not a readable XLSX (truncated or corrupt ZIP)"
        // The end-of-central-directory record: within the last 64 KiB + 22 bytes.
        guard bytes.count >= 22 else { throw SheetError("\(damaged): too short") }
        var eocd: Int?
        var at = bytes.count - 22
        while at >= max(0, bytes.count - 22 - 65_535) {
            if u32(bytes, at) == 0x0605_4B50 {
                eocd = at
                break
            }
            at -= 1
        }
        guard let eocd, let count = u16(bytes, eocd + 10), let size = u32(bytes, eocd + 12), let offset = u32(bytes, eocd + 16) else {
            throw SheetError("\(damaged): no end-of-central-directory record")
        }
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            throw SheetError("\(damaged): ZIP64 archives are not read; save the workbook again")
        }
        guard offset + size <= eocd else { throw SheetError("\(damaged): the central directory lies outside the file") }
        var result: [String: Entry] = [:]
        var p = offset
        for _ in 0..<count {
            guard u32(bytes, p) == 0x0201_4B50, let flags = u16(bytes, p + 8), let method = u16(bytes, p + 10), let crc = u32(bytes, p + 16),
                let compressed = u32(bytes, p + 20), let uncompressed = u32(bytes, p + 24), let nameLength = u16(bytes, p + 28),
                let extraLength = u16(bytes, p + 30), let commentLength = u16(bytes, p + 32), let local = u32(bytes, p + 42),
                p + 46 + nameLength <= offset + size
            else {
                throw SheetError("\(damaged): central directory entry at byte \(p) is damaged")
            }
            if compressed == 0xFFFF_FFFF || uncompressed == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
                throw SheetError("\(damaged): ZIP64 archives are not read; save the workbook again")
            }
            let path = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            if flags & 1 != 0 { throw SheetError("the XLSX is encrypted (part \(path)); save it without a password") }
            result[path] = Entry(
                path: path, method: UInt16(method), crc: UInt32(crc), compressedSize: compressed, uncompressedSize: uncompressed,
                localHeaderOffset: local)
            p += 46 + nameLength + extraLength + commentLength
        }
        return result
    }

    static func extract(_ entry: Entry, from bytes: [UInt8]) throws(SheetError) -> Data {
        let damaged = "XLSX part \(entry.path) cannot be read (truncated or corrupt)"
        guard u32(bytes, entry.localHeaderOffset) == 0x0403_4B50, let nameLength = u16(bytes, entry.localHeaderOffset + 26),
            let extraLength = u16(bytes, entry.localHeaderOffset + 28)
        else {
            throw SheetError("\(damaged): no local header at byte \(entry.localHeaderOffset)")
        }
        let start = entry.localHeaderOffset + 30 + nameLength + extraLength
        guard start + entry.compressedSize <= bytes.count else { throw SheetError("\(damaged): its data runs past the end of the file") }
        guard entry.uncompressedSize <= maximumPartSize else {
            throw SheetError("XLSX part \(entry.path) would be \(entry.uncompressedSize) bytes; more than \(maximumPartSize) is not read")
        }
        let compressed = bytes[start..<(start + entry.compressedSize)]
        var out = Data()
        switch entry.method {
        case 0:
            out = Data(compressed)
            guard out.count == entry.uncompressedSize else { throw SheetError("\(damaged): stored size differs from the declared size") }
            guard out.crc32(checksum: 0) == entry.crc else { throw SheetError("\(damaged): CRC-32 mismatch") }
        case 8:
            let chunk = 32 * 1024
            let limit = entry.uncompressedSize
            var handedOut = 0
            var padded = false
            var tooLarge = false
            do {
                let crc = try Data.decompress(
                    size: Int64(entry.compressedSize), bufferSize: chunk, skipCRC32: false,
                    provider: { _, size in
                        // Exactly `size` bytes each time (ZIPFoundation tells zlib the buffer is full):
                        // the part's data, then zeros, which inflate rejects; a stream that still has
                        // not ended is stopped rather than read past the part.
                        guard size > 0, !(padded && handedOut >= compressed.count) else { throw InflateStop() }
                        let from = compressed.startIndex + handedOut
                        let to = min(compressed.endIndex, from + size)
                        var piece = Data(compressed[from..<to])
                        handedOut += piece.count
                        if piece.count < size {
                            piece.append(Data(count: size - piece.count))
                            padded = true
                        }
                        return piece
                    },
                    consumer: { data in
                        out.append(data)
                        if out.count > limit {
                            tooLarge = true
                            throw InflateStop()
                        }
                    })
                guard out.count == entry.uncompressedSize else { throw SheetError("\(damaged): inflated size differs from the declared size") }
                guard crc == entry.crc else { throw SheetError("\(damaged): CRC-32 mismatch") }
            } catch let error as SheetError {
                throw error
            } catch {
                throw SheetError(
                    tooLarge
                        ? "\(damaged): it inflates past its declared size of \(limit) bytes"
                        : error is InflateStop ? "\(damaged): its compressed data ends early" : "\(damaged): \(error)")
            }
        default:
            throw SheetError("XLSX part \(entry.path) uses compression method \(entry.method); save the workbook again as .xlsx")
        }
        return out
    }
}
