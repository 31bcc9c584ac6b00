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
/// Each purged notice's key also gets a tombstone on the compacted `encompass.scheduling.changelog`,
/// whose last record of the notice still carries the `NoticeDue`: compaction then drops it
/// there too, and every replica that reads the tombstone purges its own copy (`forget`).
public enum SchedulingRetention {
    static let purgeable = "state IN ('\(PendingState.released.rawValue)', '\(PendingState.cancelled.rawValue)')"

    public static let rules: [PurgeRule] = [
        .forgetting("scheduling.notice", select: """
            SELECT noticeId FROM \(PendingNoticeRow.databaseTableName) WHERE updatedAt < :cutoff AND length(due) > 0 AND \(purgeable) LIMIT :limit
            """, tombstonesOn: Topics.schedulingChangelog.name, producer: .scheduling, forget: forget),
    ]

    /// Purges the `NoticeDue` of a released or cancelled notice (a pending one keeps it): the
    /// purge's own step, and a replica's answer to the changelog's tombstone for the notice.
    static func forget(_ noticeId: String, db: Database) throws {
        try db.execute(sql: "UPDATE \(PendingNoticeRow.databaseTableName) SET due = X'' WHERE noticeId = ? AND length(due) > 0 AND \(purgeable)",
                       arguments: [noticeId])
    }
}
