import EncompassModels
import Foundation

/// A register file that cannot be used at all.
public struct RegisterFileError: Error, Sendable, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What a register file holds: the schools, and the rows that could not be used.
public struct RegisterFile: Sendable {
    public enum Layout: String, Sendable { case gias, schools2018 = "schools-2018" }
    public var layout: Layout
    public var schools: [RegisteredSchool]
    /// 1-based line of the row and why it was skipped.
    public var rejected: [(row: Int, reason: String)]
    public var notices: [String]
}

/// Reads the school register: the DfE "Get Information About Schools" download
/// (`edubasealldataYYYYMMDD.csv`, Windows-1252, dd-mm-yyyy dates) or the layout of the shipped
/// 2018 list (`schools_2018_tvp_cambs.csv`). The layout is recognised by its header.
public enum RegisterImporter {
    /// DfE local authority names for the codes of the forces Encompass ships with (the GIAS file
    /// names its own LAs; the 2018 layout has codes only).
    public static let localAuthorityNames: [String: String] = [
        "825": "Buckinghamshire", "826": "Milton Keynes", "867": "Bracknell Forest", "868": "Windsor and Maidenhead",
        "869": "West Berkshire", "870": "Reading", "871": "Slough", "872": "Wokingham", "931": "Oxfordshire",
        "873": "Cambridgeshire", "874": "Peterborough",
    ]

    /// The shipped 2018 list (Services/SchoolResolution/Library/Resources).
    public static var bundledListURL: URL? {
        Bundle.module.url(forResource: "schools_2018_tvp_cambs", withExtension: "csv")
    }

    public static func read(_ data: Data) throws(RegisterFileError) -> RegisterFile {
        var notices: [String] = []
        let text: String
        if data.starts(with: [0xEF, 0xBB, 0xBF]), let decoded = String(data: data.dropFirst(3), encoding: .utf8) {
            text = decoded
        } else if let decoded = String(data: data, encoding: .utf8) {
            text = decoded
        } else if let decoded = String(data: data, encoding: .windowsCP1252) {
            text = decoded
            notices.append("read as Windows-1252 (the GIAS download's encoding)")
        } else {
            throw RegisterFileError("the file is neither UTF-8 nor Windows-1252 text")
        }
        let table = try parseCSV(text)
        guard let header = table.first else { throw RegisterFileError("the file is empty") }
        let columns = Dictionary(
            header.fields.enumerated().map { ($1.trimmingCharacters(in: .whitespaces).lowercased(), $0) },
            uniquingKeysWith: { first, _ in first })
        let layout: RegisterFile.Layout
        if columns["la (code)"] != nil && columns["establishmentname"] != nil {
            layout = .gias
        } else if columns["local authority"] != nil && columns["name"] != nil {
            layout = .schools2018
        } else {
            throw RegisterFileError(
                "unknown register layout: expected the GIAS columns (URN, \"LA (code)\", EstablishmentName, \"EstablishmentStatus (name)\" …) or the 2018 list's (URN, Name, …, Local Authority)"
            )
        }
        let required =
            layout == .gias
            ? ["urn", "la (code)", "establishmentname", "establishmentstatus (name)"]
            : ["urn", "name", "status", "local authority"]
        let missing = required.filter { columns[$0] == nil }
        guard missing.isEmpty else { throw RegisterFileError("missing column(s): \(missing.joined(separator: ", "))") }

        var schools: [RegisteredSchool] = []
        var rejected: [(Int, String)] = []
        var seen = Set<String>()
        for row in table.dropFirst() {
            if row.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            func cell(_ name: String) -> String? {
                guard let i = columns[name], i < row.fields.count else { return nil }
                let value = row.fields[i].trimmingCharacters(in: .whitespacesAndNewlines)
                return value.isEmpty || value == "nan" ? nil : value
            }
            let result = layout == .gias ? gias(cell) : schools2018(cell)
            switch result {
            case .success(let school):
                guard seen.insert(school.urn).inserted else {
                    rejected.append((row.line, "URN \(school.urn) appears twice"))
                    continue
                }
                schools.append(school)
            case .failure(let problem):
                rejected.append((row.line, problem.description))
            }
        }
        return RegisterFile(layout: layout, schools: schools, rejected: rejected, notices: notices)
    }

    static func gias(_ cell: (String) -> String?) -> Result<RegisteredSchool, RegisterFileError> {
        guard let urn = cell("urn").map(cleanURN), isURN(urn) else {
            return .failure(RegisterFileError("URN is missing, or neither a number nor an Ofsted early years reference (EY and 6 digits)"))
        }
        guard let name = cell("establishmentname") else { return .failure(RegisterFileError("URN \(urn): EstablishmentName is empty")) }
        guard let la = cell("la (code)") else { return .failure(RegisterFileError("URN \(urn): LA (code) is empty")) }
        return .success(
            RegisteredSchool(
                urn: urn, name: name, localAuthorityCode: la,
                localAuthorityName: cell("la (name)") ?? localAuthorityNames[la] ?? "LA \(la)",
                status: cell("establishmentstatus (name)") ?? "Open",
                phase: cell("phaseofeducation (name)"), type: cell("typeofestablishment (name)"),
                statutoryLowAge: cell("statutorylowage").flatMap(age), statutoryHighAge: cell("statutoryhighage").flatMap(age),
                street: cell("street"), locality: cell("locality"), town: cell("town"), postcode: cell("postcode"),
                openDate: cell("opendate").flatMap(isoDate), closeDate: cell("closedate").flatMap(isoDate)
            ))
    }

