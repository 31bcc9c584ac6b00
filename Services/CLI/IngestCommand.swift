import ArgumentParser
import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Sends the DA desk's spreadsheet (CSV or XLSX) to the intake service.
struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Send a DA desk spreadsheet (CSV or XLSX) to intake.",
        discussion: """
        Prints what was accepted (with adults' fields set aside, if any) and, for the rows that were \
        not, their row numbers and reasons (the first 1,000; the rest counted by field). \
        Exit status: 0 all rows accepted, 1 some rows rejected (the file is kept as one dead letter \
        with a summary; fix the rows and send it again), 2 the file was refused or intake could not be reached.
        """
    )

    @Argument(help: "The spreadsheet file.")
    var file: String

    @OptionGroup var intake: IntakeOptions

    @Flag(help: "Print intake's answer as JSON.")
    var json = false

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        let name = (file as NSString).lastPathComponent
        let client = try intake.client()
        let (status, answer, raw) = try await client.post("/v1/spreadsheets", query: ["name": name], body: data)
        if json { print(String(decoding: raw, as: UTF8.self)) }
        if let error = answer["error"] as? String {
            FileHandle.standardError.write(Data("\(name) refused (\(status)): \(error)\n".utf8))
            throw ExitCode(2)
        }
        let accepted = answer["accepted"] as? [[String: Any]] ?? []
        let rejected = answer["rejectedRows"] as? [[String: Any]] ?? []
        if !json {
            print("\(name): \(answer["rows"] as? Int ?? 0) rows, \(accepted.count) incidents accepted, \(answer["rejectedRowCount"] as? Int ?? rejected.count) rows rejected")
            for notice in answer["notices"] as? [String] ?? [] { print("note: \(notice)") }
            func problems(_ item: [String: Any], _ key: String) -> String {
                (item[key] as? [[String: Any]] ?? []).map { "\($0["field"] ?? ""): \($0["message"] ?? "")" }.joined(separator: "; ")
            }
            for item in accepted where item["warnings"] != nil {
                let rows = (item["rows"] as? [Int] ?? []).map(String.init).joined(separator: ", ")
                print("warning: occurrence \(item["occurrenceNumber"] ?? "?") (rows \(rows)) accepted without: \(problems(item, "warnings"))")
            }
            for row in rejected {
                print("row \(row["row"] ?? "?"): \(problems(row, "errors"))")
            }
            let total = answer["rejectedRowCount"] as? Int ?? rejected.count
            if total > rejected.count {
                let byField = (answer["rejectedByField"] as? [String: Int] ?? [:]).sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }
                print("… and \(total - rejected.count) more rejected rows; rows with a problem, by field: \(byField.joined(separator: ", "))")
            }
        }
        if !rejected.isEmpty { throw ExitCode(1) }
    }
}

/// Where intake is and how to sign in: shared by the commands that talk to it.
struct IntakeOptions: ParsableArguments {
    @Option(help: "Intake's base URL ($ENCOMPASS_INTAKE_URL when set).")
    var url: String = ServiceClient.defaultBaseURL(.intake)

    @Option(help: "API token (default: $ENCOMPASS_INTAKE_API_TOKEN).")
    var token: String?

    func client() throws -> IntakeClient {
        IntakeClient(api: APIClient(service: .intake, baseURL: url, token: try APIClient.token(token, variable: "ENCOMPASS_INTAKE_API_TOKEN"), timeout: 300))
    }
}

/// Posts to the intake service's API.
struct IntakeClient {
    let api: APIClient

    /// Returns the status, the JSON answer and the raw body; exits with 2 when intake is
    /// unreachable or does not answer JSON.
    func post(_ path: String, query: [String: String], body: Data) async throws -> (Int, [String: Any], Data) {
        let (status, raw, _) = try await api.send("POST", path, query: query, body: body, contentType: "application/octet-stream")
        guard let answer = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
            FileHandle.standardError.write(Data("intake answered \(status): \(String(decoding: raw, as: UTF8.self))\n".utf8))
            throw ExitCode(2)
        }
        return (status, answer, raw)
    }
}
