import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// The Operation Encompass Navigator's audit spreadsheet: one row per notice released in a date
/// range (London days, inclusive), optionally for one local authority: the incident, the school,
/// the safeguarding contacts recorded for it, and when the notice was sent, first viewed and
/// acknowledged. No child's name or address: the spreadsheet is an audit of the duty, and each
/// notice's id leads back to its full trail (`encompass notifications list`).
///
/// Written by `SheetWriter` (CSV or XLSX), so a value a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) is neutralised with an apostrophe.
public enum NoticeExport {
    public static let header = [
        "occurrence_number", "force", "notice_id", "school_urn", "school_name", "local_authority", "escalation", "channel",
        "recipient", "dsl", "da_lead", "release_at", "sent_at", "viewed_at", "viewed_by", "acknowledged_at", "acknowledged_by",
        "state", "flag",
    ]

    public struct Query: Sendable, Equatable {
        public var from: CalendarDate
        public var to: CalendarDate
        public var localAuthority: String?

        public init(from: CalendarDate, to: CalendarDate, localAuthority: String? = nil) {
            self.from = from
            self.to = to
            self.localAuthority = localAuthority
        }
    }

    /// The longest range one export covers (a year and a bit, as retention keeps).
    public static let maximumDays = 400

    public static func rows(_ query: Query, db: Database) throws -> [[String]] {
        let start = query.from.at(hour: 0)
        let end = query.to.adding(days: 1).at(hour: 0)
        let notices = try NoticeRow.filter(Column("releaseAt") >= start && Column("releaseAt") < end)
            .order(Column("releaseAt"), Column("noticeId")).fetchAll(db)
        var rows: [[String]] = []
        for notice in notices {
            // The payload is the NoticeDue as kept (without parties); empty once purged by retention.
            let due = try? WireFormat.decoder().decode(NoticeDue.self, from: notice.payload)
            let la = due?.request.school.localAuthorityCode ?? (notice.account.hasPrefix("LA") ? String(notice.account.dropFirst(2)) : "")
            if let wanted = query.localAuthority, wanted != la { continue }
            let contacts = due?.request.school.contacts ?? []
            func names(_ role: String) -> String {
                contacts.filter { $0.role.lowercased() == role }.map { [$0.name, $0.email].compactMap { $0 }.joined(separator: " ") }
                    .joined(separator: "; ")
            }
            let viewed = try AuditEntry.filter(Column("noticeId") == notice.noticeId && Column("kind") == NoticeEvent.Kind.viewed.rawValue)
                .order(Column("at"), Column("id")).fetchOne(db)
            rows.append([
                notice.occurrenceNumber, notice.forceCode, notice.noticeId, notice.schoolURN, notice.schoolName, la,
                notice.escalation ? "yes" : "no", notice.channel, notice.recipient ?? "", names("dsl"), names("da-lead"),
                format(notice.releaseAt), notice.sentAt.map(format) ?? "", viewed.map { format($0.at) } ?? "",
                viewed?.detail.map(viewer) ?? "", notice.acknowledgedAt.map(format) ?? "", notice.acknowledgedBy ?? "",
                notice.state.rawValue, notice.acknowledgedAt == nil ? (notice.flagReason ?? "") : "",
            ])
        }
        return rows
    }

    /// London local time, as people read it: `2026-11-24 08:00`.
    static func format(_ date: Date) -> String {
        let c = CalendarDate.london.dateComponents([.hour, .minute], from: date)
        return "\(CalendarDate(date)) " + CalendarDate.padded(c.hour ?? 0, 2) + ":" + CalendarDate.padded(c.minute ?? 0, 2)
    }

    /// The name in a `viewed` event's detail (`viewed by NAME (ACCOUNT)`).
    static func viewer(_ detail: String) -> String {
        guard detail.hasPrefix("viewed by ") else { return detail }
        let rest = detail.dropFirst("viewed by ".count)
        if let open = rest.lastIndex(of: "(") { return rest[..<open].trimmingCharacters(in: .whitespaces) }
        return String(rest)
    }
}
