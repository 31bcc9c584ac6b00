import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@testable import SchedulingService

/// `encompass schedule pending`: the built CLI against a running scheduling service.
@Suite("The schedule pending CLI", .serialized)
struct SchedulePendingCLITests {
    @Test(
        "lists the notices held by state (text and the service's JSON, without personal data); a bad state and a wrong token are refused, saying why")
    func pending() async throws {
        let kafka = try TestKafka()
        let clock = try TestClock("2025-11-03 22:00")
        let scheduler = try await RunningScheduler(
            kafka, group: "sched-cli-\(UUID())", instance: "cli-a", dataDirectory: TestPaths.temporaryDirectory("sched-cli"), clock: clock)
        let requests = [noticeRequest(1, occurred: "2025-11-03 21:00"), noticeRequest(2, occurred: "2025-11-03 21:30")]
        try await send(kafka, requests)
        try await eventually("both scheduled") { try await scheduler.rows().count == 2 }
        let cli = ["--url", "http://127.0.0.1:\(scheduler.port)", "--token", "tok"]

        let listed = try await runExecutable("encompass", ["schedule", "pending"] + cli)
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("2 notice(s) pending on cli-a"), "\(listed.output)")
        for request in requests {
            let line = listed.output.split(separator: "\n").first { $0.contains(request.noticeId) }.map(String.init) ?? ""
            #expect(line.hasPrefix("2025-11-04T08:00:00"), "\(listed.output)")
            #expect(
                line.contains("occurrence \(request.incident.occurrenceNumber)") && line.contains("school \(request.school.urn) (LA 931)  pending"))
        }
        #expect(!listed.output.contains("Alex") && !listed.output.contains("Smith"))
        let json = try await runExecutable("encompass", ["schedule", "pending", "--json"] + cli)
        let list = try WireFormat.decoder().decode(PendingList.self, from: Data(json.output.utf8))
        #expect(list.instance == "cli-a" && Set(list.notices.map(\.noticeId)) == Set(requests.map(\.noticeId)))
        #expect(list.notices.allSatisfy { $0.state == "pending" && !$0.escalate })

        // The morning: both released; the pending list is empty and the released one has them.
        try await clock.set("2025-11-04 08:01")
        try await eventually("both released") { try await scheduler.rows().allSatisfy { $0.state == .released } }
        let none = try await runExecutable("encompass", ["schedule", "pending"] + cli)
        #expect(none.status == 0 && none.output.contains("0 notice(s) pending on cli-a"), "\(none.output)")
        let released = try await runExecutable("encompass", ["schedule", "pending", "--state", "released"] + cli)
        #expect(released.status == 0 && released.output.contains("2 notice(s) released on cli-a"), "\(released.output)")
        #expect(released.output.split(separator: "\n").filter { $0.hasSuffix("released") }.count == 2, "\(released.output)")

        let badState = try await runExecutable("encompass", ["schedule", "pending", "--state", "nope"] + cli)
        #expect(badState.status == 2 && badState.output.contains("state must be pending, released, cancelled or all"), "\(badState.output)")
        let wrongToken = try await runExecutable(
            "encompass", ["schedule", "pending", "--url", "http://127.0.0.1:\(scheduler.port)", "--token", "wrong"])
        #expect(wrongToken.status == 2 && wrongToken.output.contains("401"), "\(wrongToken.output)")
        try await scheduler.stop()
        let down = try await runExecutable("encompass", ["schedule", "pending"] + cli)
        #expect(down.status != 0 && down.output.contains("could not be reached"), "\(down.output)")
    }
}
