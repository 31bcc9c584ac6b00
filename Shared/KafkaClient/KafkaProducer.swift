import CRdKafka
import Foundation
import Logging
import Synchronization

/// An idempotent Kafka producer.
///
/// `send` awaits the broker's acknowledgement (the delivery report). `enqueue` hands the record
/// to librdkafka and calls back on delivery, for callers that keep many records in flight.
/// Both wait (asynchronously) while librdkafka's local queue is full: that is the backpressure.
/// Delivery reports are served by a dedicated poll thread, never the cooperative pool, and only
/// there (`flush` waits for that thread instead of polling itself), so a batch's reports are
/// counted without a lock per record.
public final class KafkaProducer: Sendable {
    private let handle: ClientHandle
    private let topics: TopicHandles
    private let poller: PollThread
    private let configuration: KafkaProducerConfiguration
    private let closed = Atomic<Bool>(false)
    private let logger: Logger
    private let space: SpaceWaiters

    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        let context = ClientContext(logger: logger)
        let reports = DeliveryReports()
        context.deliveryReports = reports
        let handle = try ClientHandle(type: RD_KAFKA_PRODUCER, properties: configuration.properties, context: context) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let context = ClientContext.from(opaque) else { return }
                context.deliveryReports?.add(message)
            }
        }
        self.handle = handle
        self.topics = TopicHandles(client: handle.pointer)
        self.configuration = configuration
        self.logger = logger
        let space = SpaceWaiters()
        self.space = space
        self.poller = PollThread(name: "kafka-producer-poll") {
            let served = rd_kafka_poll(handle.pointer, 100)
            reports.settle()
            // Served delivery reports free queue space: wake producers waiting for it.
            if served > 0 { space.resumeAll() }
        }
    }

    /// Sends one record and waits for the broker's acknowledgement.
    @discardableResult
    public func send(_ record: ProducerRecord) async throws(KafkaError) -> DeliveryReport {
        let collector = DeliveryCollector(count: 1)
        try await enqueue(record) { collector.set(0, $0) }
        return try await collector.wait()[0]
    }

    /// Sends many records concurrently and waits for all acknowledgements, in input order.
    public func sendAll(_ records: [ProducerRecord]) async throws(KafkaError) -> [DeliveryReport] {
        let collector = DeliveryCollector(count: records.count)
        for (index, record) in records.enumerated() {
            try await enqueue(record) { collector.set(index, $0) }
        }
        return try await collector.wait()
    }

    /// Hands a record to librdkafka; `onDelivery` runs on the poll thread once the broker has
    /// acknowledged it or it has finally failed. Waits while the local queue is full.
    public func enqueue(
        _ record: ProducerRecord,
        onDelivery: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void
    ) async throws(KafkaError) {
        if let fatal = handle.fatalError { throw fatal }
        let box = DeliveryBox(topic: record.topic, callback: onDelivery)
        var deadline: ContinuousClock.Instant?
        while true {
            // Retained for the delivery report, which releases it.
            let opaque = Unmanaged.passRetained(box).toOpaque()
            let error: KafkaError?
            do throws(KafkaError) {
                error = produce(record, topic: try checkedTopicHandle(record.topic), opaque: opaque)
            } catch {
                Unmanaged<DeliveryBox>.fromOpaque(opaque).release()
                throw error
            }
            guard let error else { return }
            Unmanaged<DeliveryBox>.fromOpaque(opaque).release() // not queued: no delivery report will come
            try await waitForSpace(after: error, deadline: &deadline)
        }
    }

    /// Sends records and waits until all are acknowledged; throws the first failure. Cheaper
    /// than `sendAll` for callers that need no offsets back, such as the outbox relay: the
    /// records go to librdkafka in one synchronous run until its queue is full, and their
    /// delivery reports are counted per batch, with no allocation or reference count per record.
    /// On failure some records may have been written: callers re-send, and consumers
    /// de-duplicate by message id.
    public func sendBatch(_ records: [ProducerRecord]) async throws(KafkaError) {
        guard !records.isEmpty else { return }
        let batch = BatchDelivery(count: records.count)
        // Not retained per record: `batch.wait()` below keeps the batch alive until the last of
        // its delivery reports is counted.
        let opaque = Unmanaged.passUnretained(batch).toOpaque()
        var next = 0
        var enqueueError: KafkaError?
        var deadline: ContinuousClock.Instant?
        var topic: (name: String, handle: OpaquePointer)?
        while next < records.count {
            do throws(KafkaError) {
                // Hand over every record librdkafka's queue takes now, without suspending.
                var refused: KafkaError?
                while next < records.count {
                    if closed.load(ordering: .acquiring) { throw KafkaError(kind: .closed, message: "producer is closed") }
                    let record = records[next]
                    if topic?.name != record.topic { topic = (record.topic, try topics.handle(record.topic)) }
                    if let error = produce(record, topic: topic!.handle, opaque: opaque) {
                        refused = error
                        break
                    }
                    next += 1
                    deadline = nil
                }
                if let refused { try await waitForSpace(after: refused, deadline: &deadline) }
            } catch {
                enqueueError = error
                batch.abandon(records.count - next)
                break
            }
        }
        // Wait for the batch's own delivery reports, counted by the poll thread as they arrive.
        // (rd_kafka_flush would also skip linger.ms, but it waits in 10 ms slices once our poll
        // thread has taken the reports: up to 10 ms per hop; the pipeline benchmark's latency.)
        try await batch.wait()
        if let enqueueError { throw enqueueError }
    }

    /// The handle of a topic, once the producer is known to be open.
    private func checkedTopicHandle(_ topic: String) throws(KafkaError) -> OpaquePointer {
        if closed.load(ordering: .acquiring) { throw KafkaError(kind: .closed, message: "producer is closed") }
        return try topics.handle(topic)
    }

    /// After `produce` refused a record: rethrows anything but a full local queue; for a full
    /// queue waits until the poll thread has served delivery reports (the backpressure), up to
    /// `queueFullTimeout` from the first refusal (`deadline`, nil until then).
    private func waitForSpace(after error: KafkaError, deadline: inout ContinuousClock.Instant?) async throws(KafkaError) {
        guard error.code == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue else { throw error }
        if let fatal = handle.fatalError { throw fatal }
        if closed.load(ordering: .acquiring) { throw KafkaError(kind: .closed, message: "producer is closed") }
        let limit = deadline ?? ContinuousClock.now.advanced(by: configuration.queueFullTimeout)
        deadline = limit
        guard ContinuousClock.now < limit else { throw error }
        await space.wait()
    }

    /// Hands one record to librdkafka (which copies it). Returns the error if it was not queued.
    private func produce(_ record: ProducerRecord, topic: OpaquePointer, opaque: UnsafeMutableRawPointer) -> KafkaError? {
        let error: OpaquePointer? = record.value.withUnsafeBytes { value in
            withOptionalBytes(record.key) { key in
                withHeaderValues(record.headers) { headers in
                    // On the stack: this runs once per record.
                    withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 6 + headers.count) { vus in
                        var n = 0
                        func add(_ value: rd_kafka_vu_t) {
                            vus.initializeElement(at: n, to: value)
                            n += 1
                        }
                        add(vu(RD_KAFKA_VTYPE_RKT) { $0.rkt = topic })
                        // A null pointer is a null value (a tombstone); an empty value
                        // that is not one needs a pointer, which an empty array may not have.
                        let bytes = record.isTombstone ? nil : (value.baseAddress ?? UnsafeRawPointer(emptyValue))
                        add(
                            vu(RD_KAFKA_VTYPE_VALUE) {
                                $0.mem = .init(ptr: UnsafeMutableRawPointer(mutating: bytes), size: record.isTombstone ? 0 : value.count)
                            })
                        if let key {
                            add(
                                vu(RD_KAFKA_VTYPE_KEY) {
                                    $0.mem = .init(ptr: UnsafeMutableRawPointer(mutating: key.baseAddress), size: key.count)
                                })
                        }
                        add(vu(RD_KAFKA_VTYPE_PARTITION) { $0.i32 = record.partition ?? RD_KAFKA_PARTITION_UA })
                        add(vu(RD_KAFKA_VTYPE_MSGFLAGS) { $0.i = RD_KAFKA_MSG_F_COPY })
                        add(vu(RD_KAFKA_VTYPE_OPAQUE) { $0.ptr = opaque })
                        for header in headers {
                            add(vu(RD_KAFKA_VTYPE_HEADER) { $0.header = .init(name: header.name, val: header.value, size: header.size) })
                        }
                        return rd_kafka_produceva(handle.pointer, vus.baseAddress, n)
                    }
                }
            }
        }
        guard let error else { return nil }
        return KafkaError.consume(error, context: "produce to \(record.topic)")
    }

    /// Waits until every queued record is delivered or failed. The poll thread serves the
    /// delivery reports meanwhile (rd_kafka_flush would serve them on this thread).
    public func flush(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while rd_kafka_outq_len(handle.pointer) > 0 {
            guard ContinuousClock.now < deadline else {
                throw KafkaError.from(RD_KAFKA_RESP_ERR__TIMED_OUT, context: "flush (\(rd_kafka_outq_len(handle.pointer)) records still queued)")
            }
            await space.wait()
        }
    }

    /// Gives up on every record still queued or in flight: their delivery reports fail at once
    /// (purged) instead of after `message.timeout.ms`. For a shutdown that cannot wait for a broker
    /// that does not answer; the caller must still hold the records (an outbox does).
    public func purgeUndelivered() {
        guard !closed.load(ordering: .acquiring) else { return }
        _ = rd_kafka_purge(handle.pointer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
    }

    /// Records waiting in librdkafka's queue or in flight.
    public var queuedCount: Int { Int(rd_kafka_outq_len(handle.pointer)) }

    /// Flushes, stops the poll thread and destroys the handle.
    public func close(flushTimeout: Duration = .seconds(30)) async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        do { try await flush(timeout: flushTimeout) } catch {
            logger.error("producer closed with records still queued", metadata: ["error": .string(error.description)])
        }
        await poller.stop()
        let handle = self.handle
        let topics = self.topics
        await BlockingCalls.run {
            topics.destroy()
            handle.destroy()
        }
    }

    deinit {
        // A producer dropped without close(): nothing may block here, so only release resources
        // when the poll thread is already gone. Normal shutdown always calls close().
        if closed.load(ordering: .acquiring) == false {
            logger.warning("KafkaProducer deinitialised without close(); queued records may be lost")
        }
    }
}

