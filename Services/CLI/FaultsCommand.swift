import ArgumentParser
import EncompassDemo
import EncompassModels
import Foundation

/// Runs a scenario on a fresh pipeline in `options.directory` (emptied first) and stops every
/// process after it, whether it succeeded or threw.
func runScenario<Report>(_ options: LocalPipeline.Options, _ scenario: (LocalPipeline) async throws -> Report) async throws -> Report {
    try? FileManager.default.removeItem(atPath: options.directory)
    let pipeline = LocalPipeline(options)
    do {
        let report = try await scenario(pipeline)
        await pipeline.stopAll()
        return report
    } catch {
        await pipeline.stopAll()
        throw error
    }
}

/// `encompass faults`: fault scenarios against the pipeline as processes.
struct FaultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract: "Fault scenarios against the pipeline running as processes on the embedded broker.",
        subcommands: [KillRestart.self, RandomKills.self, BrokerFaults.self, Poison.self, Rebalance.self]
    )

    struct Rebalance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Scale every service 1 -> 3 -> 2 while incidents flow, then SIGKILL one instance of each and leave it down (school resolution's with its store deleted); every pending notice must have exactly one live owner and be listed by every live instance, and every open CSC request one live holder, after each change; every CSC request answered once, and every child exactly one notice and one mail.",
            discussion: "Exit status 0 when every check holds, 1 otherwise. Prints the report as JSON with --json (docs/FAULTS.md)."
        )

        @Option(help: "Incidents (one eligible child each).")
        var incidents: Int = 400
        @Option(help: "Intake's HTTP port; the other services and instances follow it.")
        var basePort: Int = 34_081
        @Option(help: "Folder for logs, stores and mail.")
        var dir: String = "var/faults-rebalance"
        @Flag(help: "Print the report as JSON.")
        var json = false

        func run() async throws {
            let instances = Dictionary(uniqueKeysWithValues: ServiceName.allCases.map { ($0, 3) })
            let report = try await runScenario(
                .init(binDirectory: binDirectory(), directory: dir, instances: instances, basePort: basePort, console: false)
            ) {
                try await FaultScenarios.rebalance($0, incidents: incidents) { say($0) }
            }
            if json { try printJSON(report) }
            for step in report.steps {
                say(
                    "\(step.step): \(step.pending) pending on \(step.instances.joined(separator: ", ")); unowned \(step.unowned), owned twice \(step.ownedTwice); listed \(step.listedBy.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); \(step.cscRequests) open CSC requests (\(step.cscHeldBy.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")), listed twice \(step.cscListedTwice)); settled after \(String(format: "%.1f", step.settledAfter)) s"
                )
            }
            say(
                "CSC: \(report.cscChildren) children waiting; \(report.cscLostWithInstance) held by the instance SIGKILLed with its store; \(report.cscAnswered) answered by the survivors"
            )
            say(report.outcome.line)
            say(
                report.passed
                    ? "PASSED: every pending notice had exactly one live owner and every open CSC request one live holder after each change; every CSC request answered once; every child got exactly one notice and one mail"
                    : "FAILED")
            if !report.passed { throw ExitCode(1) }
        }
    }

    struct KillRestart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kill-restart",
            abstract:
                "Two instances of each service; one of each SIGKILLed mid-stream and restarted; every child must get exactly one notice and one mail.",
            discussion: "Exit status 0 when every check holds, 1 otherwise. Prints the report as JSON with --json."
        )

        @Option(help: "Incidents (one eligible child each).")
        var incidents: Int = 400
        @Option(help: "Intake's HTTP port; the other services and instances follow it.")
        var basePort: Int = 31_081
        @Option(help: "Folder for logs, stores and mail.")
        var dir: String = "var/faults"
        @Flag(help: "Print the report as JSON.")
        var json = false

        func run() async throws {
            let instances = Dictionary(uniqueKeysWithValues: ServiceName.allCases.map { ($0, 2) })
            let report = try await runScenario(.init(binDirectory: binDirectory(), directory: dir, instances: instances, basePort: basePort)) {
                try await FaultScenarios.killAndRestart($0, incidents: incidents) { say($0) }
            }
            if json { try printJSON(report) }
            say(
                """
                incidents \(report.incidents) · notices \(report.notices) (released under several ids: \(report.noticesWithSeveralIds)) · \
                occurrences covered \(report.occurrencesCovered) · mails \(report.mails) (with personal data: \(report.mailsWithPersonalData))
                \(report.passed ? "PASSED: every child got exactly one notice and one mail" : "FAILED")
                """)
            if !report.passed { throw ExitCode(1) }
        }
    }

    struct RandomKills: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "random-kills",
            abstract:
                "Each service SIGKILLed at random points (seeded) while incidents flow and while the morning's notices go out, then restarted; every child must get exactly one notice and one mail.",
            discussion: """
                Two instances of each service (dispatch's agree on which sends a notice by its first claim, \
                docs/DISPATCH.md). Each service is killed once while incidents are fed and \
                once during the morning send, plus --extra-kills more, at points drawn from --seed (printed). \
                A mail caught between dispatch's attempt mark and the relay's answer is `uncertain`; the run plays \
                MASH and resends those the school did not get. Exit status 0 when every check holds.
                """
        )

        @Option(help: "Incidents (one eligible child each).")
        var incidents: Int = 2_000
        @Option(help: "Seed of the kill plan (default: random, printed).")
        var seed: UInt64?
        @Option(help: "Kills beyond one per service and phase.")
        var extraKills: Int = 0
        @Option(help: "Intake's HTTP port; the other services and instances follow it.")
        var basePort: Int = 31_581
        @Option(help: "Folder for logs, stores and mail.")
        var dir: String = "var/faults-random-kills"
        @Flag(help: "Print the report as JSON.")
        var json = false

        func run() async throws {
            let seed = self.seed ?? UInt64.random(in: 1...999_999)
            say("seed \(seed) (repeat with --seed \(seed))")
            let instances = Dictionary(uniqueKeysWithValues: ServiceName.allCases.map { ($0, 2) })
            let report = try await runScenario(.init(binDirectory: binDirectory(), directory: dir, instances: instances, basePort: basePort)) {
                try await FaultScenarios.randomKills($0, incidents: incidents, seed: seed, extraKills: extraKills) { say($0) }
            }
            if json { try printJSON(report) }
            say(report.outcome.line)
            say("\(report.kills.count) kills, seed \(seed), \(Int(report.seconds)) s")
            say(report.passed ? "PASSED: every child got exactly one notice and one mail" : "FAILED")
            if !report.passed { throw ExitCode(1) }
        }
    }

    struct Poison: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "poison",
            abstract:
                "Poison records among genuine incidents: one Kafka takes but intake must refuse, one in intake's outbox that Kafka refuses; every genuine child gets one notice, the poisons are dead letters with their reasons, no outbox keeps anything.",
            discussion: """
                Two instances of each service by default (--instances). A records system writes an incident with a 900,000-character \
                child name to encompass.incidents.raw; halfway through the feed intake-1 is stopped, a 1.2 MB \
                IncidentRecorded is put at the head of its outbox (as the version before the size check left it) \
                with a batch of accepted incidents behind it, and intake-1 is started again (docs/FAULTS.md). \
                Exit status 0 when every check holds.
                """
        )

        @Option(help: "Genuine incidents (one eligible child each).")
        var incidents: Int = 400
        @Option(help: "Instances of each service (1 to 12); the poison goes into intake-1's outbox.")
        var instances: Int = 2
        @Option(help: "Intake's HTTP port; the other services and instances follow it.")
        var basePort: Int = 33_081
        @Option(help: "Folder for logs, stores and mail.")
        var dir: String = "var/faults-poison"
        @Flag(help: "Print the report as JSON.")
        var json = false

        func run() async throws {
            let instances = try FaultsCommand.instanceCounts(instances)
            let report = try await runScenario(
                .init(binDirectory: binDirectory(), directory: dir, instances: instances, basePort: basePort, console: false)
            ) {
                try await FaultScenarios.poisonRecords($0, incidents: incidents) { say($0) }
            }
            if json { try printJSON(report) }
            say(report.outcome.line)
            for letter in report.deadLetters {
                say("dead letter \(letter.instance) \(letter.errorClass) (record \(letter.record)): \(letter.errorMessage.prefix(300))")
            }
            say("outbox rows left: \(report.outboxRows) · oldest outbox row: \(report.oldestOutboxRowSeconds) s")
            say(
                report.passed
                    ? "PASSED: every genuine child got one notice and one mail; both poisons are dead letters with their reasons; every outbox is empty"
                    : "FAILED")
            if !report.passed { throw ExitCode(1) }
        }
    }

    struct BrokerFaults: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "broker",
            abstract:
                "Broker faults through the whole pipeline: request errors (Produce, Fetch, OffsetCommit, Heartbeat, JoinGroup), brokers down and up, leaders moved, slow answers; no incident lost, no notice sent twice.",
            discussion: """
                Three mock brokers with the fault control port (encompass broker --control-port); two \
                instances of each service by default (--instances). docs/FAULTS.md lists what is injected when. \
                Exit status 0 when every check holds and every pushed error was served at least once.
                """
        )

        @Option(help: "Incidents (one eligible child each).")
        var incidents: Int = 2_000
        @Option(help: "How long a broker stays down (seconds).")
        var downSeconds: Double = 10
        @Option(help: "Instances of each service (1 to 12).")
        var instances: Int = 2
        @Option(help: "Intake's HTTP port; the other services and instances follow it.")
        var basePort: Int = 32_581
        @Option(help: "Folder for logs, stores and mail.")
        var dir: String = "var/faults-broker"
        @Flag(help: "Print the report as JSON.")
        var json = false

        func run() async throws {
            let instances = try FaultsCommand.instanceCounts(instances)
            let report = try await runScenario(
                .init(
                    binDirectory: binDirectory(), directory: dir, instances: instances, basePort: basePort,
                    brokers: 3, brokerControl: true)
            ) {
                try await FaultScenarios.brokerFaults($0, incidents: incidents, downSeconds: downSeconds) { say($0) }
            }
            if json { try printJSON(report) }
            for injection in report.injections {
                let served = injection.pushed.map { " (served \(injection.served ?? 0) of \($0) pushed)" } ?? ""
                say("\(injection.when): \(injection.what)\(served)")
            }
            say(report.outcome.line)
            say("\(Int(report.seconds)) s")
            say(report.passed ? "PASSED: no incident lost, no notice sent twice" : "FAILED")
            if !report.passed { throw ExitCode(1) }
        }
    }
}

extension FaultsCommand {
    /// `count` instances of every service, for a scenario's `--instances`.
    static func instanceCounts(_ count: Int) throws -> [ServiceName: Int] {
        guard (1...12).contains(count) else {
            throw ValidationError("--instances \(count): give 1 to 12 (the topics have 12 partitions; a 13th instance would own none)")
        }
        return Dictionary(uniqueKeysWithValues: ServiceName.allCases.map { ($0, count) })
    }
}
