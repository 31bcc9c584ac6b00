import EncompassModels
import Foundation
import WebSupport

/// A service's dead letters as the operator sees them: one entry per source record, whichever
/// instances hold it.
///
/// With several instances in a consumer group one Kafka record can be dead-lettered twice: the
/// first instance fails it, the broker refuses its offset commit during a rebalance
/// (REBALANCE_IN_PROGRESS), and the partition's next owner reads the record again and fails it
/// too: a copy in each store. The listing merges copies by topic, partition and offset; replay
/// and discard act on the record: every copy is marked, and a replay publishes once, through the
/// copy named, the other copies being marked replayed as that one (`replayedAs`).
public struct DeadLetterRecords: Sendable {
    public let service: ServiceName
    /// The service's instances, in the order `DeadLetterAddress` counts them.
    public let clients: [ServiceClient]

    public init(service: ServiceName, clients: [ServiceClient]) {
        self.service = service
        self.clients = clients
    }

    /// The address of dead letter `id` of the instance at `index` in `clients`.
    public func address(_ index: Int, _ id: Int64) -> DeadLetterAddress {
        DeadLetterAddress(service: service, instance: clients.count > 1 ? index + 1 : nil, id: id)
    }

    /// Every instance's dead letters matching `query` (as `GET /v1/dead-letters` takes it), each
    /// with its address, copies not merged; and why an instance could not be listed.
    public func copies(query: [String: String]) async -> (views: [DeadLetterView], failures: [String]) {
        var views: [DeadLetterView] = []
        var failures: [String] = []
        for (index, client) in clients.enumerated() {
            do {
                views += try await client.decode([DeadLetterView].self, "GET", "/v1/dead-letters", query: query).map { view in
                    var view = view
                    view.address = address(index, view.id).description
                    return view
                }
            } catch {
                failures.append("\(error)")
            }
        }
        return (views, failures)
    }

    /// One entry per record: copies of a Kafka record (same service, topic, partition and
    /// offset) merge into the newest copy, whose `copies` lists them all; a dead letter of input
    /// that did not come from Kafka is its own record. Newest first.
    public static func merge(_ views: [DeadLetterView]) -> [DeadLetterView] {
        let newestFirst = views.sorted { ($0.deadLetteredAt, $0.address ?? "") > ($1.deadLetteredAt, $1.address ?? "") }
        var merged: [DeadLetterView] = []
        var place: [String: Int] = [:]
        for view in newestFirst {
            if let record = DeadLetterRecordKey(view), let index = place["\(view.service) \(record)"] {
                merged[index].copies?.append(DeadLetterCopy(view))
                merged[index].status = recordStatus(merged[index].copies?.map(\.status) ?? [])
                continue
            }
            if let record = DeadLetterRecordKey(view) { place["\(view.service) \(record)"] = merged.count }
            var entry = view
            entry.copies = [DeadLetterCopy(view)]
            merged.append(entry)
        }
        return merged
    }

    /// A record's status from its copies': replayed once any copy is (it was published),
    /// else discarded once any copy is, else open.
    public static func recordStatus(_ statuses: [String]) -> String {
        statuses.contains("replayed") ? "replayed" : statuses.contains("discarded") ? "discarded" : statuses.first ?? "open"
    }

    /// A copy of the record, where it is.
    struct Copy {
        var index: Int
        var view: DeadLetterView
    }

    /// What a replay or discard of a record did.
    public struct RecordAction<Outcome: Sendable>: Sendable {
        /// A replay's outcome: the publishing copy's answer (the earlier replay's when the record
        /// had been replayed); a discard's: the copy named, discarded.
        public var outcome: Outcome
        /// A replay's copy that answered: the one named, which published the record now, or a
        /// copy found replayed before, which publishes nothing again. Nil for a discard.
        public var publishedBy: DeadLetterAddress?
        /// The other copies of the record marked now.
        public var marked: [DeadLetterAddress]
        /// Copies, or instances that may hold one, left as they were, with why (e.g. an instance
        /// unreachable): doing it again marks them, publishing nothing twice.
        public var failures: [String]
    }

