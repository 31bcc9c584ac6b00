import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@testable import SchedulingService

@Suite("Scheduling releases a notice due now at once")
struct ReleaseWakeTests {
    @Test("a notice processed inside the release window is released without waiting for the release loop's next turn")
    func dueNowWakesTheReleaser() async throws {
        let kafka = try TestKafka()
        // Tuesday 10:00, a school day in term: a notice processed now is due at once.
        let clock = try TestClock("2025-11-04 10:00")
        // The loop's own turn is 60 s away; no grace, so a partition counts as soon as it is seen.
        let scheduler = try await RunningScheduler(
            kafka, group: "sched-\(UUID())", instance: "a", dataDirectory: TestPaths.temporaryDirectory("sched-wake"), clock: clock,
            releaseInterval: .seconds(60), restoreGrace: .zero)
        try await eventually("partitions assigned") { !scheduler.owned.isEmpty }
        let started = ContinuousClock.now
        try await send(kafka, [noticeRequest(1, occurred: "2025-11-03 21:00")])
        let due = try await dueNotices(kafka, atLeast: 1)
        let waited = ContinuousClock.now - started
        #expect(due.map(\.payload.noticeId) == [noticeRequest(1, occurred: "2025-11-03 21:00").noticeId])
        #expect(waited < .seconds(30), "released after \(waited): the release loop was not woken by the notice due now")
        let row = try #require(try await scheduler.rows().first)
        #expect(row.state == .released)
        try await scheduler.stop()
    }
}
