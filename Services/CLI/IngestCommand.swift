import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Sends the DA desk's spreadsheet (CSV or XLSX) to the intake service.
struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Send a DA desk spreadsheet (CSV or XLSX) to intake.",
        discussion: """
        Prints what was accepted and, for every row that was not, its row number and reasons. \
        Exit status: 0 all rows accepted, 1 some rows rejected (they are kept as dead letters; \
        fix and send them again), 2 the file was refused or intake could not be reached.
        """
    )

    @Argument(help: "The spreadsheet file.")
    var file: String

    @Option(help: "Intake's base URL.")
    var url: String = "http://127.0.0.1:8081"

    @Option(help: "API token (default: $ENCOMPASS_INTAKE_API_TOKEN).")
    var token: String?

    @Flag(help: "Print intake's answer as JSON.")
    var json = false

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        guard let apiToken = token ?? ProcessInfo.processInfo.environment["ENCOMPASS_INTAKE_API_TOKEN"] else {
            throw ValidationError("no API token: pass --token or set ENCOMPASS_INTAKE_API_TOKEN")
        }
        let name = (file as NSString).lastPathComponent
        var components = URLComponents(string: url + "/v1/spreadsheets")
        components?.queryItems = [URLQueryItem(name: "name", value: name)]
        guard let endpoint = components?.url else { throw ValidationError("--url '\(url)' is not a URL") }
        var request = URLRequest(url: endpoint)
        request.httpMethod = "POST"
        request.httpBody = data
        request.setValue("Bearer \(apiToken)", forHTTPHeaderField: "Authorization")
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        request.timeoutInterval = 300
        let (body, response): (Data, URLResponse)
        do {
            (body, response) = try await URLSession.shared.data(for: request)
        } catch {
            FileHandle.standardError.write(Data("intake at \(url) could not be reached: \(error.localizedDescription)\n".utf8))
            throw ExitCode(2)
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        if json { print(String(decoding: body, as: UTF8.self)) }
        guard let answer = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            FileHandle.standardError.write(Data("intake answered \(status): \(String(decoding: body, as: UTF8.self))\n".utf8))
            throw ExitCode(2)
        }
        if let error = answer["error"] as? String {
            FileHandle.standardError.write(Data("\(name) refused (\(status)): \(error)\n".utf8))
            throw ExitCode(2)
        }
        let accepted = answer["accepted"] as? [[String: Any]] ?? []
        let rejected = answer["rejectedRows"] as? [[String: Any]] ?? []
        if !json {
            print("\(name): \(answer["rows"] as? Int ?? 0) rows, \(accepted.count) incidents accepted, \(rejected.count) rows rejected")
            for notice in answer["notices"] as? [String] ?? [] { print("note: \(notice)") }
            for row in rejected {
                let errors = (row["errors"] as? [[String: Any]] ?? []).map { "\($0["field"] ?? ""): \($0["message"] ?? "")" }
                print("row \(row["row"] ?? "?"): \(errors.joined(separator: "; "))")
            }
        }
        if !rejected.isEmpty { throw ExitCode(1) }
    }
}