    /// The copy named and every other copy of its record in any instance (none for input that
    /// did not come from Kafka); instances that could not be asked are failures.
    func copies(of address: DeadLetterAddress) async throws -> (named: Copy, others: [Copy], failures: [String]) {
        let index = try instanceIndex(address)
        let named = try await clients[index].decode(DeadLetterView.self, "GET", "/v1/dead-letters/\(address.id)")
        guard let record = DeadLetterRecordKey(named) else { return (Copy(index: index, view: named), [], []) }
        var others: [Copy] = []
        var failures: [String] = []
        for (other, client) in clients.enumerated() {
            do {
                let found = try await client.decode(
                    [DeadLetterView].self, "GET", "/v1/dead-letters", query: record.query.merging(["status": "all", "limit": "10000"]) { $1 })
                others += found.filter { other != index || $0.id != named.id }.map { Copy(index: other, view: $0) }
            } catch {
                failures.append(
                    "\(service.rawValue) instance \(other + 1) (\(client.baseURL)): its copies of \(record) were not looked for: \(error)")
            }
        }
        return (Copy(index: index, view: named), others, failures)
    }

    func instanceIndex(_ address: DeadLetterAddress) throws -> Int {
        let index = (address.instance ?? 1) - 1
        guard address.service == service, clients.indices.contains(index) else {
            throw ServiceCallError(
                description:
                    "\(address) is not one of the \(clients.count) instance(s) of \(service.rawValue) listed (\(ServiceClient.instancesVariable(service)) or --endpoint); list them again with encompass dlq list"
            )
        }
        return index
    }

    /// Replays the record of dead letter `address`: published once (through this copy, with
    /// `payload` if given), unless a copy of it was replayed before; every open copy is marked.
    /// Refused when a copy was discarded.
    public func replay(_ address: DeadLetterAddress, by actor: String, payload: DeadLetterReplayRequest.Edit?) async throws -> RecordAction<
        ReplayOutcome
    > {
        let (named, others, failures) = try await copies(of: address)
        if named.view.status == "open", let discarded = others.first(where: { $0.view.status == "discarded" }) {
            throw ServiceCallError(
                description: DeadLetterOpError.copyDiscarded(self.address(discarded.index, discarded.view.id).description).description)
        }
        // The copy that publishes: one replayed before, else the one named.
        let publisher = ([named] + others).first { $0.view.status == "replayed" } ?? named
        let publishing = clients[publisher.index]
        let outcome = try await publishing.decode(
            ReplayOutcome.self, "POST", "/v1/dead-letters/\(publisher.view.id)/replay",
            json: DeadLetterReplayRequest(by: actor, payload: publisher.index == named.index && publisher.view.id == named.view.id ? payload : nil))
        let publishedBy = self.address(publisher.index, publisher.view.id)
        var result = RecordAction(outcome: outcome, publishedBy: publishedBy, marked: [], failures: failures)
        guard let record = DeadLetterRecordKey(named.view) else { return result }
        let copy = DeadLetterReplayedCopy(
            address: publishedBy.description, originalTopic: record.topic, originalPartition: record.partition, originalOffset: record.offset,
            topic: outcome.topic, messageId: outcome.messageId)
        for other in [named] + others where other.view.status == "open" && !(other.index == publisher.index && other.view.id == publisher.view.id) {
            let marked = self.address(other.index, other.view.id)
            do {
                _ = try await clients[other.index].decode(
                    ReplayOutcome.self, "POST", "/v1/dead-letters/\(other.view.id)/replay", json: DeadLetterReplayRequest(by: actor, replayedAs: copy)
                )
                result.marked.append(marked)
            } catch {
                result.failures.append("\(marked) was not marked replayed: \(error)")
            }
        }
        return result
    }

    /// Discards the record of dead letter `address`: every copy not yet discarded is.
    public func discard(_ address: DeadLetterAddress, by actor: String, reason: String) async throws -> RecordAction<DeadLetterView> {
        let (named, others, failures) = try await copies(of: address)
        let request = DeadLetterDiscardRequest(by: actor, reason: reason)
        let view = try await clients[named.index].decode(DeadLetterView.self, "POST", "/v1/dead-letters/\(named.view.id)/discard", json: request)
        var result = RecordAction(outcome: view, publishedBy: nil, marked: [], failures: failures)
        for other in others where other.view.status != "discarded" {
            let marked = self.address(other.index, other.view.id)
            do {
                _ = try await clients[other.index].decode(DeadLetterView.self, "POST", "/v1/dead-letters/\(other.view.id)/discard", json: request)
                result.marked.append(marked)
            } catch {
                result.failures.append("\(marked) was not discarded: \(error)")
            }
        }
        return result
    }
}
