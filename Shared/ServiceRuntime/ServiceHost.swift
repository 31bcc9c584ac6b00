import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals

/// What a service adds to the runtime: its tables, the topics it consumes (with handlers),
/// the topics it produces, and its own HTTP routes.
public struct ServiceDefinition: Sendable {
    public var service: ServiceName
    public var migrations: [StoreMigration]
    /// Topics split between the instances of the consumer group (work).
    public var handlers: [TopicHandler]
    /// Topics every instance reads whole, from the beginning (replicated reference data such as
    /// the history index or the school register): a consumer group of its own per instance,
    /// `<group>.replica.<instance id>`, so each instance's store holds all of it.
    public var replicated: [TopicHandler]
    public var produces: [String]
    public var routes: (@Sendable (Router<BasicRequestContext>, ServiceEnvironment) -> Void)?
    /// Long-running work beside the consumers (e.g. releasing due notices), started with the
    /// service and cancelled at graceful shutdown before the outbox relay drains.
    public var background: [BackgroundTask]
    /// Settings of the store's writing connection (`ServiceStore(writerSetup:)`).
    public var storeWriterSetup: (@Sendable (Database) throws -> Void)?

    public init(
        service: ServiceName,
        migrations: [StoreMigration] = [],
        handlers: [TopicHandler] = [],
        replicated: [TopicHandler] = [],
        produces: [String] = [],
        routes: (@Sendable (Router<BasicRequestContext>, ServiceEnvironment) -> Void)? = nil,
        background: [BackgroundTask] = [],
        storeWriterSetup: (@Sendable (Database) throws -> Void)? = nil
    ) {
        self.service = service
        self.migrations = migrations
        self.handlers = handlers
        self.replicated = replicated
        self.produces = produces
        self.routes = routes
        self.background = background
        self.storeWriterSetup = storeWriterSetup
    }
}

/// A service's long-running work beside its consumers. `run` should loop until its task is
/// cancelled (graceful shutdown) and throw only for a failure that must stop the service.
public struct BackgroundTask: Sendable {
    public let name: String
    public let run: @Sendable (ServiceEnvironment) async throws -> Void

    public init(name: String, run: @escaping @Sendable (ServiceEnvironment) async throws -> Void) {
        self.name = name
        self.run = run
    }
}

/// What a service's routes and background work can use.
public struct ServiceEnvironment: Sendable {
    public let configuration: ServiceConfiguration
    public let store: ServiceStore
    public let metrics: ServiceMetrics
    public let relay: OutboxRelay
    public let logger: Logger
    /// The service's clock (simulated in tests and the demo): use it, not `Date()`.
    public let clock: ServiceClock
    /// The partitions of the work topics (`handlers`) this instance owns right now.
    public let ownedPartitions: @Sendable () -> Set<TopicPartition>

    /// An outbox in `db`'s transaction for input that is not a Kafka record (HTTP, files), with
    /// the service's message size limit.
    public func outbox(_ db: Database, producer: String) -> Outbox {
        Outbox(db: db, producer: producer, maxMessageBytes: configuration.maxMessageBytes)
    }

    /// Writes in one transaction with an outbox for this service, then wakes the relay.
    public func write<T: Sendable>(_ body: @Sendable @escaping (Database, Outbox) throws -> T) async throws -> T {
        let producer = configuration.service.rawValue
        let limit = configuration.maxMessageBytes
        let result = try await store.pool.write { db in try body(db, Outbox(db: db, producer: producer, maxMessageBytes: limit)) }
        relay.wake()
        return result
    }
}

/// Runs one service instance: store, Kafka consumer and producer, message worker, outbox
/// relay and HTTP endpoint, under swift-service-lifecycle. SIGTERM or SIGINT shut it down
/// gracefully: the worker finishes its batch and commits offsets, the relay publishes what
/// is left, then HTTP stops.
public final class ServiceHost: Sendable {
    public let configuration: ServiceConfiguration
    public let definition: ServiceDefinition
    public let store: ServiceStore
    public let metrics: ServiceMetrics
    public let logger: Logger
    public let relay: OutboxRelay
    public let consumer: KafkaConsumer?
    /// The per-instance consumer of the replicated topics, if any.
    public let replicaConsumer: KafkaConsumer?
    public let clock: ServiceClock
    private let worker: MessageWorker?
    private let replicaWorker: MessageWorker?
    private let group = Locked<ServiceGroup?>(nil)
    private let boundPort = Locked<Int?>(nil)
    private let portWaiters = Locked<[CheckedContinuation<Int, Never>]>([])

