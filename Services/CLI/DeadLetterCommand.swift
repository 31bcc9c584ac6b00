import ArgumentParser
import EncompassDemo
import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport

/// `encompass dlq`: dead letters across all services.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List, show, replay or discard dead letters across the services.",
        discussion: """
            Dead letters are kept in each service's SQLite store (they outlive the broker's retention) \
            and reached through each service's API (bearer $ENCOMPASS_API_TOKEN). Replay publishes the \
            original message (or an edited payload, validated first) to its original topic, once; \
            every replay and discard records who did it and when. A record two instances of a service \
            both dead-lettered (a rebalance made the second read it again) is one entry, naming both \
            copies; replay and discard act on the record: every copy is marked, the record published once.
            """,
        subcommands: [List.self, Show.self, Replay.self, Discard.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters (newest first), one entry per record, naming every copy.")

        @Option(help: "Only this service (repeatable; default all five).")
        var service: [String] = []
        @Option(help: "open, replayed, discarded or all.")
        var status: String = "open"
        @Option(help: "Only this error class, e.g. payload.validation.")
        var errorClass: String?
        @Option(help: "Dead-lettered at or after this time (ISO 8601).")
        var since: String?
        @Option(help: "Dead-lettered before this time (ISO 8601).")
        var until: String?
        @Option(help: "Only dead letters mentioning this occurrence number.")
        var occurrence: String?
        @Option(help: "At most this many per service.")
        var limit: Int = 200
        @Flag(help: "Print JSON.")
        var json = false
        @OptionGroup var endpoints: ServiceEndpoints

        func run() async throws {
            guard ["open", "replayed", "discarded", "all"].contains(status) else {
                throw ValidationError("--status must be open, replayed, discarded or all")
            }
            for (name, value) in [("--since", since), ("--until", until)] {
                if let value, Timestamp.parse(value) == nil { throw ValidationError("\(name) '\(value)' is not a time; use ISO 8601") }
            }
            let services = try parseServices(service)
            var query = ["status": status, "limit": String(limit)]
            query["errorClass"] = errorClass
            query["since"] = since
            query["until"] = until
            query["occurrence"] = occurrence
            var all: [DeadLetterView] = []
            var unreachable: [String] = []
            for service in services {
                // Each instance keeps its own dead letters: listed from every one, each id qualified by
                // its instance's place in the list when there are several, copies of a record merged.
                let records = DeadLetterRecords(service: service, clients: try endpoints.clients(service))
                let listed = await records.copies(query: query)
                all += DeadLetterRecords.merge(listed.views)
                unreachable += listed.failures
            }
            all.sort { $0.deadLetteredAt > $1.deadLetteredAt }
            if json {
                try printJSON(all)
            } else {
                print("\(all.count) dead letter\(all.count == 1 ? "" : "s") (\(status))")
                for row in all {
                    let copies = row.copies ?? [DeadLetterCopy(row)]
                    let held = copies.count > 1 ? "  (\(copies.count) copies: \(copies.map(\.address).joined(separator: ", ")))" : ""
                    print(
                        "\(row.address ?? "\(row.service)/\(row.id)")  \(Timestamp.format(row.deadLetteredAt))  \(row.originalTopic)[\(row.originalPartition)]@\(row.originalOffset)  key=\(row.originalKey ?? "-")  \(row.errorClass)  \(row.status)\(held)"
                    )
                    // The reason; each copy's, once each, when there are several.
                    var reasons = [row.errorMessage]
                    if copies.count > 1 {
                        reasons = []
                        for copy in copies where !reasons.contains("\(copy.errorClass): \(copy.errorMessage)") {
                            reasons.append("\(copy.errorClass): \(copy.errorMessage)")
                        }
                    }
                    for reason in reasons { print("    \(reason.count > 100 ? String(reason.prefix(99)) + "…" : reason)") }
                }
            }
            try warn(unreachable)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter with its original message and history.")

        @OptionGroup var target: DeadLetterTarget
        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let (client, address) = try target.resolve()
            let number = address.id
            let view = try await client.decode(DeadLetterView.self, "GET", "/v1/dead-letters/\(number)")
            if json {
                try printJSON(view)
                return
            }
            print(
                """
                \(address)  \(view.status)
                from:      \(view.originalTopic) partition \(view.originalPartition) offset \(view.originalOffset), key \(view.originalKey ?? "-")
                message:   \(view.originalMessageId ?? "-")
                error:     \(view.errorClass): \(view.errorMessage)
                attempts:  \(view.attempts), first failed \(Timestamp.format(view.firstFailedAt)), dead-lettered \(Timestamp.format(view.deadLetteredAt))
                value:     \(view.originalValue ?? "(binary, base64) " + (view.originalValueBase64 ?? ""))
                """)
            for action in view.actions ?? [] {
                print(
                    "history:   \(Timestamp.format(action.at)) \(action.action) by \(action.actor)\(action.detail.map { ": \($0)" } ?? "")\(action.topic.map { " → \($0)" } ?? "")"
                )
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-publish a dead-lettered record to its original topic (once), marking every copy of it replayed.")

        @OptionGroup var target: DeadLetterTarget
        @Option(help: "Who is replaying it (recorded).")
        var by: String
        @Option(help: "A file with the corrected message (JSON) to publish instead of the original; validated first.")
        var payload: String?

        func run() async throws {
            let (records, address) = try target.records()
            var edit: DeadLetterReplayRequest.Edit?
            if let payload {
                guard let data = FileManager.default.contents(atPath: payload) else { throw ValidationError("cannot read \(payload)") }
                edit = .text(String(decoding: data, as: UTF8.self))
            }
            let result = try await records.replay(address, by: by, payload: edit)
            let outcome = result.outcome
            let publisher = result.publishedBy.map(\.description) ?? address.description
            if outcome.alreadyReplayed {
                print(
                    "\(publisher) was already replayed by \(outcome.replayedBy) at \(Timestamp.format(outcome.replayedAt)); nothing published again")
            } else {
                print(
                    "\(publisher) replayed to \(outcome.topic) (key \(outcome.key ?? "-"), message \(outcome.messageId ?? "-")) by \(outcome.replayedBy)"
                )
            }
            if !result.marked.isEmpty {
                print(
                    "copies of the same record marked replayed (nothing published for them): \(result.marked.map(\.description).joined(separator: ", "))"
                )
            }
            try warn(result.failures)
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a dead-lettered record (every copy) as dealt with, without replaying it.")

        @OptionGroup var target: DeadLetterTarget
        @Option(help: "Who is discarding it (recorded).")
        var by: String
        @Option(help: "Why (recorded).")
        var reason: String

        func run() async throws {
            let (records, address) = try target.records()
            let result = try await records.discard(address, by: by, reason: reason)
            print("\(address) \(result.outcome.status)")
            if !result.marked.isEmpty {
                print("copies of the same record discarded too: \(result.marked.map(\.description).joined(separator: ", "))")
            }
            try warn(result.failures)
        }
    }
}

/// Prints what was left undone to standard error and fails the command: doing it again
/// completes it (a record is never published twice).
private func warn(_ failures: [String]) throws {
    for line in failures { FileHandle.standardError.write(Data("warning: \(line)\n".utf8)) }
    if !failures.isEmpty { throw ExitCode(1) }
}

func parseServices(_ names: [String]) throws -> [ServiceName] {
    if names.isEmpty { return ServiceName.allCases }
    return try names.map { name in
        guard let service = ServiceName(rawValue: name) else {
            throw ValidationError("unknown service '\(name)'; use \(ServiceName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return service
    }
}

/// One dead letter, as listed (`SERVICE/ID`, or `SERVICE/N:ID` for instance N of a scaled
/// service), or `ID` / `N:ID` with `--service`, and where its service's instances are.
struct DeadLetterTarget: ParsableArguments {
    @Argument(help: "The dead letter, as listed: SERVICE/ID, or SERVICE/N:ID for instance N of a scaled service (or ID / N:ID with --service).")
    var id: String
    @Option(help: "The service that holds it.")
    var service: String?
    @OptionGroup var endpoints: ServiceEndpoints

    /// The client of the instance that holds it, and its address (its number there: `id`).
    func resolve() throws -> (ServiceClient, DeadLetterAddress) {
        let address: DeadLetterAddress
        do { address = try DeadLetterAddress.parse(id, service: service) } catch { throw ValidationError(error.description) }
        let clients = try endpoints.clients(address.service)
        guard let instance = address.instance else {
            guard clients.count == 1 else {
                throw ValidationError(
                    "\(address.service.rawValue) has \(clients.count) instances: name the one that holds it, \(address.service.rawValue)/N:\(address.id) as listed by encompass dlq list"
                )
            }
            return (clients[0], address)
        }
        guard instance <= clients.count else {
            throw ValidationError(
                "\(address.service.rawValue) has \(clients.count) instance(s) listed (\(ServiceClient.instancesVariable(address.service)) or --endpoint): there is no instance \(instance); list them again with encompass dlq list"
            )
        }
        return (clients[instance - 1], address)
    }

    /// The service's instances, for acting on the record of the dead letter named (every copy).
    func records() throws -> (DeadLetterRecords, DeadLetterAddress) {
        let (_, address) = try resolve()
        return (DeadLetterRecords(service: address.service, clients: try endpoints.clients(address.service)), address)
    }
}
