import CRdKafka
import Foundation
import Logging
import Synchronization

public enum RebalanceEvent: Sendable, Equatable {
    /// These partitions are now this member's. Called before fetching starts.
    case assigned([TopicPartition])
    /// These partitions are being taken away. Called after records already handed out were
    /// processed (or the drain timeout passed) and before their offsets are committed.
    case revoked([TopicPartition])
}

/// Per-partition figures from librdkafka's statistics.
public struct PartitionLag: Sendable, Equatable {
    public var topicPartition: TopicPartition
    /// Last committed offset (-1001 when none).
    public var committedOffset: Int64
    /// High watermark: the offset the next produced record will get.
    public var highWatermark: Int64
    /// Messages between the committed offset (or position) and the high watermark.
    public var lag: Int64
}

/// A consumer-group member, read as an `AsyncSequence` of records, at least once.
///
/// Contract: after a record (and every earlier record of its partition) is processed and its
/// effects are committed to the service's store, call `storeOffsets`. Only stored offsets are
/// committed: in the background every second, synchronously when partitions are revoked, and
/// on `close()`. A crash therefore re-delivers unprocessed records, never skips them.
/// librdkafka's poll loop runs on a dedicated thread; every blocking call runs off the
/// cooperative pool.
public final class KafkaConsumer: AsyncSequence, Sendable {
    public typealias Element = KafkaRecord

    private let handle: ClientHandle
    private let buffer: RecordBuffer
    private let tracker: OffsetTracker
    private let state: Locked<ConsumerState>
    private let configuration: KafkaConsumerConfiguration
    private let logger: Logger
    private let poller = Locked<PollThread?>(nil)
    private let closed = Atomic<Bool>(false)
    private let queue: QueueHandle

    struct ConsumerState {
        var assignment: Set<TopicPartition> = []
        var joined = false
        var paused = false
        var lag: [TopicPartition: PartitionLag] = [:]
        var groupState = "init"
    }

