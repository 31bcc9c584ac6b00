import Foundation

/// A type the wire format writes and reads by hand, without `Codable`'s generic containers:
/// the messages on a notice's path, which every service encodes or decodes once per message
/// (the containers' generic dispatch and metadata lookups are most of a `Codable` codec's time;
/// `encompass-bench codec` compares the two, docs/BENCHMARKS.md).
///
/// The bytes must be exactly those of `WireFormat.encoder()` (keys in UTF-8 order, an absent
/// optional left out), and reading must accept exactly what Foundation's decoder accepts,
/// with the same value: the fast reader gives up (`WireDecoder.GiveUp`) on anything else, and
/// `WireFormat` then asks Foundation, as for any other type. `Codable` stays the definition:
/// `Tests/ModelsTests/WireCodableTests.swift` checks both directions against Foundation on
/// random values of every conforming type.
public protocol WireCodable: Codable {
    /// Writes the value's JSON object, its keys in UTF-8 order.
    func write(to writer: inout WireWriter) throws
    /// Reads the value from a JSON object; throws `WireDecoder.GiveUp` for anything unusual.
    init(wire object: WireObject) throws
}

extension WireFormat {
    /// Whether values of `type` are written and read by hand (`WireCodable`) rather than through
    /// `Codable`'s generic path: a runtime question, e.g. for a generic envelope.
    public static func isHandWritten(_ type: Any.Type) -> Bool { type is any WireCodable.Type }
}

/// Writes JSON for `WireCodable.write(to:)`: one object at a time, fields in the order given.
public struct WireWriter {
    public internal(set) var bytes: [UInt8] = []
    /// No member written yet in the innermost open object.
    private var first = true

    public init() { bytes.reserveCapacity(2048) }

    /// Writes `value` as a whole JSON object.
    mutating func object(_ value: some WireCodable) throws {
        bytes.append(UInt8(ascii: "{"))
        first = true
        try value.write(to: &self)
        bytes.append(UInt8(ascii: "}"))
        first = false
    }

    /// `,"key":` (the comma when a member came before). Keys are plain ASCII, never escaped.
    private mutating func key(_ key: StaticString) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func field(_ name: StaticString, _ value: String) {
        key(name)
        WireEncoder.writeString(value, to: &bytes)
    }

