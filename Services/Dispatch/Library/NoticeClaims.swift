import EncompassModels
import Foundation
import GRDB
import Logging
import Prometheus
import ServiceRuntime

/// Which dispatch instance sends a notice when several instances share the work.
///
/// A `NoticeDue` can reach two instances: a partition moves to another instance before the
/// first one's offsets are committed (a rebalance, a crash), and the new owner gets the record
/// again. Neither store alone can see that. So each instance that accepts a notice publishes a
/// `claimed` event, keyed by the notice id, in the same transaction. All claims of one notice
/// land in one partition of `encompass.notice.events`, in one order, and every instance reads
/// all of that topic. **The first claim in that order wins**: every instance records the same
/// winner, only the winner's mail sender sends, and an instance that lost drops its unsent copy.
///
/// A claim names the store, not the process (`dispatchIdentity`, made once per store): a
/// restarted instance still owns what it claimed before.
///
/// The cost: a notice's mail waits until its instance has read its own claim back from Kafka
/// (one produce and one fetch; milliseconds, a second if the events consumer is behind).
public enum NoticeClaims {
    /// This store's claimant name.
    public static func claimant(_ db: Database) throws -> String {
        guard let name = try String.fetchOne(db.cachedStatement(sql: "SELECT claimant FROM dispatchIdentity WHERE id = 1")) else {
            throw DatabaseError(message: "dispatchIdentity is empty; the dispatch-v2-claims migration did not run")
        }
        return name
    }

    /// Publishes this store's claim (`claimant`, as read by the caller) on `notice`, in the
    /// accepting transaction.
    static func claim(_ notice: NoticeRow, claimant me: String, instanceId: String, causationId: String, db: Database, outbox: Outbox, now: Date)
        throws
    {
        try Audit.record(
            .claimed, notice: notice, detail: "taken by dispatch instance \(instanceId) (store \(me))",
            eventId: MessageID.derived(from: notice.noticeId, "claimed-\(me)"), causationId: causationId,
            claimant: me, db: db, outbox: outbox, now: now)
    }

    /// Takes over the claim on a notice restored from the changelog (`NoticeChangelog`) whose
    /// winner is another store: a `claimed` event that supersedes it. The mail waits, as after
    /// any claim, until this store reads its claim back as the winner.
    static func takeOver(_ notice: NoticeRow, from previous: String, claimant me: String, instanceId: String, db: Database, outbox: Outbox, now: Date)
        throws
    {
        let event = NoticeEvent(
            noticeId: notice.noticeId, kind: .claimed, at: now, forceCode: notice.forceCode, occurrenceNumber: notice.occurrenceNumber,
            schoolURN: notice.schoolURN, detail: "taken over by dispatch instance \(instanceId) (store \(me)) from store \(previous)",
            claimant: me, supersedes: previous)
        let id = MessageID.derived(from: notice.noticeId, "claimed-\(me)-over-\(previous)")
        try Audit.insert(event, eventId: id, producer: ServiceName.dispatch.rawValue, db: db)
        try outbox.publish(event, to: Topics.noticeEvents.name, key: notice.noticeId, id: id, now: now)
    }

    /// The claimant that won `noticeId`, once a claim has been read from the topic.
    public static func winner(of noticeId: String, db: Database) throws -> String? {
        try NoticeClaim.fetchOne(db, key: noticeId)?.claimant
    }

    /// Whether this store has read back a winning claim of its own on `noticeId`.
    public static func won(_ noticeId: String, db: Database) throws -> Bool {
        try winner(of: noticeId, db: db) == claimant(db)
    }

