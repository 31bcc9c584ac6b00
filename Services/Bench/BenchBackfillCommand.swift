import ArgumentParser
import EncompassDemo
import EncompassModels
import Foundation
import Logging
import ServiceRuntime
import WebSupport

/// `encompass-bench backfill`: a year of past incidents loaded through intake's history API into
/// child research's index, with all five services running as processes on the embedded broker.
struct BackfillBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Time to load a year of past incidents (default 1,500,000) through intake into child research's history index.",
        discussion: """
            What a force does when it starts with Encompass: its past year of incidents goes through \
            intake's history API (as `encompass history import` sends it, in JSON Lines chunks), onto \
            encompass.history, and into child research's history index, where later research finds \
            the children. Past incidents raise no notices, so school resolution, scheduling and \
            dispatch see none of it. The embedded broker keeps only about 5 MiB per partition, so \
            the feeder keeps at most --max-in-flight incidents accepted by intake and not yet indexed. \
            Baselines in the same run: the durable 5-hop relay of `encompass-bench pipeline` (the \
            service runtime with no domain work: the floor of a service's cost per message), and \
            intake alone (accepting the chunks), so the ratio shows what indexing costs on top of \
            validation and publication.
            """
    )

    @Option(help: "Incidents to load.")
    var incidents: Int = 1_500_000
    @Option(help: "Incidents per HTTP request (as `encompass history import --chunk`).")
    var chunk: Int = 5_000
    @Option(help: "Most incidents accepted by intake and not yet indexed by research.")
    var maxInFlight: Int = 100_000
    @Option(help: "Partitions per topic.")
    var partitions: Int = 48
    @Option(help: "Year of the incidents.")
    var year: Int = 2025
    @Option(help: "Folder for the run's logs and stores.")
    var dir: String = "var/bench-backfill"
    @Option(help: "Messages through the durable 5-hop relay measured first (0: skip it).")
    var relayMessages: Int = 50_000
    @Option(help: "Intake's HTTP port; the other services take the next five.")
    var basePort: Int = 29_081
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard incidents >= 1, chunk >= 1, maxInFlight >= chunk else {
            throw ValidationError("--incidents and --chunk must be at least 1, and --max-in-flight at least --chunk")
        }
    }

    func run() async throws {
        let logger = try log.logger("encompass.bench")
        print(
            "backfill benchmark: \(incidents) past incidents of \(year), chunks of \(chunk), \(partitions) partitions; \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB; \(Date().formatted(.iso8601))"
        )
        try? FileManager.default.removeItem(atPath: dir)
        var relay: Double?
        if relayMessages > 0 {
            // The floor in the same run, measured as the pipeline benchmark measures it.
            let sample = BackfillGenerator(count: 1, year: year).incidents(0..<1)[0]
            let durable = try await DurableRelayCeiling(partitions: partitions, directory: "\(dir)/durable-relay", properties: [:], logger: logger)
                .run(messages: relayMessages, sample: IncidentRecorded(kind: .new, revision: 1, changes: [], source: "history", incident: sample))
            relay = durable.rate
            print(
                String(
                    format:
                        "durable 5-hop relay (the service runtime, no domain work, same run, %d messages): %.0f msg/s end to end, CPU %.3f ms per message",
                    relayMessages, durable.rate, durable.cpuMilliseconds))
            try? FileManager.default.removeItem(atPath: dir)
        }
        let pipeline = LocalPipeline(
            .init(
                binDirectory: binDirectory(), directory: dir, basePort: basePort, partitions: partitions,
                environment: ["ENCOMPASS_LOG_LEVEL": "warning"]))
        do {
            try await pipeline.start(clock: CalendarDate(year: year + 1, month: 1, day: 5).at(hour: 9))
            try await load(pipeline, relay: relay)
        } catch {
            await pipeline.stopAll()
            throw error
        }
        await pipeline.stopAll()
    }

    private func load(_ pipeline: LocalPipeline, relay: Double?) async throws {
        let generator = BackfillGenerator(count: incidents, year: year)
        let intake = pipeline.client(.intake)
        let encoder = WireFormat.encoder()
        var accepted = 0, rejected = 0, people = 0
        var posting = Duration.zero, generating = Duration.zero
        let started = ContinuousClock.now
        var lastReport = started
        for start in stride(from: 0, to: incidents, by: chunk) {
            let t0 = ContinuousClock.now
            let slice = generator.incidents(start..<min(start + chunk, incidents))
            var body = Data()
            for incident in slice {
                body.append(try encoder.encode(incident))
                body.append(0x0A)
                people += incident.parties.count + incident.children.count
            }
            generating += ContinuousClock.now - t0
            // Flow control: the embedded broker would drop records research has not read yet.
            while true {
                let indexed = Int(await pipeline.figures().processed(.childResearch, topic: Topics.history.name))
                if accepted - indexed + slice.count <= maxInFlight { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            let t1 = ContinuousClock.now
            let (status, answer) = try await intake.call(
                "POST", "/v1/history", query: ["name": "backfill-\(year).jsonl", "first": String(start + 1)],
                raw: body, contentType: "application/x-ndjson")
            posting += ContinuousClock.now - t1
            guard (200..<300).contains(status) else { throw ServiceCallError(description: ServiceClient.refusal(.intake, status, answer)) }
            let json = (try? JSONSerialization.jsonObject(with: answer)) as? [String: Any]
            accepted += json?["accepted"] as? Int ?? 0
            rejected += (json?["rejected"] as? [Any])?.count ?? 0
            if ContinuousClock.now - lastReport > .seconds(10) {
                lastReport = ContinuousClock.now
                print("  … \(accepted + rejected)/\(incidents) sent to intake")
            }
        }
        let intakeDone = ContinuousClock.now
        var lastIndexed = -1
        while true {
            let indexed = Int(await pipeline.figures().processed(.childResearch, topic: Topics.history.name))
            if indexed >= accepted { break }
            if indexed != lastIndexed, ContinuousClock.now - lastReport > .seconds(10) {
                lastReport = ContinuousClock.now
                print("  … \(indexed)/\(accepted) indexed by child research")
            }
            lastIndexed = indexed
            try await Task.sleep(for: .milliseconds(200))
        }
        let finished = ContinuousClock.now
        let total = (finished - started).seconds
        print(
            String(
                format: "backfill: %d incidents (%d person records) loaded and indexed in %.1f s = %.0f incidents/s, %.0f person records/s",
                accepted, people, total, Double(accepted) / total, Double(people) / total))
        if let relay {
            print(
                String(
                    format:
                        "  against the durable 5-hop relay (same run): %.0f%% of its %.0f msg/s (a backfill incident crosses two durable hops, intake and child research)",
                    100 * Double(accepted) / total / relay, relay))
        }
        print(
            String(
                format:
                    "  intake alone (baseline, same run): accepted %d in %.1f s of HTTP requests = %.0f incidents/s; all sent after %.1f s (the rest of the time is waiting for the index)",
                accepted, posting.seconds, Double(accepted) / max(posting.seconds, 0.001), (intakeDone - started).seconds))
        print(String(format: "  generating the incidents in this process: %.1f s (inside the total)", generating.seconds))
        if rejected > 0 { print("  rejected by intake: \(rejected) (see encompass dlq list --service intake)") }
        await printPeakMemory(pipeline)
    }
}
