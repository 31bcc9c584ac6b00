import CRdKafka

/// Connection settings shared by producers, consumers and admin clients.
///
/// `properties` are passed to librdkafka unchanged, so anything in librdkafka's
/// CONFIGURATION.md works, including TLS and SASL for a managed Kafka
/// (`security.protocol`, `sasl.mechanisms`, `sasl.username`, `ssl.ca.location`, ...).
public struct KafkaClientConfiguration: Sendable, Equatable {
    public var bootstrapServers: String
    public var clientId: String
    /// Extra librdkafka properties, applied last (they win over the client's defaults).
    public var properties: [String: String]
    /// Extra librdkafka properties for consumers only (e.g. `fetch.wait.max.ms`), applied after
    /// `properties`. Kept apart so producers do not warn about consumer-only settings.
    public var consumerProperties: [String: String]
    /// Extra librdkafka properties for producers only (e.g. `max.in.flight.requests.per.connection`),
    /// applied after `properties`.
    public var producerProperties: [String: String]

    public init(
        bootstrapServers: String, clientId: String = "encompass", properties: [String: String] = [:],
        consumerProperties: [String: String] = [:], producerProperties: [String: String] = [:]
    ) {
        self.bootstrapServers = bootstrapServers
        self.clientId = clientId
        self.properties = properties
        self.consumerProperties = consumerProperties
        self.producerProperties = producerProperties
    }

    /// Settings every client starts from. TCP_NODELAY: requests and responses are small and
    /// latency-bound; with Nagle's algorithm a second small write waits for the peer's delayed
    /// ACK (~40 ms on Linux) — the Java client sets it too.
    static let clientDefaults = ["socket.nagle.disable": "true"]

    func merged(defaults: [String: String]) -> [String: String] {
        var all = Self.clientDefaults.merging(defaults) { _, specific in specific }
        all["bootstrap.servers"] = bootstrapServers
        all["client.id"] = clientId
        for (key, value) in properties { all[key] = value }
        return all
    }
}

public struct KafkaProducerConfiguration: Sendable, Equatable {
    public var client: KafkaClientConfiguration
    /// Time a produce may wait for local queue space before failing with a retriable error.
    public var queueFullTimeout: Duration

    public init(client: KafkaClientConfiguration, queueFullTimeout: Duration = .seconds(60)) {
        self.client = client
        self.queueFullTimeout = queueFullTimeout
    }

    /// librdkafka settings: idempotence on (acks=all, ordered, no duplicates from retries).
    var properties: [String: String] {
        client.merged(defaults: [
            "enable.idempotence": "true",
            "acks": "all",
            // Each outbox batch is enqueued whole and then awaited, so lingering adds latency
            // to every hop and batches little more (1 ms: p50 63 → 50 ms over five hops at
            // 200 incidents/s; 0 sent many one-record requests and spiked p99).
            "linger.ms": "1",
            "queue.buffering.max.messages": "100000",
            "message.timeout.ms": "300000",
            "log.connection.close": "false",
        ]).merging(client.producerProperties) { _, producerOnly in producerOnly }
    }
}

public struct KafkaConsumerConfiguration: Sendable, Equatable {
    public var client: KafkaClientConfiguration
    public var groupId: String
    public var topics: [String]
    /// Messages buffered between librdkafka's poll thread and the processing task.
    public var bufferCapacity: Int
    /// How long a revocation waits for records already handed out to be processed.
    public var revokeDrainTimeout: Duration
    /// librdkafka statistics interval; 0 disables statistics (and lag figures).
    public var statisticsInterval: Duration
    /// Most KiB librdkafka fetches ahead of the application (`queued.max.messages.kbytes`).
    public var prefetchKiB: Int

    public init(
        client: KafkaClientConfiguration,
        groupId: String,
        topics: [String],
        bufferCapacity: Int = 1_000,
        revokeDrainTimeout: Duration = .seconds(20),
        statisticsInterval: Duration = .seconds(5),
        prefetchKiB: Int = 8_192
    ) {
        self.client = client
        self.groupId = groupId
        self.topics = topics
        self.bufferCapacity = bufferCapacity
        self.revokeDrainTimeout = revokeDrainTimeout
        self.statisticsInterval = statisticsInterval
        self.prefetchKiB = prefetchKiB
    }

    /// At-least-once: offsets are stored by the application only after processing
    /// (`enable.auto.offset.store=false`) and the stored offsets are committed in the
    /// background, on revoke and on close.
    var properties: [String: String] {
        let defaults: [String: String] = [
            "group.id": groupId,
            "enable.auto.commit": "true",
            "auto.commit.interval.ms": "1000",
            "enable.auto.offset.store": "false",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": "false",
            "session.timeout.ms": "10000",
            "heartbeat.interval.ms": "1000",
            "max.poll.interval.ms": "300000",
            // librdkafka prefetches up to 64 MiB per consumer by default: under a burst that a
            // service works through slowly, that is resident memory held for minutes, per
            // consumer (intake peaked at 142 MiB at 100,000 incidents). `prefetchKiB`, 8 MiB by
            // default (~15,000 incidents ahead); less costs latency (p99 at 200 incidents/s
            // +10 ms with 4 MiB) and relay throughput.
            "queued.max.messages.kbytes": String(prefetchKiB),
            "statistics.interval.ms": String(statisticsInterval.milliseconds),
            "log.connection.close": "false",
        ]
        return client.merged(defaults: defaults.merging(Self.fetchQueueBackoff) { own, _ in own })
            .merging(client.consumerProperties) { _, consumerOnly in consumerOnly }
    }

    /// Once the prefetch queue reaches `queued.max.messages.kbytes` or `queued.min.messages`,
    /// librdkafka stops fetching and looks again only when its broker thread next wakes: up to
    /// 1 s later (librdkafka issue 2879). A reader that drains the queue faster than that stalls;
    /// that is the ~0.8 s stall of `encompass-bench kafka` (docs/BENCHMARKS.md). librdkafka 2.2.0
    /// made the wait a setting, `fetch.queue.backoff.ms`; older ones (Debian 12 ships 2.0.2)
    /// refuse the name, so it is set only where the linked library takes it.
    static let fetchQueueBackoff = ["fetch.queue.backoff.ms": "20"].filter { librdkafkaAccepts($0.key, $0.value) }
}

/// Whether the linked librdkafka knows a property and takes this value for it.
func librdkafkaAccepts(_ name: String, _ value: String) -> Bool {
    guard let conf = rd_kafka_conf_new() else { return false }
    defer { rd_kafka_conf_destroy(conf) }
    var errstr = [CChar](repeating: 0, count: 256)
    return rd_kafka_conf_set(conf, name, value, &errstr, errstr.count) == RD_KAFKA_CONF_OK
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
