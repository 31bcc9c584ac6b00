import Foundation
import ServiceRuntime

/// What school resolution purges after the retention period (docs/SECURITY.md):
/// - CSC requests: the child record each holds (`child`, the `ChildIdentified` with names,
///   date of birth, address) and the CSC's free-text note. The row stays (request id = notice
///   id, child id, force, occurrence, LPA, reason, candidate schools, dates, status, the URN it
///   was resolved to); a request still open that long is closed as `purged` (it leaves the
///   exports: there is no child left to look for).
/// - child → school links (`childSchool`: which school a child was verified at) and schools'
///   "no longer attends" reports (`childSchoolBlock`): deleted. The resolution of each notice
///   (`resolution`: notice id, child id, outcome, URN, reasons) stays as the audit trail; the
///   notice request it keeps for redirects (`request`: the child's record) is cleared.
public enum SchoolRetention {
    public static let rules: [PurgeRule] = [
        .redact(
            "schools.request", table: SchoolRequestRow.databaseTableName, age: "updatedAt",
            set: "child = X'', note = NULL, status = CASE WHEN status = 'open' THEN 'purged' ELSE status END",
            pending: "length(child) > 0"),
        .redact(
            "schools.resolution-request", table: ResolutionRow.databaseTableName, age: "updatedAt",
            set: "request = NULL", pending: "request IS NOT NULL"),
        .delete("schools.child-link", table: ChildSchoolRow.databaseTableName, age: "verifiedAt"),
        .delete("schools.child-block", table: ChildSchoolBlockRow.databaseTableName, age: "reportedAt"),
    ]
}
