import EncompassKafka
import Foundation
import Prometheus

/// The service's Prometheus metrics. `/metrics` serves `exposition()`.
public final class ServiceMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let service: String
    public let outboxPending: Gauge
    public let outboxPublished: Counter
    /// Seconds the oldest outbox row has waited (`OutboxRelay.oldestRowAge`), set on each scrape.
    public let outboxOldestAge: Gauge
    private let lagGauges = Locked<[GroupPartition: (messages: Gauge, seconds: Gauge)]>([:])
    /// Timestamp of the newest record processed, per group and partition (for lag in seconds).
    private let progress = Locked<[GroupPartition: Date]>([:])

    struct GroupPartition: Hashable {
        var group: String
        var partition: TopicPartition
    }
    private let refreshers = Locked<[@Sendable () -> Void]>([])

    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(5),
    ]

    /// Finer buckets for the parts of a hop at a paced load (`encompass-bench pipeline --hops`).
    static let hopBuckets: [Duration] = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 250, 500, 1000].map {
        .microseconds(Int64($0 * 1000))
    }
    /// From a commit waking the outbox relay to the relay's next read of the outbox.
    public let outboxRelayWait: DurationHistogram
    /// From handing a batch of outbox rows to Kafka to its last acknowledgement.
    public let outboxPublishDuration: DurationHistogram

    public init(service: String) {
        self.service = service
        outboxRelayWait = registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "encompass_outbox_relay_wait", unitName: "seconds",
                helpText:
                    "From a commit waking the outbox relay to its next read of the outbox (the relay busy with the previous batch, or being scheduled)"
            ),
            labels: [("service", service)], buckets: Self.hopBuckets)
        outboxPublishDuration = registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "encompass_outbox_publish_duration", unitName: "seconds",
                helpText: "From handing a batch of outbox rows to Kafka to its last acknowledgement (linger.ms, the produce request, the broker)"),
            labels: [("service", service)], buckets: Self.hopBuckets)
        outboxPending = registry.makeGauge(
            descriptor: .init(
                metricName: "encompass_outbox", unitName: "pending", helpText: "Outbox rows read by the relay and not yet acknowledged by Kafka"),
            labels: [("service", service)])
        outboxPublished = registry.makeCounter(
            descriptor: .init(metricName: "encompass_outbox_published", unitName: "total", helpText: "Outbox rows published to Kafka"),
            labels: [("service", service)])
        outboxOldestAge = registry.makeGauge(
            descriptor: .init(
                metricName: "encompass_outbox_oldest_age", unitName: "seconds",
                helpText: "Seconds the oldest outbox row has waited to be published (0 when the outbox is empty)"),
            labels: [("service", service)])
    }

    public func processed(topic: String, outcome: HandleOutcome, count: Int = 1) {
        registry.makeCounter(
            descriptor: .init(
                metricName: "encompass_messages_processed", unitName: "total",
                helpText: "Records processed, by outcome (applied, duplicate, dead_lettered)"),
            labels: [("service", service), ("topic", topic), ("outcome", outcome.rawValue)]
        ).increment(by: Int64(count))
    }

    /// Adds to a service's own counter `<name>_total` (labelled with the service and `labels`),
    /// for services that do not link the Prometheus library themselves.
    public func count(_ name: String, help: String, labels: [(String, String)] = [], by amount: Int = 1) {
        registry.makeCounter(
            descriptor: .init(metricName: name, unitName: "total", helpText: help),
            labels: [("service", service)] + labels
        ).increment(by: Int64(amount))
    }

    /// Sets a service's own gauge `<name>_<unit>` (`<name>` when `unit` is empty; labelled with
    /// the service and `labels`), for services that do not link the Prometheus library themselves.
    public func gauge(_ name: String, unit: String = "", help: String, labels: [(String, String)] = [], value: Double) {
        registry.makeGauge(
            descriptor: .init(metricName: name, unitName: unit, helpText: help),
            labels: [("service", service)] + labels
        ).set(value)
    }

    public func gauge(_ name: String, unit: String, help: String, labels: [(String, String)] = [], value: Int) {
        gauge(name, unit: unit, help: help, labels: labels, value: Double(value))
    }

    public func failed(topic: String) {
        registry.makeCounter(
            descriptor: .init(metricName: "encompass_messages_failed", unitName: "total", helpText: "Processing attempts that failed transiently"),
            labels: [("service", service), ("topic", topic)]
        ).increment()
    }

    public func deadLettered(topic: String, errorClass: String) {
        registry.makeCounter(
            descriptor: .init(metricName: "encompass_dead_letters", unitName: "total", helpText: "Records sent to the dead letter"),
            labels: [("service", service), ("topic", topic), ("error_class", errorClass)]
        ).increment()
    }

    public func latency(topic: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "encompass_processing_duration", unitName: "seconds", helpText: "Time to apply a batch of records, per record"),
            labels: [("service", service), ("topic", topic)],
            buckets: Self.latencyBuckets
        )
    }

    /// From a record's timestamp (its producer's send) to the start of the batch that applies
    /// it: the producer's linger and request, the broker, the consumer's fetch wait and hand-over.
    public func recordWait(topic: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "encompass_record_wait", unitName: "seconds",
                helpText: "From a record's timestamp (its producer's send) to the start of the batch that applies it"),
            labels: [("service", service), ("topic", topic)],
            buckets: Self.hopBuckets
        )
    }

    /// Notes the records a consumer group has just processed (their broker timestamps).
    public func recordProgress(group: String, records: [KafkaRecord]) {
        progress.withLock { progress in
            for record in records {
                guard let timestamp = record.timestamp else { continue }
                let key = GroupPartition(group: group, partition: TopicPartition(record.topic, record.partition))
                if progress[key].map({ $0 < timestamp }) ?? true { progress[key] = timestamp }
            }
        }
    }

    /// Publishes the consumer's per-partition lag as `kafka_consumergroup_group_lag` (messages)
    /// and `kafka_consumergroup_group_lag_seconds`: 0 when caught up, else the age of the
    /// newest record processed — at most slightly more than the age of the oldest unprocessed
    /// one — or, before any record was processed, the time since the instance started.
    public func updateLag(group: String, lag: [TopicPartition: PartitionLag], now: Date = Date()) {
        let progress = self.progress.withLock { $0 }
        lagGauges.withLock { gauges in
            for (key, pair) in gauges where key.group == group && lag[key.partition] == nil {
                registry.unregisterGauge(pair.messages)
                registry.unregisterGauge(pair.seconds)
                gauges[key] = nil
            }
            for (tp, value) in lag {
                let key = GroupPartition(group: group, partition: tp)
                let labels = [("group", group), ("topic", tp.topic), ("partition", String(tp.partition))]
                let pair =
                    gauges[key] ?? (
                        registry.makeGauge(
                            descriptor: .init(
                                metricName: "kafka_consumergroup_group", unitName: "lag",
                                helpText: "Messages between the committed offset and the end of the partition"),
                            labels: labels),
                        registry.makeGauge(
                            descriptor: .init(
                                metricName: "kafka_consumergroup_group_lag", unitName: "seconds",
                                helpText: "Age of the oldest unprocessed message (0 when caught up)"),
                            labels: labels)
                    )
                gauges[key] = pair
                pair.messages.set(Int64(value.lag))
                let since = progress[key] ?? started
                pair.seconds.set(value.lag <= 0 ? 0 : max(0, now.timeIntervalSince(since)))
            }
        }
    }

    private let started = Date()

    /// Runs before each exposition, to refresh gauges that are read on demand.
    public func addRefresher(_ refresh: @escaping @Sendable () -> Void) {
        refreshers.withLock { $0.append(refresh) }
    }

    public func exposition() -> String {
        for refresh in refreshers.withLock({ $0 }) { refresh() }
        return registry.emitToString()
    }
}
