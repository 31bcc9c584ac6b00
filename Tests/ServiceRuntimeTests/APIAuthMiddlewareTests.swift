import Hummingbird
import HummingbirdTesting
import ServiceRuntime
import Testing

@Suite("Bearer-token middleware on route groups")
struct APIAuthMiddlewareTests {
    /// A router with one open route and a guarded group of two; a guarded handler that runs says so in its body.
    static func router(token: String?) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("healthz") { _, _ in "open" }
        let api = router.guarded(by: APIAuth(token: token))
        api.get("v1/things") { _, _ in "listed" }
        api.post("v1/things/:id/discard") { _, context in "discarded \(context.parameters.get("id") ?? "")" }
        return router
    }

    @Test(
        "a guarded group answers 401 without the token or with a wrong one, before its handlers run; the right token reaches them; routes outside the group stay open"
    )
    func guardedGroup() async throws {
        try await Application(router: Self.router(token: "t0ken")).test(.router) { client in
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "t0ken"], [.authorization: "Bearer t0ken0"]] {
                try await client.execute(uri: "/v1/things", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized, "\(headers)")
                    #expect(String(buffer: response.body).contains("missing or wrong bearer token"))
                }
                try await client.execute(uri: "/v1/things/7/discard", method: .post, headers: headers) { response in
                    #expect(response.status == .unauthorized, "\(headers)")
                    #expect(!String(buffer: response.body).contains("discarded"))
                }
            }
            try await client.execute(uri: "/v1/things", method: .get, headers: [.authorization: "Bearer t0ken"]) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "listed")
            }
            try await client.execute(uri: "/v1/things/7/discard", method: .post, headers: [.authorization: "Bearer t0ken"]) { response in
                #expect(String(buffer: response.body) == "discarded 7")
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "open")
            }
        }
    }

    @Test("without a configured token the guarded group answers 503 naming the variable, even to a request with a token")
    func unconfigured() async throws {
        try await Application(router: Self.router(token: nil)).test(.router) { client in
            try await client.execute(uri: "/v1/things", method: .get, headers: [.authorization: "Bearer anything"]) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("ENCOMPASS_API_TOKEN"))
            }
        }
    }
}