    public init(
        definition: ServiceDefinition, configuration: ServiceConfiguration, logger: Logger,
        onRebalance: (@Sendable (RebalanceEvent) -> Void)? = nil
    ) async throws {
        var logger = logger
        logger[metadataKey: "service"] = .string(configuration.service.rawValue)
        logger[metadataKey: "instance"] = .string(configuration.instanceId)
        self.configuration = configuration
        self.definition = definition
        self.logger = logger
        self.store = try ServiceStore(
            path: configuration.databasePath, migrations: definition.migrations,
            writerSetup: definition.storeWriterSetup)
        self.metrics = ServiceMetrics(service: configuration.service.rawValue)
        let clock = configuration.clock
        self.clock = clock

        let consumed = definition.handlers.map(\.topic)
        let replicatedTopics = definition.replicated.map(\.topic)
        if configuration.createTopics {
            let admin = try KafkaAdmin(client: configuration.kafka, logger: logger)
            let names = Set(consumed + replicatedTopics + definition.produces + [configuration.service.deadLetterTopic])
            let specs = names.sorted().map { name in
                TopicSpec(
                    name: name, partitions: configuration.topicPartitions, replicationFactor: configuration.replicationFactor,
                    configs: Topics.named(name)?.compacted == true ? ["cleanup.policy": "compact"] : [:]
                )
            }
            do {
                let outcome = try await admin.ensureTopics(specs)
                logger.info("topics checked", metadata: ["topics": "\(outcome.keys.sorted())"])
            } catch {
                await admin.close()
                throw error
            }
            await admin.close()
        }

        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: configuration.kafka), logger: logger)
        let relay = OutboxRelay(
            store: store, producer: producer, metrics: metrics, logger: logger, service: configuration.service,
            inboxRetention: configuration.inboxRetention, maxMessageBytes: configuration.maxMessageBytes,
            clock: clock.now)
        self.relay = relay
        let metrics = self.metrics
        metrics.addRefresher {
            let age = relay.oldestRowAge.components
            metrics.outboxOldestAge.set(Double(age.seconds) + Double(age.attoseconds) / 1e18)
        }
        if consumed.isEmpty {
            self.consumer = nil
            self.worker = nil
        } else {
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(client: configuration.kafka, groupId: configuration.groupId, topics: consumed),
                logger: logger, onRebalance: onRebalance
            )
            self.consumer = consumer
            self.worker = MessageWorker(
                consumer: consumer, store: store, handlers: definition.handlers, configuration: configuration,
                metrics: metrics, relay: relay, logger: logger, clock: clock.now
            )
            let metrics = self.metrics
            let group = configuration.groupId
            metrics.addRefresher { metrics.updateLag(group: group, lag: consumer.lag) }
        }
        if replicatedTopics.isEmpty {
            self.replicaConsumer = nil
            self.replicaWorker = nil
        } else {
            let group = configuration.replicaGroupId
            // Replicas are not on a notice's path (child research's replica reads the same
            // incidents as its work consumer, and skips its own): a smaller prefetch keeps less
            // of a backlog in memory (child research peaked at 139 MiB at 100,000 incidents
            // with 16 MiB for both consumers).
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(
                    client: configuration.kafka, groupId: group, topics: replicatedTopics,
                    prefetchKiB: 4_096),
                logger: logger
            )
            self.replicaConsumer = consumer
            self.replicaWorker = MessageWorker(
                consumer: consumer, store: store, handlers: definition.replicated, configuration: configuration,
                metrics: metrics, relay: relay, logger: logger, clock: clock.now
            )
            let metrics = self.metrics
            metrics.addRefresher { metrics.updateLag(group: group, lag: consumer.lag) }
        }
    }

    public var environment: ServiceEnvironment {
        let consumer = self.consumer
        return ServiceEnvironment(
            configuration: configuration, store: store, metrics: metrics, relay: relay, logger: logger, clock: clock,
            ownedPartitions: { consumer?.assignment ?? [] }
        )
    }

    var readinessChecks: [ReadinessCheck] {
        let store = self.store
        let consumer = self.consumer
        var checks = [
            ReadinessCheck(name: "store") {
                do {
                    _ = try await store.pool.read { try Int.fetchOne($0, sql: "SELECT 1") }
                    return nil
                } catch { return "SQLite store unreadable: \(error)" }
            }
        ]
        let relay = self.relay
        let maxAge = configuration.outboxMaxAge
        checks.append(
            ReadinessCheck(name: "outbox") {
                let age = relay.oldestRowAge
                guard age > maxAge else { return nil }
                return "the oldest outbox row has waited \(age.components.seconds) s (limit \(maxAge.components.seconds) s, "
                    + "ENCOMPASS_OUTBOX_MAX_AGE_SECONDS): records are not reaching Kafka; see the service log (outbox relay failed)"
            })
        for (name, consumer) in [("kafka", consumer), ("kafka-replica", replicaConsumer)] {
            guard let consumer else { continue }
            checks.append(
                ReadinessCheck(name: name) {
                    if let fatal = consumer.fatalError { return fatal.description }
                    return consumer.hasJoinedGroup ? nil : "not yet a member of the consumer group \(consumer.groupId)"
                })
        }
        return checks
    }

    /// Every HTTP route this instance serves: health and metrics, the operations API, the
    /// service's own routes. `run` serves this router; tests enumerate its routes (every one
    /// but the deliberately public ones must refuse a request without the API token).
    public func makeRouter() -> Router<BasicRequestContext> {
        var groups = ["group": configuration.groupId]
        if !definition.replicated.isEmpty { groups["replicaGroup"] = configuration.replicaGroupId }
        let router = HTTPEndpoint.makeRouter(
            service: configuration.service.rawValue, instanceId: configuration.instanceId,
            metrics: metrics, readiness: readinessChecks, groups: groups
        )
        OperationsAPI.register(on: router, environment: environment)
        definition.routes?(router, environment)
        return router
    }

    /// Runs until SIGTERM/SIGINT (when `handleSignals`) or `shutdown()`.
    public func run(handleSignals: Bool = true) async throws {
        let router = makeRouter()
        let app = Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: "encompass-\(configuration.service.rawValue)"),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? configuration.httpPort
                let waiters = portWaiters.withLock { w -> [CheckedContinuation<Int, Never>] in
                    defer { w = [] }
                    return w
                }
                boundPort.withLock { $0 = port }
                waiters.forEach { $0.resume(returning: port) }
                logger.info("http listening", metadata: ["port": "\(port)"])
            },
            logger: logger
        )
        // Shut down in reverse order: workers and background tasks (commit offsets, stop
        // writing), relay (drain outbox), HTTP.
        var services: [any Service] = [app, relay]
        let environment = self.environment
        for task in definition.background { services.append(BackgroundService(task: task, environment: environment)) }
        if let replicaWorker { services.append(replicaWorker) }
        if let worker { services.append(worker) }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            logger: logger
        )
        if handleSignals { groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint] }
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(60)
        let serviceGroup = ServiceGroup(configuration: groupConfiguration)
        group.withLock { $0 = serviceGroup }
        logger.info(
            "service starting", metadata: ["bootstrap": .string(configuration.kafka.bootstrapServers), "group": .string(configuration.groupId)])
        try await serviceGroup.run()
        logger.info("service stopped")
    }

    /// Starts a graceful shutdown (as SIGTERM would).
    public func shutdown() async {
        await group.withLock { $0 }?.triggerGracefulShutdown()
    }

    /// The HTTP port once the server listens (useful with port 0).
    public func httpPort() async -> Int {
        await withCheckedContinuation { continuation in
            let port = boundPort.withLock { $0 }
            if let port {
                continuation.resume(returning: port)
                return
            }
            portWaiters.withLock { $0.append(continuation) }
            if let port = boundPort.withLock({ $0 }) {
                // The server came up between the two checks.
                let pending = portWaiters.withLock { w -> [CheckedContinuation<Int, Never>] in
                    defer { w = [] }
                    return w
                }
                pending.forEach { $0.resume(returning: port) }
            }
        }
    }
}

/// Runs a `BackgroundTask` under the service group; graceful shutdown cancels it.
struct BackgroundService: Service {
    let task: BackgroundTask
    let environment: ServiceEnvironment

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await task.run(environment)
            }
        } catch is CancellationError {
            // Graceful shutdown.
        }
        environment.logger.info("background task stopped", metadata: ["task": .string(task.name)])
    }
}

/// Entry point used by every service executable: reads the process environment once, parses
/// the common and the service's own settings from it, then builds the service from the settings.
public enum ServiceMain {
    public static func run<Own: ServiceOwnSettings>(_ makeDefinition: @Sendable (Own) throws -> ServiceDefinition) async {
        let environment = ProcessInfo.processInfo.environment
        let settings: ServiceSettings<Own>
        do {
            settings = try ServiceSettings<Own>.parse(environment)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(2)
        }
        let configuration = settings.runtime
        RuntimeLogging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: "encompass.\(Own.service.rawValue)")
        ParentWatch.startIfRequested(environment)
        do {
            let definition = try makeDefinition(settings.own)
            let host = try await ServiceHost(definition: definition, configuration: configuration, logger: logger)
            try await host.run()
        } catch {
            logger.critical("service failed", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
