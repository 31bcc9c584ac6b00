import ArgumentParser
import EncompassDemo
import EncompassModels
import Foundation

/// The wire format's JSON: `WireEncoder` and `WireDecoder` against Foundation's `JSONEncoder`
/// and `JSONDecoder` (the baselines), on the pipeline's largest message (a `NoticeDue`, which carries
/// the notice request and its incident), in the same run.
struct CodecBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract: "Wire-format JSON: WireEncoder and WireDecoder vs Foundation's JSONEncoder and JSONDecoder, per message."
    )

    @Option(help: "Messages encoded and decoded per measurement.")
    var messages: Int = 20_000

    func run() async throws {
        let schools = try SchoolList.read(path: SchoolList.shippedFile)
        let day = CalendarDate(year: 2026, month: 11, day: 23)
        let incidents = WorldGenerator.eligibleIncidents(count: 100, day: day, schools: schools, seed: 1)
        let envelopes = incidents.enumerated().map { index, incident in
            let recorded = incident.children.first ?? RecordedChild(givenName: "A", familyName: "B")
            let child = IdentifiedChild(
                childId: "c-\(index)", givenName: recorded.givenName, familyName: recorded.familyName,
                dateOfBirth: recorded.dateOfBirth, ageYears: recorded.ageYears, homeAddress: recorded.homeAddress,
                presence: recorded.presence, recordedSchool: recorded.school, relationship: "child of victim")
            let school = ResolvedSchool(
                urn: "110001", name: "St Mary's C of E Primary School", localAuthorityCode: "871", localAuthorityName: "Reading",
                phase: "Primary", postcode: "RG1 1AA",
                contacts: [SchoolContact(role: "dsl", name: "J Bloggs", email: "dsl@school.example", phone: "0118 000 0000")])
            let request = NoticeRequested(
                noticeId: "n-\(index)", incident: incident, incidentRevision: 1, child: child, childSource: .officer,
                school: school, resolution: ["matched by URN", "open; age fits"])
            return Envelope(
                id: MessageID.fresh(), key: request.noticeId, producer: "scheduling", createdAt: Date(), causationId: MessageID.fresh(),
                payload: NoticeDue(request: request, releaseAt: Date(), rules: ["next school day 08:00"]))
        }
        let count = messages
        let foundation = WireFormat.encoder()
        var bytes = 0
        let baseline = try measure {
            for i in 0..<count { bytes &+= try foundation.encode(envelopes[i % envelopes.count]).count }
        }
        let ours = try measure {
            for i in 0..<count { bytes &+= try WireEncoder.encode(envelopes[i % envelopes.count]).count }
        }
        let encoded = try envelopes.map { try WireFormat.encode($0) }
        let data = encoded.map { Data($0) }
        let foundationDecoder = WireFormat.decoder()
        let decodeBaseline = try measure {
            for i in 0..<count { bytes &+= try foundationDecoder.decode(Envelope<NoticeDue>.self, from: data[i % data.count]).id.count }
        }
        let decoding = try measure {
            for i in 0..<count { bytes &+= try WireDecoder.decode(Envelope<NoticeDue>.self, from: encoded[i % encoded.count]).id.count }
        }
        for (value, bytes) in zip(data, encoded)
        where try WireDecoder.decode(Envelope<NoticeDue>.self, from: bytes) != foundationDecoder.decode(Envelope<NoticeDue>.self, from: value) {
            throw ValidationError("WireDecoder read a message differently from Foundation's decoder")
        }
        let average = encoded.map(\.count).reduce(0, +) / encoded.count
        print("wire-format JSON, \(count) NoticeDue envelopes of \(average) bytes on average (\(bytes % 2) check)")
        print(String(format: "  encode, Foundation JSONEncoder (baseline): %6.1f µs per message", baseline / Double(count) * 1e6))
        print(
            String(format: "  encode, WireEncoder:                       %6.1f µs per message (%.1fx)", ours / Double(count) * 1e6, baseline / ours))
        print(String(format: "  decode, Foundation JSONDecoder (baseline): %6.1f µs per message", decodeBaseline / Double(count) * 1e6))
        print(
            String(
                format: "  decode, WireDecoder:                       %6.1f µs per message (%.1fx)", decoding / Double(count) * 1e6,
                decodeBaseline / decoding))
    }

    private func measure(_ body: () throws -> Void) throws -> Double {
        try body() // warm up
        let start = ContinuousClock.now
        try body()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
