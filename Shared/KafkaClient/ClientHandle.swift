import CRdKafka
import Foundation
import Logging
import Synchronization

/// Per-handle state reachable from librdkafka's C callbacks through the handle's opaque pointer.
final class ClientContext: @unchecked Sendable {
    let logger: Logger
    /// Set once before `rd_kafka_new`; read from librdkafka threads.
    var onStatistics: (@Sendable (String) -> Void)?
    var onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?
    /// A producer's delivery reports (its poll thread counts them per batch).
    var deliveryReports: DeliveryReports?
    let lastFatal = Mutex<KafkaError?>(nil)

    init(logger: Logger) { self.logger = logger }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientContext? {
        guard let opaque else { return nil }
        return Unmanaged<ClientContext>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// Owns an `rd_kafka_t` and its context. Creation applies the properties and wires logging,
/// error and statistics callbacks; `destroy()` runs on the blocking executor.
final class ClientHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let context: ClientContext
    private let contextRef: Unmanaged<ClientContext>
    private let destroyed = Atomic<Bool>(false)

    init(
        type: rd_kafka_type_t,
        properties: [String: String],
        context: ClientContext,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws(KafkaError) {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(kind: .fatal, message: "rd_kafka_conf_new returned nil (out of memory)")
        }
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(kind: .configuration, message: "property \(key)=\(value) rejected: \(cString(errstr))")
            }
        }
        let ref = Unmanaged.passRetained(context)
        rd_kafka_conf_set_opaque(conf, ref.toOpaque())
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
            guard let rk, let context = ClientContext.from(rd_kafka_opaque(rk)) else { return }
            let text = message.map { String(cString: $0) } ?? ""
            let fac = facility.map { String(cString: $0) } ?? ""
            // syslog levels: 0-3 error, 4 warning, 5-6 info/notice, 7 debug
            let logLevel: Logger.Level = level <= 3 ? .error : level == 4 ? .warning : level <= 6 ? .info : .debug
            context.logger.log(level: logLevel, "librdkafka", metadata: ["facility": .string(fac), "detail": .string(text)])
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard let context = ClientContext.from(opaque) else { return }
            let code = rd_kafka_resp_err_t(err)
            let text = reason.map { String(cString: $0) } ?? ""
            if code == RD_KAFKA_RESP_ERR__FATAL, let rk {
                var buffer = [CChar](repeating: 0, count: 512)
                let original = rd_kafka_fatal_error(rk, &buffer, buffer.count)
                let error = KafkaError(kind: .fatal, code: original.rawValue, message: cString(buffer))
                context.lastFatal.withLock { $0 = error }
                context.logger.critical("kafka fatal error", metadata: ["error": .string(error.description)])
            } else {
                // Transport and broker-down errors are retried by librdkafka itself.
                context.logger.warning(
                    "kafka client error",
                    metadata: [
                        "code": .string(KafkaError.name(of: code.rawValue)), "reason": .string(text),
                    ])
            }
        }
        if context.onStatistics != nil {
            rd_kafka_conf_set_stats_cb(conf) { _, json, length, opaque in
                guard let json, let context = ClientContext.from(opaque) else { return 0 }
                let text = String(decoding: UnsafeRawBufferPointer(start: json, count: length), as: UTF8.self)
                context.onStatistics?(text)
                return 0 // librdkafka frees the JSON buffer
            }
        }
        if context.onRebalance != nil {
            rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
                guard let rk, let partitions, let context = ClientContext.from(opaque) else { return }
                context.onRebalance?(rk, err, partitions)
            }
        }
        configure(conf)
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            ref.release()
            throw KafkaError(kind: .configuration, message: "rd_kafka_new failed: \(cString(errstr))")
        }
        self.pointer = handle
        self.context = context
        self.contextRef = ref
    }

    var name: String { String(cString: rd_kafka_name(pointer)) }

    /// Fatal error raised by librdkafka, if any (idempotent producer or consumer).
    var fatalError: KafkaError? { context.lastFatal.withLock { $0 } }

    /// Destroys the handle (blocking: it waits for outstanding requests). Idempotent.
    func destroy() {
        guard !destroyed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        rd_kafka_destroy(pointer)
        contextRef.release()
    }
}

/// Runs blocking librdkafka calls on dedicated GCD threads, never on Swift's cooperative pool.
public enum BlockingCalls {
    private static let queue = DispatchQueue(label: "encompass.kafka.blocking", qos: .userInitiated, attributes: .concurrent)

    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }
}

/// A dedicated OS thread that calls a poll function until stopped.
final class PollThread: @unchecked Sendable {
    private let running = Atomic<Bool>(true)
    private let done = DispatchSemaphore(value: 0)

    init(name: String, poll: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            while running.load(ordering: .acquiring) { poll() }
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Stops the loop and waits (off the cooperative pool) until its last poll has returned.
    func stop() async {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        await BlockingCalls.run { [done] in done.wait() }
    }
}

/// A value behind a lock, shareable between the poll thread, callbacks and tasks.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Reads a NUL-terminated C string out of a buffer librdkafka wrote into.
func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