    public init(
        configuration: KafkaConsumerConfiguration,
        logger: Logger,
        onRebalance: (@Sendable (RebalanceEvent) -> Void)? = nil
    ) throws(KafkaError) {
        guard !configuration.topics.isEmpty else {
            throw KafkaError(kind: .configuration, message: "consumer needs at least one topic")
        }
        let buffer = RecordBuffer(capacity: configuration.bufferCapacity)
        let tracker = OffsetTracker()
        let state = Locked(ConsumerState())
        let context = ClientContext(logger: logger)
        let drainTimeout = configuration.revokeDrainTimeout
        context.onStatistics = { json in
            let parsed = StatisticsParser.parse(json)
            state.withLock {
                $0.lag = parsed.partitions
                if let group = parsed.groupState { $0.groupState = group }
            }
        }
        context.onRebalance = { rk, err, list in
            KafkaConsumer.rebalance(
                rk: rk, err: err, list: list, buffer: buffer, tracker: tracker, state: state,
                drainTimeout: drainTimeout, logger: logger, listener: onRebalance
            )
        }
        let handle = try ClientHandle(type: RD_KAFKA_CONSUMER, properties: configuration.properties, context: context)
        self.handle = handle
        self.buffer = buffer
        self.tracker = tracker
        self.state = state
        self.configuration = configuration
        self.logger = logger

        rd_kafka_poll_set_consumer(handle.pointer) // one queue: messages, rebalances, stats
        guard let topics = rd_kafka_topic_partition_list_new(Int32(configuration.topics.count)) else {
            throw KafkaError(kind: .fatal, message: "out of memory")
        }
        defer { rd_kafka_topic_partition_list_destroy(topics) }
        for topic in configuration.topics {
            rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA)
        }
        let err = rd_kafka_subscribe(handle.pointer, topics)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            handle.destroy()
            throw KafkaError.from(err, context: "subscribe to \(configuration.topics)")
        }
        let capacity = buffer.capacity
        let topicNames = TopicNameCache()
        let queue = QueueHandle(rd_kafka_queue_get_consumer(handle.pointer))
        let slots = MessageSlots(count: 500)
        poller.withLock {
            $0 = PollThread(name: "kafka-consumer-poll") {
                KafkaConsumer.pollOnce(
                    pointer: handle.pointer, queue: queue, slots: slots, buffer: buffer, state: state,
                    capacity: capacity, topicNames: topicNames, logger: logger)
            }
        }
        self.queue = queue
    }

    // MARK: AsyncSequence

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer

        public mutating func next() async throws -> KafkaRecord? {
            switch await consumer.buffer.next() {
            case .record(let record):
                consumer.tracker.delivered(CollectionOfOne(record))
                return record
            case .end:
                return nil
            case .failure(let error):
                throw error
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: self) }

    /// Records already fetched, without waiting (for batching after a first `next()`).
    /// Each returned record counts as handed out, like one returned by the iterator.
    public func takeBuffered(limit: Int) -> [KafkaRecord] {
        let records = buffer.takeAvailable(limit: limit)
        tracker.delivered(records)
        return records
    }

    /// Ends the sequence for the reader: records not yet handed out are dropped (they were
    /// not stored, so they are fetched again after a restart or by the partition's next owner).
    /// Call `close()` afterwards to leave the group.
    public func stopDelivery() {
        buffer.finish(discardBuffered: true)
    }

    // MARK: Offsets

    /// Marks these records as processed: their offsets (+1) will be committed.
    public func storeOffsets(_ records: [KafkaRecord]) {
        var highest: [TopicPartition: Int64] = [:]
        for record in records {
            highest[record.topicPartition] = Swift.max(highest[record.topicPartition] ?? -1, record.offset)
        }
        guard !highest.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(highest.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (tp, offset) in highest {
            rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)?.pointee.offset = offset + 1
        }
        let err = rd_kafka_offsets_store(handle.pointer, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            // Typically the partition was revoked meanwhile: its new owner re-reads the record.
            logger.debug("offset store skipped", metadata: ["error": .string(KafkaError.name(of: err.rawValue))])
        }
        tracker.stored(highest)
    }

    /// Commits stored offsets now and waits for the broker's answer.
    public func commit() async throws(KafkaError) {
        let handle = self.handle
        let err = await BlockingCalls.run { rd_kafka_commit(handle.pointer, nil, 0) }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
            throw KafkaError.from(err, context: "commit")
        }
    }

    // MARK: State

    public var assignment: Set<TopicPartition> { state.withLock { $0.assignment } }

    public var groupId: String { configuration.groupId }
    /// True once the group has given this member an assignment (possibly empty).
    public var hasJoinedGroup: Bool { state.withLock { $0.joined } }
    /// Latest per-partition lag from librdkafka statistics.
    public var lag: [TopicPartition: PartitionLag] { state.withLock { $0.lag } }
    public var groupState: String { state.withLock { $0.groupState } }
    public var fatalError: KafkaError? { handle.fatalError }

    /// Leaves the group cleanly: waits for handed-out records, commits stored offsets,
    /// and destroys the handle. Idempotent.
    public func close() async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let poller = self.poller.withLock { p -> PollThread? in
            defer { p = nil }
            return p
        }
        await poller?.stop()
        // Nothing handed out will be processed any more: the final revoke must not wait for it.
        tracker.abandonInFlight()
        queue.destroy()
        let handle = self.handle
        let logger = self.logger
        await BlockingCalls.run {
            // Commit while the group is still steady: once this member leaves, a broker may
            // refuse commits until the rebalance completes (librdkafka's mock cluster does).
            let commitErr = rd_kafka_commit(handle.pointer, nil, 0)
            if commitErr != RD_KAFKA_RESP_ERR_NO_ERROR && commitErr != RD_KAFKA_RESP_ERR__NO_OFFSET {
                logger.warning(
                    "commit before close failed; the revoke commits again",
                    metadata: ["error": .string(KafkaError.name(of: commitErr.rawValue))])
            }
            // Serves the final revoke through our rebalance callback, which commits.
            let err = rd_kafka_consumer_close(handle.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.warning("consumer close", metadata: ["error": .string(KafkaError.name(of: err.rawValue))])
            }
            handle.destroy()
        }
        buffer.finish()
    }

    // MARK: Poll thread

    /// One turn of the poll thread: waits up to 50 ms for a record, takes up to 499 more that
    /// are ready in one call (rebalance and statistics callbacks are served by both calls) and
    /// hands them over under one lock.
    private static func pollOnce(
        pointer: OpaquePointer, queue: QueueHandle, slots: MessageSlots, buffer: RecordBuffer, state: Locked<ConsumerState>,
        capacity: Int, topicNames: TopicNameCache, logger: Logger
    ) {
        let paused = state.withLock { $0.paused }
        if paused && buffer.count <= capacity / 2 {
            setPaused(false, pointer: pointer, state: state)
        } else if !paused && buffer.count >= capacity {
            // Full: give the reader a second to make room before pausing, because pausing
            // makes librdkafka drop and re-fetch everything it had prefetched.
            if !buffer.waitForSpace(timeout: 1) { setPaused(true, pointer: pointer, state: state) }
            return
        }
        // librdkafka 2.x's batch call waits its whole timeout unless the batch fills, so block
        // for the first record with consumer_poll and take the rest with a zero timeout.
        guard let first = rd_kafka_consumer_poll(pointer, 50) else { return }
        slots.base[0] = first
        let more = rd_kafka_consume_batch_queue(queue.pointer, 0, slots.base + 1, slots.count - 1)
        let count = 1 + Swift.max(more, 0)
        var batch: [KafkaRecord] = []
        batch.reserveCapacity(count)
        defer { for i in 0..<count { rd_kafka_message_destroy(slots.base[i]) } }
        for i in 0..<count {
            guard let message = slots.base[i] else { continue }
            let err = message.pointee.err
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                batch.append(record(from: message, topicNames: topicNames))
                continue
            }
            if err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
            let error = KafkaError.from(err, context: "consume")
            if error.isFatal || rd_kafka_fatal_error(pointer, nil, 0) != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.critical("consumer failed", metadata: ["error": .string(error.description)])
                buffer.push(contentsOf: batch)
                buffer.finish(error)
                return
            }
            logger.warning("consumer error", metadata: ["error": .string(error.description)])
        }
        buffer.push(contentsOf: batch)
    }

    private static func setPaused(_ paused: Bool, pointer: OpaquePointer, state: Locked<ConsumerState>) {
        let assignment = state.withLock { s -> Set<TopicPartition> in
            s.paused = paused
            return s.assignment
        }
        guard !assignment.isEmpty else { return }
        let list = partitionList(assignment)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = paused ? rd_kafka_pause_partitions(pointer, list) : rd_kafka_resume_partitions(pointer, list)
    }

    /// Copies a message out of librdkafka. Takes librdkafka's own pointer: headers and
    /// timestamp are found from it, so a copy of the struct would not do.
    static func record(from message: UnsafeMutablePointer<rd_kafka_message_t>, topicNames: TopicNameCache) -> KafkaRecord {
        let m = message.pointee
        let topic = m.rkt.map(topicNames.name) ?? ""
        let value: [UInt8] = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        let key: [UInt8]? = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            var name: UnsafePointer<CChar>?
            var val: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, index, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = val.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                headers.append(KafkaHeader(key: name.map { String(cString: $0) } ?? "", value: bytes))
                index += 1
            }
        }
        var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(message, &tsType)
        let timestamp = ts >= 0 ? Date(timeIntervalSince1970: Double(ts) / 1000) : nil
        return KafkaRecord(
            topic: topic, partition: m.partition, offset: m.offset, key: key, value: value,
            headers: headers, timestamp: timestamp, isTombstone: m.payload == nil
        )
    }

    // Runs on the poll thread, inside rd_kafka_consumer_poll or rd_kafka_consumer_close.
    private static func rebalance(
        rk: OpaquePointer, err: rd_kafka_resp_err_t, list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
        buffer: RecordBuffer, tracker: OffsetTracker, state: Locked<ConsumerState>, drainTimeout: Duration,
        logger: Logger, listener: (@Sendable (RebalanceEvent) -> Void)?
    ) {
        let partitions = topicPartitions(list)
        // NULL when the group handle cannot answer (e.g. a revoke while the consumer closes): the
        // configured assignors are eager then, as by default.
        let cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } == "COOPERATIVE"
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            logger.info("partitions assigned", metadata: ["partitions": .string(partitions.map(\.description).joined(separator: ","))])
            listener?(.assigned(partitions.sorted()))
            state.withLock {
                $0.assignment.formUnion(partitions)
                $0.joined = true
                $0.paused = false
            }
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) {
                    logger.error("incremental assign failed", metadata: ["error": .string(KafkaError.consume(error, context: "assign").description)])
                }
            } else {
                rd_kafka_assign(rk, list)
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let revoked = Set(partitions)
            let purged = buffer.purge(revoked)
            let drained = tracker.waitUntilProcessed(revoked, timeout: drainTimeout)
            if !drained {
                logger.warning("revocation drain timed out; unprocessed records will be re-delivered to the new owner")
            }
            listener?(.revoked(partitions.sorted()))
            let commitErr = rd_kafka_commit(rk, nil, 0)
            if commitErr != RD_KAFKA_RESP_ERR_NO_ERROR && commitErr != RD_KAFKA_RESP_ERR__NO_OFFSET {
                logger.warning(
                    "commit on revoke failed; the new owner may re-process some records",
                    metadata: ["error": .string(KafkaError.name(of: commitErr.rawValue))])
            }
            logger.info(
                "partitions revoked",
                metadata: [
                    "partitions": .string(partitions.map(\.description).joined(separator: ",")), "purged": "\(purged)",
                ])
            tracker.forget(revoked)
            state.withLock {
                $0.assignment.subtract(revoked)
                $0.lag = $0.lag.filter { !revoked.contains($0.key) }
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) { rd_kafka_error_destroy(error) }
            } else {
                rd_kafka_assign(rk, nil)
            }
        default:
            logger.error("rebalance error", metadata: ["error": .string(KafkaError.name(of: err.rawValue))])
            state.withLock { $0.assignment = [] }
            rd_kafka_assign(rk, nil)
        }
    }
}

