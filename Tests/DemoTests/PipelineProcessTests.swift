import EncompassDemo
import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import Logging
import ServiceRuntime
import Testing

@Suite("The pipeline as processes: scaled out, killed and restarted", .serialized)
struct PipelineProcessTests {
    @Test("two instances of every service; one of each SIGKILLed mid-stream and restarted; every child gets exactly one notice and one mail")
    func killAndRestart() async throws {
        let bin = URL(fileURLWithPath: try executable("encompass")).deletingLastPathComponent().path
        let directory = TestPaths.temporaryDirectory("pipeline-kill")
        let two = Dictionary(uniqueKeysWithValues: ServiceName.allCases.map { ($0, 2) })
        let pipeline = LocalPipeline(.init(binDirectory: bin, directory: directory, instances: two,
                                           basePort: 21_000 + Int.random(in: 0..<40) * 10, partitions: 6))
        let day = CalendarDate(year: 2026, month: 11, day: 23)
        do {
            try await pipeline.start(clock: day.at(hour: 23, minute: 30))
            let schools = try SchoolList.read(path: SchoolList.shippedFile)
            let incidents = WorldGenerator.eligibleIncidents(count: 400, day: day, schools: schools, seed: 11)
            let urns = Set(incidents.flatMap { $0.children.compactMap { $0.school?.urn } })
            let contacts = "urn,role,name,email,phone\r\n" + urns.sorted().map { "\($0),dsl,DSL,dsl.\($0)@schools.example.org.uk,0118 000 0000" }.joined(separator: "\r\n")
            let (imported, answer) = try await pipeline.client(.schoolResolution).call("POST", "/v1/contacts/import", query: ["name": "contacts.csv"],
                                                                                    raw: Data(contacts.utf8), contentType: "text/csv")
            #expect((200..<300).contains(imported), "\(String(decoding: answer, as: UTF8.self))")
            try await pipeline.quiet(stable: .seconds(2))

            // Feed in batches; halfway, kill one instance of each service, then bring it back.
            let victims = ServiceName.allCases.map { LocalPipeline.Instance(service: $0, number: $0 == .intake ? 2 : 1) }
            for (batch, start) in stride(from: 0, to: incidents.count, by: 50).enumerated() {
                let slice = Array(incidents[start..<min(start + 50, incidents.count)])
                let (status, body) = try await pipeline.client(.intake).call("POST", "/v1/incidents", raw: try WireFormat.encoder().encode(slice))
                #expect(status == 202, "\(String(decoding: body, as: UTF8.self))")
                if batch == 3 {
                    for victim in victims { await pipeline.signal(victim, SIGKILL) }
                }
                if batch == 5 {
                    for victim in victims { try await pipeline.restart(victim) }
                }
            }
            try await pipeline.quiet(stable: .seconds(4), timeout: .seconds(400))
            try await pipeline.setClock(day.adding(days: 1).at(hour: 7, minute: 59).addingTimeInterval(50), rate: 1)
            try await pipeline.waitFor("a mail for every child", timeout: .seconds(300)) {
                let count = (try? FileManager.default.contentsOfDirectory(atPath: pipeline.mailDirectory).filter { $0.hasSuffix(".eml") }.count) ?? 0
                return count >= incidents.count
            }
            try await pipeline.quiet(stable: .seconds(4))

            // Exactly one notice per (incident, child) on the dispatch topic, and one mail each.
            let bootstrap = try String(contentsOfFile: pipeline.bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let client = KafkaClientConfiguration(bootstrapServers: bootstrap, clientId: "kill-test")
            let ends = try await LagReport.collect(client: client, groups: [("kill-test-\(UUID())", [Topics.noticesDue.name])], logger: TestLog.logger("kill"))
            let total = ends.reduce(0) { $0 + Int($1.endOffset) }
            let consumer = try KafkaConsumer(configuration: .init(client: client, groupId: "kill-\(UUID())", topics: [Topics.noticesDue.name]),
                                             logger: TestLog.logger("kill"))
            var byNotice: [String: Set<String>] = [:]
            var occurrences = Set<String>()
            var read = 0
            for try await record in consumer {
                read += 1
                let envelope = try WireFormat.decode(NoticeDue.self, from: record.value)
                byNotice[envelope.payload.noticeId, default: []].insert(envelope.id)
                occurrences.insert(envelope.payload.request.incident.occurrenceNumber)
                if read >= total { break }
            }
            await consumer.close()
            #expect(byNotice.count == incidents.count, "one notice per child")
            #expect(byNotice.values.allSatisfy { $0.count == 1 }, "a re-released notice keeps its message id (dropped by dispatch's inbox)")
            #expect(occurrences == Set(incidents.map(\.occurrenceNumber)))
            let mails = try FileManager.default.contentsOfDirectory(atPath: pipeline.mailDirectory).filter { $0.hasSuffix(".eml") }
            #expect(mails.count == incidents.count, "exactly one mail per notice")
            var recipients: [String: Int] = [:]
            for mail in mails {
                let text = try String(contentsOfFile: "\(pipeline.mailDirectory)/\(mail)", encoding: .utf8)
                let to = text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("to:") }.map(String.init) ?? "?"
                recipients[to, default: 0] += 1
                #expect(!text.contains("Child"), "the email carries no personal data")
            }
            #expect(recipients.values.reduce(0, +) == incidents.count)
        } catch {
            await pipeline.stopAll()
            throw error
        }
        await pipeline.stopAll()
    }
}