/// Tasks waiting for room in librdkafka's queue. The poll thread resumes them after it served
/// events; a waiter also gives up after 100 ms so a stalled queue is re-checked.
final class SpaceWaiters: Sendable {
    private let waiters = Locked<[UInt64: CheckedContinuation<Void, Never>]>([:])
    private let nextId = Atomic<UInt64>(0)

    func wait() async {
        let id = nextId.add(1, ordering: .relaxed).newValue
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    self.waiters.withLock { $0[id] = continuation }
                }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(100))
                self.resume(id)
            }
            await group.next()
            group.cancelAll()
            self.resume(id)
        }
    }

    private func resume(_ id: UInt64) {
        waiters.withLock { $0.removeValue(forKey: id) }?.resume()
    }

    func resumeAll() {
        let all = waiters.withLock { w -> [CheckedContinuation<Void, Never>] in
            defer { w.removeAll() }
            return Array(w.values)
        }
        all.forEach { $0.resume() }
    }
}

/// librdkafka topic handles by name, made on first use and destroyed with the producer.
/// Producing by handle, not by name, spares each record the lookup of its topic under the
/// client's write lock, which librdkafka's own threads take too.
final class TopicHandles: @unchecked Sendable {
    private let client: OpaquePointer
    private let handles = Mutex<[String: UInt]>([:])

