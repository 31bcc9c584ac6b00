import ChildResearchService
import DispatchService
import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import IntakeService
import SchedulingService
import SchoolResolutionService
import ServiceRuntime
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The routes anyone may call, each with the reason. Everything else a service serves must
/// refuse a request without the right bearer token.
let publicRoutes: [Route: String] = [
    Route(method: "GET", path: "/healthz"): "liveness probe: the service name, instance id and consumer groups, no data",
    Route(method: "GET", path: "/readyz"): "readiness probe: which dependency is not ready (store, Kafka), no data",
    Route(method: "GET", path: "/metrics"): "Prometheus scrape: counters and lag by topic and error class, no personal data",
]

/// Dispatch's notice pages, opened by a school from its email: guarded by the link token
/// (unguessable, stored hashed, expiring), then the school's own password and a session
/// bound to that one notice (tested in NoticeIsolationTests).
let dispatchPublicRoutes: [Route: String] = [
    Route(method: "GET", path: "/notice/{token}"): "the school's notice page: link token + school password + per-notice session",
    Route(method: "POST", path: "/notice/{token}"): "sign-in, acknowledge, no-longer-attends: link token + school password + per-notice session",
]

/// A service instance on the mock cluster, with its router at hand.
struct ServiceUnderTest {
    var name: ServiceName
    var definition: ServiceDefinition
    /// The tokens configured on it (intake has two: its own API's and the operations API's).
    var tokens: [String]
    var publicRoutes: [Route: String]
}

enum Tokens {
    static let operations = "ops-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    static let intake = "intake-token-abcdefghijklmnopqrstuvwxyz98765"
}

func services() throws -> [ServiceUnderTest] {
    let protocols = try ForceProtocols.load(directory: ForceProtocols.bundledDirectory)
    let mail = TestPaths.temporaryDirectory("security-mail")
    return [
        ServiceUnderTest(
            name: .intake,
            definition: IntakeService.definition(settings: .init(apiToken: Tokens.intake, forces: try ForceRegistry(ForceRegistry.builtIn))),
            tokens: [Tokens.intake, Tokens.operations], publicRoutes: publicRoutes),
        ServiceUnderTest(
            name: .childResearch, definition: ChildResearchService.definition(settings: .init()),
            tokens: [Tokens.operations], publicRoutes: publicRoutes),
        ServiceUnderTest(
            name: .schoolResolution,
            definition: SchoolResolutionService.definition(settings: .init(protocols: try SchoolsProtocol.loadAll(protocols), seedRegister: false)),
            tokens: [Tokens.operations], publicRoutes: publicRoutes),
        ServiceUnderTest(
            name: .scheduling, definition: SchedulingService.definition(settings: try .fromEnvironment([:])),
            tokens: [Tokens.operations], publicRoutes: publicRoutes),
        ServiceUnderTest(
            name: .dispatch,
            definition: DispatchService.definition(
                settings: .init(
                    mail: .folder(directory: mail), publicURL: "http://127.0.0.1:1",
                    protocols: try DispatchProtocols.load(protocols))),
            tokens: [Tokens.operations], publicRoutes: publicRoutes.merging(dispatchPublicRoutes) { a, _ in a }),
    ]
}

struct Answer {
    var status: Int
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
}

let plainSession: URLSession = {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpShouldSetCookies = false
    return URLSession(configuration: configuration)
}()

