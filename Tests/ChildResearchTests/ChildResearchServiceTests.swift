import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

func request(_ method: String, _ url: String, token: String?, body: [String: String]? = nil) async throws -> (status: Int, body: Data) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    if let body { request.httpBody = try JSONSerialization.data(withJSONObject: body) }
    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
}

struct Listing: Decodable { var proposals: [ReviewQueue.Proposal] }

@Suite("Child research service over Kafka and HTTP", .serialized, .tags(.kafka))
struct ChildResearchServiceTests {
    @Test(
        "history in; an incident without children is researched, reviewed over HTTP and confirmed onto encompass.children; officer children pass straight through; bad records are dead letters"
    )
    func endToEnd() async throws {
        let kafka = try TestKafka()
        let token = "review-token-123"
        let settings = ChildResearchService.Settings() // automatic confirmation off: every found child waits for review
        let configuration = ServiceConfiguration(
            service: .childResearch, kafka: kafka.client("child-research"), groupId: "research-\(UUID())",
            dataDirectory: TestPaths.temporaryDirectory("child-research"), instanceId: "research-test", httpPort: 0, apiToken: token)
        let host = try await ServiceHost(
            definition: ChildResearchService.definition(settings: settings), configuration: configuration,
            logger: TestLog.logger("child-research"))
        let task = Task { try await host.run(handleSignals: false) }
        let port = await host.httpPort()
        let base = "http://127.0.0.1:\(port)/v1/review"

        let producer = try KafkaProducer(configuration: .init(client: kafka.client("feed")), logger: TestLog.logger("feed"))
        for (i, past) in [History.h1, History.h2, History.h3].enumerated() {
            let envelope = Envelope(
                id: "history-\(i)", key: past.occurrenceNumber, producer: "intake",
                payload: HistoricalIncident(source: "history:test.jsonl", incident: past))
            try await producer.send(ProducerRecord(topic: Topics.history.name, key: past.occurrenceNumber, value: try WireFormat.encode(envelope)))
        }
        try await eventually("history indexed") { try await host.store.pool.read { try HistoryIndex.counts($0).incidents } == 3 }

        // An incident without children.
        let recorded = IncidentRecorded(kind: .new, revision: 1, changes: [], source: "http", incident: History.today)
        try await producer.send(
            ProducerRecord(
                topic: Topics.incidents.name, key: History.today.occurrenceNumber,
                value: try WireFormat.encode(Envelope(id: "incident-1", key: History.today.occurrenceNumber, producer: "intake", payload: recorded))))

        #expect(try await request("GET", base, token: nil).status == 401)
        var listing = Listing(proposals: [])
        try await eventually("proposals listed") {
            let answer = try await request("GET", base, token: token)
            listing = try WireFormat.decoder().decode(Listing.self, from: answer.body)
            return listing.proposals.count == 3
        }
        let oliver = try #require(listing.proposals.first { $0.child.givenName == "Oliver" })
        #expect(oliver.status == "pending" && oliver.evidence.score > 0.8 && !oliver.evidence.explanation.isEmpty)

        #expect(try await request("POST", "\(base)/\(oliver.proposalId)/confirm", token: token, body: [:]).status == 422)
        #expect(try await request("POST", "\(base)/r-unknown/confirm", token: token, body: ["reviewer": "PS 1234"]).status == 404)
        #expect(
            try await request("POST", "\(base)/\(oliver.proposalId)/confirm", token: token, body: ["reviewer": "PS 1234", "note": "known to CSC"])
                .status == 202)
        let lily = try #require(listing.proposals.first { $0.child.givenName == "Lily" })
        #expect(try await request("POST", "\(base)/\(lily.proposalId)/reject", token: token, body: ["reviewer": "PS 1234"]).status == 202)

        // An incident with an officer-recorded child passes straight through.
        var withChild = makeIncident(
            "43260000777", on: "2026-11-21", lines: ["22 Station Road"], postcode: "RG1 1AA",
            parties: [Party(role: .victim, givenName: "Priya", familyName: "Patel")],
            children: [RecordedChild(givenName: "Noah", familyName: "Patel", ageYears: 10)])
        withChild.children[0].presence = .witness
        try await producer.send(
            ProducerRecord(
                topic: Topics.incidents.name, key: withChild.occurrenceNumber,
                value: try WireFormat.encode(
                    Envelope(
                        id: "incident-2", key: withChild.occurrenceNumber, producer: "intake",
                        payload: IncidentRecorded(kind: .new, revision: 1, changes: [], source: "http", incident: withChild)))))
        // Bad records: not JSON, and an incident without an occurrence number.
        var nameless = History.today
        nameless.occurrenceNumber = ""
        try await producer.send(ProducerRecord(topic: Topics.incidents.name, key: "x", value: Array("not json".utf8)))
        try await producer.send(
            ProducerRecord(
                topic: Topics.incidents.name, key: "y",
                value: try WireFormat.encode(
                    Envelope(
                        id: "incident-bad", key: "y", producer: "intake",
                        payload: IncidentRecorded(kind: .new, revision: 1, changes: [], source: "http", incident: nameless)))))
        await producer.close()

