import Foundation

/// A fast path for reading the wire format, strict by design: it parses well-formed JSON into a
/// flat token list and decodes from it, and gives up (`WireDecoder.GiveUp`) on anything
/// unusual: a duplicate key, invalid UTF-8, a number that is not plainly an integer where one is
/// wanted, a type mismatch, a missing field. `WireFormat.decode` then asks Foundation's
/// decoder, which decides and words the error, so a message is accepted only if Foundation
/// accepts it too, with the same value. `Tests/ModelsTests/WireDecoderTests.swift` checks that
/// on every message type and on thousands of mutated messages.
public enum WireDecoder {
    /// The fast path could not decode the input; Foundation's decoder will say why, or decode it.
    public struct GiveUp: Error {}

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        var parser = Parser(bytes: bytes)
        try parser.parseDocument()
        let document = Document(bytes: bytes, tokens: parser.tokens, escapedTexts: parser.escapedTexts)
        return try document.decode(T.self, at: 0)
    }

    /// A flat JSON object whose members are all strings, as (name, value) pairs in the order
    /// written: e.g. an outbox row's headers, read for every record the relay publishes. Gives up
    /// on anything else: another type at the root or in a member, a repeated name, bad JSON.
    public static func stringMembers(from bytes: [UInt8]) throws -> [(name: String, value: String)] {
        var parser = Parser(bytes: bytes)
        try parser.parseDocument()
        let document = Document(bytes: bytes, tokens: parser.tokens, escapedTexts: parser.escapedTexts)
        guard document.tokens[0].kind == .object else { throw GiveUp() }
        var members: [(name: String, value: String)] = []
        members.reserveCapacity(Int(document.tokens[0].count))
        var cursor = 1
        let end = Int(document.tokens[0].next)
        while cursor < end {
            let name = try document.string(at: cursor)
            let value = try document.string(at: cursor + 1)
            if members.contains(where: { $0.name == name }) { throw GiveUp() }
            members.append((name, value))
            cursor = Int(document.tokens[cursor + 1].next)
        }
        return members
    }

    // MARK: tokens

    /// One JSON value. Containers record the index just past their last token, so a value is
    /// skipped in one step.
    struct Token {
        enum Kind: UInt8 { case object, array, string, escapedString, number, trueValue, falseValue, null }
        var kind: Kind
        /// Strings: the bytes between the quotes; numbers: the number's bytes.
        var start: Int32
        var end: Int32
        /// Containers: index of the token after the container; others: own index + 1.
        var next: Int32
        /// Containers: number of members or elements; escaped strings: index of their text in
        /// `escapedTexts` (unescaped once, when the parser checks the escapes).
        var count: Int32
    }

    struct Parser {
        let bytes: [UInt8]
        var position = 0
        var tokens: [Token] = []
        var escapedTexts: [String] = []

        init(bytes: [UInt8]) {
            self.bytes = bytes
            tokens.reserveCapacity(bytes.count / 8)
        }

        /// Set when a byte above 0x7F is seen: the whole input is then checked to be UTF-8, as
        /// Foundation checks it (even in members no type reads).
        var nonASCII = false

        mutating func parseDocument() throws {
            guard bytes.count < Int32.max else { throw GiveUp() }
            skipSpace()
            try parseValue(depth: 0)
            skipSpace()
            guard position == bytes.count else { throw GiveUp() }
            if nonASCII {
                var decoder = UTF8()
                var iterator = bytes.makeIterator()
                decoding: while true {
                    switch decoder.decode(&iterator) {
                    case .scalarValue: continue
                    case .emptyInput: break decoding
                    case .error: throw GiveUp()
                    }
                }
            }
        }

        mutating func skipSpace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x0A, 0x0D, 0x09: position += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws {
            guard position < bytes.count, depth < 64 else { throw GiveUp() }
            switch bytes[position] {
            case UInt8(ascii: "{"): try parseContainer(.object, close: UInt8(ascii: "}"), depth: depth)
            case UInt8(ascii: "["): try parseContainer(.array, close: UInt8(ascii: "]"), depth: depth)
            case UInt8(ascii: "\""): try parseString()
            case UInt8(ascii: "t"): try literal("true", .trueValue)
            case UInt8(ascii: "f"): try literal("false", .falseValue)
            case UInt8(ascii: "n"): try literal("null", .null)
            default: try parseNumber()
            }
        }

        mutating func literal(_ text: StaticString, _ kind: Token.Kind) throws {
            let length = text.utf8CodeUnitCount
            guard position + length <= bytes.count else { throw GiveUp() }
            for i in 0..<length where bytes[position + i] != text.utf8Start[i] { throw GiveUp() }
            let index = tokens.count
            tokens.append(Token(kind: kind, start: Int32(position), end: Int32(position + length), next: Int32(index + 1), count: 0))
            position += length
        }

        /// An object (members: a string, `:`, a value) or an array, up to its closing bracket.
        mutating func parseContainer(_ kind: Token.Kind, close: UInt8, depth: Int) throws {
            let index = tokens.count
            tokens.append(Token(kind: kind, start: Int32(position), end: 0, next: 0, count: 0))
            position += 1
            skipSpace()
            var count: Int32 = 0
            if position < bytes.count, bytes[position] == close {
                position += 1
            } else {
                while true {
                    if kind == .object {
                        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw GiveUp() }
                        try parseString()
                        skipSpace()
                        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw GiveUp() }
                        position += 1
                        skipSpace()
                    }
                    try parseValue(depth: depth + 1)
                    count += 1
                    skipSpace()
                    guard position < bytes.count else { throw GiveUp() }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                        skipSpace()
                        continue
                    }
                    guard bytes[position] == close else { throw GiveUp() }
                    position += 1
                    break
                }
            }
            tokens[index].end = Int32(position)
            tokens[index].next = Int32(tokens.count)
            tokens[index].count = count
        }

        /// A string: control characters refused, escapes kept for later (the token says so).
        mutating func parseString() throws {
            position += 1
            let start = position
            var escaped = false
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    // Every escape is checked, read or not, as Foundation checks them; the text is kept.
                    var text: Int32 = 0
                    if escaped {
                        text = Int32(escapedTexts.count)
                        escapedTexts.append(try WireDecoder.unescape(bytes, start, position))
                    }
                    let index = tokens.count
                    tokens.append(
                        Token(
                            kind: escaped ? .escapedString : .string, start: Int32(start), end: Int32(position),
                            next: Int32(index + 1), count: text))
                    position += 1
                    return
                }
                if byte < 0x20 { throw GiveUp() }
                if byte >= 0x80 { nonASCII = true }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    position += 2
                    continue
                }
                position += 1
            }
            throw GiveUp()
        }

        /// A number in RFC 8259's grammar.
        mutating func parseNumber() throws {
            let start = position
            func digits() -> Int {
                let from = position
                while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
                return position - from
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count else { throw GiveUp() }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else {
                guard digits() > 0 else { throw GiveUp() }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard digits() > 0 else { throw GiveUp() }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw GiveUp() }
            }
            let index = tokens.count
            tokens.append(Token(kind: .number, start: Int32(start), end: Int32(position), next: Int32(index + 1), count: 0))
        }
    }

    /// The text of an escaped string; invalid escapes and lone surrogates give up.
    static func unescape(_ bytes: [UInt8], _ start: Int, _ end: Int) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        var i = start
        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= end else { throw GiveUp() }
            var value: UInt32 = 0
            for byte in bytes[at..<at + 4] {
                value <<= 4
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value |= UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): value |= UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): value |= UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw GiveUp()
                }
            }
            return value
        }
        while i < end {
            let byte = bytes[i]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                i += 1
                continue
            }
            guard i + 1 < end else { throw GiveUp() }
            switch bytes[i + 1] {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(i + 2)
                i += 6
                if (0xD800...0xDBFF).contains(scalar) {
                    // A surrogate pair; a lone surrogate is left to Foundation.
                    guard i + 6 <= end, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw GiveUp() }
                    let low = try hex4(i + 2)
                    guard (0xDC00...0xDFFF).contains(low) else { throw GiveUp() }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw GiveUp()
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw GiveUp() }
                out.append(contentsOf: Array(String(Character(unicode)).utf8))
                continue
            default:
                throw GiveUp()
            }
            i += 2
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw GiveUp() }
        return text
    }

    // MARK: decoding

    final class Document {
        let bytes: [UInt8]
        let tokens: [Token]
        let escapedTexts: [String]

        init(bytes: [UInt8], tokens: [Token], escapedTexts: [String]) {
            self.bytes = bytes
            self.tokens = tokens
            self.escapedTexts = escapedTexts
        }

        func decode<T: Decodable>(_ type: T.Type, at index: Int) throws -> T {
            if T.self == String.self { return unsafeBitCast(try string(at: index), to: T.self) }
            if T.self == Int.self { return unsafeBitCast(try integer(Int.self, at: index), to: T.self) }
            if T.self == Bool.self { return unsafeBitCast(try bool(at: index), to: T.self) }
            if T.self == Double.self { return unsafeBitCast(try double(at: index), to: T.self) }
            if T.self == Date.self {
                guard let date = Timestamp.parse(try string(at: index)) else { throw GiveUp() }
                return unsafeBitCast(date, to: T.self)
            }
            if T.self == Int64.self { return unsafeBitCast(try integer(Int64.self, at: index), to: T.self) }
            if T.self == Int32.self { return unsafeBitCast(try integer(Int32.self, at: index), to: T.self) }
            // Other special types (Data, URL, Decimal, Float…) are left to Foundation.
            if T.self == Data.self || T.self == URL.self || T.self == Decimal.self || T.self == Float.self { throw GiveUp() }
            if let wire = T.self as? any WireCodable.Type {
                return try wire.init(wire: WireObject(document: self, index: index)) as! T
            }
            return try T(from: TokenDecoder(document: self, index: index))
        }

        func string(at index: Int) throws -> String {
            let token = tokens[index]
            switch token.kind {
            case .string:
                // The document was checked to be UTF-8 as a whole (`parseDocument`) and a string's
                // quotes are ASCII, so its bytes are UTF-8 and `String(decoding:as:)` takes them as
                // they are, on the standard library's UTF-8 fast path. (`String(validating:as:)`
                // would check them again through its generic path, a metadata lookup per string:
                // 3.5% of the durable relay's CPU, docs/BENCHMARKS.md.)
                return bytes.withUnsafeBufferPointer { buffer in
                    String(decoding: UnsafeBufferPointer(rebasing: buffer[Int(token.start)..<Int(token.end)]), as: UTF8.self)
                }
            case .escapedString:
                return escapedTexts[Int(token.count)]
            default:
                throw GiveUp()
            }
        }

        /// Only a plain integer (no fraction or exponent) in the type's range.
        func integer<I: FixedWidthInteger>(_ type: I.Type, at index: Int) throws -> I {
            let token = tokens[index]
            guard token.kind == .number else { throw GiveUp() }
            var value: I = 0
            var i = Int(token.start)
            let negative = bytes[i] == UInt8(ascii: "-")
            if negative { i += 1 }
            guard i < Int(token.end) else { throw GiveUp() }
            while i < Int(token.end) {
                let byte = bytes[i]
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { throw GiveUp() }
                let digit = I(byte - UInt8(ascii: "0"))
                let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (next, overflow2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
                guard !overflow1, !overflow2 else { throw GiveUp() }
                value = next
                i += 1
            }
            return value
        }

        func double(at index: Int) throws -> Double {
            let token = tokens[index]
            guard token.kind == .number else { throw GiveUp() }
            let text = String(decoding: bytes[Int(token.start)..<Int(token.end)], as: UTF8.self)
            guard let value = Double(text), value.isFinite else { throw GiveUp() }
            return value
        }

        func bool(at index: Int) throws -> Bool {
            switch tokens[index].kind {
            case .trueValue: return true
            case .falseValue: return false
            default: throw GiveUp()
            }
        }

        /// The value token of member `key` of the object at `index`, or nil; a repeated key gives up.
        func member(_ key: String, of index: Int) throws -> Int? {
            var found: Int?
            var cursor = index + 1
            let end = Int(tokens[index].next)
            var key = key
            try key.withUTF8 { wanted in
                try bytes.withUnsafeBufferPointer { buffer in
                    while cursor < end {
                        let name = tokens[cursor]
                        let value = cursor + 1
                        let length = Int(name.end - name.start)
                        if name.kind == .string, length == wanted.count,
                            memcmp(buffer.baseAddress! + Int(name.start), wanted.baseAddress!, length) == 0
                        {
                            if found != nil { throw GiveUp() }
                            found = value
                        } else if name.kind == .escapedString, escapedTexts[Int(name.count)].utf8.elementsEqual(wanted) {
                            if found != nil { throw GiveUp() }
                            found = value
                        }
                        cursor = Int(tokens[value].next)
                    }
                }
            }
            return found
        }

        func isNull(_ index: Int) -> Bool { tokens[index].kind == .null }
    }

    struct TokenDecoder: Decoder {
        let document: Document
        let index: Int
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard document.tokens[index].kind == .object else { throw GiveUp() }
            return KeyedDecodingContainer(KeyedContainer<Key>(document: document, index: index))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard document.tokens[index].kind == .array else { throw GiveUp() }
            return UnkeyedContainer(document: document, index: index)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValueContainer(document: document, index: index) }
    }

    struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let document: Document
        let index: Int
        var codingPath: [any CodingKey] { [] }

        var allKeys: [Key] {
            var keys: [Key] = []
            var cursor = index + 1
            let end = Int(document.tokens[index].next)
            while cursor < end {
                if let name = try? document.string(at: cursor), let key = Key(stringValue: name) { keys.append(key) }
                cursor = Int(document.tokens[cursor + 1].next)
            }
            return keys
        }

        /// A repeated key counts as present, so that decoding it gives up (Foundation decides).
        func contains(_ key: Key) -> Bool {
            do { return try document.member(key.stringValue, of: index) != nil } catch { return true }
        }

        func value(_ key: Key) throws -> Int {
            guard let value = try document.member(key.stringValue, of: index) else { throw GiveUp() }
            return value
        }

        func decodeNil(forKey key: Key) throws -> Bool { document.isNull(try value(key)) }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try document.decode(T.self, at: try value(key)) }

        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try decodeIfPresent(type, key) }

        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try decodeIfPresent(type, key) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try decodeIfPresent(type, key) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try decodeIfPresent(type, key) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try decodeIfPresent(type, key) }

        private func decodeIfPresent<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
            guard let value = try document.member(key.stringValue, of: index), !document.isNull(value) else { return nil }
            return try document.decode(T.self, at: value)
        }

        func decode(_ type: String.Type, forKey key: Key) throws -> String { try document.string(at: try value(key)) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try document.integer(Int.self, at: try value(key)) }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try document.bool(at: try value(key)) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try document.double(at: try value(key)) }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try TokenDecoder(document: document, index: try value(key)).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try TokenDecoder(document: document, index: try value(key)).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { throw GiveUp() }
        func superDecoder(forKey key: Key) throws -> any Decoder { throw GiveUp() }
    }

    struct UnkeyedContainer: UnkeyedDecodingContainer {
        let document: Document
        var cursor: Int
        let end: Int
        var count: Int?
        var currentIndex = 0
        var codingPath: [any CodingKey] { [] }
        var isAtEnd: Bool { cursor >= end }

        init(document: Document, index: Int) {
            self.document = document
            cursor = index + 1
            end = Int(document.tokens[index].next)
            count = Int(document.tokens[index].count)
        }

        mutating func take() throws -> Int {
            guard cursor < end else { throw GiveUp() }
            let index = cursor
            cursor = Int(document.tokens[index].next)
            currentIndex += 1
            return index
        }

        mutating func decodeNil() throws -> Bool {
            guard cursor < end else { throw GiveUp() }
            guard document.isNull(cursor) else { return false }
            _ = try take()
            return true
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            guard cursor < end else { throw GiveUp() }
            let value = try document.decode(T.self, at: cursor)
            _ = try take()
            return value
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try TokenDecoder(document: document, index: try take()).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try TokenDecoder(document: document, index: try take()).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder { throw GiveUp() }
    }

    struct SingleValueContainer: SingleValueDecodingContainer {
        let document: Document
        let index: Int
        var codingPath: [any CodingKey] { [] }

        func decodeNil() -> Bool { document.isNull(index) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try document.decode(T.self, at: index) }
        func decode(_ type: String.Type) throws -> String { try document.string(at: index) }
        func decode(_ type: Int.Type) throws -> Int { try document.integer(Int.self, at: index) }
        func decode(_ type: Bool.Type) throws -> Bool { try document.bool(at: index) }
        func decode(_ type: Double.Type) throws -> Double { try document.double(at: index) }
    }
}
