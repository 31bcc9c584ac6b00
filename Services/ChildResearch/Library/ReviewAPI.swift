import EncompassModels
import Foundation
import GRDB
import Hummingbird
import NIOCore
import ServiceRuntime

/// The review queue over HTTP, guarded by `ENCOMPASS_API_TOKEN`:
/// - `GET /v1/review[?status=pending|confirmed|rejected|withdrawn|all]`: proposals with score and
///   explanation. Every instance serves the whole queue (proposals are replicated through
///   `encompass.review.proposals`; a change shows on other instances once replicated).
/// - `POST /v1/review/{id}/confirm` and `/reject` with `{"reviewer": "...", "note": "..."}`, on any
///   instance: publishes a `ReviewDecision` on `encompass.review.decisions` (through the outbox);
///   the instance that owns the occurrence applies it. 202 with the decision, 404 for an unknown
///   proposal, 409 when it is already decided that way or withdrawn, 422 without a reviewer.
/// - `GET /v1/review/calibration`: for score bands (at or above 0.5, 0.6, … 0.99), how many
///   proposals officers decided and the share they confirmed (`ReviewCalibration`), from every
///   decided proposal (any instance answers for all).
struct ReviewAPI: Sendable {
    let environment: ServiceEnvironment

    func register(on router: Router<BasicRequestContext>) {
        let api = router.guarded(by: environment.configuration.apiAuth)
        api.get("v1/review") { request, _ -> Response in
            let status = request.uri.queryParameters.get("status") ?? "pending"
            guard ["pending", "confirmed", "rejected", "withdrawn", "all"].contains(status) else {
                return HTTPEndpoint.json(.badRequest, APIError("status must be pending, confirmed, rejected, withdrawn or all"))
            }
            let proposals = try await environment.store.pool.read { db in
                try ReviewQueue.list(db, status: status == "all" ? nil : status)
            }
            return Self.wire(.ok, ReviewListing(proposals: proposals))
        }
        api.get("v1/review/calibration") { request, _ -> Response in
            let calibration = try await environment.store.pool.read { db in try ReviewQueue.calibration(db) }
            return Self.wire(.ok, calibration)
        }
        api.post("v1/review/:id/confirm") { request, context -> Response in
            try await decide(request, id: context.parameters.get("id") ?? "", verdict: .confirm)
        }
        api.post("v1/review/:id/reject") { request, context -> Response in
            try await decide(request, id: context.parameters.get("id") ?? "", verdict: .reject)
        }
    }

    /// JSON with the wire format's ISO 8601 dates.
    static func wire(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = WireFormat.encoder()
        encoder.outputFormatting.insert(.sortedKeys)
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func decide(_ request: Request, id: String, verdict: ReviewDecision.Verdict) async throws -> Response {
        let bytes = (try? await request.body.collect(upTo: 64 * 1024)).map { Array($0.readableBytesView) } ?? []
        let body: ReviewDecisionRequest
        do {
            body = bytes.isEmpty ? ReviewDecisionRequest() : try JSONDecoder().decode(ReviewDecisionRequest.self, from: Data(bytes))
        } catch {
            return HTTPEndpoint.json(.badRequest, APIError("body is not {\"reviewer\": ..., \"note\": ...}: \(WireFormat.describe(error))"))
        }
        guard let reviewer = body.reviewer?.trimmingCharacters(in: .whitespaces), !reviewer.isEmpty else {
            return HTTPEndpoint.json(
                .unprocessableContent,
                APIFieldErrors([FieldError("reviewer", "required: who decided (e.g. the MASH officer's collar number or name)")]))
        }
        if reviewer == "auto" {
            return HTTPEndpoint.json(
                .unprocessableContent, APIFieldErrors([FieldError("reviewer", "\"auto\" is reserved for automatic confirmation")]))
        }
        let now = environment.clock.now()
        enum Outcome: Sendable { case unknown, already(String), withdrawn(String?), published(ReviewDecision) }
        let outcome = try await environment.write { db, outbox -> Outcome in
            guard let proposal = try ReviewQueue.find(db, proposalId: id) else { return .unknown }
            let target = verdict == .confirm ? "confirmed" : "rejected"
            if proposal.status == target { return .already(target) }
            if proposal.status == "withdrawn" { return .withdrawn(proposal.note) }
            let decision = ReviewDecision(
                forceCode: proposal.forceCode, occurrenceNumber: proposal.occurrenceNumber, proposalId: id,
                verdict: verdict, reviewer: reviewer, decidedAt: now, note: body.note)
            try outbox.publish(decision, to: Topics.reviewDecisions.name, key: proposal.occurrenceNumber, id: MessageID.fresh(), now: now)
            return .published(decision)
        }
        switch outcome {
        case .unknown:
            return HTTPEndpoint.json(.notFound, APIError("no proposal \(id); list them with GET /v1/review?status=all"))
        case .already(let status):
            return HTTPEndpoint.json(.conflict, APIError("proposal \(id) is already \(status)"))
        case .withdrawn(let reason):
            return HTTPEndpoint.json(
                .conflict, APIError("proposal \(id) was withdrawn (\(reason ?? "the incident was amended")); it no longer needs a decision"))
        case .published(let decision):
            return Self.wire(.accepted, decision)
        }
    }
}
