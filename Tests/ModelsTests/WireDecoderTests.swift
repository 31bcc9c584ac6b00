import EncompassModels
import Foundation
import Testing

/// `WireDecoder` is a fast path: when it reads a message it must read what Foundation's decoder
/// reads, and everything else must be left to Foundation (`WireFormat.decode` falls back).
@Suite("The wire decoder reads what Foundation reads, or leaves it to Foundation")
struct WireDecoderTests {
    typealias E = WireEncoderTests

    static func foundation<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? { try? WireFormat.decoder().decode(type, from: Data(bytes)) }

    static func envelope<P: MessagePayload>(_ payload: P) -> Envelope<P> {
        Envelope(id: "m-1", key: "k/1", producer: "test", createdAt: E.at, causationId: "c-0", payload: payload)
    }

    /// Every message type, each as the pipeline writes it.
    static func samples() throws -> [(name: String, bytes: [UInt8], check: ([UInt8]) -> (fast: Bool, agrees: Bool))] {
        func sample<P: MessagePayload>(_ payload: P) throws -> (String, [UInt8], ([UInt8]) -> (fast: Bool, agrees: Bool)) {
            let bytes = try WireFormat.encode(envelope(payload))
            return (
                P.schema, bytes,
                { input in
                    guard let fast = try? WireDecoder.decode(Envelope<P>.self, from: input) else { return (false, true) }
                    return (true, foundation(Envelope<P>.self, input) == fast)
                }
            )
        }
        let evidence = ResearchEvidence(
            score: 0.9371, explanation: ["same address"], sourceOccurrences: ["43230000001"], confirmedBy: "auto", confirmedAt: E.at)
        return [
            try sample(E.incident),
            try sample(
                IncidentRecorded(kind: .amendment, revision: 2, changes: ["risk level changed: medium → high"], source: "http", incident: E.incident)),
            try sample(ChildIdentified(incident: E.incident, incidentRevision: 1, child: E.child, source: .officer, evidence: evidence)),
            try sample(E.request),
            try sample(
                NoticeDue(request: E.request, releaseAt: E.at, escalation: true, escalationContact: SchoolContact(role: "esm"), rules: ["a \"rule\""])
            ),
            try sample(NoticeEvent(noticeId: "n-1", kind: .deliveredToRelay, at: E.at, forceCode: "43", occurrenceNumber: "1", detail: "d\\e/f")),
            try sample(
                ReviewDecision(forceCode: "43", occurrenceNumber: "1", proposalId: "r-1", verdict: .confirm, reviewer: "PS 1", decidedAt: E.at)),
            try sample(
                ReviewProposalState(
                    proposalId: "r-1", forceCode: "43", occurrenceNumber: "1", child: E.child, evidence: evidence,
                    status: "pending", createdAt: E.at, version: 3)),
            try sample(SchoolFeedback(childId: "c", noticeId: "n", schoolURN: "1", kind: .noLongerAttends, reportedAt: E.at, reportedBy: "dsl")),
            try sample(NoticeEvent(noticeId: "n-1", kind: .claimed, at: E.at, forceCode: "43", occurrenceNumber: "1", claimant: "d-1")),
            try sample(AccountPassword(account: "LA872", hash: "pbkdf2-sha256$1$c2FsdA==$aA==", setAt: E.at, setBy: "m")),
            try sample(
                DeadLetterEvent(
                    service: "intake", originalTopic: "t", originalPartition: 3, originalOffset: 9_000_000_000, originalKey: nil,
                    originalValue: Array("{\"a\":\u{1}}".utf8), originalMessageId: "m", errorClass: "x", errorMessage: "y",
                    attempts: 1, firstFailedAt: E.at, deadLetteredAt: E.at)),
        ]
    }

    @Test("every message type is read on the fast path, as Foundation reads it")
    func messages() throws {
        for sample in try Self.samples() {
            let outcome = sample.check(sample.bytes)
            #expect(outcome.fast, "\(sample.name) fell back to Foundation")
            #expect(outcome.agrees, "\(sample.name) read differently")
        }
    }

