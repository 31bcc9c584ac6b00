import ArgumentParser
import EncompassModels
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where the services are and how to sign in to their operations API.
///
/// Each service's base URL is `--endpoint SERVICE=URL`, else `$ENCOMPASS_<SERVICE>_URL`
/// (e.g. `ENCOMPASS_SCHOOL_RESOLUTION_URL`), else `http://127.0.0.1:<its default port>`.
public struct ServiceEndpoints: ParsableArguments {
    public init() {}

    @Option(name: .customLong("endpoint"), help: "A service's base URL, as SERVICE=URL (repeatable), e.g. dispatch=http://10.0.0.5:8085.")
    public var endpoints: [String] = []

    @Option(help: "API token (default: $ENCOMPASS_API_TOKEN).")
    public var token: String?

    public func client(_ service: ServiceName) throws -> ServiceClient {
        var base = ProcessInfo.processInfo.environment[Self.variable(service)] ?? "http://127.0.0.1:\(service.defaultHTTPPort)"
        for item in endpoints {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let named = ServiceName(rawValue: parts[0]) else {
                throw ValidationError("--endpoint '\(item)' must be SERVICE=URL with SERVICE one of \(ServiceName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if named == service { base = parts[1] }
        }
        guard let token = token ?? ProcessInfo.processInfo.environment["ENCOMPASS_API_TOKEN"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ValidationError("no API token: pass --token or set ENCOMPASS_API_TOKEN")
        }
        return ServiceClient(service: service, baseURL: base, token: token)
    }

    public static func variable(_ service: ServiceName) -> String {
        "ENCOMPASS_\(service.rawValue.uppercased().replacingOccurrences(of: "-", with: "_"))_URL"
    }
}

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

    public init(service: ServiceName, baseURL: String, token: String) {
        self.service = service
        self.baseURL = baseURL
        self.token = token
    }

    /// Returns the status and the raw body. Throws `ServiceCallError` when the service cannot be reached.
    public func call(_ method: String, _ path: String, query: [String: String] = [:], json body: Any? = nil, raw: Data? = nil,
              contentType: String = "application/json") async throws -> (status: Int, body: Data) {
        var components = URLComponents(string: baseURL + path)
        if !query.isEmpty {
            components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        guard let endpoint = components?.url else { throw ValidationError("\(service.rawValue) URL '\(baseURL)' is not a URL") }
        var request = URLRequest(url: endpoint)
        request.httpMethod = method
        request.timeoutInterval = 120
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body, options: [.fragmentsAllowed])
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let raw {
            request.httpBody = raw
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        } catch {
            throw ServiceCallError(description: "\(service.rawValue) at \(baseURL) could not be reached: \(error.localizedDescription); is it running? (set \(ServiceEndpoints.variable(service)) or --endpoint)")
        }
    }

    /// Calls and decodes a 2xx JSON answer; any other answer becomes an error with the service's words.
    public func decode<T: Decodable>(_ type: T.Type, _ method: String, _ path: String, query: [String: String] = [:], json body: Any? = nil) async throws -> T {
        let (status, data) = try await call(method, path, query: query, json: body)
        guard (200..<300).contains(status) else { throw ServiceCallError(description: Self.refusal(service, status, data)) }
        do {
            return try WireFormat.decoder().decode(T.self, from: data)
        } catch {
            throw ServiceCallError(description: "\(service.rawValue) answered \(status) with an unexpected body: \(WireFormat.describe(error))")
        }
    }

    public static func refusal(_ service: ServiceName, _ status: Int, _ data: Data) -> String {
        let message = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["error"] as? String
            ?? String(decoding: data.prefix(500), as: UTF8.self)
        return "\(service.rawValue) refused (\(status)): \(message)"
    }
}

/// Pretty JSON for `--json` output.
public func printJSON(_ value: some Encodable) throws {
    let encoder = WireFormat.encoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