/// The consumer's queue handle, released when the consumer closes.
final class QueueHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    private var destroyed = false

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    func destroy() {
        guard !destroyed else { return }
        destroyed = true
        rd_kafka_queue_destroy(pointer)
    }
}

/// Reusable array that `rd_kafka_consume_batch_queue` fills. Used by the poll thread only.
final class MessageSlots: @unchecked Sendable {
    let base: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    let count: Int

    init(count: Int) {
        self.count = count
        base = .allocate(capacity: count)
        base.initialize(repeating: nil, count: count)
    }

    deinit { base.deallocate() }
}

/// Topic names by librdkafka topic handle, so each record does not copy its topic's C string.
/// Used by the poll thread only.
final class TopicNameCache: @unchecked Sendable {
    private var names: [OpaquePointer: String] = [:]

    func name(_ rkt: OpaquePointer) -> String {
        if let name = names[rkt] { return name }
        let name = String(cString: rd_kafka_topic_name(rkt))
        names[rkt] = name
        return name
    }
}

func topicPartitions(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
    let l = list.pointee
    return (0..<Int(l.cnt)).map { i in
        let e = l.elems[i]
        return TopicPartition(String(cString: e.topic), e.partition)
    }
}

func partitionList(_ partitions: some Collection<TopicPartition>) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
    let list = rd_kafka_topic_partition_list_new(Int32(max(partitions.count, 1)))!
    for tp in partitions { rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition) }
    return list
}