    /// Applies a `claimed` event read from `encompass.notice.events` (this store's own
    /// included). The first one recorded for a notice stands. If another store won and this one
    /// holds an unsent copy, the copy is dropped (its mail and telephone task with it) and a
    /// local `claim-lost` audit row says so.
    static func observe(_ event: NoticeEvent, db: Database, now: Date, logger: Logger) throws {
        guard event.kind == .claimed, let claimant = event.claimant else { return }
        if let previous = event.supersedes {
            // A take-over (a restored notice resent): it wins only from the claimant it names.
            try db.execute(
                sql: "UPDATE noticeClaim SET claimant = ?, claimedAt = ?, observedAt = ? WHERE noticeId = ? AND claimant = ?",
                arguments: [claimant, event.at, now, event.noticeId, previous])
        }
        try NoticeClaim(noticeId: event.noticeId, claimant: claimant, claimedAt: event.at, observedAt: now).insert(db, onConflict: .ignore)
        guard let winner = try winner(of: event.noticeId, db: db), try winner != self.claimant(db),
            let notice = try NoticeRow.fetchOne(db, key: event.noticeId)
        else { return }
        if let mail = try OutgoingMail.fetchOne(db, key: event.noticeId), mail.state != .pending || mail.attempts > 0 {
            // The sender sends only what this store won, so only a store changed by hand gets here.
            logger.error(
                "another dispatch instance won a notice this instance has already tried to send; kept for MASH follow-up",
                metadata: [
                    "noticeId": .string(event.noticeId), "winner": .string(winner), "mailState": .string(mail.state.rawValue),
                ])
            return
        }
        try Audit.recordLocal(
            "claim-lost", notice: notice,
            detail: "dispatch store \(winner) took this notice first; this instance dropped its unsent copy",
            db: db, now: now)
        try notice.delete(db)
        logger.info(
            "notice taken by another dispatch instance; local copy dropped unsent",
            metadata: [
                "noticeId": .string(event.noticeId), "winner": .string(winner),
            ])
    }
}

/// Watches for notices that a dispatch instance claimed and nobody sent: the gauge
/// `encompass_dispatch_claimed_unsent_notices` (alert `EncompassNoticeClaimedNotSent`,
/// compose/prometheus/alerts.yml).
///
/// Every instance reads every claim and every `sent` event, so every instance counts the same
/// notices, including those of an instance that is down or whose store was lost for good: only
/// the claiming instance can send them (`NoticeClaims`), so nothing else would notice. A notice
/// counts once it was claimed more than `overdue` ago (and within the last week) with no
/// `sent`, `telephone-task`, `failed`, `cancelled` or `flagged` event. Mail the relay keeps
/// refusing counts too: either way the school has not been told.
public struct UnsentClaimsWatch: Sendable {
    /// The events that end a claimed notice's wait: handed to the relay, turned into a telephone
    /// task, failed for good (dead letter), withdrawn, or flagged for MASH follow-up (an
    /// interrupted hand-over to the relay: people already have it in front of them).
    static let outcomes: [NoticeEvent.Kind] = [.sent, .telephoneTask, .failed, .cancelled, .flagged]
    /// Claims older than this are not looked at (their notices are long past any morning).
    static let window: TimeInterval = 7 * 24 * 3600

    let store: ServiceStore
    let clock: ServiceClock
    let overdue: TimeInterval
    let gauge: Gauge
    let logger: Logger

    public init(store: ServiceStore, metrics: ServiceMetrics, clock: ServiceClock, overdue: TimeInterval, logger: Logger) {
        self.store = store
        self.clock = clock
        self.overdue = overdue
        self.logger = logger
        gauge = StoreWatch.gauge(
            metrics, "encompass_dispatch_claimed_unsent", unit: "notices",
            help: "Notices claimed by a dispatch instance more than ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES ago and not sent")
    }

    /// The notices claimed before `cutoff` (and after `since`) with no outcome event.
    public static func unsent(_ db: Database, claimedBefore cutoff: Date, since: Date) throws -> [String] {
        let kinds = outcomes.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return try String.fetchAll(
            db,
            sql: """
                SELECT c.noticeId FROM \(NoticeClaim.databaseTableName) c
                WHERE c.claimedAt < ? AND c.claimedAt >= ?
                  AND NOT EXISTS (SELECT 1 FROM \(AuditEntry.databaseTableName) a WHERE a.noticeId = c.noticeId AND a.kind IN (\(kinds)))
                ORDER BY c.claimedAt
                """, arguments: [cutoff.stored, since.stored])
    }

    /// Counts now and sets the gauge; returns the notices.
    @discardableResult
    public func update() async throws -> [String] {
        let now = clock.now()
        let (overdue, window) = (self.overdue, Self.window)
        let notices = try await store.pool.read { db in
            try Self.unsent(db, claimedBefore: now.addingTimeInterval(-overdue), since: now.addingTimeInterval(-window))
        }
        gauge.set(Int64(notices.count))
        return notices
    }

    /// Updates the gauge every `interval` until the task is cancelled; logs the notices when
    /// the count changes.
    public func run(every interval: Duration) async {
        await StoreWatch.run(every: interval, check: "unsent-claims", logger: logger, update: update, count: \.count) { notices in
            logger.error(
                "notices claimed and not sent in time; see docs/DISPATCH.md, \"Running more than one instance\"",
                metadata: [
                    "count": "\(notices.count)", "notices": "\(notices.prefix(20).joined(separator: ","))",
                ])
        }
    }
}
