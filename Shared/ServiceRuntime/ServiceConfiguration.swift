import EncompassKafka
import EncompassModels
import Foundation
import Logging

/// A configuration value that is missing or malformed, with the variable to fix.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    public var variable: String
    public var problem: String

    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "configuration error: \(variable) \(problem)" }
}

/// How a service is run, read from the environment (see README's configuration table).
public struct ServiceConfiguration: Sendable, Equatable {
    public enum LogFormat: String, Sendable { case json, text }

    public var service: ServiceName
    public var kafka: KafkaClientConfiguration
    public var groupId: String
    public var dataDirectory: String
    public var instanceId: String
    public var httpHost: String
    /// 0 asks the system for a free port (tests).
    public var httpPort: Int
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// Partitions for topics this service creates (Apache Kafka; the embedded broker has its own setting).
    public var topicPartitions: Int
    public var replicationFactor: Int
    public var createTopics: Bool
    /// Attempts for a message that fails with a transient error before it is dead-lettered.
    public var maxAttempts: Int
    public var retryBackoff: Duration
    /// Records processed in one SQLite transaction at most.
    public var batchSize: Int
    /// How long processed message ids are remembered for de-duplication.
    public var inboxRetention: Duration
    /// Bearer token of the service's own MASH/operations API (`ENCOMPASS_API_TOKEN`).
    public var apiToken: String?
    /// Simulation file of a shared simulated clock (`ENCOMPASS_CLOCK_FILE`); nil: system clock.
    public var clockFile: String?
    /// `/readyz` answers not ready once the oldest outbox row has waited this long
    /// (`ENCOMPASS_OUTBOX_MAX_AGE_SECONDS`): the relay cannot publish.
    public var outboxMaxAge: Duration

    public init(
        service: ServiceName,
        kafka: KafkaClientConfiguration,
        groupId: String? = nil,
        dataDirectory: String,
        instanceId: String = ServiceConfiguration.defaultInstanceId(),
        httpHost: String = "127.0.0.1",
        httpPort: Int? = nil,
        logLevel: Logger.Level = .info,
        logFormat: LogFormat = .json,
        topicPartitions: Int = 12,
        replicationFactor: Int = 1,
        createTopics: Bool = true,
        maxAttempts: Int = 5,
        retryBackoff: Duration = .milliseconds(200),
        batchSize: Int = 256,
        inboxRetention: Duration = .seconds(14 * 24 * 3600),
        apiToken: String? = nil,
        clockFile: String? = nil,
        outboxMaxAge: Duration = .seconds(300)
    ) {
        self.service = service
        self.kafka = kafka
        self.groupId = groupId ?? service.defaultGroupId
        self.dataDirectory = dataDirectory
        self.instanceId = instanceId
        self.httpHost = httpHost
        self.httpPort = httpPort ?? service.defaultHTTPPort
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.topicPartitions = topicPartitions
        self.replicationFactor = replicationFactor
        self.createTopics = createTopics
        self.maxAttempts = maxAttempts
        self.retryBackoff = retryBackoff
        self.batchSize = batchSize
        self.inboxRetention = inboxRetention
        self.apiToken = apiToken
        self.clockFile = clockFile
        self.outboxMaxAge = outboxMaxAge
    }

