import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import DispatchService

@Suite("Dispatch's notice changelog over the mock Kafka cluster", .serialized, .tags(.kafka))
struct NoticeChangelogTests {
    let start = Timestamp.parse("2026-11-24T08:00:05Z")!
    let http = Browserless()

    func emls(_ dispatch: RunningDispatch) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dispatch.mailFolder)) ?? []).filter { $0.hasSuffix(".eml") }
    }

    func standby(_ dispatch: RunningDispatch) async throws -> [String: String] {
        try await dispatch.host.store.pool.read { db in
            Dictionary(
                uniqueKeysWithValues: try StandbyRecord.filter(Column("value") != nil && Column("partition") != nil).fetchAll(db).map {
                    ($0.key, $0.owner)
                })
        }
    }

    @Test(
        "an instance lost for good: the new owner restores a notice it sent just before dying as sent (not mailed again), an unsent one flagged for resend (sent once, after taking the claim over), and an open telephone task; finished ones become tombstones"
    )
    func lostInstance() async throws {
        let kafka = try TestKafka()
        let group = "dispatch-\(UUID())"
        // 110002 has no notice password on the lost instance: its mail is held there, unsent.
        let lost = try await RunningDispatch(kafka, start: start, groupId: group, passwords: ["110001"])
        let sent = Fixtures.due(urn: "110001"), unsent = Fixtures.due(urn: "110002"), phoned = Fixtures.due(channel: .telephone, urn: "110001")
        try await publishAll(kafka, [sent, unsent, phoned])
        try await eventually("the first notice mailed") { emls(lost).count == 1 }
        let lostName = try await lost.host.store.pool.read { try WorkChangelogStore.owner($0) }
        let lostClaimant = try await lost.host.store.pool.read { try NoticeClaims.claimant($0) }
        try await eventually("all three on the changelog, the sent one as sent") {
            let owners = try await standby(lost)
            let sentState = try await lost.host.store.pool.read { db in
                try StandbyRecord.fetchOne(db, key: ["topic": Topics.dispatchChangelog.name, "key": sent.noticeId])?.value
                    .map { try WireFormat.decode(DispatchNoticeChangelog.self, from: Array($0)).payload.mail?.state }
            }
            return owners.count == 3 && owners.values.allSatisfy { $0 == lostName } && sentState == "sent"
        }
        try await lost.stop() // and its disk is never seen again

        let fresh = try await RunningDispatch(kafka, start: start, groupId: group)
        try await eventually("restored", timeout: .seconds(60)) {
            try await fresh.host.store.pool.read { try NoticeRow.fetchCount($0) } == 3
        }
        let restoredSent = try #require(try await notice(fresh.host.store, sent.noticeId))
        #expect(restoredSent.state == .sent, "the lost instance handed it to the relay and the relay took it: not sent again")
        #expect((restoredSent.flagReason ?? "").contains("send the school a link to this instance"), "its link opens the lost instance")
        let restoredUnsent = try #require(try await notice(fresh.host.store, unsent.noticeId))
        #expect(restoredUnsent.state == .uncertain && (restoredUnsent.flagReason ?? "").contains("no hand-over to the relay"))
        #expect(try await fresh.host.store.pool.read { try TelephoneTask.fetchOne($0, where: "noticeId", equals: phoned.noticeId)?.doneAt } == nil)
        try await Task.sleep(for: .seconds(2))
        #expect(emls(fresh).isEmpty, "a restored notice is never sent by itself")
        #expect(try await auditKinds(fresh.host.store, unsent.noticeId).contains("restored"))

        // The MASH resends the unsent one: the new owner takes the claim over and sends it once.
        let resend = try await http.send(
            "POST", fresh.base + "/v1/notifications/\(unsent.noticeId)/resend",
            json: Data(#"{"by": "mash-officer-2"}"#.utf8), token: RunningDispatch.token)
        #expect(resend.status == 202, "\(resend.body)")
        try await eventually("sent by the new owner", timeout: .seconds(30)) { emls(fresh).count == 1 }
        let freshClaimant = try await fresh.host.store.pool.read { try NoticeClaims.claimant($0) }
        #expect(try await fresh.host.store.pool.read { try NoticeClaims.winner(of: unsent.noticeId, db: $0) } == freshClaimant)
        #expect(freshClaimant != lostClaimant)
        // And the telephone task is done there.
        let taskId = try #require(
            try await fresh.host.store.pool.read { try TelephoneTask.fetchOne($0, where: "noticeId", equals: phoned.noticeId)?.id })
        let done = try await http.send(
            "POST", fresh.base + "/v1/telephone-tasks/\(taskId)/done",
            json: Data(#"{"by": "mash-officer-2"}"#.utf8), token: RunningDispatch.token)
        #expect(done.status == 200, "\(done.body)")
        try await eventually("the finished task's record is a tombstone; the others are the new owner's") {
            let owners = try await standby(fresh)
            let freshName = try await fresh.host.store.pool.read { try WorkChangelogStore.owner($0) }
            return owners[phoned.noticeId] == nil && owners[sent.noticeId] == freshName && owners[unsent.noticeId] == freshName
        }
        try await Task.sleep(for: .seconds(2))
        #expect(emls(fresh).count == 1, "nothing else sent: \(emls(fresh))")
        try await fresh.stop()
    }
}
