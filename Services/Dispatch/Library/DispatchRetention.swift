import Foundation
import ServiceRuntime

/// What dispatch purges after the retention period (docs/SECURITY.md):
/// - each notice's contents: the `NoticeDue` it was made from (`payload`) and the rendered
///   notice (`content`) — the child's name, date of birth, addresses, the incident — and its
///   link (the token hash: a purged notice can no longer be opened). The row stays: notice id,
///   force, occurrence, child id, school URN and name, channel, recipient, state, when it was
///   received, sent, acknowledged and by whom, flags. A notice whose mail is still queued or
///   being sent is left until it is not.
/// - the mail text kept for a resend (`outgoingMail.message`); the mail's state, attempts,
///   errors and relay reply stay.
/// - the MASH's free-text note on a telephone task (who did it, and when, stay).
/// - sign-in sessions (the name typed at sign-in) and sign-in throttles: deleted.
/// The audit trail (`noticeAudit`: every event, view, sign-in refusal, acknowledgement, with
/// who and when) is never purged.
public enum DispatchRetention {
    static let inFlight =
        "SELECT noticeId FROM \(OutgoingMail.databaseTableName) WHERE state IN ('\(MailState.pending.rawValue)', '\(MailState.sending.rawValue)')"

    public static let rules: [PurgeRule] = [
        .redact(
            "dispatch.notice", table: NoticeRow.databaseTableName, age: "receivedAt",
            set: "payload = X'', content = X'', linkTokenHash = NULL",
            pending: "length(payload) > 0 OR length(content) > 0 OR linkTokenHash IS NOT NULL",
            where: "noticeId NOT IN (\(inFlight))"),
        .redact(
            "dispatch.mail", table: OutgoingMail.databaseTableName, age: "createdAt", set: "message = NULL", pending: "message IS NOT NULL",
            where: "state NOT IN ('\(MailState.pending.rawValue)', '\(MailState.sending.rawValue)')"),
        .redact("dispatch.telephone-note", table: TelephoneTask.databaseTableName, age: "createdAt", set: "note = NULL", pending: "note IS NOT NULL"),
        .delete("dispatch.session", table: NoticeSession.databaseTableName, age: "createdAt"),
        .delete("dispatch.sign-in-throttle", table: SignInThrottle.databaseTableName, age: "updatedAt"),
    ]
}
