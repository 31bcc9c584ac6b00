import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging
import ServiceRuntime

/// A notice's scheduling state. `released` and `cancelled` are final.
public enum PendingState: String, Codable, Sendable, CaseIterable {
    case pending, released, cancelled

    public var isFinal: Bool { self != .pending }
}

/// One notice held by scheduling (table `pendingNotice`): every instance holds every notice
/// (its own from requests, the others' from the changelog); only the owner of the request's
/// partition releases it.
public struct PendingNoticeRow: Codable, FetchableRecord, ReplaceableRecord, Sendable, Equatable {
    public static let databaseTableName = "pendingNotice"

    public var noticeId: String
    /// Partition of `encompass.notice.requests` the request came from: its owner releases it.
    public var partition: Int
    public var forceCode: String
    public var occurrenceNumber: String
    public var schoolURN: String
    public var laCode: String
    public var incidentRevision: Int
    public var releaseAt: Date
    public var escalate: Bool
    public var state: PendingState
    /// The `NoticeDue` to publish. Held as the changelog record that carried the notice's state
    /// when it was scheduled or restored (a `SchedulingChangelog` envelope), so a notice is
    /// encoded once, not twice; rows written before that hold the `NoticeDue` JSON itself.
    public var due: Data
    public var updatedAt: Date
    public var releasedAt: Date?
    /// Id of the changelog record that carries this state (this instance's own, or the one it
    /// was restored from): when that record comes back on the replica it is skipped undecoded.
    public var changelogId: String? = nil

    public func notice() throws -> NoticeDue {
        if let held = try? WireFormat.value(Envelope<SchedulingChangelog>.self, from: due), let state = held.payload.notice { return state.due }
        return try WireFormat.value(NoticeDue.self, from: due)
    }
}

/// A school's own term dates (table `schoolTermDates`), set over HTTP and replicated through
/// the changelog.
public struct SchoolTermDatesRow: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "schoolTermDates"
    public var urn: String
    /// `TermDatesDocument` JSON.
    public var document: Data
    public var updatedAt: Date
}

/// `encompass.scheduling.changelog` (compacted): the latest state of each notice (key: notice
/// id) and each school's own term dates (key: `term-dates:<URN>`). Every scheduling instance
/// reads it whole, so any instance can take over a partition's pending notices.
public struct SchedulingChangelog: MessagePayload {
    public static let schema = "encompass.scheduling-changelog"
    public static let schemaVersion = 1

    public struct NoticeState: Codable, Sendable, Equatable {
        public var noticeId: String
        public var partition: Int
        public var state: PendingState
        public var incidentRevision: Int
        public var releaseAt: Date
        public var escalate: Bool
        public var due: NoticeDue
        public var updatedAt: Date
        public var releasedAt: Date?
    }

    public struct SchoolTermDates: Codable, Sendable, Equatable {
        public var urn: String
        /// nil: the school follows its local authority's dates again.
        public var document: TermDatesDocument?
        public var updatedAt: Date
    }

    /// A released or cancelled notice whose `NoticeDue` the retention purge removed: what
    /// scheduling keeps of it (the row without its personal data). The owner publishes it as
    /// the notice's last record, so compaction drops the earlier records (which carry the
    /// `NoticeDue`) while the topic still remembers that the notice was sent: an instance
    /// restored from the changelog ignores a re-delivered request for it, as the owner does.
    public struct ForgottenNotice: Codable, Sendable, Equatable {
        public var noticeId: String
        public var partition: Int
        public var forceCode: String
        public var occurrenceNumber: String
        public var schoolURN: String
        public var laCode: String
        public var state: PendingState
        public var incidentRevision: Int
        public var releaseAt: Date
        public var escalate: Bool
        public var updatedAt: Date
        public var releasedAt: Date?
    }

    public var notice: NoticeState?
    public var schoolTermDates: SchoolTermDates?
    public var forgotten: ForgottenNotice?