        let children = try await readRecords(kafka, topic: Topics.children.name, count: 2, timeout: .seconds(30))
            .map { try WireFormat.decode(ChildIdentified.self, from: $0.value) }
        let confirmed = try #require(children.first { $0.payload.source == .research })
        #expect(confirmed.key == oliver.child.childId)
        #expect(confirmed.payload.child.givenName == "Oliver" && confirmed.payload.incident.occurrenceNumber == History.today.occurrenceNumber)
        #expect(confirmed.payload.evidence?.confirmedBy == "PS 1234")
        let officer = try #require(children.first { $0.payload.source == .officer })
        #expect(officer.payload.child.givenName == "Noah" && officer.payload.child.presence == .witness)
        // Noah was in earlier records: his id and date of birth come from there.
        #expect(officer.payload.child.dateOfBirth == "2016-04-04")
        #expect(
            officer.payload.child.childId == HistoryIndex.personId(given: "Noah", family: "Patel", dateOfBirth: "2016-04-04", postcode: "RG1 1AA"))

        try await eventually("rejection remembered") {
            try await host.store.pool.read { try ReviewQueue.rejectedChildren($0, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber) }
                == [lily.child.childId]
        }
        // The two decisions in the calibration table, behind the same token.
        #expect(try await request("GET", "\(base)/calibration", token: nil).status == 401)
        try await eventually("decisions counted") {
            let answer = try await request("GET", "\(base)/calibration", token: token)
            let table = try WireFormat.decoder().decode(ReviewCalibration.self, from: answer.body)
            return answer.status == 200 && table.decided == 2 && table.confirmed == 1 && table.automatic == 0
                && table.bands.first == ReviewCalibration.Band(minimumScore: 0.5, decided: 2, confirmed: 1)
        }
        // The same table from the CLI.
        let (status, printed) = try await runExecutable(
            "encompass", ["review", "calibration", "--url", "http://127.0.0.1:\(port)", "--token", token])
        #expect(status == 0, "\(printed)")
        #expect(printed.contains("0.50                     2          1  50%\n"), "\(printed)")
        #expect(printed.contains("2 decided by officers (1 confirmed); 0 confirmed automatically, not counted"), "\(printed)")
        try await eventually("2 dead letters") { try await host.store.pool.read { try DeadLetter.fetchCount($0) } == 2 }
        let letters = try await host.store.pool.read { try DeadLetter.order(Column("originalKey")).fetchAll($0) }
        #expect(letters.map(\.originalKey) == ["x", "y"])
        #expect(letters[1].errorClass == "payload.validation" && letters[1].errorMessage.contains("occurrenceNumber"))
        let pending = try WireFormat.decoder().decode(Listing.self, from: try await request("GET", base, token: token).body)
        #expect(pending.proposals.map(\.child.givenName) == ["Amelia"])

        // An amendment that lists the children withdraws the proposal still pending (Amelia):
        // it leaves the queue, says why, and a decision on it is refused.
        var amended = History.today
        amended.children = [RecordedChild(givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12")]
        let amender = try KafkaProducer(configuration: .init(client: kafka.client("feed-2")), logger: TestLog.logger("feed-2"))
        try await amender.send(
            ProducerRecord(
                topic: Topics.incidents.name, key: amended.occurrenceNumber,
                value: try WireFormat.encode(
                    Envelope(
                        id: "incident-1-r2", key: amended.occurrenceNumber, producer: "intake",
                        payload: IncidentRecorded(kind: .amendment, revision: 2, changes: [], source: "http", incident: amended)))))
        await amender.close()
        try await eventually("Amelia withdrawn") {
            let withdrawn = try WireFormat.decoder().decode(
                Listing.self, from: try await request("GET", "\(base)?status=withdrawn", token: token).body)
            return withdrawn.proposals.map(\.child.givenName) == ["Amelia"] && withdrawn.proposals[0].note?.contains("lists its children") == true
        }
        #expect(try WireFormat.decoder().decode(Listing.self, from: try await request("GET", base, token: token).body).proposals.isEmpty)
        let amelia = try #require(listing.proposals.first { $0.child.givenName == "Amelia" })
        #expect(try await request("POST", "\(base)/\(amelia.proposalId)/confirm", token: token, body: ["reviewer": "PS 1234"]).status == 409)
        #expect(try await request("GET", "\(base)?status=nonsense", token: token).status == 400)

        await host.shutdown()
        try await task.value
    }
}
