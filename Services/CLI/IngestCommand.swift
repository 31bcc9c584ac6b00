import ArgumentParser
import EncompassModels
import Foundation
import IntakeService
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
        let (status, answer, raw) = try await client.post(
            "/v1/spreadsheets", query: ["name": name], body: data, as: SpreadsheetAnswer.self, what: name)
        if json { print(String(decoding: raw, as: UTF8.self)) }
        if let error = answer.error {
            FileHandle.standardError.write(Data("\(name) refused (\(status)): \(error)\n".utf8))
            throw ExitCode(2)
        }
        let rejected = answer.rejectedRows
        if !json {
            print("\(name): \(answer.rows) rows, \(answer.accepted.count) incidents accepted, \(answer.rejectedRowCount) rows rejected")
            for notice in answer.notices { print("note: \(notice)") }
            func problems(_ errors: [FieldError]) -> String { errors.map(\.description).joined(separator: "; ") }
            for item in answer.accepted {
                guard let warnings = item.warnings else { continue }
                print(
                    "warning: occurrence \(item.occurrenceNumber) (rows \(item.rows.map(String.init).joined(separator: ", "))) accepted without: \(problems(warnings))"
                )
            }
            for row in rejected {
                print("row \(row.row): \(problems(row.errors))")
            }
            let total = answer.rejectedRowCount
            if total > rejected.count {
                let byField = answer.rejectedByField.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }
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
        IntakeClient(
            api: APIClient(service: .intake, baseURL: url, token: try APIClient.token(token, variable: "ENCOMPASS_INTAKE_API_TOKEN"), timeout: 300))
    }
}

/// Posts to the intake service's API.
struct IntakeClient {
    let api: APIClient

    /// Returns the status, the answer and the raw body; exits with 2, saying why, when intake
    /// is unreachable, refuses (`what` names the file) or answers something else.
    func post<Answer: Decodable>(
        _ path: String, query: [String: String], body: Data, as type: Answer.Type,
        what: String
    ) async throws -> (Int, Answer, Data) {
        let (status, raw, _) = try await api.send("POST", path, query: query, body: body, contentType: "application/octet-stream")
        if let answer = try? WireFormat.decoder().decode(Answer.self, from: raw) { return (status, answer, raw) }
        if let refusal = try? WireFormat.decoder().decode(APIError.self, from: raw) {
            FileHandle.standardError.write(Data("\(what) refused (\(status)): \(refusal.error)\n".utf8))
        } else {
            FileHandle.standardError.write(Data("intake answered \(status): \(String(decoding: raw.prefix(2_000), as: UTF8.self))\n".utf8))
        }
        throw ExitCode(2)
    }
}
