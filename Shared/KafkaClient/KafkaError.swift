import CRdKafka

/// A failure reported by librdkafka or by this client, classified so callers know what to do.
///
/// `isRetriable` errors are transient (broker down, leader moving, local queue full, timeout):
/// retry with backoff. `isFatal` errors mean the client instance is unusable (for example an
/// idempotent producer that lost its sequence): close it and start a new one.
public struct KafkaError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        /// A property name or value was rejected. Fix the configuration.
        case configuration
        /// Transient: retry with backoff.
        case retriable
        /// The client instance cannot continue. Recreate it.
        case fatal
        /// The operation did not finish in time. Usually transient.
        case timeout
        /// The client was already closed.
        case closed
        /// Permanent for this request (e.g. message too large, unknown topic): do not retry as is.
        case permanent
    }

    public let kind: Kind
    /// librdkafka's `rd_kafka_resp_err_t` code, when there is one.
    public let code: Int32?
    public let message: String

    public init(kind: Kind, code: Int32? = nil, message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public var isRetriable: Bool { kind == .retriable || kind == .timeout }
    public var isFatal: Bool { kind == .fatal || kind == .closed }

    /// The broker or client refuses this one record for good (too large, invalid, an invalid
    /// topic name): sending it again as it is cannot succeed, while the records behind it can.
    /// Errors that refuse every record alike are not counted: authorization failures (fix the
    /// service's credentials or ACLs), a topic or partition that does not exist (create it), a
    /// feature the brokers lack. Records wait for those to be fixed.
    public var refusesRecord: Bool {
        guard kind == .permanent else { return false }
        switch code.map({ rd_kafka_resp_err_t($0) }) {
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED?, RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED?,
            RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED?, RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED?,
            RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC?, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART?, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION?,
            RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE?:
            return false
        default:
            return true
        }
    }

    /// What an operator or caller should do about it.
    public var advice: String {
        switch kind {
        case .configuration: return "check the librdkafka property names and values (see librdkafka CONFIGURATION.md)"
        case .retriable: return "transient; retry with backoff, check that the brokers are reachable if it persists"
        case .fatal: return "the Kafka client is unusable; restart the service (the error is logged with its cause)"
        case .timeout: return "timed out; check broker reachability and load, then retry"
        case .closed: return "the client was closed; this is expected during shutdown"
        case .permanent: return "the request cannot succeed as is; fix the message or topic"
        }
    }

    public var description: String {
        let codeText = code.map { " (\(KafkaError.name(of: $0)))" } ?? ""
        return "Kafka \(kind.rawValue) error\(codeText): \(message); \(advice)"
    }

    static func name(of code: Int32) -> String {
        String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(code)))
    }

    /// Classifies a response code.
    public static func from(_ err: rd_kafka_resp_err_t, context: String) -> KafkaError {
        let text = String(cString: rd_kafka_err2str(err))
        return KafkaError(kind: classify(err), code: err.rawValue, message: "\(context): \(text)")
    }

    /// Classifies and frees an `rd_kafka_error_t`.
    static func consume(_ error: OpaquePointer, context: String) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        let code = rd_kafka_error_code(error)
        let text = String(cString: rd_kafka_error_string(error))
        var kind = classify(code)
        if rd_kafka_error_is_fatal(error) != 0 { kind = .fatal } else if rd_kafka_error_is_retriable(error) != 0 { kind = .retriable }
        return KafkaError(kind: kind, code: code.rawValue, message: "\(context): \(text)")
    }

    static func classify(_ err: rd_kafka_resp_err_t) -> Kind {
        switch err {
        case RD_KAFKA_RESP_ERR__FATAL, RD_KAFKA_RESP_ERR__FENCED, RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
            RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
            RD_KAFKA_RESP_ERR__INCONSISTENT:
            return .fatal
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
            return .timeout
        case RD_KAFKA_RESP_ERR__DESTROY:
            return .closed
        case RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_RECORD,
            RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP, RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT,
            RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE,
            RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, RD_KAFKA_RESP_ERR_INVALID_REQUEST:
            return .permanent
        default:
            return .retriable
        }
    }
}
