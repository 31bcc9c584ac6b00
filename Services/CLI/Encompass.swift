import ArgumentParser
import EncompassKafka
import EncompassModels
import Foundation

@main
struct Encompass: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encompass",
        abstract: "Operation Encompass: notices to schools after domestic abuse incidents.",
        subcommands: [
            BrokerCommand.self, TopicsCommand.self, IngestCommand.self, HistoryCommand.self,
            DeadLetterCommand.self, LagCommand.self, GenerateCommand.self, DemoCommand.self,
            ScheduleCommand.self, NotificationsCommand.self, ReviewCommand.self, SchoolsCommand.self, FaultsCommand.self, ConsoleCommand.self,
        ]
    )
}

struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topics", abstract: "List the pipeline's topics, keys, producers and consumers.")

    func run() {
        for topic in Topics.all {
            print(
                "\(topic.name)\n  key: \(topic.key)\(topic.compacted ? " (compacted)" : "")\n  from: \(topic.producers.joined(separator: ", "))\n  to: \(topic.consumers.joined(separator: ", "))"
            )
        }
    }
}
