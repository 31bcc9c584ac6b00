import ArgumentParser
import EncompassDemo
import EncompassKafka
import EncompassModels
import Foundation
import ServiceRuntime
import UnixSignals

/// Starts librdkafka's mock cluster as the embedded broker and keeps it up until stopped.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the embedded Kafka broker (librdkafka's mock cluster) with the pipeline's topics.",
        discussion: """
            The broker listens on 127.0.0.1 on a free port, keeps everything in memory and keeps only \
            a few MiB per partition. It prints its bootstrap address and writes it to --address-file; \
            services read it from ENCOMPASS_KAFKA_BOOTSTRAP_FILE. Stop it with Ctrl-C or SIGTERM.
            """
    )

    @Option(help: "Number of mock brokers.")
    var brokers: Int = 1

    @Option(help: "Partitions per pipeline topic.")
    var partitions: Int = 12

    @Option(help: "File to write the bootstrap address to.")
    var addressFile: String = "var/broker.bootstrap"

    @Option(
        help:
            "Serve fault commands (broker down/up, request errors, leader moves) on this 127.0.0.1 port; 0 picks a free one. Off unless given. docs/FAULTS.md lists the commands."
    )
    var controlPort: Int?

    @Option(help: "With --control-port: file to write the control port to (default: the address file + .control).")
    var controlFile: String?

    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (1...9).contains(brokers) else { throw ValidationError("--brokers must be from 1 to 9") }
        guard (1...1000).contains(partitions) else { throw ValidationError("--partitions must be from 1 to 1000") }
        if let controlPort, !(0...65_535).contains(controlPort) { throw ValidationError("--control-port must be from 0 to 65535") }
    }

    func run() async throws {
        let logger = try log.logger("encompass.broker")
        ParentWatch.startIfRequested()
        let cluster = try MockKafkaCluster(brokers: brokers, logger: logger)
        for topic in Topics.all {
            try cluster.createTopic(topic.name, partitions: partitions, replicationFactor: min(3, brokers))
        }
        let directory = (addressFile as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        // The control port first: whoever waits for the address file may use it at once.
        var control: MockClusterControlServer?
        if let controlPort {
            let server = try MockClusterControlServer(
                control: MockClusterControl(cluster: cluster, topics: Dictionary(uniqueKeysWithValues: Topics.all.map { ($0.name, partitions) })),
                port: controlPort, logger: logger)
            let file = controlFile ?? addressFile + ".control"
            try "\(server.port)\n".write(toFile: file, atomically: true, encoding: .utf8)
            say("fault control on 127.0.0.1:\(server.port) (written to \(file))")
            control = server
        }
        try (cluster.bootstrapServers + "\n").write(toFile: addressFile, atomically: true, encoding: .utf8)
        say("embedded broker (librdkafka mock cluster, \(brokers) broker(s), \(Topics.all.count) topics x \(partitions) partitions)")
        say("bootstrap.servers=\(cluster.bootstrapServers)")
        say("address written to \(addressFile); stop with Ctrl-C")
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        for await signal in signals {
            say("received \(signal); stopping the embedded broker")
            break
        }
        try? FileManager.default.removeItem(atPath: addressFile)
        control?.stop()
        cluster.shutdown()
    }
}

/// Writes a line to standard output unbuffered, so a supervisor reading a pipe sees it at once.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
