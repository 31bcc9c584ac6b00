import ArgumentParser
import EncompassKafka
import EncompassModels
import Foundation
import Logging
import ServiceRuntime

@main
struct Encompass: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encompass",
        abstract: "Operation Encompass: notices to schools after domestic abuse incidents.",
        subcommands: [
            BrokerCommand.self, TopicsCommand.self, IngestCommand.self, HistoryCommand.self, BenchCommand.self,
            DeadLetterCommand.self, LagCommand.self, GenerateCommand.self, DemoCommand.self,
            ScheduleCommand.self, NotificationsCommand.self, ReviewCommand.self, SchoolsCommand.self, FaultsCommand.self, ConsoleCommand.self,
        ]
    )
}

/// Log settings shared by the subcommands.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    @Option(help: "Log format: text or json (one object per line, millisecond timestamps).")
    var logFormat: String = "text"

    func logger(_ label: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' is not a level; use trace, debug, info, notice, warning, error or critical")
        }
        guard let format = ServiceConfiguration.LogFormat(rawValue: logFormat) else {
            throw ValidationError("--log-format '\(logFormat)' is not a format; use text or json")
        }
        RuntimeLogging.bootstrap(format: format, level: level)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topics", abstract: "List the pipeline's topics, keys, producers and consumers.")

    func run() {
        for topic in Topics.all {
            print("\(topic.name)\n  key: \(topic.key)\(topic.compacted ? " (compacted)" : "")\n  from: \(topic.producers.joined(separator: ", "))\n  to: \(topic.consumers.joined(separator: ", "))")
        }
    }
}
