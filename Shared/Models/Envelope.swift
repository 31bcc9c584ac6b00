import Foundation

/// A message body that travels in an `Envelope`. Each payload type names its schema and the
/// schema version it writes; readers accept `supportedVersions`.
public protocol MessagePayload: Codable, Sendable, Equatable {
    static var schema: String { get }
    static var schemaVersion: Int { get }
    static var supportedVersions: ClosedRange<Int> { get }
    /// Field-level checks beyond what decoding enforces. Empty when valid.
    func validationErrors() -> [FieldError]
}

extension MessagePayload {
    public static var supportedVersions: ClosedRange<Int> { 1...schemaVersion }
    public func validationErrors() -> [FieldError] { [] }
}

/// One problem with one field, e.g. `children[2].dateOfBirth: in the future`.
public struct FieldError: Sendable, Codable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// The wire format of every message: JSON, readable with kcat.
///
/// `id` identifies the message for de-duplication by consumers (inbox). A message derived from
/// another one gets a deterministic id (`MessageID.derived`), so that re-processing the input
/// after a crash or rebalance re-creates the same output id and downstream drops the repeat.
public struct Envelope<Payload: MessagePayload>: Codable, Sendable, Equatable {
    public var schema: String
    public var version: Int
    public var id: String
    public var key: String
    /// Service (or tool) that produced the message.
    public var producer: String
    public var createdAt: Date
    /// Id of the message that caused this one, if any.
    public var causationId: String?
    public var payload: Payload

    public init(id: String, key: String, producer: String, createdAt: Date = Date(), causationId: String? = nil, payload: Payload) {
        self.schema = Payload.schema
        self.version = Payload.schemaVersion
        self.id = id
        self.key = key
        self.producer = producer
        self.createdAt = createdAt
        self.causationId = causationId
        self.payload = payload
    }
}

/// Why a message could not be read. Each case says what is wrong and what to do.
public enum EnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    case notJSON(String)
    case missingField(String)
    case wrongSchema(expected: String, found: String)
    case unsupportedVersion(schema: String, version: Int, supported: ClosedRange<Int>)
    case invalidPayload(String)
    case validationFailed([FieldError])

    public var errorClass: String {
        switch self {
        case .notJSON: "envelope.not-json"
        case .missingField: "envelope.missing-field"
        case .wrongSchema: "envelope.wrong-schema"
        case .unsupportedVersion: "envelope.unsupported-version"
        case .invalidPayload: "payload.invalid"
        case .validationFailed: "payload.validation"
        }
    }

    public var description: String {
        switch self {
        case .notJSON(let detail):
            "message is not a JSON object (\(detail)); the producer must send an Encompass envelope"
        case .missingField(let field):
            "envelope field '\(field)' is missing; the producer must send schema, version, id, key, producer, createdAt and payload"
        case .wrongSchema(let expected, let found):
            "schema '\(found)' on a topic that carries '\(expected)'; the record was sent to the wrong topic"
        case .unsupportedVersion(let schema, let version, let supported):
            "\(schema) version \(version) is not supported (this service reads \(supported.lowerBound)...\(supported.upperBound)); upgrade the consumer or re-send in a supported version"
        case .invalidPayload(let detail):
            "payload does not match the schema: \(detail)"
        case .validationFailed(let errors):
            "payload failed validation: " + errors.map(\.description).joined(separator: "; ")
        }
    }
}

/// JSON coding shared by every service, so they cannot drift.
public enum WireFormat {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an ISO 8601 date-time")
            }
            return date
        }
        return decoder
    }

    public static func encode<P: MessagePayload>(_ envelope: Envelope<P>) throws -> [UInt8] {
        Array(try encoder().encode(envelope))
    }

    private struct Header: Decodable {
        var schema: String?
        var version: Int?
        var id: String?
    }

    /// Reads an envelope, checking schema, version and the payload's own validation.
    public static func decode<P: MessagePayload>(_ type: P.Type, from bytes: [UInt8]) throws(EnvelopeError) -> Envelope<P> {
        let data = Data(bytes)
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: data)
        } catch {
            throw .notJSON(describe(error))
        }
        guard let schema = header.schema else { throw .missingField("schema") }
        guard let version = header.version else { throw .missingField("version") }
        guard header.id?.isEmpty == false else { throw .missingField("id") }
        guard schema == P.schema else { throw .wrongSchema(expected: P.schema, found: schema) }
        guard P.supportedVersions.contains(version) else {
            throw .unsupportedVersion(schema: schema, version: version, supported: P.supportedVersions)
        }
        let envelope: Envelope<P>
        do {
            envelope = try decoder().decode(Envelope<P>.self, from: data)
        } catch {
            throw .invalidPayload(describe(error))
        }
        let problems = envelope.payload.validationErrors()
        guard problems.isEmpty else { throw .validationFailed(problems) }
        return envelope
    }

    /// A readable account of a decoding error: the field path and what was wrong.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return String(describing: error) }
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.hasPrefix(".") ? String(text.dropFirst()) : (text.isEmpty ? "(root)" : text)
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): required field missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(type), found null"
        case .dataCorrupted(let context):
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "\(path(context.codingPath)): \(underlying ?? context.debugDescription)"
        @unknown default:
            return String(describing: error)
        }
    }
}

/// ISO 8601 timestamps with optional fractional seconds, always written in UTC.
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted))
    }

    /// ISO 8601 with an offset (`Z`, `+01:00`), or a local time without one, which is read as
    /// Europe/London (police records are kept in local time).
    public static func parse(_ text: String) -> Date? {
        // A timestamp is short ASCII. Anything else is refused here: Foundation's DateFormatter
        // on Linux traps on some non-ASCII input (a combining mark inside the digits, found by
        // the fuzz pass).
        guard text.utf8.count <= 40, text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        for formatter in londonFormatters {
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    private static let londonFormatters: [DateFormatter] = [
        "yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm",
    ].map { format in
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB_POSIX")
        formatter.timeZone = TimeZone(identifier: "Europe/London")
        formatter.dateFormat = format
        formatter.isLenient = false
        return formatter
    }
}

/// Message ids. Fresh ids are random UUIDs; derived ids are a stable function of the parent id
/// and a purpose, so re-processing produces the same id.
public enum MessageID {
    public static func fresh() -> String { UUID().uuidString.lowercased() }

    public static func derived(from parent: String, _ purpose: String) -> String {
        let digest = StableHash.hex128(parent + "\u{1F}" + purpose)
        let chars = Array(digest)
        return "\(String(chars[0..<8]))-\(String(chars[8..<12]))-\(String(chars[12..<16]))-\(String(chars[16..<20]))-\(String(chars[20..<32]))"
    }
}

/// A fast, stable (platform- and run-independent) 128-bit hash: two FNV-1a 64 lanes.
/// Not cryptographic; used for ids and partition-independent keys.
public enum StableHash {
    public static func hex128(_ text: String) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325
        var b: UInt64 = 0x8422_2325_cbf2_9ce4 ^ 0x9e37_79b9_7f4a_7c15
        for byte in text.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b << 13) | (b >> 51)
        }
        a ^= a >> 33; a = a &* 0xff51_afd7_ed55_8ccd; a ^= a >> 33
        b ^= b >> 29; b = b &* 0xc4ce_b9fe_1a85_ec53; b ^= b >> 32
        return hex(a) + hex(b)
    }

    private static func hex(_ value: UInt64) -> String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
