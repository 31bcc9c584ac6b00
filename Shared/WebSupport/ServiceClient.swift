import EncompassModels
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A service that could not be reached or did not answer as expected.
public struct ServiceCallError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Calls one service's JSON API with its bearer token.
public struct ServiceClient: Sendable {
    public let service: ServiceName
    public let baseURL: String
    public let token: String
    /// Seconds to wait for an answer (the console waits less than a CLI command).
    public var timeout: TimeInterval
    /// The caller's option that sets the URL, named when the service cannot be reached.
    public var urlOption = "--endpoint"

    public init(service: ServiceName, baseURL: String, token: String, timeout: TimeInterval = 120) {
        self.service = service
        self.baseURL = baseURL
        self.token = token
        self.timeout = timeout
    }

    /// The variable that names a service's base URL, e.g. `ENCOMPASS_SCHOOL_RESOLUTION_URL`.
    public static func variable(_ service: ServiceName) -> String {
        "ENCOMPASS_\(service.rawValue.uppercased().replacingOccurrences(of: "-", with: "_"))_URL"
    }

    /// `$ENCOMPASS_<SERVICE>_URL`, else `http://127.0.0.1:<its default port>`.
    public static func defaultBaseURL(_ service: ServiceName, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        environment[variable(service)].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:\(service.defaultHTTPPort)"
    }

    /// The variable that lists every instance of a scaled service, comma-separated, e.g.
    /// `ENCOMPASS_DISPATCH_URLS=http://dispatch-1:8085,http://dispatch-2:8085`.
    public static func instancesVariable(_ service: ServiceName) -> String { variable(service) + "S" }

    /// Every instance's base URL: `$ENCOMPASS_<SERVICE>_URLS` (comma-separated), else the one of
    /// `defaultBaseURL`. Views of state an instance keeps for its own partitions gather from all
    /// of them; an action on such a record goes to each in turn until one holds it.
    public static func instanceBaseURLs(_ service: ServiceName, environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let listed = splitURLs([environment[instancesVariable(service)] ?? ""])
        return listed.isEmpty ? [defaultBaseURL(service, environment: environment)] : listed
    }

    /// URLs given one or several to a value (`a,b`), without blanks or repeats, in order.
    public static func splitURLs(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    /// Returns the status and the raw body. Throws `ServiceCallError` when the service cannot be reached.
    public func call(
        _ method: String, _ path: String, query: [String: String] = [:], json body: (any Encodable)? = nil, raw: Data? = nil,
        contentType: String = "application/json"
    ) async throws -> (status: Int, body: Data) {
        let (status, data, _) = try await exchange(method, path, query: query, json: body, raw: raw, contentType: contentType)
        return (status, data)
    }

    /// `call`, with the HTTP response (its headers) as well. A `json` body is one of the request
    /// types of `ServiceAPI.swift` (EncompassModels), written as the service reads it.
    public func exchange(
        _ method: String, _ path: String, query: [String: String] = [:], json body: (any Encodable)? = nil, raw: Data? = nil,
        contentType: String = "application/json"
    ) async throws -> (status: Int, body: Data, response: HTTPURLResponse?) {
        var components = URLComponents(string: baseURL + path)
        if !query.isEmpty {
            components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        guard let endpoint = components?.url else {
            throw ServiceCallError(description: "\(service.rawValue) URL '\(baseURL)' is not a URL; check \(Self.variable(service))")
        }
        var request = URLRequest(url: endpoint)
        request.httpMethod = method
        request.timeoutInterval = timeout
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.httpBody = try WireFormat.data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let raw {
            request.httpBody = raw
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as? HTTPURLResponse
            return (http?.statusCode ?? 0, data, http)
        } catch {
            throw ServiceCallError(
                description:
                    "\(service.rawValue) at \(baseURL) could not be reached: \(error.localizedDescription); is it running? (set \(Self.variable(service)) or \(urlOption))"
            )
        }
    }

    /// Calls and decodes a 2xx JSON answer; any other answer becomes an error with the service's words.
    public func decode<T: Decodable>(
        _ type: T.Type, _ method: String, _ path: String, query: [String: String] = [:], json body: (any Encodable)? = nil
    ) async throws -> T {
        let (status, data) = try await call(method, path, query: query, json: body)
        guard (200..<300).contains(status) else { throw ServiceCallError(description: Self.refusal(service, status, data)) }
        do {
            return try WireFormat.decoder().decode(T.self, from: data)
        } catch {
            throw ServiceCallError(description: "\(service.rawValue) answered \(status) with an unexpected body: \(WireFormat.describe(error))")
        }
    }

    public static func refusal(_ service: ServiceName, _ status: Int, _ data: Data) -> String {
        let message =
            (try? WireFormat.decoder().decode(APIError.self, from: data))?.error
            ?? (try? WireFormat.decoder().decode(APIFieldErrors.self, from: data))?.description
            ?? String(decoding: data.prefix(500), as: UTF8.self)
        return "\(service.rawValue) refused (\(status)): \(message)"
    }
}
