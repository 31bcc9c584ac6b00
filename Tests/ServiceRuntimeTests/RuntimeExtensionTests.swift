import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

/// A service whose notes topic is replicated (every instance keeps all of it) and whose
/// background task counts its ticks in SQLite until shutdown.
func replicatedNotes(input: String, ticks: Locked<Int>) -> ServiceDefinition {
    var definition = noteService(input: input, output: nil)
    definition.replicated = definition.handlers
    definition.handlers = []
    definition.background = [BackgroundTask(name: "ticker") { environment in
        while !Task.isCancelled {
            ticks.withLock { $0 += 1 }
            try await Task.sleep(for: .milliseconds(20))
        }
    }]
    return definition
}

@Suite("Runtime: replicated topics, background tasks, clock", .serialized)
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
        let configuration = try ServiceConfiguration.fromEnvironment(service: .scheduling, environment: [
            "ENCOMPASS_API_TOKEN": "secret", "ENCOMPASS_CLOCK_FILE": "/tmp/clock.json", "ENCOMPASS_INSTANCE_ID": "s-1",
        ])
        #expect(configuration.apiToken == "secret")
        #expect(configuration.clockFile == "/tmp/clock.json")
        #expect(configuration.replicaGroupId == "encompass-scheduling.replica.s-1")
        #expect(configuration.apiAuth.token == "secret")
    }
}
