import Foundation
import Hummingbird
import Logging

/// A readiness check: nil when ready, else the reason it is not.
public struct ReadinessCheck: Sendable {
    public let name: String
    public let check: @Sendable () async -> String?

    public init(name: String, check: @escaping @Sendable () async -> String?) {
        self.name = name
        self.check = check
    }
}

/// The per-service HTTP endpoint: /healthz, /readyz, /metrics, plus the service's own routes.
public enum HTTPEndpoint {
    /// `groups`: the instance's consumer groups, shown on /healthz (`group`, `replicaGroup`) so
    /// that `encompass lag` reports the groups that really read each topic.
    public static func makeRouter(
        service: String, instanceId: String, metrics: ServiceMetrics, readiness: [ReadinessCheck], groups: [String: String] = [:]
    ) -> Router<BasicRequestContext> {
        makeRouter(
            context: BasicRequestContext.self, service: service, instanceId: instanceId, metrics: metrics, readiness: readiness, groups: groups)
    }

    /// The same with a request context of the caller's (e.g. one that keeps the client's address).
    public static func makeRouter<Context: RequestContext>(
        context: Context.Type, service: String, instanceId: String, metrics: ServiceMetrics, readiness: [ReadinessCheck],
        groups: [String: String] = [:]
    ) -> Router<Context> {
        let router = Router(context: Context.self)
        let health = groups.merging(["status": "ok", "service": service, "instance": instanceId]) { _, fixed in fixed }
        router.get("healthz") { _, _ -> Response in
            json(.ok, health)
        }
        router.get("readyz") { _, _ -> Response in
            var failures: [String: String] = [:]
            for check in readiness {
                if let reason = await check.check() { failures[check.name] = reason }
            }
            if failures.isEmpty {
                return json(.ok, ["status": "ready", "service": service, "instance": instanceId])
            }
            var body = failures
            body["status"] = "not ready"
            return json(.serviceUnavailable, body)
        }
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition()))
            )
        }
        return router
    }

    public static func json(_ status: HTTPResponse.Status, _ object: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(object)) ?? Data("{}".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
