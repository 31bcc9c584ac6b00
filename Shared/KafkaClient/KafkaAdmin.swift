import CRdKafka
import Foundation
import Logging

public struct TopicSpec: Sendable, Equatable {
    public var name: String
    public var partitions: Int
    public var replicationFactor: Int
    /// Topic configs, e.g. `cleanup.policy=compact` for changelogs.
    public var configs: [String: String]

    public init(name: String, partitions: Int, replicationFactor: Int = 1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

public struct TopicMetadata: Sendable, Equatable {
    public var name: String
    public var partitions: [Int32]
}

public enum TopicCreation: Sendable, Equatable {
    case created
    case alreadyExists
    /// The broker has no CreateTopics (librdkafka's mock cluster): the topic was found, or
    /// auto-created, through a metadata request. Its partition count is reported as found.
    case presentWithoutCreateTopics(partitions: Int)
}

/// Cluster administration that works on Apache Kafka and on librdkafka's mock cluster.
public final class KafkaAdmin: Sendable {
    private let handle: ClientHandle
    private let logger: Logger

    public init(client: KafkaClientConfiguration, logger: Logger) throws(KafkaError) {
        self.logger = logger
        self.handle = try ClientHandle(
            type: RD_KAFKA_PRODUCER,
            properties: client.merged(defaults: ["log.connection.close": "false"]),
            context: ClientContext(logger: logger)
        )
    }

    public func close() async {
        let handle = self.handle
        await BlockingCalls.run { handle.destroy() }
    }

    /// Creates the topics that do not exist yet. On a broker without CreateTopics (the mock
    /// cluster), falls back to metadata and reports what is there.
    public func ensureTopics(_ specs: [TopicSpec], timeout: Duration = .seconds(15)) async throws(KafkaError) -> [String: TopicCreation] {
        // Topics that exist already need no CreateTopics (which the mock cluster cannot answer).
        let existing = try await listTopics(timeout: timeout)
        var result: [String: TopicCreation] = [:]
        var missing: [TopicSpec] = []
        for spec in specs {
            if existing[spec.name] != nil { result[spec.name] = .alreadyExists } else { missing.append(spec) }
        }
        guard !missing.isEmpty else { return result }
        let created = try await createMissing(missing, timeout: timeout)
        return result.merging(created) { _, new in new }
    }

    /// Every topic in the cluster with its partition count.
    public func listTopics(timeout: Duration = .seconds(10)) async throws(KafkaError) -> [String: Int] {
        let handle = self.handle
        let ms = Int32(clamping: timeout.milliseconds)
        let result: Result<[String: Int], KafkaError> = await BlockingCalls.run {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(handle.pointer, 1, nil, &metadata, ms)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                return .failure(KafkaError.from(err, context: "cluster metadata"))
            }
            defer { rd_kafka_metadata_destroy(metadata) }
            var topics: [String: Int] = [:]
            for i in 0..<Int(metadata.pointee.topic_cnt) {
                let t = metadata.pointee.topics[i]
                if t.err == RD_KAFKA_RESP_ERR_NO_ERROR { topics[String(cString: t.topic)] = Int(t.partition_cnt) }
            }
            return .success(topics)
        }
        return try result.get()
    }

    private func createMissing(_ specs: [TopicSpec], timeout: Duration) async throws(KafkaError) -> [String: TopicCreation] {
        let handle = self.handle
        let ms = Int32(clamping: timeout.milliseconds)
        let outcome: Result<[String: TopicCreation], KafkaError> = await BlockingCalls.run {
            Result { () throws(KafkaError) in try KafkaAdmin.createTopics(handle.pointer, specs, timeoutMs: ms) }
        }
        switch outcome {
        case .success(let result):
            return result
        case .failure(let error)
        where error.code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE.rawValue
            || error.code == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION.rawValue
            || error.code == RD_KAFKA_RESP_ERR_INVALID_REQUEST.rawValue
            // The mock cluster names no controller, so librdkafka times out waiting for one.
            || (error.kind == .timeout && error.message.contains("controller")):
            logger.info("broker has no CreateTopics (mock cluster?); checking topics through metadata")
            var result: [String: TopicCreation] = [:]
            for spec in specs {
                let found = try await metadata(topic: spec.name, timeout: timeout)
                result[spec.name] = .presentWithoutCreateTopics(partitions: found.partitions.count)
            }
            return result
        case .failure(let error):
            throw error
        }
    }

    private static func createTopics(_ rk: OpaquePointer, _ specs: [TopicSpec], timeoutMs: Int32) throws(KafkaError) -> [String: TopicCreation] {
        var errstr = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { newTopics.forEach { rd_kafka_NewTopic_destroy($0) } }
        for spec in specs {
            guard let topic = rd_kafka_NewTopic_new(spec.name, Int32(spec.partitions), Int32(spec.replicationFactor), &errstr, errstr.count) else {
                throw KafkaError(kind: .configuration, message: "topic \(spec.name): \(cString(errstr))")
            }
            for (key, value) in spec.configs { _ = rd_kafka_NewTopic_set_config(topic, key, value) }
            newTopics.append(topic)
        }
        let queue = rd_kafka_queue_new(rk)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, &errstr, errstr.count)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMs, &errstr, errstr.count)
        newTopics.withUnsafeMutableBufferPointer { rd_kafka_CreateTopics(rk, $0.baseAddress, $0.count, options, queue) }
        guard let event = rd_kafka_queue_poll(queue, timeoutMs + 1_000) else {
            throw KafkaError(kind: .timeout, message: "CreateTopics got no answer")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(err, context: "CreateTopics: \(String(cString: rd_kafka_event_error_string(event)))")
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            throw KafkaError(kind: .fatal, message: "CreateTopics returned an unexpected event")
        }
        var count = 0
        guard let topics = rd_kafka_CreateTopics_result_topics(result, &count) else { return [:] }
        var outcome: [String: TopicCreation] = [:]
        for i in 0..<count {
            let topicResult = topics[i]
            let name = String(cString: rd_kafka_topic_result_name(topicResult))
            let code = rd_kafka_topic_result_error(topicResult)
            switch code {
            case RD_KAFKA_RESP_ERR_NO_ERROR: outcome[name] = .created
            case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: outcome[name] = .alreadyExists
            default:
                let text = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) } ?? ""
                throw KafkaError.from(code, context: "create topic \(name): \(text)")
            }
        }
        return outcome
    }

    /// Metadata of one topic (on brokers that auto-create topics, asking creates it).
    public func metadata(topic: String, timeout: Duration = .seconds(10)) async throws(KafkaError) -> TopicMetadata {
        let handle = self.handle
        let ms = Int32(clamping: timeout.milliseconds)
        let result: Result<TopicMetadata, KafkaError> = await BlockingCalls.run {
            guard let rkt = rd_kafka_topic_new(handle.pointer, topic, nil) else {
                return .failure(KafkaError(kind: .configuration, message: "invalid topic name \(topic)"))
            }
            defer { rd_kafka_topic_destroy(rkt) }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(handle.pointer, 0, rkt, &metadata, ms)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                return .failure(KafkaError.from(err, context: "metadata for \(topic)"))
            }
            defer { rd_kafka_metadata_destroy(metadata) }
            let m = metadata.pointee
            for i in 0..<Int(m.topic_cnt) {
                let t = m.topics[i]
                guard String(cString: t.topic) == topic else { continue }
                if t.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    return .failure(KafkaError.from(t.err, context: "topic \(topic)"))
                }
                let ids = (0..<Int(t.partition_cnt)).map { t.partitions[$0].id }.sorted()
                return .success(TopicMetadata(name: topic, partitions: ids))
            }
            return .failure(KafkaError(kind: .permanent, message: "topic \(topic) not in metadata"))
        }
        return try result.get()
    }

    /// Low and high watermarks of a partition (asks the leader).
    public func watermarks(_ tp: TopicPartition, timeout: Duration = .seconds(10)) async throws(KafkaError) -> (low: Int64, high: Int64) {
        let handle = self.handle
        let ms = Int32(clamping: timeout.milliseconds)
        let result: Result<(low: Int64, high: Int64), KafkaError> = await BlockingCalls.run {
            var low: Int64 = 0
            var high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(handle.pointer, tp.topic, tp.partition, &low, &high, ms)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { return .failure(KafkaError.from(err, context: "watermarks of \(tp)")) }
            return .success((low, high))
        }
        return try result.get()
    }

    /// A consumer group's committed offsets for these partitions (-1001 where none),
    /// read with an OffsetFetch that does not join the group.
    public static func committedOffsets(
        client: KafkaClientConfiguration, group: String, partitions: [TopicPartition],
        logger: Logger, timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [TopicPartition: Int64] {
        let handle = try ClientHandle(
            type: RD_KAFKA_CONSUMER,
            properties: client.merged(defaults: ["group.id": group, "enable.auto.commit": "false", "log.connection.close": "false"]),
            context: ClientContext(logger: logger)
        )
        let ms = Int32(clamping: timeout.milliseconds)
        let result: Result<[TopicPartition: Int64], KafkaError> = await BlockingCalls.run {
            defer { handle.destroy() }
            let list = partitionList(partitions)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let err = rd_kafka_committed(handle.pointer, list, ms)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { return .failure(KafkaError.from(err, context: "committed offsets of \(group)")) }
            var offsets: [TopicPartition: Int64] = [:]
            let l = list.pointee
            for i in 0..<Int(l.cnt) {
                let e = l.elems[i]
                offsets[TopicPartition(String(cString: e.topic), e.partition)] = e.offset
            }
            return .success(offsets)
        }
        return try result.get()
    }

    /// A topic's records from its first, until `count` have come or `timeout` has passed, read
    /// by a consumer assigned every partition: it joins no consumer group, so it does not wait
    /// for one to form (the embedded broker holds a new group's first join open for 3 s), and
    /// commits nothing. For tests and tools that check what a topic holds.
    public static func readFromStart(
        client: KafkaClientConfiguration, topic: String, count: Int, logger: Logger, timeout: Duration = .seconds(30)
    ) async throws(KafkaError) -> [KafkaRecord] {
        let deadline = ContinuousClock.now + timeout
        let admin = try KafkaAdmin(client: client, logger: logger)
        let partitions: [Int32]
        do { partitions = try await admin.metadata(topic: topic, timeout: timeout).partitions } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        let handle = try ClientHandle(
            type: RD_KAFKA_CONSUMER,
            properties: client.merged(defaults: [
                "group.id": "encompass-topic-reader", "enable.auto.commit": "false", "log.connection.close": "false",
            ]).merging(client.consumerProperties) { _, consumerOnly in consumerOnly },
            context: ClientContext(logger: logger)
        )
        let result: Result<[KafkaRecord], KafkaError> = await BlockingCalls.run {
            defer { handle.destroy() }
            let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for partition in partitions {
                rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
            }
            let error = rd_kafka_assign(handle.pointer, list)
            if error != RD_KAFKA_RESP_ERR_NO_ERROR {
                return .failure(KafkaError.from(error, context: "assign \(topic) to read it"))
            }
            let topicNames = TopicNameCache()
            var records: [KafkaRecord] = []
            while records.count < count, ContinuousClock.now < deadline {
                guard let message = rd_kafka_consumer_poll(handle.pointer, 100) else { continue }
                defer { rd_kafka_message_destroy(message) }
                guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
                records.append(KafkaConsumer.record(from: message, topicNames: topicNames))
            }
            return .success(records)
        }
        return try result.get()
    }

    /// The timestamps of the records at these offsets (the next record each consumer group will
    /// process), for lag in seconds. Reads with an assigned consumer that joins no group and
    /// commits nothing. A partition whose record cannot be read in time is left out.
    public static func recordTimestamps(
        client: KafkaClientConfiguration, at offsets: [TopicPartition: Int64], logger: Logger, timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [TopicPartition: Date] {
        guard !offsets.isEmpty else { return [:] }
        let handle = try ClientHandle(
            type: RD_KAFKA_CONSUMER,
            properties: client.merged(defaults: [
                "group.id": "encompass-lag-probe", "enable.auto.commit": "false", "enable.partition.eof": "true",
                "log.connection.close": "false",
            ]),
            context: ClientContext(logger: logger)
        )
        let deadline = ContinuousClock.now + timeout
        let result: Result<[TopicPartition: Date], KafkaError> = await BlockingCalls.run {
            defer { handle.destroy() }
            let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for (tp, offset) in offsets {
                rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition).pointee.offset = offset
            }
            let error = rd_kafka_assign(handle.pointer, list)
            if error != RD_KAFKA_RESP_ERR_NO_ERROR {
                return .failure(KafkaError.from(error, context: "assign for lag probe"))
            }
            var found: [TopicPartition: Date] = [:]
            var finished = Set<TopicPartition>()
            while finished.count < offsets.count, ContinuousClock.now < deadline {
                guard let message = rd_kafka_consumer_poll(handle.pointer, 100) else { continue }
                defer { rd_kafka_message_destroy(message) }
                let m = message.pointee
                guard let rkt = m.rkt else { continue }
                let tp = TopicPartition(String(cString: rd_kafka_topic_name(rkt)), m.partition)
                guard !finished.contains(tp) else { continue }
                if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                    let ts = rd_kafka_message_timestamp(message, &type)
                    if ts >= 0 { found[tp] = Date(timeIntervalSince1970: Double(ts) / 1000) }
                    finished.insert(tp)
                } else if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m.err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE {
                    finished.insert(tp)
                }
            }
            return .success(found)
        }
        return try result.get()
    }
}
