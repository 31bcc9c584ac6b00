import EncompassDemo
import EncompassTestSupport
import Foundation
import Testing

@Suite("The main job: encompass demo", .serialized)
struct DemoRunTests {
    @Test("a small demo runs the day to the next morning: notices sent as mail, more children reached than the officers' records, none to a wrong school")
    func smallDemo() throws {
        let directory = TestPaths.temporaryDirectory("demo")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable("encompass"))
        process.arguments = ["demo", "--exit", "--families", "250", "--incidents", "30", "--day", "2026-11-23", "--dir", directory,
                             "--base-port", String(21_081 + Int.random(in: 0..<40) * 10)]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print(output)
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("notices to a wrong school or for a child not present: 0"))
        #expect(!output.contains("WRONG "), "every wrong notice is listed, and there must be none")
        #expect(output.contains("missed children by cause:") && output.contains("reviewer decisions:") && output.contains("untidy records:") && output.contains("statutory duty:"))
        // "correct notices:      N of M children at a school = P%" against "baseline: B = Q%"
        let correct = try #require(output.firstMatch(of: /correct notices:\s+(\d+) of (\d+)/))
        let baseline = try #require(output.firstMatch(of: /baseline: (\d+) =/))
        #expect(Int(correct.1)! > Int(baseline.1)!, "research and school resolution reach more children than the officers' records alone")
        let mails = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/mail").filter { $0.hasSuffix(".eml") }
        #expect(mails.count >= Int(correct.1)!)
        #expect(output.contains("stopped the embedded broker"))
        // The MASH console ran beside the services, with the demo's staff account.
        #expect(output.contains("MASH console         http://127.0.0.1:") && output.contains("staff mash.demo, password demo-"))
        #expect(output.contains("stopped the console"))
    }
}
