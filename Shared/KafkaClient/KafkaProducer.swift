import CRdKafka
import Foundation
import Logging
import Synchronization

/// An idempotent Kafka producer.
///
/// `send` awaits the broker's acknowledgement (the delivery report). `enqueue` hands the record
/// to librdkafka and calls back on delivery, for callers that keep many records in flight.
/// Both wait (asynchronously) while librdkafka's local queue is full: that is the backpressure.
/// Delivery reports are served by a dedicated poll thread, never the cooperative pool.
public final class KafkaProducer: Sendable {
    private let handle: ClientHandle
    private let poller: PollThread
    private let configuration: KafkaProducerConfiguration
    private let closed = Atomic<Bool>(false)
    private let logger: Logger
    private let space: SpaceWaiters

    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        let context = ClientContext(logger: logger)
        let handle = try ClientHandle(type: RD_KAFKA_PRODUCER, properties: configuration.properties, context: context) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
                guard let message, let opaque = message.pointee._private else { return }
                Unmanaged<DeliveryTarget>.fromOpaque(opaque).takeRetainedValue().complete(message.pointee)
            }
        }
        self.handle = handle
        self.configuration = configuration
        self.logger = logger
        let space = SpaceWaiters()
        self.space = space
        self.poller = PollThread(name: "kafka-producer-poll") {
            // Served delivery reports free queue space: wake producers waiting for it.
            if rd_kafka_poll(handle.pointer, 100) > 0 { space.resumeAll() }
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
        try await enqueue(record, target: DeliveryBox(topic: record.topic, callback: onDelivery))
    }

    /// Sends records and waits until all are acknowledged; throws the first failure. Cheaper
    /// than `sendAll` (no per-record allocation) for callers that need no offsets back, such
    /// as the outbox relay.
    /// On failure some records may have been written: callers re-send, and consumers
    /// de-duplicate by message id.
    public func sendBatch(_ records: [ProducerRecord]) async throws(KafkaError) {
        let batch = BatchDelivery(count: records.count)
        var enqueueError: KafkaError?
        for (index, record) in records.enumerated() {
            do {
                try await enqueue(record, target: batch)
            } catch {
                enqueueError = error
                batch.abandon(records.count - index)
                break
            }
        }
        // Wait for the batch's own delivery reports, served by the poll thread as they arrive.
        // (rd_kafka_flush would also skip linger.ms, but it waits in 10 ms slices once our poll
        // thread has taken the reports: up to 10 ms per hop; the pipeline benchmark's latency.)
        try await batch.wait()
        if let enqueueError { throw enqueueError }
    }

    private func enqueue(_ record: ProducerRecord, target: DeliveryTarget) async throws(KafkaError) {
        var deadline: ContinuousClock.Instant?
        while true {
            if closed.load(ordering: .acquiring) { throw KafkaError(kind: .closed, message: "producer is closed") }
            guard let error = produce(record, target: target) else { return }
            guard error.code == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue else { throw error }
            if let fatal = handle.fatalError { throw fatal }
            let limit = deadline ?? ContinuousClock.now.advanced(by: configuration.queueFullTimeout)
            deadline = limit
            guard ContinuousClock.now < limit else { throw error }
            // Backpressure: wait until the poll thread has served delivery reports.
            await space.wait()
        }
    }

    private func produce(_ record: ProducerRecord, target: DeliveryTarget) -> KafkaError? {
        let opaque = Unmanaged.passRetained(target).toOpaque()
        let error: OpaquePointer? = record.topic.withCString { topic in
            record.value.withUnsafeBytes { value in
                withOptionalBytes(record.key) { key in
                    withHeaderValues(record.headers) { headerValues in
                        // On the stack: this runs once per record.
                        withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 6 + headerValues.count) { vus in
                            var n = 0
                            func add(_ value: rd_kafka_vu_t) {
                                vus.initializeElement(at: n, to: value)
                                n += 1
                            }
                            add(vu(RD_KAFKA_VTYPE_TOPIC) { $0.cstr = topic })
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
                            for header in headerValues {
                                add(vu(RD_KAFKA_VTYPE_HEADER) { $0.header = .init(name: header.name, val: header.value, size: header.size) })
                            }
                            return rd_kafka_produceva(handle.pointer, vus.baseAddress, n)
                        }
                    }
                }
            }
        }
        guard let error else { return nil }
        Unmanaged<DeliveryTarget>.fromOpaque(opaque).release() // not queued: no delivery report will come
        return KafkaError.consume(error, context: "produce to \(record.topic)")
    }

    /// Waits until every queued record is delivered or failed.
    public func flush(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let handle = self.handle
        let ms = Int32(clamping: timeout.milliseconds)
        let err = await BlockingCalls.run { rd_kafka_flush(handle.pointer, ms) }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(err, context: "flush (\(rd_kafka_outq_len(handle.pointer)) records still queued)")
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
        await BlockingCalls.run { handle.destroy() }
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

/// What a delivery report is handed to (the message's opaque pointer, retained per message).
class DeliveryTarget: @unchecked Sendable {
    /// Runs on the producer's poll thread.
    func complete(_ message: rd_kafka_message_t) {}
}

/// One record's callback.
final class DeliveryBox: DeliveryTarget, @unchecked Sendable {
    let topic: String
    let callback: @Sendable (Result<DeliveryReport, KafkaError>) -> Void

    init(topic: String, callback: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) {
        self.topic = topic
        self.callback = callback
    }

    override func complete(_ m: rd_kafka_message_t) {
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

    init(count: Int) { state = Locked(State(remaining: count)) }

    override func complete(_ m: rd_kafka_message_t) {
        let error = m.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError.from(m.err, context: "delivery failed")
        settle(1, error: error)
    }

    /// Records that will never be produced.
    func abandon(_ count: Int) { settle(count, error: nil) }

    private func settle(_ count: Int, error: KafkaError?) {
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

/// Keeps C strings and bytes for every header alive for the duration of `body`.
private func withHeaderValues<R>(_ headers: [KafkaHeader], _ body: ([HeaderValue]) -> R) -> R {
    if headers.isEmpty { return body([]) }
    var storage: [UnsafeMutableRawPointer] = []
    defer { storage.forEach { free($0) } }
    var values: [HeaderValue] = []
    for header in headers {
        let name = strdup(header.key)!
        storage.append(UnsafeMutableRawPointer(name))
        var pointer: UnsafeRawPointer? = nil
        var size = -1 // -1: null value
        if let bytes = header.value {
            let copy = malloc(max(bytes.count, 1))!
            bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(copy), byteCount: bytes.count) }
            storage.append(copy)
            pointer = UnsafeRawPointer(copy)
            size = bytes.count
        }
        values.append(HeaderValue(name: UnsafePointer(name), value: pointer, size: size))
    }
    return body(values)
}

/// Where an empty (not null) value points: librdkafka reads nothing from it.
private nonisolated(unsafe) let emptyValue = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
