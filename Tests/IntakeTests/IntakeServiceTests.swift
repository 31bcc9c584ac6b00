import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import IntakeService

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

func post(_ url: String, token: String?, body: Data) async throws -> (status: Int, body: [String: Any]) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = "POST"
    request.httpBody = body
    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    let (data, response) = try await URLSession.shared.data(for: request)
    let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
}

func json(_ incidents: [Incident]) throws -> Data {
    try WireFormat.encoder().encode(incidents)
}

final class RunningIntake: Sendable {
    let host: ServiceHost
    let task: Task<Void, any Error>
    let port: Int

    init(_ kafka: TestKafka, token: String?, clockFile: String? = nil, dataDirectory: String? = nil) async throws {
        let settings = IntakeService.Settings(apiToken: token, forces: try ForceRegistry(ForceRegistry.builtIn))
        let configuration = ServiceConfiguration(
            service: .intake, kafka: kafka.client("intake"), groupId: "intake-\(UUID())",
            dataDirectory: dataDirectory ?? TestPaths.temporaryDirectory("intake"), instanceId: "intake-test", httpPort: 0, clockFile: clockFile)
        let host = try await ServiceHost(
            definition: IntakeService.definition(settings: settings), configuration: configuration,
            logger: TestLog.logger("intake"))
        self.host = host
        self.task = Task { try await host.run(handleSignals: false) }
        self.port = await host.httpPort()
    }

    var url: String { "http://127.0.0.1:\(port)/v1/incidents" }

    func stop() async throws {
        await host.shutdown()
        try await task.value
    }
}

func recorded(_ kafka: TestKafka, count: Int) async throws -> [IncidentRecorded] {
    try await readRecords(kafka, topic: Topics.incidents.name, count: count, timeout: .seconds(20))
        .map { try WireFormat.decode(IncidentRecorded.self, from: $0.value).payload }
}

@Suite("Intake service over HTTP and Kafka", .serialized, .tags(.kafka))
struct IntakeServiceTests {
    @Test("HTTP: token required, a bad item is rejected with field errors while the rest go through, replays are dropped, amendments forwarded")
    func httpSubmissions() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "s3cret-token")
        let good = incident()
        let other = incident(occurrence: "43260009999", children: [])
        var bad = incident(occurrence: "43260005555")
        bad.children[0].dateOfBirth = "2001-01-01"
        bad.incidentAddress.postcode = "nope"
        let batch = try json([good, bad, other])

        #expect(try await post(intake.url, token: nil, body: batch).status == 401)
        #expect(try await post(intake.url, token: "wrong-token!", body: batch).status == 401)
        #expect(try await post(intake.url, token: "s3cret-token", body: Data("{not json".utf8)).status == 400)

        let answer = try await post(intake.url, token: "s3cret-token", body: batch)
        #expect(answer.status == 202)
        let accepted = answer.body["accepted"] as? [[String: Any]] ?? []
        let rejected = answer.body["rejected"] as? [[String: Any]] ?? []
        #expect(accepted.compactMap { $0["index"] as? Int } == [0, 2])
        #expect(rejected.compactMap { $0["index"] as? Int } == [1])
        let fields = (rejected.first?["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
        #expect(Set(fields) == ["children[0].dateOfBirth", "incidentAddress.postcode"])

        // Only invalid items: 422, and the rejected item is kept as a dead letter.
        let onlyBad = try await post(intake.url, token: "s3cret-token", body: try json([bad]))
        #expect(onlyBad.status == 422)
        let letters = try await intake.host.store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.count == 2)
        #expect(letters.allSatisfy { $0.originalTopic == "http:/v1/incidents" && $0.errorClass == "payload.validation" })
        #expect(letters[0].errorMessage.contains("incidentAddress.postcode"))

        // The same incident again (a replay), then with a child added (an amendment).
        #expect(try await post(intake.url, token: "s3cret-token", body: try json([good])).status == 202)
        var amended = good
        amended.children.append(RecordedChild(givenName: "Oliver", familyName: "Hughes", ageYears: 7, presence: .witness))
        #expect(
            try await post(
                intake.url, token: "s3cret-token",
                body: try JSONSerialization.data(withJSONObject: [
                    "incidents": [try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(amended))]
                ])
            ).status == 202)

        let events = try await recorded(kafka, count: 3)
        #expect(events.count == 3)
        let forGood = events.filter { $0.incident.occurrenceNumber == good.occurrenceNumber }
        #expect(forGood.map(\.kind) == [.new, .amendment])
        #expect(forGood.last?.changes == ["children added: 1"])
        #expect(forGood.last?.revision == 2)
        #expect(forGood.first?.source == "intake-http")
        #expect(forGood.first?.incident.incidentAddress.postcode == "RG1 7LL")
        try await Task.sleep(for: .milliseconds(500))
        let versions = try await intake.host.store.pool.read { try OccurrenceVersionRow.fetchCount($0) }
        #expect(versions == 3) // good r1, other r1, good r2: the replay left no version
        try await intake.stop()
    }

    @Test("HTTP: without a configured token the endpoint refuses with 503")
    func noToken() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: nil)
        let answer = try await post(intake.url, token: "anything", body: try json([incident()]))
        #expect(answer.status == 503)
        #expect((answer.body["error"] as? String)?.contains("ENCOMPASS_INTAKE_API_TOKEN") == true)
        try await intake.stop()
    }

    @Test("records feed: bare JSON and envelopes are accepted; bad records are dead-lettered with reasons; nothing after them is lost")
    func recordsFeed() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: nil)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client("feed")), logger: TestLog.logger("feed"))
        var future = incident(occurrence: "43260000003")
        future.occurredAt = Date().addingTimeInterval(86_400 * 3)
        future.reportedAt = future.occurredAt
        let records: [(String, [UInt8])] = [
            ("43260000001", Array(try WireFormat.encoder().encode(incident(occurrence: "43260000001")))),
            ("43260000002", Array(#"{"occurrenceNumber":"43260000002","forceCode":"43"}"#.utf8)),
            ("43260000003", Array(try WireFormat.encoder().encode(future))),
            ("43260000004", Array("\u{FEFF}garbage\u{0}".utf8)),
            (
                "43260000005",
                try WireFormat.encode(Envelope(id: "feed-5", key: "43260000005", producer: "niche-rms", payload: incident(occurrence: "43260000005")))
            ),
        ]
        for (key, value) in records {
            try await producer.send(ProducerRecord(topic: Topics.incidentsRaw.name, key: key, value: value))
        }
        await producer.close()
        let events = try await recorded(kafka, count: 2)
        #expect(Set(events.map(\.incident.occurrenceNumber)) == ["43260000001", "43260000005"])
        #expect(Set(events.map(\.source)) == ["feed", "niche-rms"])
        try await eventually("3 dead letters") { try await intake.host.store.pool.read { try DeadLetter.fetchCount($0) } == 3 }
        let letters = try await intake.host.store.pool.read { try DeadLetter.order(Column("originalKey")).fetchAll($0) }
        #expect(letters.map(\.originalKey) == ["43260000002", "43260000003", "43260000004"])
        #expect(letters.map(\.errorClass) == ["payload.invalid", "payload.validation", "envelope.not-json"])
        #expect(letters[1].errorMessage.contains("occurredAt") && letters[1].errorMessage.contains("in the future"))
        try await intake.stop()
    }
}
