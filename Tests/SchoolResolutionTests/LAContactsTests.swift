import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchoolResolutionService

@Suite("Local authorities' contacts: imported, replicated, and the route for out-of-area schools", .serialized, .tags(.kafka))
struct LAContactsTests {
    @Test(
        "an LA contacts sheet reaches every instance through the register topic; a Thames Valley child at a Cambridgeshire school is notified through Cambridgeshire's Operation Encompass contact; one at a Peterborough school without contacts becomes a telephone task, counted"
    )
    func outOfAreaRoutes() async throws {
        let kafka = try TestKafka()
        let schools = try await RunningSchools(kafka, token: "t0ken-schools")
        let sheet = """
            la_code,role,name,email,phone
            873,encompass,Cambridgeshire Operation Encompass,encompass@cambridgeshire.example,
            873,education-otherwise,Cambridgeshire EHE team,ehe@cambridgeshire.example,01223 000 000
            850,headteacher,Someone,someone@hants.example,
            8500,encompass,Typo,typo@hants.example,

            """
        let imported = try await send(
            "POST", schools.base + "/v1/la-contacts/import?name=la-contacts.csv", token: "t0ken-schools", body: Data(sheet.utf8))
        #expect(imported.status == 422, "rows were rejected")
        let answer = try JSONSerialization.jsonObject(with: imported.body) as? [String: Any]
        #expect(answer?["localAuthorities"] as? Int == 1)
        #expect((answer?["rejectedRows"] as? [[String: Any]])?.count == 2)
        #expect(try await send("POST", schools.base + "/v1/la-contacts/import", token: nil, body: Data(sheet.utf8)).status == 401)
        try await eventually("LA contacts applied") {
            try await schools.host.store.pool.read { try LAContactRow.filter(Column("laCode") == "873").fetchCount($0) } == 2
        }
        #expect(try await schools.host.store.pool.read { try DeadLetter.filter(Column("errorClass") == "la-contacts.row").fetchCount($0) } == 2)
        let listed = try await send("GET", schools.base + "/v1/la-contacts", token: "t0ken-schools", body: Data())
        let text = String(decoding: listed.body, as: UTF8.self)
        #expect(listed.status == 200 && text.contains("encompass@cambridgeshire.example") && text.contains("Cambridgeshire"))

        let producer = try KafkaProducer(configuration: .init(client: kafka.client("research")), logger: TestLog.logger("research"))
        // Ely St Mary's Junior (141707, Cambridgeshire 873) and, in Peterborough (874), the successor of 110854.
        for (i, urn) in ["141707", "147385"].enumerated() {
            let message = Fixtures.message(
                occurrence: "4326000070\(i)", child: Fixtures.child(id: "child-ooa-\(i)", age: 8, school: RecordedSchool(urn: urn)))
            try await producer.send(
                ProducerRecord(
                    topic: Topics.children.name, key: message.child.childId,
                    value: try WireFormat.encode(Envelope(id: "ooa-\(i)", key: message.child.childId, producer: "child-research", payload: message))))
        }
        await producer.close()
        let requests = try await readRecords(kafka, topic: Topics.noticeRequests.name, count: 2, timeout: .seconds(20))
            .map { try WireFormat.decode(NoticeRequested.self, from: $0.value).payload }
        let ely = try #require(requests.first { $0.school.urn == "141707" })
        #expect(ely.school.contacts.map(\.email) == ["encompass@cambridgeshire.example"] && ely.school.channel == .email)
        #expect(ely.resolution.contains { $0.contains("Operation Encompass contact") })
        let peterborough = try #require(requests.first { $0.school.localAuthorityCode == "874" })
        #expect(peterborough.school.channel == .telephone && peterborough.school.contacts.isEmpty)
        #expect(peterborough.resolution.contains { $0.contains(SchoolResolver.unroutedOutOfArea) })
        let metrics = try await httpGet(schools.base + "/metrics")
        #expect(
            metrics.body.contains("encompass_school_resolution_out_of_area_unrouted{service=\"school-resolution\"} 1"),
            "\(metrics.body.split(separator: "\n").filter { $0.contains("out_of_area") })")
        try await schools.stop()
    }
}
