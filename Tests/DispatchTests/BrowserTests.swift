import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import DispatchService

enum Browser {
    static var chromiumInstalled: Bool {
        ["/usr/bin/chromium", "/usr/bin/chromedriver"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false }
}

@Suite("Notice page in Debian's chromium (selenium)", .serialized, .tags(.browser, .kafka, .peers))
struct BrowserTests {
    @Test(
        "open the link, wrong password refused, right password shows the notice with markup escaped, acknowledge; screenshot saved",
        .enabled(
            if: Browser.chromiumInstalled || Browser.inCI,
            "chromium and chromium-driver are not installed (./dev test installs them; CI always runs this test)"))
    func browser() async throws {
        let kafka = try TestKafka()
        let start = Timestamp.parse("2026-11-24T08:00:05Z")!
        let dispatch = try await RunningDispatch(kafka, start: start)
        let name = "Amy<script>window.pwned=true;document.title='pwned'</script>"
        let due = Fixtures.due(childGiven: name)
        try await publish(kafka, due, topic: Topics.noticesDue.name, key: due.noticeId)
        let url = try #require(try await dispatch.noticeURL().first)
        let body = try JSONSerialization.data(withJSONObject: ["password": "Oakwood-DSL-2026!"])
        #expect(
            try await Browserless().send("PUT", dispatch.base + "/v1/schools/110001/password", json: body, token: RunningDispatch.token).status == 200
        )

        let screenshot = TestPaths.temporaryDirectory("browser") + "/notice.png"
        let arguments = [
            Peers.directory + "/notice_browser.py", "--url", url, "--urn", "110001", "--password", "Oakwood-DSL-2026!",
            "--wrong-password", "not-the-password", "--expect-text", name, "--screenshot", screenshot,
        ]
        let result = try await offPool { try Peers.run(Peers.python, arguments) }
        print(result.output)
        #expect(result.status == 0, "\(result.output)")
        #expect(FileManager.default.fileExists(atPath: screenshot))
        let acknowledged = try await dispatch.host.store.pool.read { try NoticeRow.fetchOne($0, key: due.noticeId)?.acknowledgedBy }
        #expect(acknowledged == "Ms Head (selenium)")
        try await dispatch.stop()
    }
}