    public func validationErrors() -> [FieldError] {
        var errors: [FieldError] = []
        if [notice != nil, schoolTermDates != nil, forgotten != nil].filter({ $0 }).count != 1 {
            errors.append(FieldError("notice", "exactly one of notice, schoolTermDates and forgotten"))
        }
        if let forgotten, !forgotten.state.isFinal {
            errors.append(FieldError("forgotten.state", "a forgotten notice is released or cancelled, not \(forgotten.state.rawValue)"))
        }
        return errors
    }

    public static func termDatesKey(_ urn: String) -> String { "term-dates:\(urn)" }
}

// The hand-written wire codec (`WireCodable`, docs/BENCHMARKS.md): every notice passes
// through the changelog at least twice. Term dates and forgotten notices are rare and keep
// `Codable` (`encoded`/`decoded`). `SchedulingTests` checks the bytes against Foundation.
extension SchedulingChangelog: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        try writer.field("forgotten", encoded: forgotten)
        try writer.field("notice", notice)
        try writer.field("schoolTermDates", encoded: schoolTermDates)
    }

    public init(wire object: WireObject) throws {
        self.init(
            notice: try object.value(ifPresent: "notice"), schoolTermDates: try object.decoded(ifPresent: "schoolTermDates"),
            forgotten: try object.decoded(ifPresent: "forgotten"))
    }
}

extension SchedulingChangelog.NoticeState: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        try writer.field("due", due)
        writer.field("escalate", escalate)
        writer.field("incidentRevision", incidentRevision)
        writer.field("noticeId", noticeId)
        writer.field("partition", partition)
        writer.field("releaseAt", releaseAt)
        writer.field("releasedAt", releasedAt)
        writer.field("state", state)
        writer.field("updatedAt", updatedAt)
    }

    public init(wire object: WireObject) throws {
        self.init(
            noticeId: try object.string("noticeId"), partition: try object.int("partition"), state: try object.value("state"),
            incidentRevision: try object.int("incidentRevision"), releaseAt: try object.date("releaseAt"),
            escalate: try object.bool("escalate"), due: try object.value("due"), updatedAt: try object.date("updatedAt"),
            releasedAt: try object.date(ifPresent: "releasedAt"))
    }
}

extension PendingNoticeRow {
    /// `message`: the changelog record `state` came in, kept as `due`; without it `due` is encoded.
    init(_ state: SchedulingChangelog.NoticeState, message: [UInt8]? = nil) throws {
        self.init(
            noticeId: state.noticeId, partition: state.partition, forceCode: state.due.request.incident.forceCode,
            occurrenceNumber: state.due.request.incident.occurrenceNumber, schoolURN: state.due.request.school.urn,
            laCode: state.due.request.school.localAuthorityCode, incidentRevision: state.incidentRevision,
            releaseAt: state.releaseAt, escalate: state.escalate, state: state.state,
            due: try message.map { Data($0) } ?? WireFormat.data(state.due), updatedAt: state.updatedAt, releasedAt: state.releasedAt)
    }

    /// The row as the retention purge leaves it, without its `NoticeDue`.
    init(_ gone: SchedulingChangelog.ForgottenNotice, changelogId: String?) {
        self.init(
            noticeId: gone.noticeId, partition: gone.partition, forceCode: gone.forceCode, occurrenceNumber: gone.occurrenceNumber,
            schoolURN: gone.schoolURN, laCode: gone.laCode, incidentRevision: gone.incidentRevision, releaseAt: gone.releaseAt,
            escalate: gone.escalate, state: gone.state, due: Data(), updatedAt: gone.updatedAt, releasedAt: gone.releasedAt,
            changelogId: changelogId)
    }

    /// What the changelog keeps of this row once its `NoticeDue` is purged.
    var forgotten: SchedulingChangelog.ForgottenNotice {
        .init(
            noticeId: noticeId, partition: partition, forceCode: forceCode, occurrenceNumber: occurrenceNumber, schoolURN: schoolURN,
            laCode: laCode, state: state, incidentRevision: incidentRevision, releaseAt: releaseAt, escalate: escalate,
            updatedAt: updatedAt, releasedAt: releasedAt)
    }

    func changelog() throws -> SchedulingChangelog.NoticeState { changelog(due: try notice()) }