    init(client: OpaquePointer) { self.client = client }

    func handle(_ topic: String) throws(KafkaError) -> OpaquePointer {
        if let known = handles.withLock({ $0[topic] }), let pointer = OpaquePointer(bitPattern: known) { return pointer }
        return try handles.withLock { (handles: inout [String: UInt]) throws(KafkaError) -> OpaquePointer in
            if let known = handles[topic], let pointer = OpaquePointer(bitPattern: known) { return pointer }
            guard let pointer = rd_kafka_topic_new(client, topic, nil) else {
                throw KafkaError.from(rd_kafka_last_error(), context: "topic handle for \(topic)")
            }
            handles[topic] = UInt(bitPattern: pointer)
            return pointer
        }
    }

    /// Before the client is destroyed.
    func destroy() {
        let all = handles.withLock { handles -> [UInt] in
            defer { handles = [:] }
            return Array(handles.values)
        }
        for pointer in all { rd_kafka_topic_destroy(OpaquePointer(bitPattern: pointer)) }
    }
}

/// What a record's opaque pointer names: one record's callback (`DeliveryBox`, retained per
/// record) or a whole batch (`BatchDelivery`, not retained per record).
class DeliveryTarget: @unchecked Sendable {
    let isBatch: Bool
    init(isBatch: Bool) { self.isBatch = isBatch }
}

