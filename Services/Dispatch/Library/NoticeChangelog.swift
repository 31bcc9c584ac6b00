import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// Dispatch's unfinished notices on `encompass.dispatch.changelog` (`WorkChangelog`, keyed by
/// notice id like `encompass.notices.due`): a notice not yet sent, sent and not acknowledged,
/// or with an open telephone task. When the instance that took it is lost for good, the next
/// owner of the notice's partition restores it, so it is listed, followed up and acted on
/// there (`resend`, `task-done`, the school's acknowledgement).
///
/// **Never sent twice.** Only the store that won a notice's claim sends it (`NoticeClaims`),
/// and a restored notice's claim stays with the store that took it. So a restored mail is not
/// sent by itself: the audit (every instance reads all of `encompass.notice.events`) says
/// whether the lost store handed it to the relay. Delivered: restored as sent. Handed over
/// without an answer: `uncertain`, as after a crash mid-send. Not handed over: `uncertain`
/// too, saying so. Each is flagged for the MASH: a `resend` takes the claim over (a `claimed`
/// event that `supersedes` the old claimant, valid only if that claimant still holds it in
/// the topic's order, so the old store, if it is alive after all, drops its unsent copy) and
/// sends a new link to this instance's page (the old email's link opens the lost instance).
public enum NoticeChangelog {
    public static func make(grace: Duration = .seconds(2), interval: Duration = .milliseconds(200)) -> WorkChangelog<DispatchNoticeChangelog> {
        WorkChangelog(
            topic: Topics.dispatchChangelog.name, workTopic: Topics.noticesDue.name, service: .dispatch,
            tracked: [
                .init(table: NoticeRow.databaseTableName, keyColumn: "noticeId"),
                .init(table: OutgoingMail.databaseTableName, keyColumn: "noticeId"),
                .init(table: TelephoneTask.databaseTableName, keyColumn: "noticeId"),
            ],
            interval: interval, grace: grace, snapshot: snapshot, restore: restore, release: release)
    }

    /// The notice as the changelog keeps it, or nil once dispatch is finished with it
    /// (acknowledged or reported as no longer attending, with no open telephone task) or its
    /// contents are purged.
    public static func snapshot(_ noticeId: String, db: Database) throws -> DispatchNoticeChangelog? {
        guard let notice = try NoticeRow.fetchOne(db, key: noticeId), !notice.payload.isEmpty,
            let due = try? WireFormat.value(NoticeDue.self, from: notice.payload)
        else { return nil }
        let mail = try OutgoingMail.fetchOne(db, key: noticeId)
        let task = try TelephoneTask.fetchOne(db, where: "noticeId", equals: noticeId)
        let finished = notice.state == .acknowledged || notice.state == .noLongerAttends
        if finished && (task == nil || task?.doneAt != nil) { return nil }
        guard mail != nil || task != nil else { return nil }
        return DispatchNoticeChangelog(
            notice: notice.changelogNotice(due: due),
            mail: mail.map {
                .init(
                    idempotencyKey: $0.idempotencyKey, recipient: $0.recipient, message: $0.message.map { String(decoding: $0, as: UTF8.self) },
                    state: $0.state.rawValue, attempts: $0.attempts, createdAt: $0.createdAt, sentAt: $0.sentAt, lastError: $0.lastError)
            },
            telephoneTask: try task.map {
                .init(
                    id: $0.id, schoolURN: $0.schoolURN, schoolName: $0.schoolName,
                    contacts: try JSONDecoder().decode([SchoolContact].self, from: $0.contacts), reason: $0.reason,
                    createdAt: $0.createdAt, doneAt: $0.doneAt, doneBy: $0.doneBy, note: $0.note)
            })
    }