    @Test("mutated messages: whatever the fast path accepts, Foundation accepts with the same value")
    func mutations() throws {
        var random = SystemRandomNumberGenerator()
        let inserts: [[UInt8]] =
            [
                "\\u00e9", "\\ud83d\\ude00", "\\ud83d", "\\", "\"", ",", ":", "{", "}", "[", "]", "null", "1.0", "1e2", "-0", "01",
                " ", "\t", "\u{1}", "\u{FF}", "\"x\":1,", "true",
            ].map { Array($0.utf8) } + [[0xFF], [0xC3], [0xED, 0xA0, 0x80]]
        var fast = 0, total = 0
        for sample in try Self.samples() {
            for _ in 0..<400 {
                var bytes = sample.bytes
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let at = Int.random(in: 0..<bytes.count, using: &random)
                    switch Int.random(in: 0..<5, using: &random) {
                    case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
                    case 1: bytes.remove(at: at)
                    case 2: bytes.insert(contentsOf: inserts.randomElement(using: &random)!, at: at)
                    case 3:
                        // Repeat a member: `"key":value,` copied next to itself.
                        if let quote = bytes[at...].firstIndex(of: UInt8(ascii: ",")),
                            let end = bytes[(quote + 1)...].firstIndex(of: UInt8(ascii: ","))
                        {
                            bytes.insert(contentsOf: Array(bytes[(quote + 1)...end]), at: quote + 1)
                        }
                    default:
                        // A digit for a letter or the other way round, inside numbers and strings.
                        if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) {
                            bytes[at] = UInt8(ascii: "7")
                        } else {
                            bytes[at] = UInt8(ascii: "5")
                        }
                    }
                    if bytes.isEmpty { bytes = [UInt8(ascii: "{")] }
                }
                let outcome = sample.check(bytes)
                total += 1
                if outcome.fast { fast += 1 }
                #expect(outcome.agrees, "\(sample.name): \(String(decoding: bytes, as: UTF8.self))")
            }
        }
        // Some mutations leave a readable message (a changed letter in a name): the fast path took those.
        #expect(fast > total / 20, "only \(fast) of \(total) mutated messages were read on the fast path")
    }

    struct Text: Codable, Equatable {
        var text: String
        var number: Double
        var integer: Int
        var big: Int64
        var list: [Int?]
        var table: [String: Bool]
    }

    @Test("strings with escapes, surrogate pairs and non-ASCII, and numbers, at random")
    func randomValues() throws {
        var random = SystemRandomNumberGenerator()
        let pieces = ["a", "\"", "\\", "/", "\n", "\u{0}", "\u{1F}", "é", "e\u{301}", "€", "\u{2028}", "😀", "👩‍👧", "中", " "]
        func text() -> String { (0..<Int.random(in: 0...10, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined() }
        var fast = 0
        for _ in 0..<1_000 {
            let value = Text(
                text: text(), number: Double.random(in: -1e6...1e6, using: &random) * [1, 1e-300, 1e300, 0].randomElement(using: &random)!,
                integer: Int.random(in: Int.min...Int.max, using: &random), big: Int64.random(in: Int64.min...Int64.max, using: &random),
                list: [1, nil, -3], table: [text(): true, text() + "x": false])
            // Foundation's own output and a plainer one with every non-ASCII character escaped.
            let written = try WireFormat.encoder().encode(value)
            let escaped = String(decoding: written, as: UTF8.self).unicodeScalars.map { scalar -> String in
                guard scalar.value > 0x7F else { return String(scalar) }
                return String(scalar).utf16.map { String(format: "\\u%04x", $0) }.joined()
            }.joined()
            for bytes in [Array(written), Array(escaped.utf8)] {
                let ours = try? WireDecoder.decode(Text.self, from: bytes)
                if ours != nil { fast += 1 }
                #expect(ours == nil || ours == Self.foundation(Text.self, bytes))
                #expect(ours == value || ours == nil)
            }
        }
        #expect(fast == 2_000, "every well-formed value is read on the fast path")
    }

    @Test("a flat object of strings is read in order, as Foundation reads it; anything else gives up")
    func stringMembers() throws {
        var random = SeededRandom(seed: 10)
        let pieces = ["a", "\"", "\\", "/", "\n", "\u{0}", "é", "😀", "中", " ", "-", "1"]
        func text() -> String { (0..<Int.random(in: 0...8, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined() }
        for _ in 0..<500 {
            var table: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...5, using: &random) { table[text()] = text() }
            let bytes = Array(try WireFormat.encoder().encode(table))
            let members = try WireDecoder.stringMembers(from: bytes)
            #expect(Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.value) }) == table)
            #expect(members.map(\.name) == table.keys.sorted(), "in the order written (sorted keys)")
        }
        for refused in [#"{"a":1}"#, #"{"a":{"b":"c"}}"#, #"{"a":"1","a":"2"}"#, #"["a","b"]"#, #""a""#, #"{"a":"1""#, #"{"a":null}"#] {
            #expect(throws: WireDecoder.GiveUp.self, "\(refused)") { try WireDecoder.stringMembers(from: Array(refused.utf8)) }
        }
    }

    @Test("a string that is not valid UTF-8 gives up, in a name or a value, wherever the bad bytes are")
    func invalidUTF8() throws {
        // A lone continuation byte, a truncated sequence, an encoded surrogate, an overlong form,
        // a byte never used in UTF-8, and one after a valid U+FFFD (what a repairing decoder writes).
        let bad: [[UInt8]] = [[0x80], [0xC3], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xFF], [0xEF, 0xBF, 0xBD, 0xFF]]
        for bytes in bad {
            for text in [Array("{\"a\":\"".utf8) + bytes + Array("\"}".utf8), Array("{\"x".utf8) + bytes + Array("y\":\"1\"}".utf8)] {
                #expect(throws: WireDecoder.GiveUp.self, "\(bytes)") { try WireDecoder.stringMembers(from: text) }
            }
        }
        let replacement = Array("{\"a\":\"\u{FFFD}é\"}".utf8)
        #expect(try WireDecoder.stringMembers(from: replacement).map(\.value) == ["\u{FFFD}é"], "valid U+FFFD is read as it is")
    }
}