    /// The largest record the producer sends (librdkafka's `message.max.bytes`, set with
    /// `ENCOMPASS_KAFKA_PROPERTY_MESSAGE_MAX_BYTES`; 1,000,000 by default): the outbox refuses
    /// larger messages before they are queued.
    public var maxMessageBytes: Int {
        kafka.properties["message.max.bytes"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? Outbox.defaultMaxMessageBytes
    }

    /// The clock the service runs on: the simulation file's when one is configured.
    public var clock: ServiceClock { clockFile.map(ServiceClock.file) ?? .system }

    /// The consumer group of this instance's replicated topics (`ServiceDefinition.replicated`):
    /// one per instance, so every instance reads them whole. Keep `ENCOMPASS_INSTANCE_ID`
    /// stable across restarts so a restarted instance resumes rather than re-reads.
    public var replicaGroupId: String { "\(groupId).replica.\(instanceId)" }

    /// The check for the service's own API.
    public var apiAuth: APIAuth { APIAuth(token: apiToken) }

    public static func defaultInstanceId() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// SQLite file of this service instance.
    public var databasePath: String { (dataDirectory as NSString).appendingPathComponent("\(service.rawValue).sqlite") }

    static let kafkaPropertyPrefix = "ENCOMPASS_KAFKA_PROPERTY_"
    static let kafkaConsumerPropertyPrefix = "ENCOMPASS_KAFKA_CONSUMER_PROPERTY_"
    static let kafkaProducerPropertyPrefix = "ENCOMPASS_KAFKA_PRODUCER_PROPERTY_"

    /// Which of a service's Kafka clients a passed-through librdkafka property reaches.
    public enum KafkaClients: Sendable {
        case all, consumers, producers

        var prefix: String {
            switch self {
            case .all: kafkaPropertyPrefix
            case .consumers: kafkaConsumerPropertyPrefix
            case .producers: kafkaProducerPropertyPrefix
            }
        }
    }

    /// The environment variable that passes librdkafka property `name` through (the reverse of
    /// what `fromEnvironment` reads): `fetch.wait.max.ms` for `.consumers` →
    /// `ENCOMPASS_KAFKA_CONSUMER_PROPERTY_FETCH_WAIT_MAX_MS`.
    public static func kafkaPropertyVariable(_ name: String, for clients: KafkaClients = .all) -> String {
        clients.prefix + name.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Reads the configuration. Every variable is optional except where a default cannot be safe.
    ///
    /// `ENCOMPASS_KAFKA_PROPERTY_<NAME>` passes a librdkafka property through: the name is
    /// lower-cased and `_` becomes `.` (`ENCOMPASS_KAFKA_PROPERTY_SECURITY_PROTOCOL=SASL_SSL`).
    /// `ENCOMPASS_KAFKA_CONSUMER_PROPERTY_<NAME>` does the same for consumers only
    /// (`ENCOMPASS_KAFKA_CONSUMER_PROPERTY_FETCH_WAIT_MAX_MS=10`), and
    /// `ENCOMPASS_KAFKA_PRODUCER_PROPERTY_<NAME>` for producers only.
    public static func fromEnvironment(
        service: ServiceName,
        environment: [String: String]
    ) throws(ConfigurationError) -> ServiceConfiguration {
        let env = EnvironmentReader(environment)
        var bootstrap = env.string("ENCOMPASS_KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap == nil, let file = env.string("ENCOMPASS_KAFKA_BOOTSTRAP_FILE") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(
                    variable: "ENCOMPASS_KAFKA_BOOTSTRAP_FILE",
                    problem: "names \(file), which cannot be read; start the broker first (encompass broker)")
            }
            bootstrap = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func passedThrough(_ prefix: String) -> [String: String] {
            var properties: [String: String] = [:]
            for (key, value) in environment where key.hasPrefix(prefix) {
                let name = key.dropFirst(prefix.count).lowercased().replacingOccurrences(of: "_", with: ".")
                guard !name.isEmpty else { continue }
                properties[name] = value
            }
            return properties
        }
        let properties = passedThrough(kafkaPropertyPrefix)
        let consumerProperties = passedThrough(kafkaConsumerPropertyPrefix)
        let producerProperties = passedThrough(kafkaProducerPropertyPrefix)
        let instanceId = env.string("ENCOMPASS_INSTANCE_ID") ?? defaultInstanceId()
        let levelText = env.string("ENCOMPASS_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ConfigurationError(
                variable: "ENCOMPASS_LOG_LEVEL", problem: "is '\(levelText)'; use trace, debug, info, notice, warning, error or critical")
        }
        let formatText = env.string("ENCOMPASS_LOG_FORMAT") ?? "json"
        guard let format = LogFormat(rawValue: formatText) else {
            throw ConfigurationError(variable: "ENCOMPASS_LOG_FORMAT", problem: "is '\(formatText)'; use json or text")
        }
        return ServiceConfiguration(
            service: service,
            kafka: KafkaClientConfiguration(
                bootstrapServers: bootstrap ?? "localhost:9092",
                clientId: "encompass-\(service.rawValue)-\(instanceId)",
                properties: properties,
                consumerProperties: consumerProperties,
                producerProperties: producerProperties
            ),
            groupId: env.string("ENCOMPASS_GROUP_ID"),
            dataDirectory: env.string("ENCOMPASS_DATA_DIR") ?? "var/\(service.rawValue)",
            instanceId: instanceId,
            httpHost: env.string("ENCOMPASS_HTTP_HOST") ?? "127.0.0.1",
            httpPort: try env.int("ENCOMPASS_HTTP_PORT", in: 0...65535),
            logLevel: level,
            logFormat: format,
            topicPartitions: try env.int("ENCOMPASS_TOPIC_PARTITIONS", in: 1...1000) ?? 12,
            replicationFactor: try env.int("ENCOMPASS_REPLICATION_FACTOR", in: 1...10) ?? 1,
            createTopics: try env.bool("ENCOMPASS_CREATE_TOPICS") ?? true,
            maxAttempts: try env.int("ENCOMPASS_MAX_ATTEMPTS", in: 1...100) ?? 5,
            retryBackoff: .milliseconds(try env.int("ENCOMPASS_RETRY_BACKOFF_MS", in: 1...600_000) ?? 200),
            batchSize: try env.int("ENCOMPASS_BATCH_SIZE", in: 1...10_000) ?? 256,
            inboxRetention: .seconds(try env.int("ENCOMPASS_INBOX_RETENTION_HOURS", in: 1...87_600).map { $0 * 3600 } ?? 14 * 24 * 3600),
            apiToken: env.string("ENCOMPASS_API_TOKEN"),
            clockFile: env.string("ENCOMPASS_CLOCK_FILE"),
            outboxMaxAge: .seconds(try env.int("ENCOMPASS_OUTBOX_MAX_AGE_SECONDS", in: 1...604_800) ?? 300)
        )
    }
}

