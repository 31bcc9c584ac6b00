import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// What scheduling purges after the retention period (docs/SECURITY.md): the `NoticeDue` held
/// for each released or cancelled notice (the incident, the child, the school's contacts).
/// The row stays — notice id, force, occurrence number, school URN, LA, revision, release
/// time, state, when released — so the schedule's history can still be told. A notice still
/// pending is never purged (it has not been sent yet; it would be a stuck notice to look at).
///
/// The compacted `encompass.scheduling.changelog` still holds each purged notice's last state,
/// with its `NoticeDue`. So the purge publishes, as the notice's last record, what the row
/// keeps (`SchedulingChangelog.ForgottenNotice`): compaction drops the earlier records, every
/// replica purges its own copy when it reads the marker, and an instance restored from the
/// changelog still knows that the notice was sent, so a re-delivered request for it is
/// ignored. (A tombstone would erase that memory too; a replica still honours one, as an
/// operator's erasure of a key: `forget`.)
public enum SchedulingRetention {
    static let purgeable = "state IN ('\(PendingState.released.rawValue)', '\(PendingState.cancelled.rawValue)')"

    public static let rules: [PurgeRule] = [
        PurgeRule(name: "scheduling.notice") { db, cutoff, now, limit in
            let rows = try PendingNoticeRow.fetchAll(
                db,
                sql: """
                    SELECT * FROM \(PendingNoticeRow.databaseTableName) WHERE updatedAt < ? AND length(due) > 0 AND \(purgeable) LIMIT ?
                    """, arguments: [cutoff, limit])
            let outbox = Outbox(db: db, producer: ServiceName.scheduling.rawValue)
            for row in rows {
                let id = MessageID.derived(from: row.noticeId, "retention-forgotten"), gone = row.forgotten
                try outbox.publish(SchedulingChangelog(forgotten: gone), to: Topics.schedulingChangelog.name, key: row.noticeId, id: id, now: now)
                try PendingNoticeRow(gone, changelogId: id).insertOrReplace(db)
            }
            return rows.count
        }
    ]

    /// Purges the `NoticeDue` of a released or cancelled notice (a pending one keeps it): a
    /// replica's answer to a tombstone for the notice on the changelog.
    static func forget(_ noticeId: String, db: Database) throws {
        try db.execute(
            sql: "UPDATE \(PendingNoticeRow.databaseTableName) SET due = X'' WHERE noticeId = ? AND length(due) > 0 AND \(purgeable)",
            arguments: [noticeId])
    }
}
