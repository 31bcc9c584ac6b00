import ArgumentParser
import EncompassDemo
import EncompassModels
import Foundation

/// `encompass faults`: fault scenarios against the pipeline as processes.
struct FaultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract: "Fault scenarios against the pipeline running as processes on the embedded broker.",
        subcommands: [KillRestart.self]
    )

    struct KillRestart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kill-restart",
            abstract: "Two instances of each service; one of each SIGKILLed mid-stream and restarted; every child must get exactly one notice and one mail.",
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
            try? FileManager.default.removeItem(atPath: dir)
            let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
            let pipeline = LocalPipeline(.init(binDirectory: bin, directory: dir,
                                               instances: Dictionary(uniqueKeysWithValues: ServiceName.allCases.map { ($0, 2) }),
                                               basePort: basePort))
            let report: FaultScenarios.KillRestartReport
            do {
                report = try await FaultScenarios.killAndRestart(pipeline, incidents: incidents) { say($0) }
            } catch {
                await pipeline.stopAll()
                throw error
            }
            await pipeline.stopAll()
            if json { try printJSON(report) }
            say("""
            incidents \(report.incidents) · notices \(report.notices) (released under several ids: \(report.noticesWithSeveralIds)) · \
            occurrences covered \(report.occurrencesCovered) · mails \(report.mails) (with personal data: \(report.mailsWithPersonalData))
            \(report.passed ? "PASSED: every child got exactly one notice and one mail" : "FAILED")
            """)
            if !report.passed { throw ExitCode(1) }
        }
    }
}
