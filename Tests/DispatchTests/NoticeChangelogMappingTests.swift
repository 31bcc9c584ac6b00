import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@testable import DispatchService

/// The changelog's `Notice` (a wire schema) and `NoticeRow` (the table) stay two types; this
/// keeps the mapping between them whole. A field added to either and not carried fails here.
@Suite("Dispatch notice row ↔ changelog record mapping")
struct NoticeChangelogMappingTests {
    /// A row with every field set (none nil, no default state), so a dropped field shows.
    static func populatedRow() throws -> NoticeRow {
        let due = Fixtures.due(noticeId: "N-MAP-1", urn: "110001")
        let at = { (text: String) in Timestamp.parse(text)! }
        return NoticeRow(
            noticeId: due.noticeId, forceCode: "43", occurrenceNumber: "OCC-MAP-1", childId: "CHILD-MAP-1", schoolURN: "110001",
            schoolName: "Mapping Primary School", account: "LA870", channel: "telephone", recipient: "dsl@mapping.example", escalation: true,
            payload: try WireFormat.data(due), content: Data(#"{"headline":"mapping £ – é"}"#.utf8), state: .uncertain,
            linkTokenHash: "0f1e2d3c", linkExpiresAt: at("2026-12-01T08:00:00Z"), releaseAt: at("2026-11-24T08:00:00Z"),
            acknowledgeBy: at("2026-11-24T12:00:00Z"), receivedAt: at("2026-11-23T04:00:01Z"), sentAt: at("2026-11-24T08:00:02Z"),
            acknowledgedAt: at("2026-11-24T09:10:00Z"), acknowledgedBy: "dsl@mapping.example", feedbackAt: at("2026-11-24T09:11:00Z"),
            flaggedAt: at("2026-11-24T09:12:00Z"), flagReason: "delivery uncertain")
    }

    /// The names of `value`'s stored properties that are nil.
    static func nilFields(_ value: Any) -> [String] {
        Mirror(reflecting: value).children.compactMap { child in
            let inner = Mirror(reflecting: child.value)
            return inner.displayStyle == .optional && inner.children.isEmpty ? child.label ?? "?" : nil
        }
    }

    @Test("every field of a fully populated row survives row → changelog record (on the wire) → row")
    func roundTrip() throws {
        let row = try Self.populatedRow()
        #expect(Self.nilFields(row).isEmpty, "populate every NoticeRow field in the fixture: \(Self.nilFields(row))")
        let due = try WireFormat.value(NoticeDue.self, from: row.payload)
        let notice = row.changelogNotice(due: due)
        #expect(
            Self.nilFields(notice).isEmpty,
            "the changelog record leaves these empty: carry them from NoticeRow in changelogNotice(due:): \(Self.nilFields(notice))")

        let mail = DispatchNoticeChangelog.Mail(
            idempotencyKey: "k-1", recipient: "dsl@mapping.example", message: "Subject: x", state: "sent",
            attempts: 1, createdAt: row.receivedAt, sentAt: row.sentAt, lastError: nil)
        let record = DispatchNoticeChangelog(notice: notice, mail: mail, telephoneTask: nil)
        let bytes = try WireFormat.encode(Envelope(id: "m-1", key: row.noticeId, producer: "dispatch", createdAt: row.receivedAt, payload: record))
        let read = try WireFormat.decode(DispatchNoticeChangelog.self, from: bytes).payload.notice
        #expect(read == notice, "the record changed on the wire")

        let back = try NoticeRow(changelog: read)
        #expect(back == row, "NoticeRow(changelog:) loses or changes a field")
        #expect(back.changelogNotice(due: due) == notice)
    }
}
