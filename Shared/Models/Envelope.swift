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

    /// An envelope's bytes (`WireEncoder`: the same bytes as `encoder()`, faster).
    public static func encode<P: MessagePayload>(_ envelope: Envelope<P>) throws -> [UInt8] {
        try WireEncoder.encode(envelope)
    }

    /// Reads any value in the wire format: `WireDecoder` first, then Foundation's decoder for
    /// what it gives up on, whose error is the one thrown.
    public static func value<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if let value = try? WireDecoder.decode(type, from: Array(data)) { return value }
        return try decoder().decode(type, from: data)
    }

    /// Any value in the wire format, e.g. for a store's JSON column (`WireEncoder`).
    public static func data(_ value: some Encodable) throws -> Data {
        Data(try WireEncoder.encode(value))
    }

    private struct Header: Decodable {
        var schema: String?
        var version: Int?
        var id: String?
    }

    /// Reads an envelope, checking schema, version and the payload's own validation.
    ///
    /// The common case (a well-formed envelope of the expected schema) is parsed once; only a
    /// record that fails is parsed again for its header, to say precisely what is wrong.
    public static func decode<P: MessagePayload>(_ type: P.Type, from bytes: [UInt8]) throws(EnvelopeError) -> Envelope<P> {
        let data = Data(bytes)
        let decoded: Envelope<P>?
        let payloadError: (any Error)?
        do {
            // The strict fast path first; anything it gives up on, Foundation decides.
            decoded = try (try? WireDecoder.decode(Envelope<P>.self, from: bytes)) ?? decoder().decode(Envelope<P>.self, from: data)
            payloadError = nil
        } catch {
            decoded = nil
            payloadError = error
        }
        if let envelope = decoded, envelope.schema == P.schema, P.supportedVersions.contains(envelope.version), !envelope.id.isEmpty {
            let problems = envelope.payload.validationErrors()
            guard problems.isEmpty else { throw .validationFailed(problems) }
            return envelope
        }
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
        throw .invalidPayload(payloadError.map(describe) ?? "unreadable payload")
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
    /// `2026-11-23T23:30:00.000Z`: UTC, milliseconds. Computed directly (every message carries
    /// several timestamps; Foundation's format styles cost microseconds each).
    public static func format(_ date: Date) -> String {
        // Whole milliseconds (all this project reads and writes) come back from binary floating
        // point a hair off: take the nearest one when within a microsecond, else truncate.
        let scaled = date.timeIntervalSince1970 * 1000
        let nearest = scaled.rounded()
        let milliseconds = Int64(abs(scaled - nearest) < 0.001 ? nearest : scaled.rounded(.down))
        return write(milliseconds, dateSeparator: 84, zone: true) ?? formatWithFoundation(date)
    }

    /// GRDB's storage text for a `Date` (`yyyy-MM-dd HH:mm:ss.SSS`, UTC; milliseconds rounded
    /// half up, as its DateFormatter rounds them), computed directly: GRDB formats every `Date`
    /// argument with a DateFormatter, a tenth of some services' time. Equal to GRDB's text
    /// (tested); nil outside 1583...9999 (ICU writes earlier dates in the Julian calendar),
    /// where the caller passes the `Date` to GRDB itself.
    public static func databaseText(_ date: Date) -> String? {
        let scaled = (date.timeIntervalSinceReferenceDate + 978_307_200) * 1000
        guard scaled.isFinite, scaled >= -12_212_553_600_000, scaled < 253_402_300_799_000 else { return nil }
        return write(Int64((scaled + 0.5).rounded(.down)), dateSeparator: 32, zone: false)
    }

    /// `yyyy-MM-ddTHH:mm:ss.SSS` (+ `Z`) from milliseconds since 1970; nil outside years 1...9999.
    private static func write(_ totalMilliseconds: Int64, dateSeparator: UInt8, zone: Bool) -> String? {
        var days = totalMilliseconds >= 0 ? totalMilliseconds / 86_400_000 : (totalMilliseconds - 86_399_999) / 86_400_000
        let msOfDay = totalMilliseconds - days * 86_400_000
        guard (-719_162...2_932_896).contains(days) else { return nil } // years 1...9999
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        var bytes = [UInt8](repeating: 0, count: zone ? 24 : 23)
        func put(_ value: Int64, at index: Int, width: Int) {
            var v = value
            for i in stride(from: index + width - 1, through: index, by: -1) {
                bytes[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        put(year, at: 0, width: 4)
        bytes[4] = 45
        put(month, at: 5, width: 2)
        bytes[7] = 45
        put(day, at: 8, width: 2)
        bytes[10] = dateSeparator
        put(msOfDay / 3_600_000, at: 11, width: 2)
        bytes[13] = 58
        put(msOfDay / 60_000 % 60, at: 14, width: 2)
        bytes[16] = 58
        put(msOfDay / 1_000 % 60, at: 17, width: 2)
        bytes[19] = 46
        put(msOfDay % 1_000, at: 20, width: 3)
        if zone { bytes[23] = 90 }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The same format by Foundation (reference for tests, and years outside 1...9999).
    public static func formatWithFoundation(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(
                separator: .omitted))
    }

    /// ISO 8601 with an offset (`Z`, `+01:00`), or a local time without one, which is read as
    /// Europe/London (police records are kept in local time).
    public static func parse(_ text: String) -> Date? {
        if let date = parseUTC(text) { return date }
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

    /// The form this project writes (`2026-11-23T23:30:00.000Z`, or without the milliseconds),
    /// read directly; anything else (offsets, other precisions, invalid dates) is left to
    /// Foundation.
    static func parseUTC(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { b -> Date? in
            guard b.count == 24 || b.count == 20, b[b.count - 1] == 90, b[4] == 45, b[7] == 45, b[10] == 84, b[13] == 58, b[16] == 58 else {
                return nil
            }
            func number(_ from: Int, _ width: Int) -> Int64? {
                var value: Int64 = 0
                for i in from..<(from + width) {
                    let digit = b[i] &- 48
                    guard digit < 10 else { return nil }
                    value = value * 10 + Int64(digit)
                }
                return value
            }
            guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
                let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
                year >= 1, (1...12).contains(month), hour < 24, minute < 60, second < 60
            else { return nil }
            var millisecond: Int64 = 0
            if b.count == 24 {
                guard b[19] == 46, let ms = number(20, 3) else { return nil }
                millisecond = ms
            }
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            let monthDays: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            guard day >= 1, day <= monthDays[Int(month) - 1] else { return nil }
            // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm).
            let y = month <= 2 ? year - 1 : year
            let era = (y >= 0 ? y : y - 399) / 400
            let yearOfEra = y - era * 400
            let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
            let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
            let days = era * 146_097 + dayOfEra - 719_468
            let milliseconds = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1_000 + millisecond
            return Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        }
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

    /// The 128-bit `StableHash` of `parent`, U+001F and `purpose`, as a lower-case UUID-shaped
    /// string (8-4-4-4-12 hex digits), written straight into the string: it runs for every
    /// message a service publishes.
    public static func derived(from parent: String, _ purpose: String) -> String {
        var lanes = StableHash.Lanes()
        lanes.add(parent)
        lanes.add(0x1F)
        lanes.add(purpose)
        let (a, b) = lanes.finish()
        return String(unsafeUninitializedCapacity: 36) { out in
            var position = 0
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                    out[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = nibble < 16 ? a : b
                out[position] = StableHash.hexDigit(word >> UInt64(60 - 4 * (nibble % 16)))
                position += 1
            }
            return 36
        }
    }
}

/// A fast, stable (platform- and run-independent) 128-bit hash: two FNV-1a 64 lanes.
/// Not cryptographic; used for ids and partition-independent keys.
public enum StableHash {
    public static func hex128(_ text: String) -> String {
        var lanes = Lanes()
        lanes.add(text)
        let (a, b) = lanes.finish()
        return String(unsafeUninitializedCapacity: 32) { out in
            for i in 0..<16 {
                out[i] = hexDigit(a >> UInt64(60 - 4 * i))
                out[16 + i] = hexDigit(b >> UInt64(60 - 4 * i))
            }
            return 32
        }
    }

    /// The two lanes, fed byte by byte (also for hashing a value without building its text).
    public struct Lanes {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325
        var b: UInt64 = 0x8422_2325_cbf2_9ce4 ^ 0x9e37_79b9_7f4a_7c15

        public init() {}

        @inline(__always) public mutating func add(_ byte: UInt8) {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b << 13) | (b >> 51)
        }

        public mutating func add(_ text: String) {
            var text = text
            text.withUTF8 { for byte in $0 { add(byte) } }
        }

        public func finish() -> (UInt64, UInt64) {
            var a = self.a, b = self.b
            a ^= a >> 33
            a = a &* 0xff51_afd7_ed55_8ccd
            a ^= a >> 33
            b ^= b >> 29
            b = b &* 0xc4ce_b9fe_1a85_ec53
            b ^= b >> 32
            return (a, b)
        }
    }

    /// The lower-case hex digit of the low four bits of `value`.
    @inline(__always) public static func hexDigit(_ value: UInt64) -> UInt8 {
        let nibble = UInt8(truncatingIfNeeded: value & 0xF)
        return nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