    /// The changelog state, with `due` already at hand (it is `self.due` decoded).
    func changelog(due: NoticeDue) -> SchedulingChangelog.NoticeState {
        .init(
            noticeId: noticeId, partition: partition, state: state, incidentRevision: incidentRevision, releaseAt: releaseAt,
            escalate: escalate, due: due, updatedAt: updatedAt, releasedAt: releasedAt)
    }

    /// Whether this row already holds `state`'s version: the instance's own changes come back
    /// through the changelog, and re-encoding and re-writing them would cost a fifth of scheduling's time.
    func holds(_ state: SchedulingChangelog.NoticeState) -> Bool {
        // Times went through the wire format and SQLite, which keep milliseconds.
        func same(_ a: Date?, _ b: Date?) -> Bool {
            guard let a, let b else { return a == nil && b == nil }
            return abs(a.timeIntervalSince(b)) < 0.001
        }
        return noticeId == state.noticeId && self.state == state.state && incidentRevision == state.incidentRevision
            && same(updatedAt, state.updatedAt) && same(releaseAt, state.releaseAt) && partition == state.partition
            && escalate == state.escalate && same(releasedAt, state.releasedAt)
    }
}

/// Scheduling's state changes: each in the caller's transaction, with its outputs in the outbox.
public struct Scheduler: Sendable {
    public let calendars: SchoolCalendars
    public let protocols: [String: SchedulingProtocol]
    /// Called once a transaction that stored a notice due now (an escalation, a late report in
    /// the release window) has committed: wakes the release loop, so the notice goes at once
    /// rather than at its next turn.
    public let dueNow: @Sendable () -> Void

    public init(calendars: SchoolCalendars, protocols: [String: SchedulingProtocol], dueNow: @escaping @Sendable () -> Void = {}) {
        self.calendars = calendars
        self.protocols = protocols
        self.dueNow = dueNow
    }

    public static let migration = StoreMigration("scheduling-v1") { db in
        try db.create(table: PendingNoticeRow.databaseTableName) { t in
            t.primaryKey("noticeId", .text)
            t.column("partition", .integer).notNull()
            t.column("forceCode", .text).notNull()
            t.column("occurrenceNumber", .text).notNull()
            t.column("schoolURN", .text).notNull()
            t.column("laCode", .text).notNull()
            t.column("incidentRevision", .integer).notNull()
            t.column("releaseAt", .datetime).notNull()
            t.column("escalate", .boolean).notNull()
            t.column("state", .text).notNull()
            t.column("due", .blob).notNull()
            t.column("updatedAt", .datetime).notNull()
            t.column("releasedAt", .datetime)
        }
        try db.create(index: "pendingNotice_due", on: PendingNoticeRow.databaseTableName, columns: ["state", "releaseAt"])
        try db.create(table: SchoolTermDatesRow.databaseTableName) { t in
            t.primaryKey("urn", .text)
            t.column("document", .blob).notNull()
            t.column("updatedAt", .datetime).notNull()
        }
    }

    /// Scheduling's store, in order.
    public static var migrations: [StoreMigration] { [migration, changelogIdMigration, occurrenceMigration] }

    /// The notices of an occurrence, for finding one child notified twice to one school (`sameChildNotice`).
    public static let occurrenceMigration = StoreMigration("scheduling-v3-occurrence-index") { db in
        try db.create(
            index: "pendingNotice_occurrence", on: PendingNoticeRow.databaseTableName, columns: ["forceCode", "occurrenceNumber", "schoolURN"])
    }

