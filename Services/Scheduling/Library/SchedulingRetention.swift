import Foundation
import ServiceRuntime

/// What scheduling purges after the retention period (docs/SECURITY.md): the `NoticeDue` held
/// for each released or cancelled notice (the incident, the child, the school's contacts).
/// The row stays — notice id, force, occurrence number, school URN, LA, revision, release
/// time, state, when released — so the schedule's history can still be told. A notice still
/// pending is never purged (it has not been sent yet; it would be a stuck notice to look at).
public enum SchedulingRetention {
    public static let rules: [PurgeRule] = [
        .redact("scheduling.notice", table: PendingNoticeRow.databaseTableName, age: "updatedAt",
                set: "due = X''", pending: "length(due) > 0",
                where: "state IN ('\(PendingState.released.rawValue)', '\(PendingState.cancelled.rawValue)')"),
    ]
}