/// Which offsets were handed to the application and which it has finished, per partition,
/// so that a revocation can wait for in-flight work before committing.
final class OffsetTracker: @unchecked Sendable {
    private let condition = NSCondition()
    private var delivered: [TopicPartition: Int64] = [:]
    private var stored: [TopicPartition: Int64] = [:]

    func delivered(_ records: some Collection<KafkaRecord>) {
        guard let first = records.first else { return }
        // Records come in runs of one partition, in offset order: one table update per run.
        var partition = first.partition
        var topic = first.topic
        var highest = first.offset
        condition.lock()
        for record in records.dropFirst() {
            if record.partition == partition && record.topic == topic {
                highest = max(highest, record.offset)
                continue
            }
            note(TopicPartition(topic, partition), highest)
            (topic, partition, highest) = (record.topic, record.partition, record.offset)
        }
        note(TopicPartition(topic, partition), highest)
        condition.unlock()
    }

    private func note(_ partition: TopicPartition, _ offset: Int64) {
        delivered[partition] = max(delivered[partition] ?? -1, offset)
    }

    func stored(_ highest: [TopicPartition: Int64]) {
        condition.lock()
        for (tp, offset) in highest { stored[tp] = max(stored[tp] ?? -1, offset) }
        condition.broadcast()
        condition.unlock()
    }