/// Delivery reports as the poll thread serves them. A run of reports for one batch is counted
/// and settled once, when another target's report comes or the poll returns (`settle`).
/// Used by the poll thread only: nothing else serves the producer's queue.
final class DeliveryReports: @unchecked Sendable {
    private var batch: UnsafeMutableRawPointer?
    private var count = 0
    private var firstError = RD_KAFKA_RESP_ERR_NO_ERROR

    func add(_ message: UnsafePointer<rd_kafka_message_t>) {
        guard let opaque = message.pointee._private else { return }
        let err = message.pointee.err
        if opaque == batch {
            count += 1
            if firstError == RD_KAFKA_RESP_ERR_NO_ERROR { firstError = err }
            return
        }
        let isBatch = Unmanaged<DeliveryTarget>.fromOpaque(opaque)._withUnsafeGuaranteedRef { $0.isBatch }
        guard isBatch else {
            Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue().complete(message.pointee)
            return
        }
        settle()
        batch = opaque
        count = 1
        firstError = err
    }

    /// Hands the counted run to its batch. The batch is alive: it waits for these very reports.
    func settle() {
        guard let opaque = batch else { return }
        batch = nil
        let error = firstError == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError.from(firstError, context: "delivery failed")
        Unmanaged<BatchDelivery>.fromOpaque(opaque).takeUnretainedValue().settle(count, error: error)
    }
}

/// One record's callback.
final class DeliveryBox: DeliveryTarget, @unchecked Sendable {
    let topic: String
    let callback: @Sendable (Result<DeliveryReport, KafkaError>) -> Void

    init(topic: String, callback: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) {
        self.topic = topic
        self.callback = callback
        super.init(isBatch: false)
    }

    /// Runs on the producer's poll thread.
    func complete(_ m: rd_kafka_message_t) {
        if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            callback(.success(DeliveryReport(topic: topic, partition: m.partition, offset: m.offset)))
        } else {
            callback(.failure(KafkaError.from(m.err, context: "delivery to \(topic) failed")))
        }
    }
}

/// Counts a whole batch's delivery reports; resumes one waiter when all are in.
final class BatchDelivery: DeliveryTarget, @unchecked Sendable {
    private struct State {
        var remaining: Int
        var firstError: KafkaError?
        var waiter: CheckedContinuation<KafkaError?, Never>?
    }
    private let state: Locked<State>

    init(count: Int) {
        state = Locked(State(remaining: count))
        super.init(isBatch: true)
    }

    /// Records that will never be produced.
    func abandon(_ count: Int) { settle(count, error: nil) }

    /// `count` records reported (or abandoned); `error` is the first failure among them.
    func settle(_ count: Int, error: KafkaError?) {
        let done = state.withLock { s -> (CheckedContinuation<KafkaError?, Never>, KafkaError?)? in
            s.remaining -= count
            if s.firstError == nil { s.firstError = error }
            guard s.remaining <= 0, let waiter = s.waiter else { return nil }
            s.waiter = nil
            return (waiter, s.firstError)
        }
        if let (waiter, error) = done { waiter.resume(returning: error) }
    }

