import Foundation

/// The console's URL-encoded forms, decoded by Hummingbird's `URLEncodedFormDecoder`. Every
/// form a signed-in page posts carries the session's CSRF token (`csrf`); fields a form does not
/// have are nil, and fields a type does not name (such as a submit button's value) are ignored.
protocol StaffForm: Decodable, Sendable {
    var csrf: String? { get }
}

/// A form with nothing but its CSRF token (signing out).
struct PlainForm: StaffForm {
    var csrf: String?
}

/// A decision with an optional note (a proposal, a held CSC answer).
struct NoteForm: StaffForm {
    var csrf: String?
    var note: String?
}

/// Download the open CSC requests of one LPA.
struct RequestsDownloadForm: StaffForm {
    var csrf: String?
    var lpa: String?
    var format: String?
}

/// Dispatch's audit spreadsheet for a span of days.
struct NoticesExportForm: StaffForm {
    var csrf: String?
    var from: String?
    var to: String?
    var la: String?
    var format: String?
}

/// The sign-in form; its CSRF token repeats the sign-in cookie's (double submit).
struct SignInForm: StaffForm {
    var csrf: String?
    var name: String?
    var password: String?
}

/// `multipart/form-data` bodies of the console's upload form (Hummingbird has no multipart decoder).
public enum FormData {
    public struct Part: Sendable, Equatable {
        public var name: String
        public var fileName: String?
        public var data: Data
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case noBoundary
        case malformed

        public var description: String {
            switch self {
            case .noBoundary: "the upload is not multipart/form-data (no boundary)"
            case .malformed: "the upload is not a well-formed multipart/form-data body"
            }
        }
    }

    /// The boundary of a `multipart/form-data; boundary=…` content type.
    public static func boundary(contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return value.isEmpty || value.count > 200 ? nil : value
            }
        }
        return nil
    }

    /// Splits a multipart body into its parts (RFC 7578).
    public static func multipart(_ body: Data, boundary: String) throws(Failure) -> [Part] {
        let bytes = [UInt8](body)
        let delimiter = Array("--\(boundary)".utf8)
        let crlf: [UInt8] = [13, 10]
        var positions: [Int] = []
        var i = 0
        while let found = find(delimiter, in: bytes, from: i) {
            positions.append(found)
            i = found + delimiter.count
        }
        guard positions.count >= 2 else { throw .malformed }
        var parts: [Part] = []
        for (start, end) in zip(positions, positions.dropFirst()) {
            var from = start + delimiter.count
            // Skip the line break after the delimiter.
            if from + 1 < bytes.count, bytes[from] == 13, bytes[from + 1] == 10 { from += 2 } else { continue }
            guard let headerEnd = find(crlf + crlf, in: bytes, from: from), headerEnd < end else { throw .malformed }
            let headers = String(decoding: bytes[from..<headerEnd], as: UTF8.self)
            var contentEnd = end
            // The part's content ends before the CRLF that precedes the next delimiter.
            if contentEnd >= 2, bytes[contentEnd - 2] == 13, bytes[contentEnd - 1] == 10 { contentEnd -= 2 }
            let contentStart = headerEnd + 4
            guard contentStart <= contentEnd else { throw .malformed }
            var name: String?
            var fileName: String?
            for line in headers.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
                name = parameter("name", in: line)
                fileName = parameter("filename", in: line)
            }
            guard let name else { throw .malformed }
            parts.append(Part(name: name, fileName: fileName, data: Data(bytes[contentStart..<contentEnd])))
        }
        return parts
    }

    static func parameter(_ key: String, in line: String) -> String? {
        for item in line.split(separator: ";").dropFirst() {
            let pair = item.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].lowercased() == key else { continue }
            var value = String(pair[1])
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var i = start
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first {
                var match = true
                for j in 1..<needle.count where haystack[i + j] != needle[j] {
                    match = false
                    break
                }
                if match { return i }
            }
            i += 1
        }
        return nil
    }
}
