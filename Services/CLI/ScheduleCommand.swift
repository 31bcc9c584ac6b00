import ArgumentParser
import EncompassModels
import Foundation
import SchedulingService
import ServiceRuntime
import WebSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `encompass schedule explain` (computed locally with the scheduling rules and data) and
/// `encompass schedule pending` (asks the running scheduling service).
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "When a notice goes out, and which notices are waiting.",
        subcommands: [ScheduleExplainCommand.self, SchedulePendingCommand.self]
    )
}

struct ScheduleExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Print a notice's release time and the rules that decided it.",
        discussion: """
            Times: ISO 8601 with an offset (2026-11-22T21:15:00Z) or London local time \
            (2026-11-22 21:15). Uses the shipped bank holidays and term dates, or \
            ENCOMPASS_BANK_HOLIDAYS_FILE, ENCOMPASS_TERM_DATES_DIR and ENCOMPASS_PROTOCOLS_DIR. \
            A school's own term dates (set on the service) are not known here; pass --school-terms FILE.
            """
    )

    @Option(help: "When the incident happened.")
    var occurred: String

    @Option(help: "DfE local authority code of the school, e.g. 931 (Oxfordshire).")
    var la: String

    @Option(help: "The school's URN.")
    var urn: String?

    @Option(help: "Risk level: standard, medium or high.")
    var risk: String = "standard"

    @Option(help: "Force code: 43 Thames Valley, 05 Cambridgeshire.")
    var force: String = "43"

    @Option(help: "When scheduling processes it (default: now).")
    var processed: String?

    @Option(help: "A term dates file (JSON) for the school given by --urn.")
    var schoolTerms: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        guard let occurredAt = Timestamp.parse(occurred) else {
            throw ValidationError("--occurred '\(occurred)' is not a time; use 2026-11-22 21:15 or 2026-11-22T21:15:00Z")
        }
        let processedAt: Date
        if let processed {
            guard let date = Timestamp.parse(processed) else { throw ValidationError("--processed '\(processed)' is not a time") }
            processedAt = date
        } else {
            processedAt = Date()
        }
        guard let riskLevel = RiskLevel(rawValue: risk.lowercased()) else {
            throw ValidationError("--risk '\(risk)' must be standard, medium or high")
        }
        let settings = try SchedulingService.Settings.fromEnvironment(ProcessInfo.processInfo.environment)
        var calendars = settings.calendars
        if let schoolTerms {
            guard let urn else { throw ValidationError("--school-terms needs --urn") }
            guard let data = FileManager.default.contents(atPath: schoolTerms) else { throw ValidationError("cannot read \(schoolTerms)") }
            calendars.schools[urn] = try TermCalendar.decode(data, label: schoolTerms)
        }
        let explanation = try ScheduleExplanation.make(
            forceCode: force, occurredAt: occurredAt, processedAt: processedAt, laCode: la, urn: urn, risk: riskLevel,
            calendars: calendars, protocols: settings.protocols)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(explanation), as: UTF8.self))
        } else {
            print(explanation.text)
        }
    }
}

struct SchedulePendingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pending",
        abstract: "List the notices the scheduling service holds (GET /v1/pending).")

    @Option(help: "Scheduling's base URL ($ENCOMPASS_SCHEDULING_URL when set).")
    var url: String = ServiceClient.defaultBaseURL(.scheduling)

    @Option(help: "API token (default: $ENCOMPASS_API_TOKEN).")
    var token: String?

    @Option(help: "pending, released, cancelled or all.")
    var state: String = "pending"

    @Flag(help: "Print the service's JSON.")
    var json = false

    func run() async throws {
        let api = APIClient(service: .scheduling, baseURL: url, token: try APIClient.token(token))
        let (status, data, _) = try await api.send("GET", "/v1/pending", query: ["state": state])
        guard status == 200 else {
            FileHandle.standardError.write(Data("scheduling refused (\(status)): \(APIClient.refusal(data))\n".utf8))
            throw ExitCode(2)
        }
        if json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let list: PendingList
        do { list = try WireFormat.decoder().decode(PendingList.self, from: data) } catch {
            FileHandle.standardError.write(
                Data(
                    "scheduling answered /v1/pending with an unexpected body (\(WireFormat.describe(error))); is --url scheduling of this version?\n"
                        .utf8))
            throw ExitCode(2)
        }
        print("\(list.notices.count) notice(s) \(state) on \(list.instance)")
        for notice in list.notices {
            let escalate = notice.escalate ? " ESCALATION" : ""
            print(
                "\(notice.releaseAt)  \(notice.noticeId)  force \(notice.forceCode) occurrence \(notice.occurrenceNumber)  school \(notice.schoolURN) (LA \(notice.laCode))  \(notice.state)\(escalate)"
            )
        }
    }
}
