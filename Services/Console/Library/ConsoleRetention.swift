import Foundation
import ServiceRuntime

/// What the console purges after the retention period (`ENCOMPASS_RETENTION_DAYS`, as every
/// service; docs/SECURITY.md):
/// - the free text of the staff audit (`staffAudit.detail`): a reviewer's note on a confirmed
///   child, the services' words on a refused action, an uploaded sheet's row outcomes, which may
///   name a child. Who did what, to which record, when and with what outcome stays.
/// - sign-in throttles whose last wrong password is that old (the names typed, known or not).
public enum ConsoleRetention {
    public static let rules: [PurgeRule] = [
        .redact("console.staff-audit", table: StaffAuditEntry.databaseTableName, key: "id", age: "at", set: "detail = ''", pending: "detail != ''"),
        .delete("console.sign-in-throttle", table: SignInThrottle.databaseTableName, age: "lastFailureAt"),
    ]
}
