import CRdKafka
import Logging

/// librdkafka's built-in mock cluster: a real Kafka-protocol broker on 127.0.0.1, in memory.
///
/// Limits to know: no CreateTopics or DescribeGroups requests (create topics here, before
/// clients connect), and each partition keeps only a few MiB, so durable state must not live
/// only in a topic.
public final class MockKafkaCluster: @unchecked Sendable {
    /// Consumer settings for this broker. The mock answers a Fetch that finds no new records
    /// only when `fetch.wait.max.ms` (default 500 ms) has passed, and records produced meanwhile
    /// do not wake it, as they would on Apache Kafka: every hop of a pipeline then waits about
    /// half of that wait. A short wait keeps a hop's latency in milliseconds, at the cost of an
    /// idle consumer fetching every 10 ms (measured with `encompass-bench pipeline`: p50 from
    /// 1.45 s to 0.11 s over four hops at 200 incidents/s).
    ///
    /// The mock also holds every rebalance of a group that has members (a member joining,
    /// leaving or timing out) open for `session.timeout.ms` − 1 s, waiting for the others to
    /// rejoin (librdkafka's rdkafka_mock_cgrp.c), where Apache Kafka answers as soon as they
    /// have: 9 s per rebalance with the consumers' 10 s. A 6 s session (heartbeats every 0.5 s)
    /// makes that 5 s and notices a killed member after 6 s, with room for heartbeats delayed
    /// on a busy machine.
    public static let consumerProperties = ["fetch.wait.max.ms": "10", "session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]

    /// Producer settings for this broker: one request in flight per connection. An idempotent
    /// producer may keep up to five requests in flight to a partition's leader, because Apache
    /// Kafka checks each batch's sequence number and refuses one that follows a gap
    /// (OUT_OF_ORDER_SEQUENCE_NUMBER); librdkafka then takes a later request's success as proof
    /// that the earlier ones were written too ("implicit ack", rdkafka_request.c). The mock checks
    /// sequences only for transactional producers (rd_kafka_mock_validate_records, up to
    /// librdkafka 2.x at least), so when one request fails (an error pushed by a fault drill) and
    /// the next to the same partition succeeds, it appends the second, the producer reports the
    /// first one's records delivered, and they are never written: an outbox deletes them and they
    /// are lost. With one request in flight there is no second request to overtake a failed one.
    public static let producerProperties = ["max.in.flight.requests.per.connection": "1"]

    private let owner: ClientHandle
    private let cluster: OpaquePointer
    public let bootstrapServers: String
    public let brokerCount: Int
    private var destroyed = false

    public init(brokers: Int = 1, logger: Logger) throws(KafkaError) {
        // The mock cluster lives inside a client instance that must outlive it. Its brokers'
        // connections take that instance's socket settings: without TCP_NODELAY a response
        // written right after another waits for the client's delayed ACK (~40 ms on Linux),
        // which holds back a tenth of all deliveries by 40–50 ms (`encompass-bench pipeline`, per hop).
        owner = try ClientHandle(
            type: RD_KAFKA_PRODUCER,
            properties: ["log.connection.close": "false", "socket.nagle.disable": "true"],
            context: ClientContext(logger: logger)
        )
        guard let cluster = rd_kafka_mock_cluster_new(owner.pointer, Int32(brokers)) else {
            owner.destroy()
            throw KafkaError(kind: .fatal, message: "could not start the mock cluster (no free port?)")
        }
        self.cluster = cluster
        self.brokerCount = brokers
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(min(replicationFactor, brokerCount)))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
            throw KafkaError.from(err, context: "mock topic \(name)")
        }
    }

    public func createTopics(_ specs: [TopicSpec]) throws(KafkaError) {
        for spec in specs { try createTopic(spec.name, partitions: spec.partitions, replicationFactor: spec.replicationFactor) }
    }

    /// Broker ids are 1...brokerCount.
    public func setBrokerDown(_ id: Int32) { _ = rd_kafka_mock_broker_set_down(cluster, id) }
    public func setBrokerUp(_ id: Int32) { _ = rd_kafka_mock_broker_set_up(cluster, id) }
    public func setBrokerRoundTripTime(_ id: Int32, milliseconds: Int) { _ = rd_kafka_mock_broker_set_rtt(cluster, id, Int32(milliseconds)) }

    /// Makes the next requests of this API (e.g. 0 Produce, 1 Fetch, 8 OffsetCommit, 11 JoinGroup)
    /// fail with these errors, in order.
    public func pushRequestErrors(apiKey: Int16, errors: [rd_kafka_resp_err_t]) {
        var errors = errors
        errors.withUnsafeMutableBufferPointer { rd_kafka_mock_push_request_errors_array(cluster, apiKey, $0.count, $0.baseAddress) }
    }

    public func clearRequestErrors(apiKey: Int16) { rd_kafka_mock_clear_request_errors(cluster, apiKey) }

    /// Makes broker `id`'s next requests of this API fail with these errors, in order (each
    /// answered after `rtt` ms). Broker errors are served before the cluster-wide ones, and
    /// `brokerErrorCount` tells how many are still waiting, so a test can see they were hit.
    public func pushBrokerRequestErrors(_ id: Int32, apiKey: Int16, errors: [rd_kafka_resp_err_t], rttMilliseconds: Int = 0) throws(KafkaError) {
        for error in errors {
            let err = encompass_mock_broker_push_request_error(cluster, id, apiKey, error, Int32(rttMilliseconds))
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "push request error on mock broker \(id)") }
        }
    }

    /// Errors pushed with `pushBrokerRequestErrors` that broker `id` has not served yet.
    public func brokerErrorCount(_ id: Int32, apiKey: Int16) throws(KafkaError) -> Int {
        var count = 0
        let err = rd_kafka_mock_broker_error_stack_cnt(cluster, id, apiKey, &count)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "error stack of mock broker \(id)") }
        return count
    }

    /// Moves a partition's leadership to broker `id` (-1: no leader). Clients still asking the
    /// old leader get NOT_LEADER_OR_FOLLOWER and refresh their metadata.
    public func setPartitionLeader(topic: String, partition: Int32, broker id: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_partition_set_leader(cluster, topic, partition, id)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "leader of \(topic)[\(partition)]") }
    }

    /// Makes broker `id` the coordinator of consumer group `group`.
    public func setGroupCoordinator(_ group: String, broker id: Int32) throws(KafkaError) {
        let err = rd_kafka_mock_coordinator_set(cluster, "group", group, id)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "coordinator of group \(group)") }
    }

    public func shutdown() {
        guard !destroyed else { return }
        destroyed = true
        rd_kafka_mock_cluster_destroy(cluster)
        owner.destroy()
    }

    deinit { shutdown() }
}

/// Kafka API keys used with `pushRequestErrors`.
public enum KafkaApiKey {
    public static let produce: Int16 = 0
    public static let fetch: Int16 = 1
    public static let listOffsets: Int16 = 2
    public static let metadata: Int16 = 3
    public static let offsetCommit: Int16 = 8
    public static let offsetFetch: Int16 = 9
    public static let findCoordinator: Int16 = 10
    public static let joinGroup: Int16 = 11
    public static let heartbeat: Int16 = 12
    public static let syncGroup: Int16 = 14
    public static let initProducerId: Int16 = 22
}
