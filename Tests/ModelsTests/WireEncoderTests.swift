import EncompassModels
import Foundation
import Testing

/// `WireEncoder` must write exactly what Foundation's encoder (`WireFormat.encoder()`) writes:
/// intake's content hashes and every reader depend on the bytes.
@Suite("The wire encoder writes Foundation's bytes")
struct WireEncoderTests {
    static let at = Timestamp.parse("2026-11-23T23:30:00.125Z")!

    static func foundation(_ value: some Encodable) throws -> [UInt8] { Array(try WireFormat.encoder().encode(value)) }

    static func expectSame(_ value: some Encodable, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let ours = try WireEncoder.encode(value)
        let theirs = try foundation(value)
        #expect(String(decoding: ours, as: UTF8.self) == String(decoding: theirs, as: UTF8.self), sourceLocation: sourceLocation)
    }

    static let address = PostalAddress(lines: ["Flat 2", "14 Queen's Road"], town: "Reading", county: "Berkshire", postcode: "RG1 4AR")
    static let incident = Incident(
        occurrenceNumber: "43260000123", forceCode: "43", occurredAt: at, reportedAt: at.addingTimeInterval(3600), incidentAddress: address,
        localPolicingArea: "Reading", riskLevel: .high, crime: true,
        parties: [
            Party(role: .victim, givenName: "Amara", familyName: "O'Neill", dateOfBirth: "1990-02-03", address: address),
            Party(role: .suspect, givenName: "Jo", familyName: "Smith"),
        ],
        children: [
            RecordedChild(
                givenName: "Zoë", familyName: "Smith-O'Neill", dateOfBirth: "2017-09-01", ageYears: 9, homeAddress: address,
                presence: .witness, school: RecordedSchool(name: "St Mary's C of E Primary", urn: "110001")),
            RecordedChild(givenName: "Sam", familyName: "Smith"),
        ])
    static let child = IdentifiedChild(
        childId: "c-1", givenName: "Zoë", familyName: "Smith", dateOfBirth: "2017-09-01", ageYears: 9,
        homeAddress: address, presence: .present, recordedSchool: RecordedSchool(name: "St Mary's"),
        relationship: "child of victim")
    static let school = ResolvedSchool(
        urn: "110001", name: "St Mary's C of E Primary School", localAuthorityCode: "871", localAuthorityName: "Reading",
        phase: "Primary", earlyYears: false, postcode: "RG1 1AA",
        contacts: [SchoolContact(role: "dsl", name: "J Bloggs", email: "dsl@school.example", phone: "0118 000 0000")])
    static let request = NoticeRequested(
        noticeId: "n-1", incident: incident, incidentRevision: 2, child: child, childSource: .officer,
        school: school, resolution: ["matched by URN", "open; age fits"])

    @Test("every message type, in its envelope")
    func messages() throws {
        let evidence = ResearchEvidence(
            score: 0.9371, explanation: ["same address", "surname 0.97"], sourceOccurrences: ["43230000001"],
            confirmedBy: "auto", confirmedAt: Self.at)
        func envelope<P: MessagePayload>(_ payload: P) -> Envelope<P> {
            Envelope(id: "m-1", key: "k/1", producer: "test", createdAt: Self.at, causationId: "c-0", payload: payload)
        }
        try Self.expectSame(envelope(Self.incident))
        try Self.expectSame(
            envelope(
                IncidentRecorded(
                    kind: .amendment, revision: 2, changes: ["risk level changed: medium → high"], source: "http",
                    incident: Self.incident)))
        try Self.expectSame(
            envelope(ChildIdentified(incident: Self.incident, incidentRevision: 1, child: Self.child, source: .officer, evidence: evidence)))
        try Self.expectSame(
            envelope(
                ChildIdentified(
                    incident: Self.incident, incidentRevision: 1, child: IdentifiedChild(childId: "c", givenName: "A", familyName: "B"),
                    source: .officer)))
        try Self.expectSame(envelope(Self.request))
        try Self.expectSame(
            envelope(
                NoticeDue(
                    request: Self.request, releaseAt: Self.at, escalation: true,
                    escalationContact: SchoolContact(role: "esm", email: "esm@force.example"), rules: ["next school day"])))
        for kind in NoticeEvent.Kind.allCases {
            try Self.expectSame(
                envelope(
                    NoticeEvent(
                        noticeId: "n-1", kind: kind, at: Self.at, forceCode: "43", occurrenceNumber: "1", schoolURN: "110001",
                        detail: "release 2026-11-24T08:00:00.000Z")))
        }
        try Self.expectSame(
            envelope(
                ReviewDecision(
                    forceCode: "43", occurrenceNumber: "1", proposalId: "r-1", verdict: .reject, reviewer: "PS 1234",
                    decidedAt: Self.at, note: "not this child")))
        try Self.expectSame(
            envelope(
                ReviewProposalState(
                    proposalId: "r-1", forceCode: "43", occurrenceNumber: "1", child: Self.child, evidence: evidence,
                    status: "pending", createdAt: Self.at, version: 3)))
        try Self.expectSame(
            envelope(
                NoticeEvent(
                    noticeId: "n-1", kind: .claimed, at: Self.at, forceCode: "43", occurrenceNumber: "1",
                    detail: "taken by dispatch instance dispatch-1", claimant: "d-0123456789abcdef")))
        try Self.expectSame(
            envelope(AccountPassword(account: "110001", hash: "pbkdf2-sha256$210000$c2FsdA==$aGFzaA==", setAt: Self.at, setBy: "mash-officer-1")))
        try Self.expectSame(
            envelope(
                SchoolFeedback(
                    childId: "c-1", noticeId: "n-1", schoolURN: "110001", kind: .noLongerAttends, reportedAt: Self.at,
                    reportedBy: "dsl@school.example", note: "moved in October")))
        try Self.expectSame(
            envelope(
                SchoolRegisterUpdate(
                    school: RegisteredSchool(
                        urn: "110001", name: "St Mary's", localAuthorityCode: "871", localAuthorityName: "Reading", status: "Open",
                        phase: "Primary", type: "Voluntary aided school", statutoryLowAge: 4, statutoryHighAge: 11, street: "Church St",
                        town: "Reading", postcode: "RG1 1AA", openDate: "1990-09-01", linkedURN: "100002"),
                    contacts: Self.school.contacts, source: "gias", updatedAt: Self.at, updatedBy: "ops")))
        try Self.expectSame(
            envelope(
                DeadLetterEvent(
                    service: "intake", originalTopic: "encompass.incidents.raw", originalPartition: 3, originalOffset: 1_234_567,
                    originalKey: nil, originalValue: Array("{\"a\":\u{1}}".utf8), originalMessageId: "m-0",
                    errorClass: "payload.validation", errorMessage: "children[0].dateOfBirth: in the future",
                    attempts: 1, firstFailedAt: Self.at, deadLetteredAt: Self.at)))
        try Self.expectSame(
            envelope(
                DeadLetterEvent(
                    service: "intake", originalTopic: "t", originalPartition: 0, originalOffset: 0, originalKey: "k",
                    originalValue: [0, 0xFF, 0x10], originalMessageId: nil, errorClass: "envelope.not-json",
                    errorMessage: "x", attempts: 5, firstFailedAt: Self.at, deadLetteredAt: Self.at)))
    }

