import EncompassKafka
import EncompassModels
import Foundation
import Logging

/// One consumer group's position on one partition, like `kafka-consumer-groups --describe`,
/// with the age of the oldest unprocessed message.
public struct LagRow: Codable, Sendable, Equatable {
    public var group: String
    public var topic: String
    public var partition: Int32
    /// nil when the group has committed nothing on this partition.
    public var committedOffset: Int64?
    public var endOffset: Int64
    public var lag: Int64
    /// Age of the next message the group will process; 0 when caught up, nil when unknown.
    public var lagSeconds: Double?
}

/// Reads consumer groups' committed offsets, the partitions' end offsets and the timestamp of
/// each group's next record, straight from Kafka (no service needs to be running).
public enum LagReport {
    public static func collect(
        client: KafkaClientConfiguration, groups: [(group: String, topics: [String])], logger: Logger, now: Date = Date()
    ) async throws(KafkaError) -> [LagRow] {
        let admin = try KafkaAdmin(client: client, logger: logger)
        var partitions: [String: Int] = [:]
        var ends: [TopicPartition: (low: Int64, high: Int64)] = [:]
        do {
            partitions = try await admin.listTopics()
            for topic in Set(groups.flatMap(\.topics)).sorted() {
                for p in 0..<(partitions[topic] ?? 0) {
                    let tp = TopicPartition(topic, Int32(p))
                    ends[tp] = try await admin.watermarks(tp)
                }
            }
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        var rows: [LagRow] = []
        for (group, topics) in groups {
            let tps = topics.flatMap { topic in (0..<(partitions[topic] ?? 0)).map { TopicPartition(topic, Int32($0)) } }
            guard !tps.isEmpty else { continue }
            let committed = try await KafkaAdmin.committedOffsets(client: client, group: group, partitions: tps, logger: logger)
            var next: [TopicPartition: Int64] = [:]
            var groupRows: [LagRow] = []
            for tp in tps.sorted() {
                let (low, high) = ends[tp] ?? (0, 0)
                let offset = committed[tp].flatMap { $0 >= 0 ? $0 : nil }
                // Without a commit the group starts at the earliest record still kept.
                let position = max(offset ?? low, low)
                let lag = max(0, high - position)
                if lag > 0 { next[tp] = position }
                groupRows.append(LagRow(group: group, topic: tp.topic, partition: tp.partition, committedOffset: offset,
                                        endOffset: high, lag: lag, lagSeconds: lag == 0 ? 0 : nil))
            }
            let stamps = try await KafkaAdmin.recordTimestamps(client: client, at: next, logger: logger)
            for index in groupRows.indices where groupRows[index].lag > 0 {
                let tp = TopicPartition(groupRows[index].topic, groupRows[index].partition)
                groupRows[index].lagSeconds = stamps[tp].map { max(0, now.timeIntervalSince($0)) }
            }
            rows += groupRows
        }
        return rows
    }

    /// The five services' consumer groups (default names) and their work topics.
    public static var pipelineGroups: [(group: String, topics: [String])] {
        ServiceName.allCases.map { ($0.defaultGroupId, $0.workTopics) }
    }
}
