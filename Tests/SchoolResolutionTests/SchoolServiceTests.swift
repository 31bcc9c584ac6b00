import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchoolResolutionService

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

final class RunningSchools: Sendable {
    let host: ServiceHost
    let task: Task<Void, any Error>
    let port: Int

    init(_ kafka: TestKafka, token: String?) async throws {
        let settings = SchoolResolutionService.Settings(protocols: Fixtures.protocols, seedRegister: true)
        let configuration = ServiceConfiguration(
            service: .schoolResolution, kafka: kafka.client("schools"), groupId: "schools-\(UUID())",
            dataDirectory: TestPaths.temporaryDirectory("schools"), instanceId: "schools-test", httpPort: 0, apiToken: token)
        let host = try await ServiceHost(
            definition: SchoolResolutionService.definition(settings: settings), configuration: configuration,
            logger: TestLog.logger("schools"))
        self.host = host
        self.task = Task { try await host.run(handleSignals: false) }
        self.port = await host.httpPort()
    }

    var base: String { "http://127.0.0.1:\(port)" }

    func stop() async throws {
        await host.shutdown()
        try await task.value
    }
}

func send(_ method: String, _ url: String, token: String?, body: Data) async throws -> (status: Int, body: Data) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    request.httpBody = body
    if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
}

@Suite("School resolution service over the mock Kafka cluster", .serialized, .tags(.kafka))
struct SchoolServiceTests {
    @Test(
        "ChildIdentified in → NoticeRequested out; contacts edited over HTTP reach the register; feedback unlinks and blocks; the CSC export is guarded"
    )
    func pipeline() async throws {
        let kafka = try TestKafka()
        let schools = try await RunningSchools(kafka, token: "t0ken-schools")
        // The register was seeded from the shipped list at first start.
        #expect(try await schools.host.store.pool.read { try SchoolRow.fetchCount($0) } == 1652)

        // Contacts for Caversham Primary, over HTTP → register topic → applied by the replica consumer.
        let contacts =
            #"{"contacts": [{"role": "dsl", "name": "J Smith", "email": "dsl@caversham.example", "phone": "0118 901 2345"}], "updatedBy": "mash-officer-7"}"#
        #expect(try await send("PUT", schools.base + "/v1/schools/109778/contacts", token: nil, body: Data(contacts.utf8)).status == 401)
        let bad = #"{"contacts": [{"role": "dsl", "email": "not-an-email"}]}"#
        #expect(try await send("PUT", schools.base + "/v1/schools/109778/contacts", token: "t0ken-schools", body: Data(bad.utf8)).status == 422)
        #expect(try await send("PUT", schools.base + "/v1/schools/109778/contacts", token: "t0ken-schools", body: Data(contacts.utf8)).status == 202)
        try await eventually("contacts applied") {
            try await schools.host.store.pool.read { try SchoolContactRow.filter(Column("urn") == "109778").fetchCount($0) } == 1
        }

        // A GIAS register import (Windows-1252): two schools changed (one closed), one new; contacts are kept.
        let gias = """
            URN,LA (code),LA (name),EstablishmentName,TypeOfEstablishment (name),EstablishmentStatus (name),OpenDate,CloseDate,PhaseOfEducation (name),StatutoryLowAge,StatutoryHighAge,Street,Locality,Town,Postcode\r
            109778,870,Reading,Caversham Primary School,Community school,Open,,,Primary,5,11,Hemdean Road,,Reading,RG4 7RA\r
            109776,870,Reading,Alfred Sutton Primary School,Community school,Closed,,31-08-2026,Primary,3,11,148 Wokingham Road,,Reading,RG6 1JR\r
            150001,870,Reading,Katesgrove Nursery School,Local authority nursery school,Open,01-09-2025,,Nursery,2,5,,,Reading,RG1 2NX\r

            """
        let registered = try await send(
            "POST", schools.base + "/v1/register/import?name=edubasealldata20261101.csv", token: "t0ken-schools",
            body: try #require(gias.data(using: .windowsCP1252)))
        #expect(registered.status == 202, "\(String(decoding: registered.body, as: UTF8.self))")
        let counts = (try JSONSerialization.jsonObject(with: registered.body) as? [String: Any]) ?? [:]
        #expect(counts["published"] as? Int == 3 && counts["unchanged"] as? Int == 0 && counts["layout"] as? String == "gias")
        try await eventually("register import applied") {
            try await schools.host.store.pool.read { db in
                try SchoolRow.fetchOne(db, key: "109776")?.status == "Closed" && SchoolRow.fetchOne(db, key: "150001") != nil
                    && SchoolRow.fetchOne(db, key: "109778")?.type == "Community school"
            }
        }
        // 109778 changed (its GIAS type), and kept the contacts set above.
        #expect(try await schools.host.store.pool.read { try SchoolContactRow.filter(Column("urn") == "109778").fetchCount($0) } == 1)
        #expect(
            try await send("POST", schools.base + "/v1/register/import?name=x.csv", token: "t0ken-schools", body: Data("a,b\n1,2\n".utf8)).status
                == 422)

        let producer = try KafkaProducer(configuration: .init(client: kafka.client("research")), logger: TestLog.logger("research"))
        let message = Fixtures.message(child: Fixtures.child(id: "child-42", age: 8, school: RecordedSchool(name: "Cavresham Prim Sch")))
        try await producer.send(
            ProducerRecord(
                topic: Topics.children.name, key: "child-42",
                value: try WireFormat.encode(Envelope(id: "child-msg-1", key: "child-42", producer: "child-research", payload: message))))
        let out = try await readRecords(kafka, topic: Topics.noticeRequests.name, count: 1, timeout: .seconds(20))
        let request = try #require(try out.first.map { try WireFormat.decode(NoticeRequested.self, from: $0.value) })
        #expect(request.key == message.noticeKey && request.payload.noticeId == message.noticeKey)
        #expect(request.payload.school.urn == "109778" && request.payload.school.localAuthorityCode == "870")
        #expect(request.payload.school.contacts.first?.email == "dsl@caversham.example")
        #expect(request.payload.school.channel == .email)
        #expect(request.causationId == "child-msg-1")
        try await eventually("child linked") {
            try await schools.host.store.pool.read { try ChildSchoolRow.fetchOne($0, key: "child-42")?.urn } == "109778"
        }

        // The school says the pupil no longer attends: unlinked, and never notified again about this child.
        let feedback = SchoolFeedback(
            childId: "child-42", noticeId: message.noticeKey, schoolURN: "109778", kind: .noLongerAttends,
            reportedAt: Fixtures.incidentDate, reportedBy: "dsl@caversham.example")
        try await producer.send(
            ProducerRecord(
                topic: Topics.schoolFeedback.name, key: "child-42",
                value: try WireFormat.encode(Envelope(id: "feedback-1", key: "child-42", producer: "dispatch", payload: feedback))))
        try await eventually("child unlinked") {
            try await schools.host.store.pool.read { db in
                try ChildSchoolRow.fetchOne(db, key: "child-42") == nil && ChildSchoolBlockRow.fetchCount(db) == 1
            }
        }
        // A bad record on the children topic is dead-lettered, and the consumer carries on.
        try await producer.send(ProducerRecord(topic: Topics.children.name, key: "child-43", value: Array("not json".utf8)))
        try await eventually("dead letter") {
            try await schools.host.store.pool.read { try DeadLetter.filter(Column("errorClass") == "envelope.not-json").fetchCount($0) } == 1
        }
        // A new incident recording the same school again: not notified, a request to CSC instead.
        let next = Fixtures.message(occurrence: "43260009999", child: Fixtures.child(id: "child-42", age: 8, school: RecordedSchool(urn: "109778")))
        try await producer.send(
            ProducerRecord(
                topic: Topics.children.name, key: "child-42",
                value: try WireFormat.encode(Envelope(id: "child-msg-2", key: "child-42", producer: "child-research", payload: next))))
        try await eventually("request filed") {
            try await schools.host.store.pool.read { try SchoolRequestRow.fetchOne($0, key: next.noticeKey)?.status } == "open"
        }
        await producer.close()

        // The export for the LPA is token-guarded and carries the request.
        #expect(try await send("GET", schools.base + "/v1/requests/export?lpa=Reading&format=csv", token: "wrong", body: Data()).status == 401)
        let csv = try await send("GET", schools.base + "/v1/requests/export?lpa=Reading&format=csv", token: "t0ken-schools", body: Data())
        #expect(csv.status == 200)
        let text = String(decoding: csv.body, as: UTF8.self)
        #expect(text.contains(next.noticeKey) && text.contains("no longer attends"))
        let xlsx = try await send("GET", schools.base + "/v1/requests/export?lpa=Reading&format=xlsx", token: "t0ken-schools", body: Data())
        #expect(xlsx.status == 200 && xlsx.body.starts(with: [0x50, 0x4B, 0x03, 0x04]))
        // As JSON, the raw cells a caller writes one sheet of every instance's requests from.
        let json = try await send("GET", schools.base + "/v1/requests/export?lpa=Reading&format=json", token: "t0ken-schools", body: Data())
        let rows = try WireFormat.decoder().decode(CSCRequestRows.self, from: json.body)
        // Two open requests: the new incident's, and the redirect "no longer attends" opened for the first notice.
        let ids = rows.rows.compactMap(\.first)
        #expect(json.status == 200 && rows.header == CSCRequests.header)
        #expect(Set(ids) == [next.noticeKey, NoticeID.redirect(of: message.noticeKey, awayFrom: "109778")], "\(ids)")
        #expect(
            try await send("GET", schools.base + "/v1/requests/export?lpa=Reading&format=pdf", token: "t0ken-schools", body: Data()).status == 400)
        // The scoped imports' parameters are checked before the sheet is read.
        for bad in ["only=all", "unheld=2,x", "unheld=", "only=held&unheld=2"] {
            let refused = try await send(
                "POST", schools.base + "/v1/requests/import?name=r.csv&\(bad)", token: "t0ken-schools", body: Data("request_id,school_urn\n".utf8))
            #expect(refused.status == 400, "\(bad): \(String(decoding: refused.body, as: UTF8.self))")
        }

        // CSC returns it with another school: verified, and the child flows on to scheduling.
        let returned = "request_id,school_urn,school_name\r\n\(next.noticeKey),,\"Coley Prim, Reading\"\r\n"
        #expect(
            try await send("POST", schools.base + "/v1/requests/import?name=r.csv", token: "t0ken-schools", body: Data("garbage".utf8)).status == 422)
        let imported = try await send("POST", schools.base + "/v1/requests/import?name=r.csv", token: "t0ken-schools", body: Data(returned.utf8))
        #expect(imported.status == 202, "\(String(decoding: imported.body, as: UTF8.self))")
        let flowed = try await readRecords(kafka, topic: Topics.noticeRequests.name, count: 2, timeout: .seconds(20))
            .map { try WireFormat.decode(NoticeRequested.self, from: $0.value).payload }
        #expect(flowed.first { $0.noticeId == next.noticeKey }?.school.urn == "109779") // partitions: no order between notices
        #expect(try await schools.host.store.pool.read { try SchoolRequestRow.fetchOne($0, key: next.noticeKey)?.status } == "resolved")
        try await schools.stop()
    }
}
