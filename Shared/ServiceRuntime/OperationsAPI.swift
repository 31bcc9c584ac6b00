import EncompassModels
import Foundation
import GRDB
import Hummingbird
import Logging

/// Every service's operations API (bearer `ENCOMPASS_API_TOKEN`): its dead letters.
///
/// - `GET /v1/dead-letters?status=open|replayed|discarded|all&errorClass=&since=&until=&occurrence=&limit=`
///   (and `topic=&partition=&offset=`, the three together: the copies of one record)
/// - `GET /v1/dead-letters/{id}`: with the original value and the actions taken
/// - `POST /v1/dead-letters/{id}/replay` `{"by": "name", "payload": {…}}` (payload optional: an edit, validated first),
///   or `{"by": "name", "replayedAs": {…}}`: another instance's copy of the record was published, mark this one
/// - `POST /v1/dead-letters/{id}/discard` `{"by": "name", "reason": "…"}`
enum OperationsAPI {
    static func register(on router: Router<BasicRequestContext>, environment: ServiceEnvironment) {
        let api = router.guarded(by: environment.configuration.apiAuth)
        api.get("v1/dead-letters") { request, _ -> Response in
            let query = request.uri.queryParameters
            var filter = DeadLetterFilter()
            if let status = query["status"].map(String.init) { filter.status = status == "all" ? nil : status }
            filter.errorClass = query["errorClass"].map(String.init)
            filter.occurrenceNumber = query["occurrence"].map(String.init)
            for (name, keyPath) in [("since", \DeadLetterFilter.since), ("until", \DeadLetterFilter.until)] {
                guard let text = query[Substring(name)].map(String.init) else { continue }
                guard let date = Timestamp.parse(text) else {
                    return HTTPEndpoint.json(.badRequest, APIError("\(name) '\(text)' is not a time; use ISO 8601, e.g. 2026-11-23T09:00:00Z"))
                }
                filter[keyPath: keyPath] = date
            }
            let record = ["topic", "partition", "offset"].map { query[Substring($0)].map(String.init) }
            if record.contains(where: { $0 != nil }) {
                guard let topic = record[0], let partition = record[1].flatMap({ Int32($0) }), let offset = record[2].flatMap({ Int64($0) }) else {
                    return HTTPEndpoint.json(
                        .badRequest, APIError("a record is topic, partition and offset together, the last two whole numbers"))
                }
                filter.record = DeadLetterRecordKey(topic: topic, partition: partition, offset: offset)
            }
            if let text = query["limit"].map(String.init) {
                guard let limit = Int(text), limit > 0 else {
                    return HTTPEndpoint.json(.badRequest, APIError("limit must be a positive whole number"))
                }
                filter.limit = limit
            }
            let chosen = filter
            let rows = try await environment.store.pool.read { try DeadLetterOps.list($0, filter: chosen) }
            return encoded(.ok, rows)
        }
        api.get("v1/dead-letters/:id") { request, context -> Response in
            guard let id = context.parameters.get("id", as: Int64.self) else { return badId }
            return try await answer { try await environment.store.pool.read { try DeadLetterOps.show($0, id: id) } }
        }
        api.post("v1/dead-letters/:id/replay") { request, context -> Response in
            guard let id = context.parameters.get("id", as: Int64.self) else { return badId }
            guard let body = await decode(DeadLetterReplayRequest.self, request) else { return notJSON }
            let actor = body.by ?? ""
            let edited: [UInt8]?
            do { edited = try body.payload?.bytes() } catch { return notJSON }
            let now = environment.clock.now()
            if body.replayedAs != nil, edited != nil {
                return HTTPEndpoint.json(
                    .unprocessableContent, APIError("send payload or replayedAs, not both: a copy marked replayed as another publishes nothing"))
            }
            let result = try await answer { () async throws -> ReplayOutcome in
                if let copy = body.replayedAs {
                    return try await environment.store.pool.write { db in
                        try DeadLetterOps.markReplayed(db, id: id, actor: actor, as: copy, now: now)
                    }
                }
                return try await environment.write { db, outbox in
                    try DeadLetterOps.replay(db, id: id, actor: actor, editedValue: edited, outbox: outbox, now: now)
                }
            }
            environment.logger.notice(
                "dead letter replay",
                metadata: [
                    "deadLetter": "\(id)", "by": .string(actor), "status": "\(result.status.code)",
                    "replayedAs": .string(body.replayedAs?.address ?? "-"),
                ])
            return result
        }
        api.post("v1/dead-letters/:id/discard") { request, context -> Response in
            guard let id = context.parameters.get("id", as: Int64.self) else { return badId }
            guard let body = await decode(DeadLetterDiscardRequest.self, request) else { return notJSON }
            let actor = body.by ?? ""
            let reason = body.reason ?? ""
            guard !reason.isEmpty else { return HTTPEndpoint.json(.unprocessableContent, APIError("say why (reason): every discard is recorded")) }
            let now = environment.clock.now()
            return try await answer {
                try await environment.store.pool.write { try DeadLetterOps.discard($0, id: id, actor: actor, reason: reason, now: now) }
            }
        }
    }

    static let badId = HTTPEndpoint.json(.badRequest, APIError("dead letter id must be a whole number"))
    static let notJSON = HTTPEndpoint.json(.badRequest, APIError("body must be a JSON object"))

    /// The request's body as `Body`; an empty body is `{}`. Nil when it is larger than 8 MiB or not one.
    static func decode<Body: Decodable>(_ type: Body.Type, _ request: Request) async -> Body? {
        guard let buffer = try? await request.body.collect(upTo: 8 * 1024 * 1024) else { return nil }
        let data = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer.readableBytesView)
        return try? WireFormat.decoder().decode(Body.self, from: data)
    }

    /// Runs an operation; its refusals become 404/409/422 answers that say what to do.
    static func answer<T: Encodable>(_ body: () async throws -> T) async throws -> Response {
        do {
            return encoded(.ok, try await body())
        } catch let error as DeadLetterOpError {
            let status: HTTPResponse.Status =
                switch error {
                case .notFound: .notFound
                case .discarded: .conflict
                case .noTarget, .invalidPayload, .actorRequired, .otherRecord: .unprocessableContent
                case .copyDiscarded: .conflict
                }
            return HTTPEndpoint.json(status, APIError(error.description))
        } catch let error as OutboxError {
            return HTTPEndpoint.json(.unprocessableContent, APIError(error.description))
        }
    }

    static func encoded(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = WireFormat.encoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
