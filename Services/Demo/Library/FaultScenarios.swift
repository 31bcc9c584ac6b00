import EncompassKafka
import EncompassModels
import Foundation
import Logging
import ServiceRuntime

/// Fault scenarios against the pipeline as processes. Each returns what it observed; a test
/// or `encompass faults` decides from that.
public enum FaultScenarios {
    public struct KillRestartReport: Codable, Sendable, Equatable {
        public var incidents: Int
        /// Distinct notices on `encompass.notices.due` (one per child expected).
        public var notices: Int
        /// Notices released under more than one message id (a second release not dropped).
        public var noticesWithSeveralIds: Int
        public var occurrencesCovered: Int
        public var mails: Int
        /// Mails that mention a child's name (the email must carry no personal data).
        public var mailsWithPersonalData: Int
        public var killed: [String]

        public var passed: Bool {
            notices == incidents && noticesWithSeveralIds == 0 && occurrencesCovered == incidents && mails == incidents && mailsWithPersonalData == 0
        }
    }

    /// Two instances of every service (from `pipeline`'s options); incidents fed in batches;
    /// after the third batch one instance of each service is SIGKILLed, after the fifth they are
    /// started again; then the next morning comes. Every child must get exactly one notice and
    /// one mail.
    public static func killAndRestart(_ pipeline: LocalPipeline, incidents count: Int, report progress: @Sendable (String) -> Void) async throws -> KillRestartReport {
        let day = CalendarDate(year: 2026, month: 11, day: 23)
        try await pipeline.start(clock: day.at(hour: 23, minute: 30))
        let schools = try SchoolList.read(path: SchoolList.shippedFile)
        let incidents = WorldGenerator.eligibleIncidents(count: count, day: day, schools: schools, seed: 11)
        let urns = Set(incidents.flatMap { $0.children.compactMap { $0.school?.urn } })
        let contacts = "urn,role,name,email,phone\r\n" + urns.sorted().map { "\($0),dsl,DSL,dsl.\($0)@schools.example.org.uk,0118 000 0000" }.joined(separator: "\r\n")
        let (imported, answer) = try await pipeline.client(.schoolResolution).call("POST", "/v1/contacts/import", query: ["name": "contacts.csv"],
                                                                                raw: Data(contacts.utf8), contentType: "text/csv")
        guard (200..<300).contains(imported) else { throw PipelineError("contacts import refused: \(String(decoding: answer, as: UTF8.self))") }
        try await pipeline.quiet(stable: .seconds(2))

        let victims = ServiceName.allCases.map { LocalPipeline.Instance(service: $0, number: $0 == .intake ? 2 : 1) }
        for (batch, start) in stride(from: 0, to: incidents.count, by: 50).enumerated() {
            let slice = Array(incidents[start..<min(start + 50, incidents.count)])
            let (status, body) = try await pipeline.client(.intake).call("POST", "/v1/incidents", raw: try WireFormat.encoder().encode(slice))
            guard status == 202 else { throw PipelineError("intake answered \(status): \(String(decoding: body, as: UTF8.self))") }
            if batch == 3 {
                for victim in victims { await pipeline.signal(victim, SIGKILL) }
                progress("SIGKILL: \(victims.map(\.name).joined(separator: ", "))")
            }
            if batch == 5 {
                for victim in victims { try await pipeline.restart(victim) }
                progress("restarted them on their own stores")
            }
        }
        try await pipeline.quiet(stable: .seconds(4), timeout: .seconds(400))
        try await pipeline.setClock(day.adding(days: 1).at(hour: 7, minute: 59).addingTimeInterval(50), rate: 1)
        progress("clock → the next school morning")
        let mailDirectory = pipeline.mailDirectory
        try await pipeline.waitFor("a mail for every child", timeout: .seconds(300)) {
            ((try? FileManager.default.contentsOfDirectory(atPath: mailDirectory).filter { $0.hasSuffix(".eml") }.count) ?? 0) >= incidents.count
        }
        try await pipeline.quiet(stable: .seconds(4))

        let bootstrap = try String(contentsOfFile: pipeline.bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let client = KafkaClientConfiguration(bootstrapServers: bootstrap, clientId: "fault-check")
        var logger = Logger(label: "encompass.faults")
        logger.logLevel = .critical
        let ends = try await LagReport.collect(client: client, groups: [("fault-check-\(MessageID.fresh())", [Topics.noticesDue.name])], logger: logger)
        let total = ends.reduce(0) { $0 + Int($1.endOffset) }
        let consumer = try KafkaConsumer(configuration: .init(client: client, groupId: "fault-\(MessageID.fresh())", topics: [Topics.noticesDue.name]),
                                         logger: logger)
        var byNotice: [String: Set<String>] = [:]
        var occurrences = Set<String>()
        var read = 0
        let timer = Task { try await Task.sleep(for: .seconds(60)); consumer.stopDelivery() }
        for try await record in consumer {
            read += 1
            if let envelope = try? WireFormat.decode(NoticeDue.self, from: record.value) {
                byNotice[envelope.payload.noticeId, default: []].insert(envelope.id)
                occurrences.insert(envelope.payload.request.incident.occurrenceNumber)
            }
            if read >= total { break }
        }
        timer.cancel()
        await consumer.close()
        let mails = try FileManager.default.contentsOfDirectory(atPath: mailDirectory).filter { $0.hasSuffix(".eml") }
        var personal = 0
        for mail in mails {
            let text = try String(contentsOfFile: "\(mailDirectory)/\(mail)", encoding: .utf8)
            if text.contains("Child") || text.contains("Walker") { personal += 1 }
        }
        return KillRestartReport(
            incidents: incidents.count, notices: byNotice.count, noticesWithSeveralIds: byNotice.values.filter { $0.count > 1 }.count,
            occurrencesCovered: occurrences.intersection(incidents.map(\.occurrenceNumber)).count, mails: mails.count,
            mailsWithPersonalData: personal, killed: victims.map(\.name))
    }
}
