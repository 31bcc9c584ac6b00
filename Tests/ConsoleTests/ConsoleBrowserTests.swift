import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService
@testable import ConsoleService

enum ConsoleBrowser {
    static var chromiumInstalled: Bool {
        ["/usr/bin/chromium", "/usr/bin/chromedriver"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false }
    static var peers: String { (URL(fileURLWithPath: #filePath).deletingLastPathComponent().path as NSString).appendingPathComponent("Peers") }

    static let python: String = {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/python3"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/bin/python3"
    }()

    /// Runs a test peer with python3, or another `executable` (e.g. the `encompass` CLI).
    static func run(_ arguments: [String], executable: String = python) throws -> (status: Int32, output: String) {
        let run = try runProcess(executable, arguments)
        return (run.status, run.output)
    }

    /// Width and height from a PNG's IHDR chunk, nil when the file is not a PNG.
    static func pngSize(_ data: Data) -> (width: Int, height: Int)? {
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, bytes.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], Array(bytes[12..<16]) == Array("IHDR".utf8)
        else { return nil }
        func int(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (int(16), int(20))
    }
}

@Suite("Console in Debian's chromium (selenium)", .serialized, .tags(.browser, .kafka, .peers))
struct ConsoleBrowserTests {
    @Test(
        "wrong password and a sign-in form without CSRF refused; sign in, overview, confirm a proposed child, download the CSC sheet, today's notices, sign out; a screenshot of each page",
        .enabled(
            if: ConsoleBrowser.chromiumInstalled || ConsoleBrowser.inCI,
            "chromium and chromium-driver are not installed (./dev test installs them; CI always runs this test)"))
    func browser() async throws {
        let world = try await ConsoleWorld()
        try await world.seed()
        // ENCOMPASS_TEST_OUTPUT_DIR (e.g. CI's artifact folder) keeps the screenshots; else a temporary folder.
        let output =
            ProcessInfo.processInfo.environment["ENCOMPASS_TEST_OUTPUT_DIR"].flatMap { $0.isEmpty ? nil : $0 + "/console-browser" }
            ?? TestPaths.temporaryDirectory("console-browser")
        try? FileManager.default.removeItem(atPath: output + "/downloads")
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let arguments = [
            ConsoleBrowser.peers + "/console_browser.py", "--url", world.console.base, "--name", ConsoleWorld.staff,
            "--password", ConsoleWorld.password, "--wrong-password", "not-the-password", "--confirm-child", "Amelia",
            "--lpa", "Reading", "--downloads", output + "/downloads", "--screenshots", output + "/screenshots",
        ]
        let result = try await offPool { try ConsoleBrowser.run(arguments) }
        print(result.output)
        #expect(result.status == 0, "\(result.output)")

        let screenshots = result.output.split(separator: "\n").filter { $0.hasPrefix("SCREENSHOT ") }.map {
            String($0.dropFirst("SCREENSHOT ".count))
        }
        #expect(screenshots.count == 6)
        for path in screenshots {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let size = try #require(ConsoleBrowser.pngSize(data), "\(path) is a PNG")
            #expect(size.width >= 600 && size.height >= 400, "\(path): \(size)")
            #expect(data.count > 8_000 && data.count < 20_000_000, "\(path): \(data.count) bytes")
        }
        print("console screenshots: \(output)/screenshots")

        // The confirmation reached child research in the staff member's name, and was audited.
        let research = try #require(world.hosts[.childResearch])
        try await eventually("Amelia confirmed by \(ConsoleWorld.staff)", timeout: .seconds(30)) {
            try await research.store.pool.read { db in
                try ReviewQueue.list(db, status: "confirmed").contains {
                    $0.child.givenName == "Amelia" && $0.decidedBy == ConsoleWorld.staff && $0.note == "confirmed in selenium"
                }
            }
        }
        let trail = try await world.console.app.staff.auditTrail()
        #expect(trail.contains { $0.action == "review-confirm" && $0.staffName == ConsoleWorld.staff })
        #expect(trail.contains { $0.action == "csc-download" && $0.staffName == ConsoleWorld.staff && $0.target == "Reading" })
        #expect(trail.contains { $0.action == "sign-in-refused" })
        #expect(trail.contains { $0.action == "csrf-refused" })
        try await world.stop()
    }
}
