import EncompassModels
import Foundation
import Testing

struct Note: MessagePayload {
    static let schema = "encompass.test.note"
    static let schemaVersion = 2
    var text: String
    var when: Date?

    func validationErrors() -> [FieldError] {
        text.count > 10 ? [FieldError("text", "longer than 10 characters")] : []
    }
}

@Suite("Message envelope and wire format")
struct EnvelopeTests {
    @Test("an envelope round-trips as readable JSON")
    func roundTrip() throws {
        let date = try #require(Timestamp.parse("2026-03-29T00:59:59.250Z"))
        let envelope = Envelope(
            id: "m1", key: "k1", producer: "intake", createdAt: date, causationId: "c0",
            payload: Note(text: "hi", when: date))
        let bytes = try WireFormat.encode(envelope)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#""schema":"encompass.test.note""#))
        #expect(text.contains(#""version":2"#))
        #expect(text.contains(#""createdAt":"2026-03-29T00:59:59.250Z""#))
        let decoded = try WireFormat.decode(Note.self, from: bytes)
        #expect(decoded == envelope)
    }

    @Test(
        "each kind of bad envelope gets its own clear error",
        arguments: [
            ("not json", "envelope.not-json"),
            (#"[1,2]"#, "envelope.not-json"),
            (#"{"version":1,"id":"a","payload":{}}"#, "envelope.missing-field"),
            (#"{"schema":"encompass.test.note","id":"a","payload":{}}"#, "envelope.missing-field"),
            (#"{"schema":"encompass.test.note","version":2,"payload":{}}"#, "envelope.missing-field"),
            (#"{"schema":"other","version":1,"id":"a"}"#, "envelope.wrong-schema"),
            (#"{"schema":"encompass.test.note","version":3,"id":"a"}"#, "envelope.unsupported-version"),
            (
                #"{"schema":"encompass.test.note","version":2,"id":"a","key":"k","producer":"p","createdAt":"yesterday","payload":{"text":"x"}}"#,
                "payload.invalid"
            ),
            (
                #"{"schema":"encompass.test.note","version":2,"id":"a","key":"k","producer":"p","createdAt":"2026-01-01T00:00:00Z","payload":{"text":5}}"#,
                "payload.invalid"
            ),
            (
                #"{"schema":"encompass.test.note","version":2,"id":"a","key":"k","producer":"p","createdAt":"2026-01-01T00:00:00Z","payload":{"text":"far too long a note"}}"#,
                "payload.validation"
            ),
        ])
    func badEnvelopes(input: String, errorClass: String) {
        let error = #expect(throws: EnvelopeError.self) { try WireFormat.decode(Note.self, from: Array(input.utf8)) }
        #expect(error?.errorClass == errorClass)
        #expect((error?.description.count ?? 0) > 20)
    }

    @Test("decoding errors name the field path")
    func fieldPaths() {
        let input =
            #"{"schema":"encompass.test.note","version":2,"id":"a","key":"k","producer":"p","createdAt":"2026-01-01T00:00:00Z","payload":{"when":"2026-01-01T00:00:00Z"}}"#
        let error = #expect(throws: EnvelopeError.self) { try WireFormat.decode(Note.self, from: Array(input.utf8)) }
        #expect(error?.description.contains("payload.text: required field missing") == true)
    }

    @Test("derived message ids are stable, distinct per purpose and UUID-shaped")
    func derivedIds() {
        let a = MessageID.derived(from: "parent", "child-1")
        #expect(a == MessageID.derived(from: "parent", "child-1"))
        #expect(a != MessageID.derived(from: "parent", "child-2"))
        #expect(a != MessageID.derived(from: "parent2", "child-1"))
        #expect(UUID(uuidString: a) != nil)
        // Fixed values: ids must not change between releases or machines (stores keep them in
        // their inboxes). Pinned from the first implementation, which built the id from strings.
        let pinned = [
            ("parent", "child-1", "3eb3e339-13a3-b8ab-98a4-339a46f08838"),
            ("", "", "e8568bae-ebbf-355f-01a9-d59a4c72db23"),
            ("3f2a9c1e-0000-4000-8000-000000000001", "officer/0", "680637cf-0856-9a7f-b9b5-4b086d5394a3"),
            ("Zoë Ørsted", "research/c-1234", "39e0b97a-33e5-e883-ee45-ae11c082eff6"),
        ]
        for (parent, purpose, id) in pinned { #expect(MessageID.derived(from: parent, purpose) == id) }
        for (text, hash) in [
            ("", "ecba3df2c3383c52c3a8838c93e5d1f0"), ("encompass", "e7e3b9bb5ec369dda36394cdf4525c23"),
            ("Zoë", "2c8b0eb869f81c5e8c67eb31a22144fd"),
        ] {
            #expect(StableHash.hex128(text) == hash)
        }
        #expect(StableHash.hex128("") != StableHash.hex128("a"))
        let many = Set((0..<10_000).map { MessageID.derived(from: "p", "\($0)") })
        #expect(many.count == 10_000)
    }

    @Test("dead-letter events carry binary originals as base64 and text as text")
    func deadLetterEncoding() {
        let date = Date(timeIntervalSince1970: 0)
        let binary = DeadLetterEvent(
            service: "intake", originalTopic: "t", originalPartition: 0, originalOffset: 1, originalKey: nil,
            originalValue: [0xff, 0x00, 0x41], originalMessageId: nil, errorClass: "x", errorMessage: "y",
            attempts: 1, firstFailedAt: date, deadLetteredAt: date)
        #expect(binary.originalValue == nil && binary.originalBytes == [0xff, 0x00, 0x41])
        let text = DeadLetterEvent(
            service: "intake", originalTopic: "t", originalPartition: 0, originalOffset: 1, originalKey: "k",
            originalValue: Array("{\"a\":1}".utf8), originalMessageId: "m", errorClass: "x", errorMessage: "y",
            attempts: 1, firstFailedAt: date, deadLetteredAt: date)
        #expect(text.originalValue == "{\"a\":1}" && text.originalValueBase64 == nil)
    }
}

@Suite("Topic catalogue")
struct TopicTests {
    @Test("every topic has a unique name, a key, producers and consumers")
    func catalogue() {
        let names = Topics.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(Topics.all.allSatisfy { !$0.key.isEmpty && !$0.producers.isEmpty && !$0.consumers.isEmpty })
        #expect(Topics.deadLetters.map(\.name) == ServiceName.allCases.map { "encompass.dlq.\($0.rawValue)" })
        #expect(Topics.named("encompass.scheduling.changelog")?.compacted == true)
    }

    @Test("service defaults do not collide")
    func serviceDefaults() {
        #expect(Set(ServiceName.allCases.map(\.defaultHTTPPort)).count == ServiceName.allCases.count)
        #expect(Set(ServiceName.allCases.map(\.defaultGroupId)).count == ServiceName.allCases.count)
    }
}

@Suite("Text similarity")
struct TextSimilarityTests {
    func scalars(_ text: String) -> [Unicode.Scalar] { Array(text.unicodeScalars) }

    @Test("Jaro-Winkler: textbook values, the same over bytes and scalars, symmetric, 0 for nothing in common, 1 for equal")
    func jaroWinkler() {
        for (a, b, expected) in [("martha", "marhta", 0.9611), ("dwayne", "duane", 0.84), ("dixon", "dicksonx", 0.8133), ("abc", "xyz", 0.0)] {
            let bytes = TextSimilarity.jaroWinkler(Array(a.utf8), Array(b.utf8))
            #expect(abs(bytes - expected) < 0.001, "\(a)/\(b)")
            #expect(TextSimilarity.jaroWinkler(scalars(a), scalars(b)) == bytes)
            #expect(TextSimilarity.jaroWinkler(Array(b.utf8), Array(a.utf8)) == bytes)
        }
        #expect(TextSimilarity.jaroWinkler(scalars("zoë"), scalars("zoë")) == 1)
        #expect(TextSimilarity.jaroWinkler([UInt8](), Array("a".utf8)) == 0)
        // Over scalars an accented letter is one unit: "zoë"/"zoe" share two of three.
        #expect(TextSimilarity.jaroWinkler(scalars("zoë"), scalars("zoe")) > TextSimilarity.jaroWinkler(Array("zoë".utf8), Array("zoe".utf8)))
    }

    /// The textbook algorithm with a flag array per side: what `jaroWinkler` computes with bit
    /// masks (up to 64 elements) or a temporary buffer (longer), the reference it must equal.
    static func reference<Element: Equatable>(_ s: [Element], _ t: [Element]) -> Double {
        if s.isEmpty || t.isEmpty { return 0 }
        if s == t { return 1 }
        let window = max(0, max(s.count, t.count) / 2 - 1)
        var sMatched = [Bool](repeating: false, count: s.count), tMatched = [Bool](repeating: false, count: t.count)
        var matches = 0
        for i in 0..<s.count {
            let lo = max(0, i - window), hi = min(t.count - 1, i + window)
            if lo > hi { continue }
            for j in lo...hi where !tMatched[j] && s[i] == t[j] {
                sMatched[i] = true
                tMatched[j] = true
                matches += 1
                break
            }
        }
        if matches == 0 { return 0 }
        var transpositions = 0, k = 0
        for i in 0..<s.count where sMatched[i] {
            while !tMatched[k] { k += 1 }
            if s[i] != t[k] { transpositions += 1 }
            k += 1
        }
        let m = Double(matches)
        let jaro = (m / Double(s.count) + m / Double(t.count) + (m - Double(transpositions / 2)) / m) / 3
        var prefix = 0
        while prefix < min(4, s.count, t.count), s[prefix] == t[prefix] { prefix += 1 }
        return jaro + Double(prefix) * 0.1 * (1 - jaro)
    }

    @Test("Jaro-Winkler equals the textbook algorithm bit for bit: edge cases, unicode, transpositions, 64 elements and beyond, random pairs")
    func jaroWinklerEqualsReference() {
        var cases: [(String, String)] = [
            ("", ""), ("", "a"), ("a", ""), ("a", "a"), ("a", "b"), ("ab", "ba"), ("abc", "acb"), ("abcd", "badc"),
            ("martha", "marhta"), ("dwayne", "duane"), ("dixon", "dicksonx"), ("jones", "johnson"), ("crate", "trace"),
            ("zoë", "zoe"), ("zoë", "zoë"), ("søren", "soren"), ("Łukasz", "lukasz"), ("李小龍", "李小龙"), ("👩‍👧", "👩"),
            ("aaaa", "aa"), ("abab", "baba"), ("smith-jones", "jones-smith"), ("mc donald", "mcdonald"),
            (String(repeating: "ab", count: 32), String(repeating: "ba", count: 32)), // 64 and 64
            (String(repeating: "a", count: 64), String(repeating: "a", count: 63) + "b"),
            (String(repeating: "abc", count: 22), String(repeating: "acb", count: 22)), // 66: the buffer path
            (String(repeating: "x", count: 65), "x"), ("x", String(repeating: "yx", count: 40)),
        ]
        // Random pairs over a small alphabet (many matches, transpositions and repeats) and lengths 0...80.
        var rng = SeededRandom(seed: 26)
        let alphabet = Array("abcé d")
        func int(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &rng) }
        for round in 0..<20_000 {
            let longest = round % 50 == 0 ? 80 : 12
            let k = 2 + int(alphabet.count - 1)
            func word() -> String { String((0..<int(longest + 1)).map { _ in alphabet[int(k)] }) }
            var a = word(), b = word()
            if round % 5 == 0 { b = String(a.reversed()) }
            if round % 7 == 0, a.count > 1 { b = String(a.dropFirst()) + String(a.prefix(1)) }
            if round % 11 == 0 { a = b + "a" }
            cases.append((a, b))
        }
        var differing: [String] = []
        for (a, b) in cases {
            for (x, y) in [(a, b), (b, a)] {
                if TextSimilarity.jaroWinkler(Array(x.utf8), Array(y.utf8)) != Self.reference(Array(x.utf8), Array(y.utf8)) {
                    differing.append("bytes \(x)/\(y)")
                }
                if TextSimilarity.jaroWinkler(scalars(x), scalars(y)) != Self.reference(scalars(x), scalars(y)) {
                    differing.append("scalars \(x)/\(y)")
                }
            }
        }
        #expect(differing.isEmpty, "\(differing.count) pairs differ, first: \(differing.prefix(5))")
    }
}