/// Sends a request over a socket, for tests of a running service (notice isolation: notices
/// arrive over Kafka).
func send(_ method: String, _ url: String, authorization: String?, body: Data? = nil) async throws -> Answer {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    if method == "POST" || method == "PUT" || method == "PATCH" {
        request.httpBody = body ?? Data("{}".utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
    let (data, response) = try await plainSession.data(for: request)
    return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
}

/// Sends a request to a router in process (HummingbirdTesting's router client: the whole
/// middleware chain and handler, without a socket, which would add nothing to what is checked).
func send(_ client: some TestClientProtocol, _ method: String, _ path: String, authorization: String?, body: Data? = nil) async throws -> Answer {
    var headers: HTTPFields = [:]
    var buffer: ByteBuffer?
    if method == "POST" || method == "PUT" || method == "PATCH" {
        buffer = ByteBuffer(bytes: body ?? Data("{}".utf8))
        headers[.contentType] = "application/json"
    }
    if let authorization { headers[.authorization] = authorization }
    let response = try await client.execute(uri: path, method: HTTPRequest.Method(method)!, headers: headers, body: buffer)
    return Answer(status: Int(response.status.code), body: Data(response.body.readableBytesView))
}

/// A concrete path for a route: each `:parameter` filled with a plausible value.
func concrete(_ path: String) -> String {
    path.split(separator: "/", omittingEmptySubsequences: false).map { segment -> String in
        // Hummingbird prints a parameter as {name} (registered as :name).
        guard segment.hasPrefix("{") || segment.hasPrefix(":") || segment.hasPrefix("*") else { return String(segment) }
        switch segment.trimmingCharacters(in: CharacterSet(charactersIn: "{}:")) {
        case "id": return "1"
        case "urn": return "110001"
        case "childId": return "c-0001"
        case "token": return String(repeating: "A", count: 43)
        default: return "x1"
        }
    }.joined(separator: "/")
}

@Suite("Every HTTP endpoint refuses requests without the right token", .serialized, .tags(.kafka))
struct EndpointAuthTests {
    @Test(
        "each service: routes read from its router; all but the listed public ones answer 401 without a token, with a wrong token or another API's token, and say nothing else"
    )
    func everyRouteNeedsTheToken() async throws {
        let kafka = try TestKafka(partitions: 2)
        var allRoutes: [String] = []
        for service in try services() {
            let configuration = ServiceConfiguration(
                service: service.name, kafka: kafka.client(service.name.rawValue), groupId: "\(service.name.rawValue)-\(UUID())",
                dataDirectory: TestPaths.temporaryDirectory("security-\(service.name.rawValue)"), instanceId: "\(service.name.rawValue)-sec",
                httpPort: 0, topicPartitions: 2, apiToken: Tokens.operations)
            let host = try await ServiceHost(
                definition: service.definition, configuration: configuration, logger: TestLog.logger(service.name.rawValue))
            let routes = RouteInventory.routes(of: host.makeRouter())
            // The inventory must see the router (a Hummingbird change would make it blind).
            #expect(routes.contains(Route(method: "GET", path: "/healthz")), "\(service.name): route inventory found \(routes)")
            #expect(routes.contains(Route(method: "GET", path: "/v1/dead-letters")), "\(service.name): \(routes)")
            // Every public route listed exists (the list is not stale).
            for route in service.publicRoutes.keys { #expect(routes.contains(route), "\(service.name): public route \(route) is not served") }

            // The host is not started: what is checked is the router's answer, and its handlers
            // reach the store the host opened.
            allRoutes += routes.map { "\(service.name.rawValue) \($0)" }
            try await Application(router: host.makeRouter()).test(.router) { client in
                for route in routes {
                    if service.publicRoutes[route] != nil { continue }
                    let url = concrete(route.path)
                    let refusals: [(String, String?)] = [
                        ("no token", nil),
                        ("wrong token", "Bearer wrong-token-0000000000000000000000000"),
                        ("token prefix", "Bearer " + String(service.tokens[0].dropLast())),
                        ("token with extra", "Bearer " + service.tokens[0] + "x"),
                        ("basic scheme", "Basic " + Data("user:\(service.tokens[0])".utf8).base64EncodedString()),
                        ("bare token", service.tokens[0]),
                    ]
                    for (label, authorization) in refusals {
                        let answer = try await send(client, route.method, url, authorization: authorization)
                        #expect(answer.status == 401, "\(service.name) \(route) with \(label): \(answer.status) \(answer.text.prefix(200))")
                        // The refusal carries nothing but the error.
                        let object = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
                        #expect(object.map { Set($0.keys) } == ["error"], "\(service.name) \(route) with \(label): body \(answer.text.prefix(200))")
                    }
                    // Exactly one configured token opens it (intake's API token does not open the
                    // operations API and the other way round); the route is really reached.
                    var opened = 0
                    for token in service.tokens {
                        let answer = try await send(client, route.method, url, authorization: "Bearer " + token)
                        if answer.status != 401 {
                            opened += 1
                            #expect(
                                !answer.body.isEmpty, "\(service.name) \(route): reached with the token but the answer is empty (\(answer.status))")
                        }
                    }
                    #expect(opened == 1, "\(service.name) \(route): \(opened) of the configured tokens open it")
                }
            }
        }
        print("routes checked:\n" + allRoutes.joined(separator: "\n"))
        #expect(allRoutes.count > 30)
    }

    @Test("an API without a configured token is closed (503), not open")
    func unconfiguredIsClosed() async throws {
        let kafka = try TestKafka(partitions: 2)
        let configuration = ServiceConfiguration(
            service: .scheduling, kafka: kafka.client("scheduling"), groupId: "scheduling-\(UUID())",
            dataDirectory: TestPaths.temporaryDirectory("security-open"), instanceId: "scheduling-open", httpPort: 0, topicPartitions: 2,
            apiToken: nil)
        let host = try await ServiceHost(
            definition: SchedulingService.definition(settings: try .fromEnvironment([:])), configuration: configuration,
            logger: TestLog.logger("scheduling"))
        try await Application(router: host.makeRouter()).test(.router) { client in
            for path in ["/v1/pending", "/v1/dead-letters"] {
                for authorization in [nil, "Bearer ", "Bearer anything"] {
                    let answer = try await send(client, "GET", path, authorization: authorization)
                    #expect(answer.status == 503, "\(path): \(answer.status)")
                    #expect(answer.text.contains("ENCOMPASS_API_TOKEN"))
                }
            }
        }
    }
}