/// A service's own settings (beyond `ServiceConfiguration`), parsed from the same environment.
///
/// Parsing reads only the dictionary it is given (and the files its variables name, such as
/// force protocols) and builds nothing that acts: transports, clients and stores are made from
/// the parsed values when the service starts (`ServiceDefinition`).
public protocol ServiceOwnSettings: Sendable {
    static var service: ServiceName { get }
    /// Reads the service's own variables; `runtime` is the common configuration, parsed first
    /// from the same environment (dispatch's public URL defaults to its HTTP port).
    static func fromEnvironment(_ environment: [String: String], runtime: ServiceConfiguration) throws(ConfigurationError) -> Self
}

extension ServiceOwnSettings {
    /// The service's own settings from `environment`, with the common configuration parsed
    /// from the same dictionary (tests and tools; a service parses both once in `ServiceMain`).
    public static func fromEnvironment(_ environment: [String: String]) throws(ConfigurationError) -> Self {
        try ServiceSettings<Self>.parse(environment).own
    }
}

/// Everything one service instance is configured with: the common runtime settings and the
/// service's own, parsed together, once, from one environment.
public struct ServiceSettings<Own: ServiceOwnSettings>: Sendable {
    public var runtime: ServiceConfiguration
    public var own: Own

    public init(runtime: ServiceConfiguration, own: Own) {
        self.runtime = runtime
        self.own = own
    }

    /// The first bad variable stops the parse with an error naming it and what to set.
    public static func parse(_ environment: [String: String]) throws(ConfigurationError) -> ServiceSettings {
        let runtime = try ServiceConfiguration.fromEnvironment(service: Own.service, environment: environment)
        return ServiceSettings(runtime: runtime, own: try Own.fromEnvironment(environment, runtime: runtime))
    }
}

/// Typed access to environment variables with errors that name the variable.
public struct EnvironmentReader: Sendable {
    let environment: [String: String]

    public init(_ environment: [String: String]) { self.environment = environment }

    public func string(_ name: String) -> String? {
        guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    public func int(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(variable: name, problem: "is '\(text)'; expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    public func bool(_ name: String) throws(ConfigurationError) -> Bool? {
        guard let text = string(name)?.lowercased() else { return nil }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError(variable: name, problem: "is '\(text)'; expected true or false")
        }
    }
}