    /// Inserts the notice if this store does not hold it (one it holds, or held and dropped
    /// because another store won it, is left alone); returns 1 when it did.
    public static func restore(_ noticeId: String, _ entry: DispatchNoticeChangelog, db: Database, now: Date) throws -> Int {
        guard try !NoticeRow.exists(db, key: noticeId) else { return 0 }
        // Dropped here because another store won the notice's claim: the winner holds it.
        if try AuditEntry.filter(Column("noticeId") == noticeId && Column("kind") == "claim-lost").fetchCount(db) > 0 { return 0 }
        let n = entry.notice
        var state = NoticeState(rawValue: n.state) ?? .pending
        var flaggedAt = n.flaggedAt, flagReason = n.flagReason
        var mailState = entry.mail.flatMap { MailState(rawValue: $0.state) } ?? .pending
        let claimant = try NoticeClaims.winner(of: noticeId, db: db) ?? "unknown"
        let audit = Set(try String.fetchAll(db, sql: "SELECT kind FROM noticeAudit WHERE noticeId = ?", arguments: [noticeId]))
        if let mail = entry.mail, mailState == .pending || mailState == .sending {
            let from = "restored from the changelog of dispatch store \(claimant), which no longer holds this notice's partition"
            if audit.contains(NoticeEvent.Kind.deliveredToRelay.rawValue) {
                mailState = .sent
                if state == .pending { state = .sent }
            } else if audit.contains(NoticeEvent.Kind.sent.rawValue) {
                mailState = .uncertain
                state = .uncertain
                flaggedAt = now
                flagReason =
                    "delivery uncertain: \(from); it handed the mail to the relay and its answer was not recorded. "
                    + "Check with the school whether the email arrived; resend with `encompass notifications resend` if not"
            } else {
                mailState = .uncertain
                state = .uncertain
                flaggedAt = now
                flagReason =
                    "not sent: \(from), and the audit shows no hand-over to the relay (\(mail.attempts) attempts recorded). "
                    + "Resend with `encompass notifications resend`: this instance then takes the notice over and sends it once"
            }
        }
        if mailState == .sent, entry.mail != nil, n.acknowledgedAt == nil {
            flaggedAt = now
            flagReason =
                "sent by dispatch store \(claimant), which no longer holds this notice's partition: the link in the school's email "
                + "opens that store's instance. Resend with `encompass notifications resend` to send the school a link to this instance"
        }
        var row = try NoticeRow(changelog: n)
        row.noticeId = noticeId
        row.state = state
        row.flaggedAt = flaggedAt
        row.flagReason = flagReason
        try row.insert(db)
        if let mail = entry.mail {
            try OutgoingMail(
                noticeId: noticeId, idempotencyKey: mail.idempotencyKey, recipient: mail.recipient, message: mail.message.map { Data($0.utf8) },
                state: mailState, attempts: mail.attempts, nextAttemptAt: now, lastAttemptAt: nil, lastError: mail.lastError,
                relayReply: nil, createdAt: mail.createdAt, sentAt: mail.sentAt
            ).insert(db)
        }
        if let task = entry.telephoneTask {
            try TelephoneTask(
                id: task.id, noticeId: noticeId, schoolURN: task.schoolURN, schoolName: task.schoolName,
                contacts: try JSONEncoder().encode(task.contacts), reason: task.reason, createdAt: task.createdAt,
                doneAt: task.doneAt, doneBy: task.doneBy, note: task.note
            ).insert(db)
        }
        if let notice = try NoticeRow.fetchOne(db, key: noticeId) {
            try Audit.recordLocal(
                "restored", notice: notice,
                detail: "restored from the changelog (claim: dispatch store \(claimant))"
                    + (flagReason.map { "; \($0)" } ?? ""), db: db, now: now)
        }
        return 1
    }

    /// Drops this store's copy of the notice (another instance owns its partition and holds it
    /// now), unless its mail is being handed to the relay right now: that attempt finishes
    /// here and is recorded; the copy goes at the notice's next change.
    public static func release(_ noticeId: String, db: Database, now: Date) throws {
        if let mail = try OutgoingMail.fetchOne(db, key: noticeId), mail.state == .sending { return }
        guard let notice = try NoticeRow.fetchOne(db, key: noticeId) else { return }
        try Audit.recordLocal(
            "released", notice: notice, detail: "another dispatch instance owns this notice's partition and holds it now", db: db, now: now)
        try notice.delete(db)
    }
}

extension NoticeRow {
    /// The row as the changelog carries it; `due` is `payload` decoded.
    func changelogNotice(due: NoticeDue) -> DispatchNoticeChangelog.Notice {
        .init(
            noticeId: noticeId, forceCode: forceCode, occurrenceNumber: occurrenceNumber, childId: childId, schoolURN: schoolURN,
            schoolName: schoolName, account: account, channel: channel, recipient: recipient, escalation: escalation, due: due,
            content: String(decoding: content, as: UTF8.self), state: state.rawValue, linkTokenHash: linkTokenHash,
            linkExpiresAt: linkExpiresAt, releaseAt: releaseAt, acknowledgeBy: acknowledgeBy, receivedAt: receivedAt, sentAt: sentAt,
            acknowledgedAt: acknowledgedAt, acknowledgedBy: acknowledgedBy, feedbackAt: feedbackAt, flaggedAt: flaggedAt,
            flagReason: flagReason)
    }

    /// The row a changelog record restores, as the record has it (an unknown state reads as
    /// `pending`); `NoticeChangelog.restore` then settles state and flag from the audit.
    init(changelog n: DispatchNoticeChangelog.Notice) throws {
        self.init(
            noticeId: n.noticeId, forceCode: n.forceCode, occurrenceNumber: n.occurrenceNumber, childId: n.childId, schoolURN: n.schoolURN,
            schoolName: n.schoolName, account: n.account, channel: n.channel, recipient: n.recipient, escalation: n.escalation,
            payload: try WireFormat.data(n.due), content: Data(n.content.utf8), state: NoticeState(rawValue: n.state) ?? .pending,
            linkTokenHash: n.linkTokenHash, linkExpiresAt: n.linkExpiresAt, releaseAt: n.releaseAt, acknowledgeBy: n.acknowledgeBy,
            receivedAt: n.receivedAt, sentAt: n.sentAt, acknowledgedAt: n.acknowledgedAt, acknowledgedBy: n.acknowledgedBy,
            feedbackAt: n.feedbackAt, flaggedAt: n.flaggedAt, flagReason: n.flagReason)
    }
}
