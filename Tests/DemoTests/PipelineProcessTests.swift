import EncompassDemo
import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@Suite("The pipeline as processes: scaled out, killed and restarted", .serialized, .tags(.processes))
struct PipelineProcessTests {
    @Test("two instances of every service; one of each SIGKILLed mid-stream and restarted; every child gets exactly one notice and one mail")
    func killAndRestart() async throws {
        let directory = TestPaths.temporaryDirectory("pipeline-kill")
        let (status, output) = try await runExecutable(
            "encompass",
            [
                "faults", "kill-restart", "--incidents", "400", "--dir", directory, "--json",
                "--base-port", String(TestPorts.pipelineBase()),
            ])
        print(output)
        #expect(status == 0, "\(output)")
        let start = try #require(output.firstIndex(of: "{"))
        let end = try #require(output.lastIndex(of: "}"))
        let report = try JSONDecoder().decode(FaultScenarios.KillRestartReport.self, from: Data(output[start...end].utf8))
        #expect(report.killed.count == 5)
        #expect(report.notices == 400, "one notice per child")
        #expect(report.noticesWithSeveralIds == 0, "a re-released notice keeps its message id")
        #expect(report.occurrencesCovered == 400)
        #expect(report.mails == 400, "exactly one mail per notice")
        #expect(report.mailsWithPersonalData == 0)
    }
}