    public mutating func field(_ name: StaticString, _ value: Int) {
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func field(_ name: StaticString, _ value: Bool) {
        key(name)
        // Straight from the literal's UTF-8: no array per field.
        if value { bytes.append(contentsOf: "true".utf8) } else { bytes.append(contentsOf: "false".utf8) }
    }

    public mutating func field(_ name: StaticString, _ value: Date) {
        field(name, Timestamp.format(value))
    }

    /// A number as Foundation writes it; a non-finite one is refused, as Foundation refuses it
    /// (the error names the field, not the whole path).
    public mutating func field(_ name: StaticString, _ value: Double) throws {
        key(name)
        bytes.append(contentsOf: try WireEncoder.number(value, [FieldName(stringValue: name.description)]).utf8)
    }

    private struct FieldName: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// `value`'s JSON object.
    static func bytes(of value: some WireCodable) throws -> [UInt8] {
        var writer = WireWriter()
        try writer.object(value)
        return writer.bytes
    }

    public mutating func field<E: RawRepresentable>(_ name: StaticString, _ value: E) where E.RawValue == String {
        field(name, value.rawValue)
    }

    public mutating func field(_ name: StaticString, _ value: some WireCodable) throws {
        key(name)
        try object(value)
    }

    public mutating func field(_ name: StaticString, _ values: [String]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            WireEncoder.writeString(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    public mutating func field<T: WireCodable>(_ name: StaticString, _ values: [T]) throws {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            try object(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// Any other value, through `WireEncoder` (the same bytes): for a rare member of a
    /// hand-coded type, not worth coding by hand. Absent, it writes nothing.
    public mutating func field(_ name: StaticString, encoded value: (some Encodable)?) throws {
        guard let value else { return }
        let encoded = try WireEncoder.encode(value)
        key(name)
        bytes.append(contentsOf: encoded)
    }

    // Optionals: an absent value writes nothing, as synthesized `encodeIfPresent` does.

    public mutating func field(_ name: StaticString, _ value: String?) {
        if let value { field(name, value) }
    }

    public mutating func field(_ name: StaticString, _ value: Int?) {
        if let value { field(name, value) }
    }

    public mutating func field(_ name: StaticString, _ value: Date?) {
        if let value { field(name, value) }
    }

    public mutating func field<T: WireCodable>(_ name: StaticString, _ value: T?) throws {
        if let value { try field(name, value) }
    }
}

/// One JSON object of a parsed message, read by `WireCodable.init(wire:)`. Every accessor
/// throws `WireDecoder.GiveUp` where Foundation's decoder might decide otherwise (a missing
/// field, a wrong type, a repeated key), so that Foundation decides.
public struct WireObject {
    let document: WireDecoder.Document
    let index: Int

    init(document: WireDecoder.Document, index: Int) throws {
        guard document.tokens[index].kind == .object else { throw WireDecoder.GiveUp() }
        self.document = document
        self.index = index
    }

    private func required(_ key: String) throws -> Int {
        guard let member = try document.member(key, of: index) else { throw WireDecoder.GiveUp() }
        return member
    }

    /// The member's token, or nil when it is absent or null (`decodeIfPresent`).
    private func present(_ key: String) throws -> Int? {
        guard let member = try document.member(key, of: index), !document.isNull(member) else { return nil }
        return member
    }

    public func string(_ key: String) throws -> String { try document.string(at: required(key)) }
    public func int(_ key: String) throws -> Int { try document.integer(Int.self, at: required(key)) }
    public func bool(_ key: String) throws -> Bool { try document.bool(at: required(key)) }
    public func double(_ key: String) throws -> Double { try document.double(at: required(key)) }
    public func date(_ key: String) throws -> Date { try Self.date(document.string(at: required(key))) }
    public func value<T: WireCodable>(_ key: String, as type: T.Type = T.self) throws -> T {
        try T(wire: WireObject(document: document, index: required(key)))
    }
    public func value<E: RawRepresentable>(_ key: String, as type: E.Type = E.self) throws -> E where E.RawValue == String {
        guard let value = E(rawValue: try string(key)) else { throw WireDecoder.GiveUp() }
        return value
    }

    public func strings(_ key: String) throws -> [String] {
        try elements(required(key)).map { try document.string(at: $0) }
    }

    public func values<T: WireCodable>(_ key: String, as type: T.Type = T.self) throws -> [T] {
        try elements(required(key)).map { try T(wire: WireObject(document: document, index: $0)) }
    }

    public func string(ifPresent key: String) throws -> String? { try present(key).map { try document.string(at: $0) } }
    public func int(ifPresent key: String) throws -> Int? { try present(key).map { try document.integer(Int.self, at: $0) } }
    public func date(ifPresent key: String) throws -> Date? { try present(key).map { try Self.date(document.string(at: $0)) } }
    public func value<T: WireCodable>(ifPresent key: String, as type: T.Type = T.self) throws -> T? {
        try present(key).map { try T(wire: WireObject(document: document, index: $0)) }
    }

    /// Any other `Decodable` member, through the wire decoder's `Codable` path (as strict);
    /// nil when absent or null. The reading side of `WireWriter.field(_:encoded:)`.
    public func decoded<T: Decodable>(ifPresent key: String, as type: T.Type = T.self) throws -> T? {
        try present(key).map { try document.decode(T.self, at: $0) }
    }

    /// The element tokens of the array at `array`.
    private func elements(_ array: Int) throws -> [Int] {
        let token = document.tokens[array]
        guard token.kind == .array else { throw WireDecoder.GiveUp() }
        var indices: [Int] = []
        indices.reserveCapacity(Int(token.count))
        var cursor = array + 1
        while cursor < Int(token.next) {
            indices.append(cursor)
            cursor = Int(document.tokens[cursor].next)
        }
        return indices
    }

    private static func date(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) else { throw WireDecoder.GiveUp() }
        return date
    }
}
