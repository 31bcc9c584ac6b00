import Foundation

/// The wire format's JSON encoder: the same bytes as `WireFormat.encoder()` (Foundation's
/// `JSONEncoder` with sorted keys, unescaped slashes and `Timestamp` dates), in about a third
/// of the time. Every message of every service is encoded here once; through Foundation's
/// encoder that takes about a fifth of each service's CPU in the pipeline benchmark.
///
/// It builds a small tree of the values (a keyed container has no "done" signal, so an object
/// can only be written once its parent is), then writes it with each object's keys in UTF-8
/// order, as Foundation does. `Tests/ModelsTests/WireEncoderTests.swift` checks the output
/// byte for byte against Foundation's for every message type and for awkward strings and numbers.
public enum WireEncoder {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        if let wire = value as? any WireCodable { return try WireWriter.bytes(of: wire) }
        let root = try node(for: value, parent: nil, key: nil)
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        write(root, to: &out)
        return out
    }

    // MARK: tree

    fileprivate enum Node {
        case string(String)
        /// A number or literal, written as it is (`12`, `0.5`, `true`, `null`).
        case literal(String)
        /// JSON written by a `WireCodable` value.
        case raw([UInt8])
        case object(ObjectBox)
        case array(ArrayBox)
    }

    fileprivate final class ObjectBox {
        var keys: [String] = []
        var values: [Node] = []
        /// Keys are not checked for repeats: synthesized `Codable` and dictionaries never repeat one.
        func set(_ key: String, _ value: Node) {
            keys.append(key)
            values.append(value)
        }
    }

    fileprivate final class ArrayBox {
        var values: [Node] = []
    }

    /// The node for one value; scalars and the types the wire format writes specially are
    /// recognised by their type (a pointer comparison), everything else encodes itself into a
    /// child encoder. `parent` and `key` give the coding path, built only when asked for.
    fileprivate static func node<T: Encodable>(for value: T, parent: TreeEncoder?, key: (any CodingKey)?) throws -> Node {
        if T.self == String.self { return .string(unsafeBitCast(value, to: String.self)) }
        if T.self == Int.self { return .literal(String(unsafeBitCast(value, to: Int.self))) }
        if T.self == Bool.self { return .literal(unsafeBitCast(value, to: Bool.self) ? "true" : "false") }
        if T.self == Date.self { return .string(Timestamp.format(unsafeBitCast(value, to: Date.self))) }
        if T.self == Double.self { return .literal(try number(unsafeBitCast(value, to: Double.self), path(parent, key))) }
        if T.self == Int64.self { return .literal(String(unsafeBitCast(value, to: Int64.self))) }
        if T.self == Int32.self { return .literal(String(unsafeBitCast(value, to: Int32.self))) }
        if T.self == UInt64.self { return .literal(String(unsafeBitCast(value, to: UInt64.self))) }
        if T.self == Float.self {
            let float = unsafeBitCast(value, to: Float.self)
            return .literal(try number(Double(float), path(parent, key), description: float.description))
        }
        if T.self == Data.self { return .string((value as! Data).base64EncodedString()) }
        if T.self == URL.self { return .string((value as! URL).absoluteString) }
        if T.self == Decimal.self { return .literal((value as! Decimal).description) }
        if let wire = value as? any WireCodable { return .raw(try WireWriter.bytes(of: wire)) }
        let encoder = TreeEncoder(parent: parent, key: key)
        try value.encode(to: encoder)
        // A value that encodes nothing is an empty object, as in Foundation.
        return encoder.result ?? .object(ObjectBox())
    }

    fileprivate static func path(_ parent: TreeEncoder?, _ key: (any CodingKey)?) -> [any CodingKey] {
        let base = parent?.codingPath ?? []
        return key.map { base + [$0] } ?? base
    }

    static func number(_ value: Double, _ codingPath: [any CodingKey], description: String? = nil) throws -> String {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) is not a valid JSON number"))
        }
        var text = description ?? value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    // MARK: writing

    fileprivate static func write(_ node: Node, to out: inout [UInt8]) {
        switch node {
        case .string(let text): writeString(text, to: &out)
        case .literal(let text): out.append(contentsOf: text.utf8)
        case .raw(let bytes): out.append(contentsOf: bytes)
        case .array(let box):
            out.append(UInt8(ascii: "["))
            for (index, value) in box.values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(value, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let box):
            out.append(UInt8(ascii: "{"))
            var order = Array(box.keys.indices)
            order.sort { box.keys[$0].utf8.lexicographicallyPrecedes(box.keys[$1].utf8) }
            for (position, index) in order.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                writeString(box.keys[index], to: &out)
                out.append(UInt8(ascii: ":"))
                write(box.values[index], to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A JSON string as Foundation writes it: `"` and `\` escaped, control characters as
    /// `\b \f \n \r \t` or `\u00XX`, everything else (slashes, non-ASCII) as it is.
    static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
                case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
                case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    out.append(contentsOf: [
                        UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                        hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)],
                    ])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Encoder

    fileprivate final class TreeEncoder: Encoder {
        let parent: TreeEncoder?
        let key: (any CodingKey)?
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        var result: Node?

        init(parent: TreeEncoder?, key: (any CodingKey)?) {
            self.parent = parent
            self.key = key
        }

        /// Walked up from the parents when asked for (errors, custom `encode(to:)` code).
        var codingPath: [any CodingKey] { WireEncoder.path(parent, key) }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            let box: ObjectBox
            if case .object(let existing) = result {
                box = existing
            } else {
                box = ObjectBox()
                result = .object(box)
            }
            return KeyedEncodingContainer(KeyedContainer<Key>(box: box, encoder: self))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            let box: ArrayBox
            if case .array(let existing) = result {
                box = existing
            } else {
                box = ArrayBox()
                result = .array(box)
            }
            return UnkeyedContainer(box: box, encoder: self)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueContainer(encoder: self) }
    }

    /// A nested container's values belong to a child encoder at `key`, so that paths stay right.
    fileprivate static func child(_ encoder: TreeEncoder, _ key: any CodingKey) -> TreeEncoder { TreeEncoder(parent: encoder, key: key) }

    fileprivate struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let box: ObjectBox
        let encoder: TreeEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }

        mutating func encodeNil(forKey key: Key) throws { box.set(key.stringValue, .literal("null")) }
        mutating func encode(_ value: String, forKey key: Key) throws { box.set(key.stringValue, .string(value)) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { box.set(key.stringValue, .literal(value ? "true" : "false")) }
        mutating func encode(_ value: Int, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
        mutating func encode(_ value: Double, forKey key: Key) throws {
            box.set(key.stringValue, .literal(try WireEncoder.number(value, WireEncoder.path(encoder, key))))
        }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            box.set(key.stringValue, try WireEncoder.node(for: value, parent: encoder, key: key))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let nested = ObjectBox()
            box.set(key.stringValue, .object(nested))
            return KeyedEncodingContainer(KeyedContainer<NestedKey>(box: nested, encoder: WireEncoder.child(encoder, key)))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let nested = ArrayBox()
            box.set(key.stringValue, .array(nested))
            return UnkeyedContainer(box: nested, encoder: WireEncoder.child(encoder, key))
        }

        mutating func superEncoder() -> any Encoder { SlotEncoder(parent: encoder, key: nil) { [box] in box.set("super", $0) } }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            SlotEncoder(parent: encoder, key: key) { [box] in box.set(key.stringValue, $0) }
        }
    }

    fileprivate struct UnkeyedContainer: UnkeyedEncodingContainer {
        let box: ArrayBox
        let encoder: TreeEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }
        var count: Int { box.values.count }

        private struct Index: CodingKey {
            var intValue: Int?
            var stringValue: String { "Index \(intValue ?? 0)" }
            init(_ value: Int) { intValue = value }
            init?(stringValue: String) { nil }
            init?(intValue: Int) { self.intValue = intValue }
        }

        mutating func encodeNil() throws { box.values.append(.literal("null")) }
        mutating func encode(_ value: String) throws { box.values.append(.string(value)) }
        mutating func encode(_ value: Bool) throws { box.values.append(.literal(value ? "true" : "false")) }
        mutating func encode(_ value: Int) throws { box.values.append(.literal(String(value))) }
        mutating func encode(_ value: Double) throws {
            box.values.append(.literal(try WireEncoder.number(value, WireEncoder.path(encoder, Index(count)))))
        }
        mutating func encode<T: Encodable>(_ value: T) throws {
            box.values.append(try WireEncoder.node(for: value, parent: encoder, key: Index(count)))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let nested = ObjectBox()
            let child = WireEncoder.child(encoder, Index(count))
            box.values.append(.object(nested))
            return KeyedEncodingContainer(KeyedContainer<NestedKey>(box: nested, encoder: child))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let nested = ArrayBox()
            let child = WireEncoder.child(encoder, Index(count))
            box.values.append(.array(nested))
            return UnkeyedContainer(box: nested, encoder: child)
        }

        mutating func superEncoder() -> any Encoder {
            let index = box.values.count
            box.values.append(.literal("null"))
            return SlotEncoder(parent: encoder, key: Index(index)) { [box] in box.values[index] = $0 }
        }
    }

    fileprivate struct SingleValueContainer: SingleValueEncodingContainer {
        let encoder: TreeEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }

        mutating func encodeNil() throws { encoder.result = .literal("null") }
        mutating func encode(_ value: String) throws { encoder.result = .string(value) }
        mutating func encode(_ value: Bool) throws { encoder.result = .literal(value ? "true" : "false") }
        mutating func encode(_ value: Int) throws { encoder.result = .literal(String(value)) }
        mutating func encode(_ value: Double) throws { encoder.result = .literal(try WireEncoder.number(value, codingPath)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            encoder.result = try WireEncoder.node(for: value, parent: encoder.parent, key: encoder.key)
        }
    }

    /// An encoder whose value lands in a slot of its parent once encoded (`superEncoder`).
    fileprivate final class SlotEncoder: Encoder {
        let inner: TreeEncoder
        let store: (Node) -> Void
        var codingPath: [any CodingKey] { inner.codingPath }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        init(parent: TreeEncoder, key: (any CodingKey)?, store: @escaping (Node) -> Void) {
            inner = TreeEncoder(parent: parent, key: key)
            self.store = store
        }

        deinit { store(inner.result ?? .object(ObjectBox())) }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { inner.container(keyedBy: type) }
        func unkeyedContainer() -> any UnkeyedEncodingContainer { inner.unkeyedContainer() }
        func singleValueContainer() -> any SingleValueEncodingContainer { inner.singleValueContainer() }
    }
}
