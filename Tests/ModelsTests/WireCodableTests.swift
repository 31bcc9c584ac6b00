import EncompassModels
import Foundation
import Testing

/// The hand-written codec (`WireCodable`) of the messages on a notice's path must write
/// Foundation's bytes and read Foundation's values, for any value: random ones here, with
/// every optional field present or absent and awkward text. (`WireEncoderTests` and
/// `WireDecoderTests` run fixed messages and thousands of mutated ones through the same path.)
@Suite("The hand-written wire codec agrees with Foundation")
struct WireCodableTests {
    /// A seeded generator, so that a failure can be repeated (the seed is in the message).
    struct Random: RandomNumberGenerator {
        var generator: SeededRandom
        /// Every optional present and every list of objects non-empty (`everyFieldWritten`).
        var full = false

        init(state: UInt64) { generator = SeededRandom(seed: state) }
        mutating func next() -> UInt64 { generator.next() }

        static let pieces = ["a", "Zoë", "O'Neill", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{7F}", "😀", "é", "ß", " ", "-", "</script>", "=1+1"]

        mutating func text() -> String { (0..<Int.random(in: 0...6, using: &self)).map { _ in Self.pieces.randomElement(using: &self)! }.joined() }
        mutating func maybe<T>(_ make: (inout Random) -> T) -> T? { full || Bool.random(using: &self) ? make(&self) : nil }
        mutating func count() -> Int { Int.random(in: full ? 1...2 : 0...2, using: &self) }
        mutating func texts() -> [String] { (0..<Int.random(in: 0...3, using: &self)).map { _ in text() } }
        mutating func int() -> Int { [0, 1, -1, 9, 17, Int.max, Int.min].randomElement(using: &self)! }
        /// Whole milliseconds, as every service writes them.
        mutating func date() -> Date { Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_102_444_800_000, using: &self)) / 1000) }
        mutating func score() -> Double {
            [0, 1, 0.5, 0.9371, 1e-7, 123_456.789, Double.random(in: 0...1, using: &self)].randomElement(using: &self)!
        }
        mutating func pick<T: CaseIterable>(_ type: T.Type) -> T { T.allCases.randomElement(using: &self)! }

        mutating func address() -> PostalAddress {
            PostalAddress(lines: texts(), town: maybe { $0.text() }, county: maybe { $0.text() }, postcode: text())
        }

        mutating func incident() -> Incident {
            Incident(
                occurrenceNumber: text(), forceCode: text(), occurredAt: date(), reportedAt: date(), incidentAddress: address(),
                localPolicingArea: maybe { $0.text() }, riskLevel: pick(RiskLevel.self), crime: Bool.random(using: &self),
                parties: (0..<count()).map { _ in
                    Party(
                        role: pick(PartyRole.self), givenName: text(), familyName: text(), dateOfBirth: maybe { $0.text() },
                        address: maybe { $0.address() })
                },
                children: (0..<count()).map { _ in
                    RecordedChild(
                        givenName: text(), familyName: text(), dateOfBirth: maybe { $0.text() }, ageYears: maybe { $0.int() },
                        homeAddress: maybe { $0.address() }, presence: pick(ChildPresence.self),
                        school: maybe { RecordedSchool(name: $0.maybe { $0.text() }, urn: $0.maybe { $0.text() }) })
                },
                circumstances: maybe { $0.text() }, safeguardingInformation: maybe { $0.text() }
            )
        }

        mutating func child() -> IdentifiedChild {
            IdentifiedChild(
                childId: text(), givenName: text(), familyName: text(), dateOfBirth: maybe { $0.text() }, ageYears: maybe { $0.int() },
                homeAddress: maybe { $0.address() }, presence: pick(ChildPresence.self),
                recordedSchool: maybe { RecordedSchool(name: $0.maybe { $0.text() }, urn: $0.maybe { $0.text() }) },
                relationship: maybe { $0.text() },
                schoolOrigin: maybe { SchoolRecordOrigin(occurrenceNumber: $0.text(), recordedOn: $0.text(), homePostcode: $0.maybe { $0.text() }) })
        }

        mutating func contact() -> SchoolContact {
            SchoolContact(role: text(), name: maybe { $0.text() }, email: maybe { $0.text() }, phone: maybe { $0.text() })
        }

        mutating func request() -> NoticeRequested {
            let school = ResolvedSchool(
                urn: text(), name: text(), localAuthorityCode: text(), localAuthorityName: text(), phase: maybe { $0.text() },
                earlyYears: Bool.random(using: &self), postcode: maybe { $0.text() },
                contacts: (0..<count()).map { _ in contact() }, channel: pick(NoticeChannel.self)
            )
            return NoticeRequested(
                noticeId: text(), incident: incident(), incidentRevision: int(), child: child(),
                childSource: pick(ChildSource.self), school: school, resolution: texts())
        }
    }

    /// Writes `payload` in an envelope both ways and reads it back both ways.
    static func check<P: MessagePayload & WireCodable>(_ payload: P, _ random: inout Random, seed: UInt64) throws {
        let envelope = Envelope(
            id: random.text(), key: random.text(), producer: random.text(), createdAt: random.date(),
            causationId: random.maybe { $0.text() }, payload: payload)
        let ours = try WireEncoder.encode(envelope)
        let foundation = Array(try WireFormat.encoder().encode(envelope))
        #expect(String(decoding: ours, as: UTF8.self) == String(decoding: foundation, as: UTF8.self), "\(P.self), seed \(seed)")
        let read = try WireDecoder.decode(Envelope<P>.self, from: ours)
        #expect(read == envelope, "\(P.self), seed \(seed)")
        #expect(try WireFormat.decoder().decode(Envelope<P>.self, from: Data(ours)) == read, "\(P.self), seed \(seed)")
    }

    /// One value of every hand-coded message type.
    static func messages(_ random: inout Random) -> [any MessagePayload & WireCodable] {
        let evidence = random.maybe {
            ResearchEvidence(
                score: $0.score(), explanation: $0.texts(), sourceOccurrences: $0.texts(), confirmedBy: $0.maybe { $0.text() },
                confirmedAt: $0.maybe { $0.date() })
        }
        return [
            random.incident(),
            IncidentRecorded(
                kind: Bool.random(using: &random) ? .new : .amendment, revision: random.int(), changes: random.texts(),
                source: random.text(), incident: random.incident()),
            HistoricalIncident(source: random.text(), incident: random.incident()),
            ChildIdentified(
                incident: random.incident(), incidentRevision: random.int(), child: random.child(),
                source: random.pick(ChildSource.self), evidence: evidence),
            random.request(),
            NoticeDue(
                request: random.request(), releaseAt: random.date(), escalation: Bool.random(using: &random),
                escalationContact: random.maybe { $0.contact() }, rules: random.texts()),
            NoticeEvent(
                noticeId: random.text(), kind: random.pick(NoticeEvent.Kind.self), at: random.date(), forceCode: random.text(),
                occurrenceNumber: random.text(), schoolURN: random.maybe { $0.text() }, detail: random.maybe { $0.text() },
                claimant: random.maybe { $0.text() }, supersedes: random.maybe { $0.text() }),
        ]
    }

    /// The stored properties of `value` (and of the hand-coded values inside it) that its JSON
    /// object lacks: a field added to a type and not to its `write(to:)`.
    static func unwritten(_ value: Any, _ json: Any, path: String) -> [String] {
        guard let object = json as? [String: Any] else { return ["\(path): not an object"] }
        var problems: [String] = []
        for child in Mirror(reflecting: value).children {
            guard let label = child.label else { continue }
            var inner = child.value
            let mirror = Mirror(reflecting: inner)
            if mirror.displayStyle == .optional {
                guard let some = mirror.children.first?.value else {
                    problems.append("\(path).\(label): nil in a full value")
                    continue
                }
                inner = some
            }
            guard let member = object[label] else {
                problems.append("\(path).\(label): not written")
                continue
            }
            if inner is any WireCodable {
                problems += unwritten(inner, member, path: "\(path).\(label)")
            } else if let values = inner as? [any WireCodable], let items = member as? [Any] {
                // (Lists of objects are never empty in a full value, `Random.count`.)
                for (index, (element, item)) in zip(values, items).enumerated() {
                    problems += unwritten(element, item, path: "\(path).\(label)[\(index)]")
                }
            }
        }
        return problems
    }

    @Test("every stored field of every hand-coded type is written (a field added to a type and not to its codec fails here)")
    func everyFieldWritten() throws {
        var random = Random(state: 7)
        random.full = true
        func written<P: MessagePayload & WireCodable>(_ payload: P) throws -> (envelope: Any, json: Any) {
            let envelope = Envelope(id: "m", key: "k", producer: "p", createdAt: WireEncoderTests.at, causationId: "c", payload: payload)
            return (envelope, try JSONSerialization.jsonObject(with: Data(try WireEncoder.encode(envelope))))
        }
        for message in Self.messages(&random) {
            let (envelope, json) = try written(message)
            #expect(Self.unwritten(envelope, json, path: "\(type(of: message))") == [])
        }
    }

    @Test("random messages of every hand-coded type: Foundation's bytes, and read back as Foundation reads them")
    func randomMessages() throws {
        for seed in UInt64(1)...300 {
            var random = Random(state: seed)
            for message in Self.messages(&random) { try Self.check(message, &random, seed: seed) }
        }
    }

    @Test("a member out of place is still read (JSON objects have no order); a non-finite score is refused as Foundation refuses it")
    func orderAndNumbers() throws {
        let event = NoticeEvent(noticeId: "n-1", kind: .sent, at: WireEncoderTests.at, forceCode: "43", occurrenceNumber: "1")
        let envelope = Envelope(id: "m", key: "k", producer: "p", createdAt: WireEncoderTests.at, payload: event)
        var text = String(decoding: try WireEncoder.encode(envelope), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"version\":1", with: "\"zz\":[1,{\"a\":null}]")
        text = "{\"version\":1," + text.dropFirst()
        #expect(try WireDecoder.decode(Envelope<NoticeEvent>.self, from: Array(text.utf8)) == envelope)

        let evidence = ResearchEvidence(score: .nan, explanation: [], sourceOccurrences: [])
        #expect(throws: EncodingError.self) { try WireEncoder.encode(evidence) }
        do { _ = try WireEncoder.encode(evidence) } catch let EncodingError.invalidValue(_, context) {
            #expect(context.codingPath.map(\.stringValue) == ["score"])
        }
        #expect(throws: EncodingError.self) { try WireFormat.encoder().encode(evidence) }
    }

    @Test("the hot messages take the hand-written path; others keep Codable")
    func conformances() {
        #expect(WireFormat.isHandWritten(Envelope<NoticeDue>.self))
        #expect(WireFormat.isHandWritten(Envelope<IncidentRecorded>.self))
        #expect(!WireFormat.isHandWritten(Envelope<ReviewDecision>.self))
    }
}