    func waitUntilProcessed(_ partitions: Set<TopicPartition>, timeout: Duration) -> Bool {
        let deadline = Date().addingTimeInterval(Double(timeout.milliseconds) / 1000)
        condition.lock()
        defer { condition.unlock() }
        while true {
            let pending = partitions.contains { tp in
                guard let handedOut = delivered[tp] else { return false }
                return (stored[tp] ?? -1) < handedOut
            }
            if !pending { return true }
            if !condition.wait(until: deadline) { return false }
        }
    }

    /// The reader has stopped: records handed out and not stored will never be stored.
    func abandonInFlight() {
        condition.lock()
        delivered = stored
        condition.broadcast()
        condition.unlock()
    }

    func forget(_ partitions: Set<TopicPartition>) {
        condition.lock()
        for tp in partitions {
            delivered[tp] = nil
            stored[tp] = nil
        }
        condition.unlock()
    }
}

/// Reads the parts of librdkafka's statistics JSON this project uses.
enum StatisticsParser {
    struct Parsed {
        var partitions: [TopicPartition: PartitionLag] = [:]
        var groupState: String?
    }

    static func parse(_ json: String) -> Parsed {
        var parsed = Parsed()
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return parsed }
        if let cgrp = root["cgrp"] as? [String: Any] { parsed.groupState = cgrp["state"] as? String }
        guard let topics = root["topics"] as? [String: Any] else { return parsed }
        for (topic, value) in topics {
            guard let partitions = (value as? [String: Any])?["partitions"] as? [String: Any] else { continue }
            for (key, value) in partitions {
                guard let id = Int32(key), id >= 0, let p = value as? [String: Any] else { continue }
                // Only partitions assigned to this member ("desired") are reported.
                guard (p["desired"] as? Bool) == true || (p["desired"] as? NSNumber)?.boolValue == true else { continue }
                func number(_ key: String) -> Int64 { (p[key] as? NSNumber)?.int64Value ?? -1 }
                let high = number("hi_offset")
                guard high >= 0 else { continue } // no fetch response yet
                let committed = number("committed_offset")
                // Without a committed offset the whole retained partition is unprocessed.
                let base = committed >= 0 ? committed : max(number("lo_offset"), 0)
                let tp = TopicPartition(topic, id)
                parsed.partitions[tp] = PartitionLag(
                    topicPartition: tp,
                    committedOffset: committed >= 0 ? committed : -1001,
                    highWatermark: high,
                    lag: max(high - base, 0)
                )
            }
        }
        return parsed
    }
}
