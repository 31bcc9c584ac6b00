import EncompassDemo
import EncompassModels
import Foundation
import WebSupport

/// The paced phase's notices due at once: a share of its incidents is high risk while their
/// schools are on half term (each school is given its own term dates, as an academy with its own
/// calendar would be), so scheduling escalates each to the force's Education Safeguarding Manager
/// at once, and dispatch mails it through a real SMTP server on loopback (the aiosmtpd peer of
/// dispatch's tests). The figure is from the incident's raw record to the server's acceptance.
struct EscalationMail {
    /// The SMTP server's port.
    let port: Int
    /// Where the server writes each message it accepts.
    let folder: String

    /// dispatch's settings for the server: plain SMTP, which dispatch allows on loopback only.
    var environment: [String: String] {
        ["ENCOMPASS_SMTP_URL": "smtp://127.0.0.1:\(port)", "ENCOMPASS_SMTP_TLS": "none", "ENCOMPASS_SMTP_FROM": "operation-encompass@bench.invalid"]
    }

    /// The SMTP peer beside the sources (`swift build` runs from the checkout).
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/DispatchTests/Peers/smtp_server.py").path

    /// A school year in which the week of 23 November 2026 is a half term: a notice processed
    /// that week waits through a school holiday, so a high-risk one is escalated at once.
    static let halfTermWeek = """
        type,start,end
        term,2026-09-02,2026-12-18
        half term,2026-10-26,2026-10-30
        half term,2026-11-23,2026-11-27
        term,2027-01-05,2027-03-26
        term,2027-04-12,2027-07-21

        """

    /// Starts the SMTP server; it runs until `stop` (or ten minutes).
    func startServer() async throws -> Process {
        guard FileManager.default.fileExists(atPath: Self.script) else {
            throw BenchError("the mail figure needs the SMTP peer \(Self.script) (run from a checkout), or --escalations 0 to skip it")
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let portFile = "\(folder)/../smtp.port"
        try? FileManager.default.removeItem(atPath: portFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, "--port", String(port), "--port-file", portFile, "--out", folder, "--mode", "ok"]
        process.standardInput = Pipe()
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(20)
        while !FileManager.default.fileExists(atPath: portFile) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.terminate()
                throw BenchError(
                    "the SMTP peer did not start on port \(port): it needs python3 with aiosmtpd (pip install aiosmtpd) and a free port; --escalations 0 skips the mail figure"
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return process
    }

    /// Gives each school its half-term week and the force's Education Safeguarding Manager a
    /// notice password (dispatch holds mail to an account without one).
    func prepare(_ pipeline: LocalPipeline, urns: Set<String>, forceCode: String) async throws {
        let scheduling = pipeline.client(.scheduling)
        for urn in urns.sorted() {
            let (status, body) = try await scheduling.call(
                "PUT", "/v1/term-dates/school/\(urn)", raw: Data(Self.halfTermWeek.utf8), contentType: "text/csv")
            guard status == 200 else {
                throw BenchError("scheduling refused school \(urn)'s term dates (\(status)): \(String(decoding: body.prefix(300), as: UTF8.self))")
            }
        }
        try await pipeline.setSchoolPasswords(
            [NoticeAccount.educationSafeguardingManager(forceCode: forceCode)], password: "bench-esm-" + String(MessageID.fresh().prefix(12)))
    }

    /// Waits until the server has accepted a mail for every notice (or `timeout`); returns what it accepted.
    func accepted(for notices: [String: Date], timeout: Duration) async throws -> [String: Date] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let accepted = AcceptedMail.read(folder: folder)
            if notices.keys.allSatisfy({ accepted[AcceptedMail.messageId(noticeId: $0)] != nil }) || ContinuousClock.now >= deadline {
                return accepted
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
