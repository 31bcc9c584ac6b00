import EncompassKafka
import EncompassModels
import Foundation
import Logging
import WebSupport

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
                groupRows.append(
                    LagRow(
                        group: group, topic: tp.topic, partition: tp.partition, committedOffset: offset,
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
        pipelineGroups(instances: [])
    }

    /// The groups that really read the pipeline's topics: each service's work group on its work
    /// topics (the group its running instances name, else the default), and each running
    /// instance's own group on the topics it reads whole (`ServiceName.replicatedTopics`). A
    /// replica group of an instance that has stopped is not listed: nobody reads under it, so
    /// its lag would only grow.
    public static func pipelineGroups(instances: [InstanceGroups]) -> [(group: String, topics: [String])] {
        var groups: [(group: String, topics: [String])] = []
        for service in ServiceName.allCases {
            let running = instances.filter { $0.service == service }
            var work: [String] = []
            for group in running.map(\.group) + (running.isEmpty ? [service.defaultGroupId] : []) where !work.contains(group) { work.append(group) }
            groups += work.map { ($0, service.workTopics) }
            guard !service.replicatedTopics.isEmpty else { continue }
            var replicas: [String] = []
            for group in running.compactMap(\.replicaGroup) where !replicas.contains(group) { replicas.append(group) }
            groups += replicas.map { ($0, service.replicatedTopics) }
        }
        return groups
    }

    /// Asks each instance's `/healthz` for its consumer groups. Returns those that answered, and
    /// a line for each that did not (its replica group is then not in the report).
    public static func discover(_ endpoints: [(service: ServiceName, url: String)], timeout: TimeInterval = 3) async -> (
        instances: [InstanceGroups], problems: [String]
    ) {
        var instances: [InstanceGroups] = []
        var problems: [String] = []
        for (service, url) in endpoints {
            var client = ServiceClient(service: service, baseURL: url, token: "", timeout: timeout)
            client.urlOption = "--instance \(service.rawValue)=URL"

            do {
                let (status, body) = try await client.call("GET", "/healthz")
                guard status == 200, let health = try? JSONDecoder().decode([String: String].self, from: body), let group = health["group"] else {
                    problems.append(
                        "\(service.rawValue) at \(url) answered /healthz without its consumer groups (status \(status)); is it an Encompass \(service.rawValue) instance?"
                    )
                    continue
                }
                guard health["service"] == service.rawValue else {
                    problems.append("\(url) is \(health["service"] ?? "another service"), not \(service.rawValue); check the URL")
                    continue
                }
                instances.append(
                    InstanceGroups(service: service, instance: health["instance"] ?? "?", group: group, replicaGroup: health["replicaGroup"]))
            } catch {
                problems.append("\(error). Its work group is shown by its default name and its instances' own groups are left out")
            }
        }
        return (instances, problems)
    }
}

/// One running instance's consumer groups, as its `/healthz` names them.
public struct InstanceGroups: Sendable, Equatable, Codable {
    public var service: ServiceName
    public var instance: String
    /// The work group, shared by the service's instances.
    public var group: String
    /// `<group>.replica.<instance>`, for the topics the instance reads whole; nil for a service without any.
    public var replicaGroup: String?

    public init(service: ServiceName, instance: String, group: String, replicaGroup: String?) {
        self.service = service
        self.instance = instance
        self.group = group
        self.replicaGroup = replicaGroup
    }
}
