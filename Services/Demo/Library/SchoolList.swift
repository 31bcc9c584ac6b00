import EncompassModels
import Foundation

/// A school of the shipped register, as the world generator needs it.
public struct WorldSchool: Sendable, Equatable {
    public var urn: String
    public var name: String
    public var town: String
    public var postcode: String
    public var localAuthorityCode: String
    public var open: Bool
    public var ageFrom: Int
    public var ageTo: Int
    public var type: String
}

public struct SchoolListError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Reads the layout of `schools_2018_tvp_cambs.csv` (URN, Name, Street, City, Postcode, Status,
/// …, Age From, Age To, …, Local Authority).
public enum SchoolList {
    public static func read(path: String) throws -> [WorldSchool] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SchoolListError(description: "cannot read the school list \(path)")
        }
        let rows = CSVRows.parse(String(decoding: data, as: UTF8.self))
        guard let header = rows.first else { throw SchoolListError(description: "\(path) is empty") }
        func column(_ name: String) throws -> Int {
            guard let index = header.firstIndex(of: name) else {
                throw SchoolListError(description: "\(path) has no column '\(name)'; expected the layout of schools_2018_tvp_cambs.csv")
            }
            return index
        }
        let urn = try column("URN"), name = try column("Name"), city = try column("City"), postcode = try column("Postcode")
        let status = try column("Status"), from = try column("Age From"), to = try column("Age To"), la = try column("Local Authority")
        let type = try column("Type")
        return rows.dropFirst().compactMap { row in
            guard row.count > max(urn, name, city, postcode, status, from, to, la, type), !row[urn].isEmpty else { return nil }
            return WorldSchool(
                urn: row[urn], name: row[name], town: row[city], postcode: row[postcode], localAuthorityCode: row[la],
                open: row[status] == "1", ageFrom: Int(row[from]) ?? 0, ageTo: Int(row[to]) ?? 0, type: row[type])
        }
    }
}

/// RFC 4180 rows (quoted fields with commas, doubled quotes, CRLF).
enum CSVRows {
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar?
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" {
                            field.unicodeScalars.append("\"")
                        } else {
                            quoted = false
                            pending = next
                        }
                    } else {
                        quoted = false
                    }
                } else {
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(field)
                field = ""
            } else if c == "\n" || c == "\r" {
                if c == "\r", let next = iterator.next(), next != "\n" { pending = next }
                row.append(field)
                field = ""
                if row != [""] { rows.append(row) }
                row = []
            } else {
                field.unicodeScalars.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows
    }
}

extension SchoolList {
    /// The shipped list of real Thames Valley and Cambridgeshire schools (2018, open and closed).
    public static var shippedFile: String {
        Bundle.module.url(forResource: "schools_2018_tvp_cambs", withExtension: "csv")!.path
    }
}
