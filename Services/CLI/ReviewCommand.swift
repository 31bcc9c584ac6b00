import ArgumentParser
import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The MASH review queue of child research: proposed children to confirm or reject.
struct ReviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "List, confirm or reject the children child research proposed; see how often officers confirmed each score.",
        subcommands: [ReviewList.self, ReviewConfirm.self, ReviewReject.self, ReviewCalibrationCommand.self]
    )
}

/// Where child research is and how to sign in.
struct ReviewOptions: ParsableArguments {
    @Option(help: "Child research's base URL ($ENCOMPASS_CHILD_RESEARCH_URL when set).")
    var url: String = ServiceClient.defaultBaseURL(.childResearch)

    @Option(help: "API token (default: $ENCOMPASS_API_TOKEN).")
    var token: String?

    @Flag(help: "Print the service's answer as JSON.")
    var json = false

    /// Sends a request; returns the status and the body. Exits with 2 when the service cannot be reached.
    func send(_ method: String, _ path: String, body: ReviewDecisionRequest? = nil) async throws -> (Int, Data) {
        let api = APIClient(service: .childResearch, baseURL: url, token: try APIClient.token(token))
        let (status, data, _) = try await api.send(method, path, body: try body.map { try WireFormat.data($0) })
        return (status, data)
    }

    func fail(_ status: Int, _ data: Data) throws -> Never {
        FileHandle.standardError.write(Data("refused (\(status)): \(APIClient.refusal(data))\n".utf8))
        throw ExitCode(1)
    }

    /// A 200 answer as `Answer`; exits 2 when it is not one (another version of child research?).
    func decode<Answer: Decodable>(_ type: Answer.Type, _ data: Data, path: String) throws -> Answer {
        do { return try WireFormat.decoder().decode(Answer.self, from: data) } catch {
            FileHandle.standardError.write(
                Data(
                    "child research answered \(path) with an unexpected body (\(WireFormat.describe(error))); is --url child research of this version?\n"
                        .utf8))
            throw ExitCode(2)
        }
    }
}

struct ReviewList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List proposals (pending by default) with score and explanation.")

    @Option(help: "pending, confirmed, rejected, withdrawn or all.")
    var status: String = "pending"

    @OptionGroup var options: ReviewOptions

    func run() async throws {
        let (code, data) = try await options.send("GET", "/v1/review?status=\(status)")
        guard code == 200 else { try options.fail(code, data) }
        if options.json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let proposals = try options.decode(ReviewListing.self, data, path: "/v1/review").proposals
        if proposals.isEmpty { print("no \(status) proposals") }
        for proposal in proposals {
            let child = proposal.child
            let born = child.dateOfBirth.map { "born \($0)" } ?? child.ageYears.map { "aged \($0)" } ?? "age unknown"
            print(
                "\(proposal.proposalId)  \(proposal.forceCode)/\(proposal.occurrenceNumber)  \(child.givenName) \(child.familyName) (\(born))  score \(proposal.evidence.score)  \(proposal.status)"
            )
            for line in proposal.evidence.explanation { print("    \(line)") }
            if proposal.status == "withdrawn", let note = proposal.note { print("    \(note)") }
        }
    }
}

struct ReviewConfirm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "confirm", abstract: "Confirm a proposed child: it goes on to school resolution.")

    @Argument(help: "The proposal id, as listed.")
    var id: String

    @Option(help: "Who decided (collar number or name).")
    var reviewer: String

    @Option(help: "A note for the record.")
    var note: String?

    @OptionGroup var options: ReviewOptions

    func run() async throws {
        try await decide(options: options, id: id, verdict: "confirm", reviewer: reviewer, note: note)
    }
}

struct ReviewReject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reject", abstract: "Reject a proposed child: never proposed again for that incident.")

    @Argument(help: "The proposal id, as listed.")
    var id: String

    @Option(help: "Who decided (collar number or name).")
    var reviewer: String

    @Option(help: "A note for the record.")
    var note: String?

    @OptionGroup var options: ReviewOptions

    func run() async throws {
        try await decide(options: options, id: id, verdict: "reject", reviewer: reviewer, note: note)
    }
}

struct ReviewCalibrationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibration",
        abstract:
            "For each score band, how many proposals officers decided and the share they confirmed (to choose an automatic confirmation threshold).")

    @OptionGroup var options: ReviewOptions

    func run() async throws {
        let (code, data) = try await options.send("GET", "/v1/review/calibration")
        guard code == 200 else { try options.fail(code, data) }
        if options.json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let calibration = try options.decode(ReviewCalibration.self, data, path: "/v1/review/calibration")
        print(Self.table(calibration), terminator: "")
    }

    static func table(_ calibration: ReviewCalibration) -> String {
        var text = "score at or above  decided  confirmed  share confirmed\n"
        for band in calibration.bands {
            let share = band.shareConfirmed.map { String(format: "%.0f%%", $0 * 100) } ?? "–"
            text +=
                String(format: "%.2f", band.minimumScore).padding(toLength: 17, withPad: " ", startingAt: 0)
                + String(format: "  %7d  %9d  ", band.decided, band.confirmed) + share + "\n"
        }
        text +=
            "\(calibration.decided) decided by officers (\(calibration.confirmed) confirmed); \(calibration.automatic) confirmed automatically, not counted\n"
        return text
    }
}

func decide(options: ReviewOptions, id: String, verdict: String, reviewer: String, note: String?) async throws {
    let body = ReviewDecisionRequest(reviewer: reviewer, note: note)
    let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id
    let (code, data) = try await options.send("POST", "/v1/review/\(escaped)/\(verdict)", body: body)
    guard code == 202 else { try options.fail(code, data) }
    if options.json {
        print(String(decoding: data, as: UTF8.self))
    } else {
        print("\(id): \(verdict) sent (applied by the instance that owns the incident)")
    }
}
