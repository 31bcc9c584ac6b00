import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A service whose notes topic is replicated (every instance keeps all of it) and whose
/// background task counts its ticks in SQLite until shutdown.
func replicatedNotes(input: String, ticks: Locked<Int>) -> ServiceDefinition {
    var definition = noteService(input: input, output: nil)
    definition.replicated = definition.handlers
    definition.handlers = []
    definition.background = [
        BackgroundTask(name: "ticker") { environment in
            while !Task.isCancelled {
                ticks.withLock { $0 += 1 }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    ]
    return definition
}

@Suite("Runtime: replicated topics, background tasks, clock", .serialized, .tags(.kafka))
struct RuntimeExtensionTests {
    @Test("every instance of a group reads a replicated topic whole; background tasks run until shutdown")
    func replicatedTopicReachesEveryInstance() async throws {
        let kafka = try TestKafka(partitions: 4)
        let topic = try kafka.uniqueTopic("replicated")
        let ticks = Locked(0)
        let group = "replicas-\(UUID())"
        var first = configuration(kafka, dataDirectory: TestPaths.temporaryDirectory("replica-a"), group: group)
        first.instanceId = "a"
        var second = configuration(kafka, dataDirectory: TestPaths.temporaryDirectory("replica-b"), group: group)
        second.instanceId = "b"
        let a = try await RunningHost(replicatedNotes(input: topic, ticks: ticks), first)
        let b = try await RunningHost(replicatedNotes(input: topic, ticks: ticks), second)
        #expect(first.replicaGroupId != second.replicaGroupId)
        try await produce(kafka, topic: topic, (0..<40).map { ("k\($0)", try TestNote(text: "note \($0)", sequence: $0).envelope()) })
        try await eventually("both instances hold all 40 notes") {
            let (countA, countB) = (try await a.notes().count, try await b.notes().count)
            return countA == 40 && countB == 40
        }
        let (notesA, notesB) = (try await a.notes(), try await b.notes())
        #expect(notesA == notesB)
        #expect(ticks.withLock { $0 } > 0)
        try await a.stop()
        try await b.stop()
        let after = ticks.withLock { $0 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(ticks.withLock { $0 } == after, "background task stops at shutdown")
    }

    @Test("a simulated clock file moves every reader's time; absent, the system clock")
    func simulatedClockFile() throws {
        let path = TestPaths.temporaryDirectory("clock") + "/clock.json"
        let clock = ServiceClock.file(path)
        #expect(abs(clock.now().timeIntervalSinceNow) < 5)
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        try SimulatedClockFile(simulated: start, real: Date(), rate: 0).write(to: path)
        let fresh = ServiceClock.file(path)
        #expect(fresh.now() == start)
        let anchor = SimulatedClockFile(simulated: start, real: Date(timeIntervalSince1970: 1_000), rate: 60)
        #expect(anchor.simulatedTime(atReal: Date(timeIntervalSince1970: 1_010)) == start.addingTimeInterval(600))
        let manual = ManualClock(start)
        manual.advance(by: 3600)
        #expect(ServiceClock.manual(manual).now() == start.addingTimeInterval(3600))
    }

    @Test("ENCOMPASS_API_TOKEN and ENCOMPASS_CLOCK_FILE are read from the environment")
    func configurationReadsTokenAndClock() throws {
        let configuration = try ServiceConfiguration.fromEnvironment(
            service: .scheduling,
            environment: [
                "ENCOMPASS_API_TOKEN": "secret", "ENCOMPASS_CLOCK_FILE": "/tmp/clock.json", "ENCOMPASS_INSTANCE_ID": "s-1",
            ])
        #expect(configuration.apiToken == "secret")
        #expect(configuration.clockFile == "/tmp/clock.json")
        #expect(configuration.replicaGroupId == "encompass-scheduling.replica.s-1")
        #expect(configuration.apiAuth.token == "secret")
    }
}

@Suite("Runtime: dead-letter operations over HTTP", .serialized, .tags(.kafka))
struct DeadLetterOperationsTests {
    func call(_ method: String, _ url: String, token: String?, body: [String: Any]? = nil) async throws -> (Int, Any?) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let body { request.httpBody = try JSONSerialization.data(withJSONObject: body) }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, try? JSONSerialization.jsonObject(with: data))
    }

    @Test("list, show, replay with an edited payload (validated first, once only), discard; all need the token")
    func listReplayDiscard() async throws {
        PayloadSchemas.register(TestNote.self)
        let kafka = try TestKafka(partitions: 2)
        let topic = try kafka.uniqueTopic("dlq-ops")
        var config = configuration(kafka, dataDirectory: TestPaths.temporaryDirectory("dlq-ops"), group: "dlq-\(UUID())")
        config.apiToken = "ops-token"
        let host = try await RunningHost(noteService(input: topic, output: nil), config)
        let port = await host.host.httpPort()
        let base = "http://127.0.0.1:\(port)/v1/dead-letters"
        try await produce(
            kafka, topic: topic,
            [
                ("43000000001", try TestNote(text: "reject", sequence: 1).envelope()),
                ("43000000002", try TestNote(text: "reject", sequence: 2).envelope()),
                ("k3", Array("not json".utf8)),
            ])
        try await eventually("three dead letters") {
            try await host.host.store.pool.read { try DeadLetter.fetchCount($0) } == 3
        }
        #expect(try await call("GET", base, token: nil).0 == 401)
        #expect(try await call("GET", base, token: "wrong").0 == 401)
        let (status, listed) = try await call("GET", base + "?occurrence=43000000002", token: "ops-token")
        #expect(status == 200)
        let rows = try #require(listed as? [[String: Any]])
        #expect(rows.count == 1)
        let id = try #require(rows.first?["id"] as? Int)
        #expect(rows.first?["errorClass"] as? String == "note.rejected")
        let (_, classed) = try await call("GET", base + "?errorClass=envelope.not-json", token: "ops-token")
        #expect((classed as? [[String: Any]])?.count == 1)
        #expect(try await call("GET", base + "?since=yesterday", token: "ops-token").0 == 400)

        let (shown, detail) = try await call("GET", "\(base)/\(id)", token: "ops-token")
        #expect(shown == 200)
        #expect(((detail as? [String: Any])?["originalValue"] as? String)?.contains("reject") == true)
        #expect(try await call("GET", "\(base)/99999", token: "ops-token").0 == 404)

        // An edit that does not validate is refused and changes nothing.
        let invalid: [String: Any] = [
            "schema": TestNote.schema, "version": 1, "id": "x", "key": "k", "producer": "ops",
            "createdAt": "2026-11-23T10:00:00Z", "payload": ["text": "", "sequence": 2],
        ]
        let (refused, reason) = try await call("POST", "\(base)/\(id)/replay", token: "ops-token", body: ["by": "ops-anna", "payload": invalid])
        #expect(refused == 422)
        #expect(((reason as? [String: Any])?["error"] as? String)?.contains("text") == true, "\(String(describing: reason))")
        #expect(try await call("POST", "\(base)/\(id)/replay", token: "ops-token", body: ["payload": invalid]).0 == 422)

        let fixed = String(decoding: try TestNote(text: "fixed", sequence: 2).envelope(id: "fixed-1", key: "43000000002"), as: UTF8.self)
        let (replayed, outcome) = try await call("POST", "\(base)/\(id)/replay", token: "ops-token", body: ["by": "ops-anna", "payload": fixed])
        #expect(replayed == 200, "\(String(describing: outcome))")
        #expect((outcome as? [String: Any])?["alreadyReplayed"] as? Bool == false)
        try await eventually("the replayed note is applied") { try await host.notes().contains("fixed") }
        let (_, again) = try await call("POST", "\(base)/\(id)/replay", token: "ops-token", body: ["by": "ops-bob"])
        #expect((again as? [String: Any])?["alreadyReplayed"] as? Bool == true)
        #expect((again as? [String: Any])?["replayedBy"] as? String == "ops-anna")
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await host.notes().filter { $0 == "fixed" }.count == 1)

        let other = try #require(
            (try await call("GET", base + "?occurrence=43000000001", token: "ops-token").1 as? [[String: Any]])?.first?["id"] as? Int)
        #expect(try await call("POST", "\(base)/\(other)/discard", token: "ops-token", body: ["by": "ops-anna"]).0 == 422)
        let (discarded, view) = try await call(
            "POST", "\(base)/\(other)/discard", token: "ops-token", body: ["by": "ops-anna", "reason": "test data"])
        #expect(discarded == 200)
        #expect((view as? [String: Any])?["status"] as? String == "discarded")
        #expect(try await call("POST", "\(base)/\(other)/replay", token: "ops-token", body: ["by": "ops-anna"]).0 == 409)
        let actions = try await host.host.store.pool.read { try DeadLetterAction.fetchAll($0) }
        #expect(actions.map(\.action).sorted() == ["discard", "replay"])
        try await host.stop()
    }
}

