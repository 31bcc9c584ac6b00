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

    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        let context = ClientContext(logger: logger)
        let handle = try ClientHandle(type: RD_KAFKA_PRODUCER, properties: configuration.properties, context: context) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
                guard let message, let opaque = message.pointee._private else { return }
                let box = Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue()
                let m = message.pointee
                if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    box.complete(.success(DeliveryReport(topic: box.topic, partition: m.partition, offset: m.offset)))
                } else {
                    box.complete(.failure(KafkaError.from(m.err, context: "delivery to \(box.topic) failed")))
                }
            }
        }
        self.handle = handle
        self.configuration = configuration
        self.logger = logger
        self.poller = PollThread(name: "kafka-producer-poll") { _ = rd_kafka_poll(handle.pointer, 100) }
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
        let deadline = ContinuousClock.now.advanced(by: configuration.queueFullTimeout)
        var backoff = Duration.microseconds(200)
        while true {
            if closed.load(ordering: .acquiring) {
                throw KafkaError(kind: .closed, message: "producer is closed")
            }
            if let fatal = handle.fatalError { throw fatal }
            let box = DeliveryBox(topic: record.topic, callback: onDelivery)
            let error = produce(record, box: box)
            guard let error else { return }
            if error.code == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue, ContinuousClock.now < deadline {
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(20))
                continue
            }
            throw error
        }
    }

    private func produce(_ record: ProducerRecord, box: DeliveryBox) -> KafkaError? {
        let opaque = Unmanaged.passRetained(box).toOpaque()
        let error: OpaquePointer? = record.topic.withCString { topic in
            record.value.withUnsafeBytes { value in
                withOptionalBytes(record.key) { key in
                    withHeaderValues(record.headers) { headerValues in
                        // On the stack: this runs once per record.
                        withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 6 + headerValues.count) { vus in
                            var n = 0
                            func add(_ value: rd_kafka_vu_t) { vus.initializeElement(at: n, to: value); n += 1 }
                            add(vu(RD_KAFKA_VTYPE_TOPIC) { $0.cstr = topic })
                            add(vu(RD_KAFKA_VTYPE_VALUE) { $0.mem = .init(ptr: UnsafeMutableRawPointer(mutating: value.baseAddress), size: value.count) })
                            if let key {
                                add(vu(RD_KAFKA_VTYPE_KEY) { $0.mem = .init(ptr: UnsafeMutableRawPointer(mutating: key.baseAddress), size: key.count) })
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
        Unmanaged<DeliveryBox>.fromOpaque(opaque).release() // not queued: no delivery report will come
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

final class DeliveryBox: @unchecked Sendable {
    let topic: String
    let callback: @Sendable (Result<DeliveryReport, KafkaError>) -> Void

    init(topic: String, callback: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) {
        self.topic = topic
        self.callback = callback
    }

    func complete(_ result: Result<DeliveryReport, KafkaError>) { callback(result) }
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
        let ready = state.withLock { s -> (CheckedContinuation<[Result<DeliveryReport, KafkaError>?], Never>, [Result<DeliveryReport, KafkaError>?])? in
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