    func wait() async throws(KafkaError) {
        let error: KafkaError? = await withCheckedContinuation { continuation in
            let ready = state.withLock { s -> (Bool, KafkaError?) in
                if s.remaining <= 0 { return (true, s.firstError) }
                s.waiter = continuation
                return (false, nil)
            }
            if ready.0 { continuation.resume(returning: ready.1) }
        }
        if let error { throw error }
    }
}

/// Gathers the delivery results of a batch and resumes one waiter when all are in.
final class DeliveryCollector: Sendable {
    private struct State {
        var results: [Result<DeliveryReport, KafkaError>?]
        var remaining: Int
        var waiter: CheckedContinuation<[Result<DeliveryReport, KafkaError>?], Never>?
    }
    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count)) }

    func set(_ index: Int, _ result: Result<DeliveryReport, KafkaError>) {
        let ready = state.withLock {
            s -> (CheckedContinuation<[Result<DeliveryReport, KafkaError>?], Never>, [Result<DeliveryReport, KafkaError>?])? in
            s.results[index] = result
            s.remaining -= 1
            guard s.remaining == 0, let waiter = s.waiter else { return nil }
            s.waiter = nil
            return (waiter, s.results)
        }
        if let (waiter, results) = ready { waiter.resume(returning: results) }
    }

    func wait() async throws(KafkaError) -> [DeliveryReport] {
        let results = await withCheckedContinuation { continuation in
            let done = state.withLock { s -> [Result<DeliveryReport, KafkaError>?]? in
                if s.remaining == 0 { return s.results }
                s.waiter = continuation
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
        var reports: [DeliveryReport] = []
        reports.reserveCapacity(results.count)
        for result in results {
            switch result {
            case .success(let report)?: reports.append(report)
            case .failure(let error)?: throw error
            case nil: throw KafkaError(kind: .fatal, message: "delivery result missing")
            }
        }
        return reports
    }
}

private func vu(_ type: rd_kafka_vtype_t, _ set: (inout rd_kafka_vu_t.__Unnamed_union_u) -> Void) -> rd_kafka_vu_t {
    var value = rd_kafka_vu_t()
    value.vtype = type
    set(&value.u)
    return value
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

private struct HeaderValue {
    var name: UnsafePointer<CChar>
    var value: UnsafeRawPointer?
    var size: Int
}

/// Lays every header's name (NUL-terminated) and value out in one temporary buffer, alive for
/// the duration of `body` (librdkafka copies them).
private func withHeaderValues<R>(_ headers: [KafkaHeader], _ body: (UnsafeBufferPointer<HeaderValue>) -> R) -> R {
    if headers.isEmpty { return body(UnsafeBufferPointer(start: nil, count: 0)) }
    var bytes = 0
    for header in headers { bytes += header.key.utf8.count + 1 + (header.value?.count ?? 0) }
    return withUnsafeTemporaryAllocation(byteCount: bytes, alignment: 1) { scratch in
        withUnsafeTemporaryAllocation(of: HeaderValue.self, capacity: headers.count) { values in
            var offset = 0
            for (index, header) in headers.enumerated() {
                let name = scratch.baseAddress! + offset
                let nameLength = header.key.utf8.count
                UnsafeMutableRawBufferPointer(rebasing: scratch[offset...]).copyBytes(from: header.key.utf8)
                scratch[offset + nameLength] = 0
                offset += nameLength + 1
                var value: UnsafeRawPointer? = nil
                var size = -1 // -1: null value
                if let bytes = header.value {
                    value = UnsafeRawPointer(scratch.baseAddress! + offset)
                    UnsafeMutableRawBufferPointer(rebasing: scratch[offset...]).copyBytes(from: bytes)
                    offset += bytes.count
                    size = bytes.count
                }
                values.initializeElement(
                    at: index, to: HeaderValue(name: UnsafePointer(name.assumingMemoryBound(to: CChar.self)), value: value, size: size))
            }
            defer { values.deinitialize() }
            return body(UnsafeBufferPointer(values))
        }
    }
}

/// Where an empty (not null) value points: librdkafka reads nothing from it.
private nonisolated(unsafe) let emptyValue = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
