import Foundation

public struct KafkaHeader: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    public init(key: String, string: String) {
        self.init(key: key, value: Array(string.utf8))
    }

    public var stringValue: String? { value.map { String(decoding: $0, as: UTF8.self) } }
}

public struct TopicPartition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// A record received from Kafka. The bytes are copied out of librdkafka's buffers.
public struct KafkaRecord: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// Producer create time (or broker append time), when the broker reports one.
    public var timestamp: Date?
    /// The record has no value at all (null, not empty): a tombstone, which tells a compacted
    /// topic to forget the key. `value` is then empty.
    public var isTombstone: Bool

    public init(
        topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
        headers: [KafkaHeader] = [], timestamp: Date? = nil, isTombstone: Bool = false
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
        self.isTombstone = isTombstone
    }

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
    public var keyString: String? { key.map { String(decoding: $0, as: UTF8.self) } }
    public func header(_ name: String) -> KafkaHeader? { headers.first { $0.key == name } }
}

/// A record to send. `partition` nil means "let the partitioner choose from the key".
public struct ProducerRecord: Sendable, Equatable {
    public var topic: String
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    public var partition: Int32?
    /// Send no value at all (null): a tombstone for `key` (see `tombstone(topic:key:headers:)`).
    public var isTombstone: Bool = false

    public init(topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = [], partition: Int32? = nil) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
    }

    public init(topic: String, key: String?, value: [UInt8], headers: [KafkaHeader] = [], partition: Int32? = nil) {
        self.init(topic: topic, key: key.map { Array($0.utf8) }, value: value, headers: headers, partition: partition)
    }

    /// A record with a null value: on a compacted topic, compaction drops every earlier record
    /// of `key` and, after `delete.retention.ms`, the tombstone itself.
    public static func tombstone(topic: String, key: String, headers: [KafkaHeader] = []) -> ProducerRecord {
        var record = ProducerRecord(topic: topic, key: key, value: [], headers: headers)
        record.isTombstone = true
        return record
    }
}

/// Where the broker stored a produced record.
public struct DeliveryReport: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}