@Suite("Runtime: dead-letter addresses of a scaled service")
struct DeadLetterAddressTests {
    @Test("SERVICE/ID for one instance, SERVICE/N:ID for instance N; --service for a bare id; bad ones say how to write them")
    func addresses() throws {
        #expect(try DeadLetterAddress.parse("dispatch/17") == DeadLetterAddress(service: .dispatch, id: 17))
        #expect(try DeadLetterAddress.parse("school-resolution/2:17") == DeadLetterAddress(service: .schoolResolution, instance: 2, id: 17))
        #expect(try DeadLetterAddress.parse("3:9", service: "intake") == DeadLetterAddress(service: .intake, instance: 3, id: 9))
        #expect(try DeadLetterAddress.parse("9", service: "intake") == DeadLetterAddress(service: .intake, id: 9))
        for address in [DeadLetterAddress(service: .scheduling, id: 4), DeadLetterAddress(service: .childResearch, instance: 12, id: 40)] {
            #expect(try DeadLetterAddress.parse(address.description) == address)
        }
        #expect(DeadLetterAddress(service: .dispatch, instance: 2, id: 17).description == "dispatch/2:17")
        let refused: [(String, String?, String)] = [
            ("17", nil, "say which service"), ("nowhere/17", nil, "unknown service"), ("dispatch/x", nil, "not a dead letter id"),
            ("dispatch/0:17", nil, "not an instance number"), ("dispatch/a:17", nil, "not an instance number"),
            ("dispatch/1:2:3", nil, "not a dead letter id"), ("a/b/c", nil, "SERVICE/N:ID"),
        ]
        for (text, service, words) in refused {
            #expect(throws: DeadLetterAddress.ParseError.self) { try DeadLetterAddress.parse(text, service: service) }
            do { _ = try DeadLetterAddress.parse(text, service: service) } catch { #expect(error.description.contains(words), "\(text): \(error)") }
        }
    }
}

@Suite("Runtime: lag in messages and seconds", .serialized, .tags(.kafka))
struct LagTests {
    @Test("the lag report reads committed and end offsets and the age of the next record, without joining the group")
    func lagReport() async throws {
        let kafka = try TestKafka(partitions: 1)
        let topic = try kafka.uniqueTopic("lag", partitions: 1)
        try await produce(kafka, topic: topic, (0..<10).map { ("k", try TestNote(text: "n\($0)", sequence: $0).envelope()) })
        let group = "lag-\(UUID())"
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(client: kafka.client("lag-consumer"), groupId: group, topics: [topic]),
            logger: TestLog.logger("lag"))
        var seen = 0
        for try await record in consumer {
            consumer.storeOffsets([record])
            seen += 1
            if seen == 4 { break }
        }
        await consumer.close()
        try await Task.sleep(for: .milliseconds(1500))
        let rows = try await LagReport.collect(
            client: kafka.client("lag-report"), groups: [(group, [topic]), ("never-\(UUID())", [topic])],
            logger: TestLog.logger("lag"), now: Date().addingTimeInterval(60))
        #expect(rows.count == 2)
        let lagging = try #require(rows.first { $0.group == group })
        #expect(lagging.committedOffset == 4)
        #expect(lagging.endOffset == 10)
        #expect(lagging.lag == 6)
        #expect((lagging.lagSeconds ?? 0) >= 59, "the next record is about a minute old at the report's 'now'")
        let fresh = try #require(rows.first { $0.group != group })
        #expect(fresh.committedOffset == nil)
        #expect(fresh.lag == 10)
    }

    @Test("/metrics carries lag in messages and seconds per group, topic and partition")
    func lagMetrics() async throws {
        let kafka = try TestKafka(partitions: 2)
        let topic = try kafka.uniqueTopic("lag-metrics")
        let host = try await RunningHost(
            noteService(input: topic, output: nil),
            configuration(kafka, dataDirectory: TestPaths.temporaryDirectory("lag-metrics"), group: "lagm-\(UUID())"))
        try await produce(kafka, topic: topic, (0..<20).map { ("k\($0)", try TestNote(text: "n\($0)", sequence: $0).envelope()) })
        let port = await host.host.httpPort()
        try await eventually("lag gauges on /metrics", timeout: .seconds(30)) {
            let body = try await httpGet("http://127.0.0.1:\(port)/metrics").body
            return body.contains("kafka_consumergroup_group_lag_seconds{") && body.contains("kafka_consumergroup_group_lag{")
                && body.contains("topic=\"\(topic)\"")
        }
        try await host.stop()
    }
}
