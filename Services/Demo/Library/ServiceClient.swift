import ArgumentParser
import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where the services are and how to sign in to their operations API.
///
/// Each service's base URL is `--endpoint SERVICE=URL`, else `$ENCOMPASS_<SERVICE>_URL`
/// (e.g. `ENCOMPASS_SCHOOL_RESOLUTION_URL`), else `http://127.0.0.1:<its default port>`.
public struct ServiceEndpoints: ParsableArguments {
    public init() {}

    @Option(
        name: .customLong("endpoint"),
        help:
            "A service's base URL, as SERVICE=URL (repeatable; repeat a service for each of its instances where a command reads every instance), e.g. dispatch=http://10.0.0.5:8085."
    )
    public var endpoints: [String] = []

    @Option(help: "API token (default: $ENCOMPASS_API_TOKEN).")
    public var token: String?

    public func client(_ service: ServiceName) throws -> ServiceClient {
        var base = ServiceClient.defaultBaseURL(service)
        for item in endpoints {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let named = ServiceName(rawValue: parts[0]) else {
                throw ValidationError(
                    "--endpoint '\(item)' must be SERVICE=URL with SERVICE one of \(ServiceName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if named == service { base = parts[1] }
        }
        guard let token = token ?? ProcessInfo.processInfo.environment["ENCOMPASS_API_TOKEN"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ValidationError("no API token: pass --token or set ENCOMPASS_API_TOKEN")
        }
        return ServiceClient(service: service, baseURL: base, token: token)
    }

    /// Every instance of a service: the `--endpoint`s given for it (several for a scaled
    /// service), else `ServiceClient.instanceBaseURLs` (`$ENCOMPASS_<SERVICE>_URLS`, else the one URL).
    public func clients(_ service: ServiceName) throws -> [ServiceClient] {
        var given: [String] = []
        for item in endpoints {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let named = ServiceName(rawValue: parts[0]) else {
                throw ValidationError(
                    "--endpoint '\(item)' must be SERVICE=URL with SERVICE one of \(ServiceName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if named == service { given.append(parts[1]) }
        }
        let urls = given.isEmpty ? ServiceClient.instanceBaseURLs(service) : ServiceClient.splitURLs(given)
        guard let token = token ?? ProcessInfo.processInfo.environment["ENCOMPASS_API_TOKEN"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ValidationError("no API token: pass --token or set ENCOMPASS_API_TOKEN")
        }
        return urls.map { ServiceClient(service: service, baseURL: $0, token: token) }
    }

    public static func variable(_ service: ServiceName) -> String { ServiceClient.variable(service) }
}

/// Pretty JSON for `--json` output.
public func printJSON(_ value: some Encodable) throws {
    let encoder = WireFormat.encoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
