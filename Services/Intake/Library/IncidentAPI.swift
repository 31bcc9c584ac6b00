import EncompassModels
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import ServiceRuntime

/// POST /v1/incidents: one incident, a JSON array of them, or `{"incidents": [...]}`.
///
/// Authenticated with `Authorization: Bearer <ENCOMPASS_INTAKE_API_TOKEN>`. Each item is
/// decoded and validated on its own: valid items are queued (durably, in the outbox) for the
/// raw topic, invalid ones are answered with their field errors and kept as dead letters, so
/// one bad item never loses the rest. 202 when anything was accepted, 422 when nothing was,
/// 400 for a body that is not JSON, 401 without the right token.
/// The answer to `POST /v1/incidents`: each incident of the batch by its place in it, accepted
/// (with the message id it was published under) or rejected (with a reason per field).
public struct IncidentSubmissionAnswer: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var index: Int
        public var occurrenceNumber: String?
        public var messageId: String?
        public var errors: [FieldError]?
        /// Adults' fields set aside (the incident was accepted without them).
        public var warnings: [FieldError]?
    }

    public var accepted: [Item]
    public var rejected: [Item]
}

struct IncidentAPI: Sendable {
    let validator: IncidentValidator
    let apiToken: String?
    let environment: ServiceEnvironment

    static let maximumBody = 32 * 1024 * 1024
    static let source = "http:/v1/incidents"

    typealias ItemResult = IncidentSubmissionAnswer.Item
    typealias Answer = IncidentSubmissionAnswer

    func register(on router: Router<BasicRequestContext>) {
        let api = router.guarded(by: APIAuth(token: apiToken, variable: "ENCOMPASS_INTAKE_API_TOKEN"))
        api.post("v1/incidents") { request, _ -> Response in
            try await handle(request)
        }
        api.post("v1/spreadsheets") { request, _ -> Response in
            try await handleSpreadsheet(request)
        }
        api.post("v1/history") { request, _ -> Response in
            try await handleHistory(request)
        }
    }

    func body(_ request: Request) async -> [UInt8]? {
        guard let buffer = try? await request.body.collect(upTo: Self.maximumBody) else { return nil }
        return Array(buffer.readableBytesView)
    }

    static let tooLarge = HTTPEndpoint.json(.contentTooLarge, APIError("body larger than \(maximumBody) bytes; send smaller batches"))

    func handle(_ request: Request) async throws -> Response {
        guard let body = await body(request) else { return Self.tooLarge }
        let items: [Data]
        switch Self.split(body) {
        case .success(let list): items = list
        case .failure(let problem): return HTTPEndpoint.json(.badRequest, APIError(problem.description))
        }
        let now = environment.clock.now()
        var accepted: [(index: Int, item: Data, incident: Incident, warnings: [FieldError])] = []
        var rejected: [(Int, Data, [FieldError], String)] = []
        for (index, item) in items.enumerated() {
            do {
                let incident = validator.forces.prepare(try WireFormat.decoder().decode(Incident.self, from: item))
                let review = validator.review(incident, now: now, unknownFields: IncidentShape.unknownFields(in: item))
                if review.errors.isEmpty {
                    accepted.append((index, item, review.incident, review.warnings))
                } else {
                    rejected.append((index, item, review.errors, "payload.validation"))
                }
            } catch {
                rejected.append((index, item, [FieldError("(item)", WireFormat.describe(error))], "payload.invalid"))
            }
        }
        let acceptedItems = accepted
        let rejectedItems = rejected
        let environment = self.environment
        let answer = try await environment.store.pool.write { db -> Answer in
            let outbox = environment.outbox(db, producer: "intake-http")
            var answer = Answer(accepted: [], rejected: [])
            var refused: [(Int, Data, [FieldError], String)] = []
            let base = Int64(now.timeIntervalSince1970 * 1_000_000) * 1_000
            for (index, item, incident, warnings) in acceptedItems {
                let id = MessageID.fresh()
                do {
                    try outbox.publish(incident, to: Topics.incidentsRaw.name, key: incident.occurrenceNumber, id: id, now: now)
                } catch let error as OutboxError {
                    refused.append((index, try WireFormat.data(incident), [FieldError("(incident)", error.description)], error.errorClass))
                    continue
                }
                answer.accepted.append(
                    ItemResult(
                        index: index, occurrenceNumber: incident.occurrenceNumber, messageId: id,
                        warnings: warnings.isEmpty ? nil : warnings))
                if !warnings.isEmpty {
                    try DeadLetterWriter.writeRejectedInput(
                        db: db, service: .intake, origin: Self.source, place: base + Int64(index), key: incident.occurrenceNumber, value: Array(item),
                        errorClass: IntakeService.setAsideClass, message: IntakeService.setAsideMessage(warnings), now: now, outbox: outbox)
                }
            }
            for (index, item, problems, errorClass) in rejectedItems + refused {
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .intake, origin: Self.source, place: base + Int64(index), key: nil, value: Array(item),
                    errorClass: errorClass, message: problems.map(\.description).joined(separator: "; "), now: now, outbox: outbox)
                answer.rejected.append(ItemResult(index: index, errors: problems))
            }
            answer.rejected.sort { $0.index < $1.index }
            return answer
        }
        for item in answer.accepted {
            reportSetAside(item.warnings ?? [], occurrenceNumber: item.occurrenceNumber, source: Self.source)
        }
        environment.relay.wake()
        return HTTPEndpoint.json(answer.accepted.isEmpty && !answer.rejected.isEmpty ? .unprocessableContent : .accepted, answer)
    }

    /// Adults' fields set aside from an accepted incident: a structured log line per field
    /// and `encompass_intake_fields_set_aside_total`, beside the warning in the answer.
    func reportSetAside(_ warnings: [FieldError], occurrenceNumber: String?, source: String) {
        for warning in warnings {
            environment.logger.warning(
                "adult field set aside; incident accepted for its children",
                metadata: [
                    "occurrence": .string(occurrenceNumber ?? ""), "field": .string(warning.field), "reason": .string(warning.message),
                    "source": .string(source),
                ])
        }
        guard !warnings.isEmpty else { return }
        environment.metrics.count(
            "encompass_intake_fields_set_aside",
            help: "Adults' fields set aside from accepted incidents (bad or unknown), with a warning to the sender",
            labels: [("source", source.hasPrefix("spreadsheet:") ? "spreadsheet" : "http")], by: warnings.count)
    }

    struct BodyProblem: Error, CustomStringConvertible {
        let description: String
    }

    /// The items of a body: a JSON object, an array of objects, or `{"incidents": [...]}`.
    static func split(_ body: [UInt8]) -> Result<[Data], BodyProblem> {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
        } catch {
            // Foundation's localizedDescription says only "the data is not in the correct format";
            // its debug description says where.
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? String(describing: error)
            return .failure(
                BodyProblem(description: "body is not JSON (\(detail)); send an incident object, an array of them or {\"incidents\": [...]}"))
        }
        let list: [Any]
        if let array = root as? [Any] {
            list = array
        } else if let object = root as? [String: Any], let incidents = object["incidents"] as? [Any] {
            list = incidents
        } else if root is [String: Any] {
            list = [root]
        } else {
            return .failure(BodyProblem(description: "body must be an incident object, an array of incidents or {\"incidents\": [...]}"))
        }
        guard !list.isEmpty else { return .failure(BodyProblem(description: "no incidents in the body")) }
        return .success(
            list.map { item in
                (try? JSONSerialization.data(withJSONObject: item, options: [.fragmentsAllowed])) ?? Data("null".utf8)
            })
    }
}
