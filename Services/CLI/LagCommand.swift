import ArgumentParser
import EncompassDemo
import EncompassKafka
import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport

/// `encompass lag`: per consumer group, topic and partition, committed and end offsets, lag in
/// messages and in seconds.
struct LagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lag",
        abstract: "Consumer lag per group, topic and partition, in messages and seconds.",
        discussion: """
            Like kafka-consumer-groups --describe, with the age of the oldest unprocessed message. \
            Without --group, the groups that really read the pipeline's topics: each service's work group \
            on its work topics, and each running instance's own group on the topics it reads whole \
            (encompass.notice.events, the school register, the changelog…), found on the instances' \
            /healthz ($ENCOMPASS_<SERVICE>_URLS for every instance of a scaled service, else $ENCOMPASS_<SERVICE>_URL or the default port; --instance to name them). \
            An idle pipeline shows 0 everywhere. \
            The same figures are on every service's /metrics (kafka_consumergroup_group_lag, \
            kafka_consumergroup_group_lag_seconds).
            """
    )

    @Option(help: "Kafka bootstrap servers (default: $ENCOMPASS_KAFKA_BOOTSTRAP_SERVERS, or the file of --bootstrap-file).")
    var bootstrapServers: String?

    @Option(help: "File with the bootstrap address, as written by encompass broker.")
    var bootstrapFile: String?

    @Option(help: "GROUP=TOPIC[,TOPIC…] to describe instead of the pipeline's groups (repeatable).")
    var group: [String] = []

    @Option(
        help:
            "SERVICE=URL of a running instance whose groups to report (repeatable; default: each service's $ENCOMPASS_<SERVICE>_URLS, else $ENCOMPASS_<SERVICE>_URL or the default port)."
    )
    var instance: [String] = []

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var logs: LogOptions

    func run() async throws {
        let logger = try logs.logger("encompass.lag")
        var environment = ProcessInfo.processInfo.environment
        if let bootstrapServers { environment["ENCOMPASS_KAFKA_BOOTSTRAP_SERVERS"] = bootstrapServers }
        if let bootstrapFile { environment["ENCOMPASS_KAFKA_BOOTSTRAP_FILE"] = bootstrapFile }
        let configuration = try ServiceConfiguration.fromEnvironment(service: .intake, environment: environment)
        let groups: [(group: String, topics: [String])]
        if group.isEmpty {
            var endpoints: [(service: ServiceName, url: String)] = []
            for item in instance {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let service = ServiceName(rawValue: parts[0]), !parts[1].isEmpty else {
                    throw ValidationError(
                        "--instance '\(item)' must be SERVICE=URL with SERVICE one of \(ServiceName.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                endpoints.append((service, parts[1]))
            }
            // Every instance of a scaled service ($ENCOMPASS_<SERVICE>_URLS), each with its own replica groups.
            for service in ServiceName.allCases where !endpoints.contains(where: { $0.service == service }) {
                for url in ServiceClient.instanceBaseURLs(service, environment: environment) { endpoints.append((service, url)) }
            }
            let (instances, problems) = await LagReport.discover(endpoints)
            for problem in problems { FileHandle.standardError.write(Data(("note: " + problem + "\n").utf8)) }
            groups = LagReport.pipelineGroups(instances: instances)
        } else {
            groups = try group.map { item in
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[1].isEmpty else { throw ValidationError("--group '\(item)' must be GROUP=TOPIC[,TOPIC…]") }
                return (parts[0], parts[1].split(separator: ",").map(String.init))
            }
        }
        var client = configuration.kafka
        client.clientId = "encompass-lag"
        let rows = try await LagReport.collect(client: client, groups: groups, logger: logger)
        if json {
            try printJSON(rows)
            return
        }
        let header = ["GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "LAG-SECONDS"]
        let table =
            [header]
            + rows.map { row in
                [
                    row.group, row.topic, String(row.partition), row.committedOffset.map(String.init) ?? "-", String(row.endOffset),
                    String(row.lag), row.lagSeconds.map { String(format: "%.1f", $0) } ?? "?",
                ]
            }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        for line in table {
            print(line.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }
}