    static func schools2018(_ cell: (String) -> String?) -> Result<RegisteredSchool, RegisterFileError> {
        guard let urn = cell("urn").map(cleanURN), isURN(urn) else {
            return .failure(RegisterFileError("URN is missing, or neither a number nor an Ofsted early years reference (EY and 6 digits)"))
        }
        guard let name = cell("name") else { return .failure(RegisterFileError("URN \(urn): Name is empty")) }
        guard let la = cell("local authority").map(cleanURN) else { return .failure(RegisterFileError("URN \(urn): Local Authority is empty")) }
        let status =
            switch cell("status") {
            case "1": "Open"
            case "2": "Closed"
            case "3": "Open, but proposed to close"
            case "4": "Proposed to open"
            default: "Unknown"
            }
        let primary = cell("primary") == "1", secondary = cell("secondary") == "1", post16 = cell("post 16") == "1"
        let phase: String? =
            switch (primary, secondary, post16) {
            case (true, true, _): "All-through"
            case (true, false, _): "Primary"
            case (false, true, _): "Secondary"
            case (false, false, true): "16 plus"
            default: nil
            }
        return .success(
            RegisteredSchool(
                urn: urn, name: name, localAuthorityCode: la, localAuthorityName: localAuthorityNames[la] ?? "LA \(la)",
                status: status, phase: phase, type: cell("type"),
                statutoryLowAge: cell("age from").flatMap(age), statutoryHighAge: cell("age to").flatMap(age),
                street: cell("street"), town: cell("city"), postcode: cell("postcode"),
                openDate: cell("date opened").flatMap(isoDate), closeDate: cell("date closed").flatMap(isoDate),
                linkedURN: cell("other urn").map(cleanURN).flatMap { isURN($0) ? $0 : nil }
            ))
    }

    /// `146275.0` → `146275`; `ey123456` → `EY123456`.
    static func cleanURN(_ text: String) -> String { SchoolReference.clean(text) }

    /// A DfE URN, or an Ofsted early years reference (`EY` and 6 digits).
    static func isURN(_ text: String) -> Bool { SchoolReference.isValid(text) }

    static func age(_ text: String) -> Int? { Int(cleanURN(text)) }

    /// `dd-mm-yyyy` (GIAS), `dd/mm/yyyy`, `yyyymmdd` (2018 list) or ISO → `yyyy-mm-dd`.
    static func isoDate(_ text: String) -> String? {
        let parts = text.split(whereSeparator: { $0 == "-" || $0 == "/" }).map(String.init)
        var candidate: String?
        if parts.count == 3, parts[0].count == 2, parts[2].count == 4 {
            candidate = "\(parts[2])-\(parts[1])-\(parts[0])"
        } else if parts.count == 3, parts[0].count == 4 {
            candidate = text
        } else if text.count == 8, text.allSatisfy(\.isNumber) {
            let c = Array(text)
            candidate = "\(String(c[0..<4]))-\(String(c[4..<6]))-\(String(c[6..<8]))"
        }
        return candidate.flatMap { CalendarDate(iso: $0)?.description }
    }

    /// RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF.
    static func parseCSV(_ text: String) throws(RegisterFileError) -> [(line: Int, fields: [String])] {
        var table: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = String.UnicodeScalarView()
        var inQuotes = false
        var line = 1, rowStart = 1
        var previousWasQuote = false
        for c in text.unicodeScalars {
            if inQuotes {
                if c == "\"" {
                    inQuotes = false
                    previousWasQuote = true
                    continue
                }
                if c == "\n" { line += 1 }
                field.append(c)
                continue
            }
            if c == "\"" {
                if previousWasQuote { field.append("\"") }
                inQuotes = true
                previousWasQuote = false
                continue
            }
            previousWasQuote = false
            switch c {
            case ",":
                fields.append(String(field))
                field = String.UnicodeScalarView()
            case "\r":
                continue
            case "\n":
                fields.append(String(field))
                field = String.UnicodeScalarView()
                table.append((rowStart, fields))
                fields = []
                line += 1
                rowStart = line
            default:
                field.append(c)
            }
        }
        if inQuotes { throw RegisterFileError("a quoted value starting on line \(rowStart) is never closed; the file may be truncated") }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(String(field))
            table.append((rowStart, fields))
        }
        return table
    }
}
