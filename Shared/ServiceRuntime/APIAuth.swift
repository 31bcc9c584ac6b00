import EncompassModels
import EncompassSecrets
import Foundation
import Hummingbird

/// Bearer-token check for a service's own API (review queue, school register, notices…).
///
/// Every service's MASH/operations API takes `Authorization: Bearer $ENCOMPASS_API_TOKEN`.
/// Without a configured token the API answers 503, so an unconfigured service never serves
/// personal data openly.
public struct APIAuth: Sendable {
    public let token: String?
    /// The variable that configures the token, named in the 503 answer.
    public let variable: String

    public init(token: String?, variable: String = "ENCOMPASS_API_TOKEN") {
        self.token = token
        self.variable = variable
    }

    /// nil when the request carries the right token, else the refusal to send.
    public func refusal(_ request: Request) -> Response? {
        guard let token else {
            return HTTPEndpoint.json(.serviceUnavailable, APIError("this API is not configured: set \(variable)"))
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            constantTimeEqual(Array(header.dropFirst(7).utf8), Array(token.utf8))
        else {
            return HTTPEndpoint.json(.unauthorized, APIError("missing or wrong bearer token"))
        }
        return nil
    }
}

/// Answers every request to the routes it guards with `APIAuth`'s refusal (503 unconfigured,
/// 401 without the right token) before their handlers run.
public struct APIAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    public let auth: APIAuth

    public init(_ auth: APIAuth) { self.auth = auth }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refusal = auth.refusal(request) { return refusal }
        return try await next(request, context)
    }
}

extension RouterMethods {
    /// A group of routes (at this router's paths) that only requests with `auth`'s token reach.
    public func guarded(by auth: APIAuth) -> RouterGroup<Context> {
        group().add(middleware: APIAuthMiddleware<Context>(auth))
    }
}