    struct Scalars: Codable {
        var text: String
        var number: Double
        var float: Float
        var integer: Int
        var big: Int64
        var flag: Bool
        var when: Date
        var bytes: Data
        var missing: String?
        var list: [Double?]
        var nested: [[String]]
        var table: [String: Int]
    }

    @Test("awkward strings, numbers, dates, bytes, nulls and dictionaries, at random")
    func randomValues() throws {
        var random = SystemRandomNumberGenerator()
        let pieces = [
            "a", "Z", "\"", "\\", "/", "\n", "\r", "\t", "\u{8}", "\u{C}", "\u{0}", "\u{1F}", "\u{7F}", "é", "e\u{301}", "ß", "€",
            "\u{2028}", "\u{2029}", "😀", "👩‍👧", "<script>", "&", "'", " ", "0", "中",
        ]
        func text() -> String { (0..<Int.random(in: 0...12, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined() }
        func double() -> Double {
            switch Int.random(in: 0..<6, using: &random) {
            case 0: return Double(Int.random(in: -1_000_000...1_000_000, using: &random))
            case 1: return Double.random(in: -1...1, using: &random)
            case 2: return Double.random(in: -1e300...1e300, using: &random)
            case 3: return Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &random) & 0x7FEF_FFFF_FFFF_FFFF)
            case 4:
                return [0.0, -0.0, 0.1, 1e-7, 1e21, 123456789012345680000.0, Double.leastNonzeroMagnitude, Double.greatestFiniteMagnitude]
                    .randomElement(using: &random)!
            default: return Double(Int.random(in: 0...10_000, using: &random)) / 100
            }
        }
        for _ in 0..<2_000 {
            let value = Scalars(
                text: text(), number: double(), float: Float(double() / 1e280), integer: Int.random(in: Int.min...Int.max, using: &random),
                big: Int64.random(in: Int64.min...Int64.max, using: &random), flag: Bool.random(using: &random),
                when: Date(timeIntervalSince1970: Double(Int64.random(in: -2_000_000_000_000...4_000_000_000_000, using: &random)) / 1000),
                bytes: Data((0..<Int.random(in: 0...9, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }),
                missing: Bool.random(using: &random) ? nil : text(), list: [double(), nil, double()],
                nested: [[text(), text()], []],
                table: Dictionary(uniqueKeysWithValues: (0..<Int.random(in: 0...6, using: &random)).map { ("\(text())\($0)", $0) }))
            try Self.expectSame(value)
        }
    }

    @Test("a number JSON cannot hold is refused with its field's path, as Foundation refuses it")
    func nonFinite() throws {
        struct Score: Codable { var score: Double }
        for bad in [Double.nan, .infinity, -.infinity] {
            #expect(throws: EncodingError.self) { try WireEncoder.encode(Score(score: bad)) }
            #expect(throws: EncodingError.self) { try Self.foundation(Score(score: bad)) }
        }
        do {
            _ = try WireEncoder.encode(["scores": [1.0, .nan]])
            Issue.record("NaN was encoded")
        } catch let EncodingError.invalidValue(_, context) {
            #expect(context.codingPath.map(\.stringValue).first == "scores")
        }
    }
}