    /// A notice already held for the same incident, school and child under another notice id
    /// (the child was identified twice under two child ids): its id, else nil. The same child:
    /// the same given and family names (case and accents aside) and the same date of birth, or,
    /// where one is missing, the same age on the incident's day. Twins differ in given name;
    /// children of one incident with the same name and age are one child listed twice.
    static func sameChildNotice(as request: NoticeRequested, db: Database) throws -> String? {
        // A statement prepared once per connection: preparing it for every request (SQLite's
        // compiler and GRDB's authorizer on each column) costs 7% of scheduling's CPU.
        let rows = try PendingNoticeRow.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT * FROM pendingNotice WHERE forceCode = ? AND occurrenceNumber = ? AND schoolURN = ? AND escalate = 0 AND noticeId <> ?
                    """), arguments: [request.incident.forceCode, request.incident.occurrenceNumber, request.school.urn, request.noticeId])
        func fold(_ s: String) -> String {
            s.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).trimmingCharacters(in: .whitespaces)
        }
        let child = request.child, on = request.incident.occurredAt
        for row in rows where !row.due.isEmpty {
            guard let other = try? row.notice().request.child,
                fold(other.givenName) == fold(child.givenName), fold(other.familyName) == fold(child.familyName)
            else { continue }
            let same =
                if let a = child.dateOfBirth, let b = other.dateOfBirth { a == b } else { child.age(on: on).map { $0 == other.age(on: on) } ?? false }
            if same { return row.noticeId }
        }
        return nil
    }

    public static let changelogIdMigration = StoreMigration("scheduling-v2-changelog-id") { db in
        try db.alter(table: PendingNoticeRow.databaseTableName) { t in t.add(column: "changelogId", .text) }
    }

    /// Whether the notice keyed `noticeId` already holds the state of changelog record
    /// `messageId`: true for every record this instance wrote, when it comes back.
    static func holdsChangelog(_ messageId: String, noticeId: String, db: Database) throws -> Bool {
        let statement = try db.cachedStatement(sql: "SELECT 1 FROM pendingNotice WHERE noticeId = ? AND changelogId = ?")
        return try Bool.fetchOne(statement, arguments: [noticeId, messageId]) != nil
    }

    /// The calendars with the school's own term dates, when it has them.
    public func calendars(for urn: String, db: Database) throws -> SchoolCalendars {
        var calendars = self.calendars
        if let row = try SchoolTermDatesRow.fetchOne(db, where: "urn", equals: urn),
            let calendar = try? TermCalendar.decode(row.document, label: "school \(urn) term dates")
        {
            calendars.schools[urn] = calendar
        }
        return calendars
    }

    /// The decision for a request processed at `now`.
    public func decide(_ request: NoticeRequested, now: Date, db: Database) throws -> (ReleaseDecision, SchedulingProtocol) {
        guard let force = protocols[request.incident.forceCode] else {
            throw RejectedMessage(
                errorClass: "scheduling.unknown-force",
                reason: "no scheduling protocol for force \(request.incident.forceCode); add its protocol file (ENCOMPASS_PROTOCOLS_DIR)")
        }
        let decision = try ReleaseRules.decide(
            occurredAt: request.incident.occurredAt, processedAt: now, laCode: request.school.localAuthorityCode,
            urn: request.school.urn, risk: request.incident.riskLevel,
            calendar: try calendars(for: request.school.urn, db: db), protocol: force)
        return (decision, force)
    }

    /// A notice request (new, or an amendment with the same notice id): schedule or reschedule it.
    public func schedule(_ envelope: Envelope<NoticeRequested>, partition: Int, ctx: MessageContext) throws {
        let request = envelope.payload
        var problems: [String] = []
        if request.noticeId.isEmpty { problems.append("noticeId is empty") }
        if request.school.localAuthorityCode.isEmpty { problems.append("school.localAuthorityCode is empty") }
        if request.school.urn.isEmpty { problems.append("school.urn is empty") }
        guard problems.isEmpty else {
            throw RejectedMessage(errorClass: "payload.validation", reason: problems.joined(separator: "; "))
        }
        var metadata: Logger.Metadata = ["notice": .string(request.noticeId), "revision": "\(request.incidentRevision)"]
        let existing = try PendingNoticeRow.fetchOne(ctx.db, where: "noticeId", equals: request.noticeId)
        if let existing, existing.state.isFinal {
            metadata["state"] = .string(existing.state.rawValue)
            ctx.logger.notice("notice request for a notice already \(existing.state.rawValue): ignored", metadata: metadata)
            return
        }
        if let existing, existing.incidentRevision >= request.incidentRevision {
            ctx.logger.info("notice request not newer than the scheduled one: ignored", metadata: metadata)
            return
        }
        if existing == nil, let held = try Self.sameChildNotice(as: request, db: ctx.db) {
            // One child must never reach one school twice for one incident.
            metadata["sameChildAs"] = .string(held)
            ctx.logger.notice(
                "notice request for a child this school is already notified of for this incident (notice \(held)): not scheduled",
                metadata: metadata)
            return
        }
        let (decision, force) = try decide(request, now: ctx.now, db: ctx.db)
        // The school's own notice always goes, on the school morning (for an escalation, its
        // first day back), under the request's notice id.
        var schoolRules = decision.rules
        if decision.escalate {
            schoolRules.append(
                "the school's own notice: \(Timestamp.format(decision.schoolReleaseAt)) (its first day back); the escalation is notice \(Self.escalationId(of: request.noticeId))"
            )
        }
        let school = NoticeDue(request: request, releaseAt: decision.schoolReleaseAt, rules: schoolRules)
        let kind: NoticeEvent.Kind = existing == nil ? .scheduled : .rescheduled
        try store(
            school, releaseAt: decision.schoolReleaseAt, escalate: false, kind: kind, partition: partition,
            envelope: envelope, purpose: "", ctx: ctx)
        if decision.escalate {
            // The escalation to the Education Safeguarding Manager, now, under its own stable id
            // (the notice id + "-esm"): dispatch keeps one notice per id, so the school's notice
            // and the escalation must not share one. Once released it is never sent again.
            let escalationId = Self.escalationId(of: request.noticeId)
            let held = try PendingNoticeRow.fetchOne(ctx.db, where: "noticeId", equals: escalationId)
            if held?.state.isFinal != true, (held?.incidentRevision ?? 0) < request.incidentRevision {
                var escalated = request
                escalated.noticeId = escalationId
                let due = NoticeDue(
                    request: escalated, releaseAt: decision.releaseAt, escalation: true,
                    escalationContact: force.educationSafeguardingManager, rules: decision.rules)
                try store(
                    due, releaseAt: decision.releaseAt, escalate: true, kind: held == nil ? .scheduled : .rescheduled,
                    partition: partition, envelope: envelope, purpose: "-escalation", ctx: ctx)
            }
        }
        metadata["schoolReleaseAt"] = .string(Timestamp.format(decision.schoolReleaseAt))
        metadata["releaseAt"] = .string(Timestamp.format(decision.releaseAt))
        metadata["escalate"] = "\(decision.escalate)"
        ctx.logger.info("notice \(kind.rawValue)", metadata: metadata)
    }

    /// A cancellation (the school said the pupil no longer attends): a pending notice still for
    /// that school is cancelled, with its changelog record and a `cancelled` event; a notice
    /// already released, or now for another school, stays as it is and the event says why.
    /// The cancellation follows the notice's request in the same partition, so a notice not held
    /// here was never scheduled: there is nothing to cancel.
    public func cancel(_ envelope: Envelope<NoticeCancelled>, partition: Int, ctx: MessageContext) throws {
        let cancellation = envelope.payload
        let metadata: Logger.Metadata = ["notice": .string(cancellation.noticeId), "urn": .string(cancellation.schoolURN)]
        let replaced = cancellation.replacedBy.map { "; the notice to the child's current school is \($0)" } ?? ""
        func event(_ kind: NoticeEvent.Kind, _ detail: String) throws {
            try ctx.outbox.publish(
                NoticeEvent(
                    noticeId: cancellation.noticeId, kind: kind, at: ctx.now, forceCode: cancellation.forceCode,
                    occurrenceNumber: cancellation.occurrenceNumber, schoolURN: cancellation.schoolURN, detail: detail),
                to: Topics.noticeEvents.name, key: cancellation.noticeId, id: MessageID.derived(from: envelope.id, "event-\(kind.rawValue)"),
                causationId: envelope.id, now: ctx.now)
        }
        guard var row = try PendingNoticeRow.fetchOne(ctx.db, where: "noticeId", equals: cancellation.noticeId) else {
            ctx.logger.notice("cancellation of a notice not held here: nothing to cancel", metadata: metadata)
            return
        }
        if row.state == .released, row.schoolURN == cancellation.schoolURN {
            // Released, so dispatch holds it; it may not have sent it yet (mail waiting for the
            // relay or for the school's password, a telephone task not yet made). The event
            // tells dispatch to withdraw it unless it has gone already (docs/DISPATCH.md).
            let released = row.releasedAt.map { " at \(Timestamp.format($0))" } ?? ""
            try event(
                .cancelled, "withdrawn after release\(released): dispatch does not send it if it has not yet: \(cancellation.reason)\(replaced)")
            ctx.logger.info("released notice withdrawn", metadata: metadata)
            return
        }
        guard row.state == .pending, row.schoolURN == cancellation.schoolURN else {
            let why =
                row.state == .pending
                ? "it is now for URN \(row.schoolURN)"
                : "it was already \(row.state.rawValue)"
                    + (row.releasedAt.map { " at \(Timestamp.format($0))" } ?? "")
            try event(.flagged, "not cancelled (\(why)): \(cancellation.reason)\(replaced)")
            ctx.logger.notice("cancellation not applied", metadata: metadata.merging(["why": .string(why)]) { $1 })
            return
        }
        let changelogId = MessageID.derived(from: envelope.id, "changelog-cancelled")
        row.state = .cancelled
        row.updatedAt = ctx.now
        row.changelogId = changelogId
        let due = try row.notice()
        row.due = try ctx.outbox.publish(
            SchedulingChangelog(notice: row.changelog(due: due)), to: Topics.schedulingChangelog.name, key: row.noticeId,
            id: changelogId, causationId: envelope.id, now: ctx.now)
        try row.update(ctx.db)
        try event(.cancelled, "cancelled before release (was due \(Timestamp.format(row.releaseAt))): \(cancellation.reason)\(replaced)")
        ctx.logger.info("notice cancelled", metadata: metadata)
    }

    /// The id of the escalation to the Education Safeguarding Manager made for notice `noticeId`.
    public static func escalationId(of noticeId: String) -> String { noticeId + "-esm" }

    /// Writes one pending notice (row, changelog record, event) in the request's transaction.
    private func store(
        _ due: NoticeDue, releaseAt: Date, escalate: Bool, kind: NoticeEvent.Kind, partition: Int,
        envelope: Envelope<NoticeRequested>, purpose: String, ctx: MessageContext
    ) throws {
        let request = due.request
        let changelogId = MessageID.derived(from: envelope.id, "changelog" + purpose)
        var row = PendingNoticeRow(
            noticeId: request.noticeId, partition: partition, forceCode: request.incident.forceCode,
            occurrenceNumber: request.incident.occurrenceNumber, schoolURN: request.school.urn,
            laCode: request.school.localAuthorityCode, incidentRevision: request.incidentRevision, releaseAt: releaseAt,
            escalate: escalate, state: .pending, due: Data(), updatedAt: ctx.now, releasedAt: nil, changelogId: changelogId)
        row.due = try ctx.outbox.publish(
            SchedulingChangelog(notice: row.changelog(due: due)), to: Topics.schedulingChangelog.name, key: row.noticeId,
            id: changelogId, causationId: envelope.id, now: ctx.now)
        try row.insertOrReplace(ctx.db)
        if releaseAt <= ctx.now {
            let dueNow = self.dueNow
            ctx.db.afterNextTransaction { _ in dueNow() }
        }
        let detail = "release \(Timestamp.format(releaseAt))\(escalate ? " (escalation)" : ""): " + due.rules.joined(separator: "; ")
        try ctx.outbox.publish(
            NoticeEvent(
                noticeId: row.noticeId, kind: kind, at: ctx.now, forceCode: row.forceCode,
                occurrenceNumber: row.occurrenceNumber, schoolURN: row.schoolURN, detail: detail),
            to: Topics.noticeEvents.name, key: row.noticeId, id: MessageID.derived(from: envelope.id, "event-\(kind.rawValue)" + purpose),
            causationId: envelope.id, now: ctx.now)
    }

    /// A changelog record (every instance): keep the latest state. Final states win; a pending
    /// state replaces a pending one of the same or an older revision; a forgotten notice
    /// replaces whatever is held (it is the notice's last record).
    /// `messageId` is the record's id, kept with the row (see `changelogId`).
    /// `message`, the record's value, becomes the row's `due` as it is.
    public static func apply(_ entry: SchedulingChangelog, messageId: String? = nil, message: [UInt8]? = nil, db: Database) throws {
        if let state = entry.notice {
            if let local = try PendingNoticeRow.fetchOne(db, where: "noticeId", equals: state.noticeId) {
                if local.state.isFinal || local.holds(state) { return }
                if !state.state.isFinal, state.incidentRevision < local.incidentRevision { return }
            }
            var row = try PendingNoticeRow(state, message: message)
            row.changelogId = messageId
            try row.insertOrReplace(db)
        }
        if let gone = entry.forgotten {
            // The owner purged the notice's personal data: so does every copy. A copy that
            // never saw the notice (restored after compaction) learns that it was sent.
            if let local = try PendingNoticeRow.fetchOne(db, where: "noticeId", equals: gone.noticeId), local.state.isFinal, local.due.isEmpty {
                return
            }
            try PendingNoticeRow(gone, changelogId: messageId).insertOrReplace(db)
        }
        if let terms = entry.schoolTermDates {
            if let local = try SchoolTermDatesRow.fetchOne(db, key: terms.urn), local.updatedAt > terms.updatedAt { return }
            if let document = terms.document {
                try SchoolTermDatesRow(urn: terms.urn, document: try WireFormat.data(document), updatedAt: terms.updatedAt).save(db)
            } else {
                _ = try SchoolTermDatesRow.deleteOne(db, key: terms.urn)
            }
        }
    }

    /// Releases the pending notices due by `now` in `partitions`, in one transaction: marks them
    /// released and publishes `NoticeDue` (id derived from the notice id, so a second release by
    /// a new owner after a rebalance is dropped by dispatch's inbox), the changelog and the event.
    @discardableResult
    public static func releaseDue(now: Date, partitions: Set<Int>, limit: Int = 500, db: Database, outbox: Outbox) throws -> [String] {
        guard !partitions.isEmpty else { return [] }
        let rows =
            try PendingNoticeRow
            .filter(Column("state") == PendingState.pending.rawValue && Column("releaseAt") <= now && partitions.contains(Column("partition")))
            .order(Column("releaseAt"))
            .limit(limit)
            .fetchAll(db)
        for var row in rows {
            let changelogId = MessageID.derived(from: row.noticeId, "changelog-released")
            row.state = .released
            row.releasedAt = now
            row.updatedAt = now
            row.changelogId = changelogId
            try row.update(db)
            let due = try row.notice()
            let dueId = MessageID.derived(from: row.noticeId, "due")
            try outbox.publish(due, to: Topics.noticesDue.name, key: row.noticeId, id: dueId, now: now)
            try outbox.publish(
                SchedulingChangelog(notice: row.changelog(due: due)), to: Topics.schedulingChangelog.name, key: row.noticeId,
                id: changelogId, causationId: dueId, now: now)
            let kind: NoticeEvent.Kind = row.escalate ? .escalated : .released
            let detail =
                row.escalate
                ? "escalated to the Education Safeguarding Manager (high risk in a school holiday)"
                : "released for \(Timestamp.format(row.releaseAt))"
            try outbox.publish(
                NoticeEvent(
                    noticeId: row.noticeId, kind: kind, at: now, forceCode: row.forceCode,
                    occurrenceNumber: row.occurrenceNumber, schoolURN: row.schoolURN, detail: detail),
                to: Topics.noticeEvents.name, key: row.noticeId, id: MessageID.derived(from: row.noticeId, "event-\(kind.rawValue)"),
                causationId: dueId, now: now)
        }
        return rows.map(\.noticeId)
    }
}

extension PendingNoticeRow {
    public static let replacementColumns = [
        "noticeId", "partition", "forceCode", "occurrenceNumber", "schoolURN", "laCode", "incidentRevision", "releaseAt", "escalate", "state", "due",
        "updatedAt", "releasedAt", "changelogId",
    ]
    public var replacementValues: [(any DatabaseValueConvertible)?] {
        [
            noticeId, partition, forceCode, occurrenceNumber, schoolURN, laCode, incidentRevision, releaseAt.stored, escalate, state.rawValue, due,
            updatedAt.stored, releasedAt?.stored, changelogId,
        ]
    }
}
