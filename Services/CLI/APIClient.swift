import ArgumentParser
import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A service's HTTP API as a CLI command calls it: the base URL and bearer token from the
/// command's options, through the runtime's `ServiceClient`. Every command that talks to a
/// service goes through here, so they sign in, report an unreachable service and exit the same way.
struct APIClient {
    let client: ServiceClient

    init(service: ServiceName, baseURL: String, token: String, timeout: TimeInterval = 120) {
        var client = ServiceClient(service: service, baseURL: baseURL, token: token, timeout: timeout)
        client.urlOption = "--url"
        self.client = client
    }

    /// The token given with `--token`, else the environment variable's; an error that says
    /// how to give one when neither is set.
    static func token(_ option: String?, variable: String = "ENCOMPASS_API_TOKEN") throws -> String {
        guard let token = option ?? ProcessInfo.processInfo.environment[variable], !token.isEmpty else {
            throw ValidationError("no API token: pass --token or set \(variable)")
        }
        return token
    }

    /// Sends a request and returns the status, the body and the response (its headers). Exits
    /// with 2, saying why, when the service cannot be reached or `--url` is not a URL.
    func send(
        _ method: String, _ path: String, query: [String: String] = [:], body: Data? = nil, contentType: String = "application/json"
    ) async throws -> (status: Int, data: Data, response: HTTPURLResponse?) {
        do {
            let (status, data, response) = try await client.exchange(method, path, query: query, raw: body, contentType: contentType)
            return (status, data, response)
        } catch let error as ServiceCallError {
            FileHandle.standardError.write(Data("\(error.description)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// What a refusal says: its `error`, its field errors, else the start of the body.
    static func refusal(_ data: Data) -> String {
        (try? WireFormat.decoder().decode(APIError.self, from: data))?.error
            ?? (try? WireFormat.decoder().decode(APIFieldErrors.self, from: data))?.description
            ?? String(decoding: data.prefix(500), as: UTF8.self)
    }
}
