import EncompassModels
import Foundation
import GRDB
import Hummingbird
import NIOCore
import ServiceRuntime

/// POST /v1/incidents: one incident, a JSON array of them, or `{"incidents": [...]}`.
///
/// Authenticated with `Authorization: Bearer <ENCOMPASS_INTAKE_API_TOKEN>`. Each item is
/// decoded and validated on its own: valid items are queued (durably, in the outbox) for the
/// raw topic, invalid ones are answered with their field errors and kept as dead letters, so
/// one bad item never loses the rest. 202 when anything was accepted, 422 when nothing was,
/// 400 for a body that is not JSON, 401 without the right token.
struct IncidentAPI: Sendable {
    let validator: IncidentValidator
    let apiToken: String?
    let environment: ServiceEnvironment

    static let maximumBody = 32 * 1024 * 1024
    static let source = "http:/v1/incidents"

    struct ItemResult: Codable, Equatable {
        var index: Int
        var occurrenceNumber: String?
        var messageId: String?
        var errors: [FieldError]?
    }

    struct Answer: Codable {
        var accepted: [ItemResult]
        var rejected: [ItemResult]
    }

    func register(on router: Router<BasicRequestContext>) {
        router.post("v1/incidents") { request, _ -> Response in
            try await handle(request)
        }
        router.post("v1/spreadsheets") { request, _ -> Response in
            try await handleSpreadsheet(request)
        }
        router.post("v1/history") { request, _ -> Response in
            try await handleHistory(request)
        }
    }

    /// nil when the request carries the right token, else the refusal to send.
    func refusal(_ request: Request) -> Response? {
        APIAuth(token: apiToken, variable: "ENCOMPASS_INTAKE_API_TOKEN").refusal(request)
    }

    func body(_ request: Request) async -> [UInt8]? {
        guard let buffer = try? await request.body.collect(upTo: Self.maximumBody) else { return nil }
        return Array(buffer.readableBytesView)
    }

    static let tooLarge = HTTPEndpoint.json(.contentTooLarge, ["error": "body larger than \(maximumBody) bytes; send smaller batches"])

    func handle(_ request: Request) async throws -> Response {
        if let refusal = refusal(request) { return refusal }
        guard let body = await body(request) else { return Self.tooLarge }
        let items: [Data]
        switch Self.split(body) {
        case .success(let list): items = list
        case .failure(let problem): return HTTPEndpoint.json(.badRequest, ["error": problem.description])
        }
        let now = Date()
        var accepted: [(Int, Incident)] = []
        var rejected: [(Int, Data, [FieldError], String)] = []
        for (index, item) in items.enumerated() {
            do {
                let incident = validator.forces.prepare(try WireFormat.decoder().decode(Incident.self, from: item))
                let problems = validator.validate(incident, now: now)
                if problems.isEmpty { accepted.append((index, incident)) }
                else { rejected.append((index, item, problems, "payload.validation")) }
            } catch {
                rejected.append((index, item, [FieldError("(item)", WireFormat.describe(error))], "payload.invalid"))
            }
        }
        let acceptedItems = accepted
        let rejectedItems = rejected
        let answer = try await environment.store.pool.write { db -> Answer in
            let outbox = Outbox(db: db, producer: "intake-http")
            var answer = Answer(accepted: [], rejected: [])
            for (index, incident) in acceptedItems {
                let id = MessageID.fresh()
                try outbox.publish(incident, to: Topics.incidentsRaw.name, key: incident.occurrenceNumber, id: id, now: now)
                answer.accepted.append(ItemResult(index: index, occurrenceNumber: incident.occurrenceNumber, messageId: id))
            }
            let base = Int64(now.timeIntervalSince1970 * 1_000_000) * 1_000
            for (index, item, problems, errorClass) in rejectedItems {
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .intake, origin: Self.source, place: base + Int64(index), key: nil, value: Array(item),
                    errorClass: errorClass, message: problems.map(\.description).joined(separator: "; "), now: now, outbox: outbox)
                answer.rejected.append(ItemResult(index: index, errors: problems))
            }
            return answer
        }
        environment.relay.wake()
        return HTTPEndpoint.json(answer.accepted.isEmpty && !answer.rejected.isEmpty ? .unprocessableContent : .accepted, answer)
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
            return .failure(BodyProblem(description: "body is not JSON (\(detail)); send an incident object, an array of them or {\"incidents\": [...]}"))
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
        return .success(list.map { item in
            (try? JSONSerialization.data(withJSONObject: item, options: [.fragmentsAllowed])) ?? Data("null".utf8)
        })
    }
}
