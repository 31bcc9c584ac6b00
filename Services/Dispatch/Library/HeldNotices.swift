import EncompassModels
import Foundation
import GRDB
import Logging
import Prometheus
import ServiceRuntime

/// Notice mail held because nobody could open it: the account it is for (`NoticeAccount`: the
/// school's URN, `LA<code>`, or `ESM<force code>` for an escalation) has no notice-page password yet.
///
/// Held is not a state of its own: a held mail is a `pending` `outgoingMail` row whose notice's
/// account has no `schoolPassword` row. The sender skips such rows (`MailSender.sendDue`), so
/// they wait in the store across restarts and go out on the sender's next pass after a password
/// is set, whichever way it arrives (this instance's API, the bulk file, another instance through
/// `encompass.dispatch.accounts`).
public enum HeldNotices {
    /// One held mail and the whole listing: `GET /v1/held`'s body (`HeldNoticeListing`).
    public typealias Held = HeldNoticeListing.Item
    public typealias Listing = HeldNoticeListing

    /// The SQL condition "this mail's account has a password" (`m` is `outgoingMail`).
    static let hasPasswordSQL = """
        EXISTS (SELECT 1 FROM notice n JOIN schoolPassword p ON p.account = n.account WHERE n.noticeId = m.noticeId)
        """

    public static func list(_ db: Database, now: Date) throws -> Listing {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT n.noticeId, n.account, n.schoolURN, n.schoolName, n.forceCode, n.occurrenceNumber, m.createdAt
                FROM outgoingMail m JOIN notice n ON n.noticeId = m.noticeId
                WHERE m.state = ? AND NOT EXISTS (SELECT 1 FROM schoolPassword p WHERE p.account = n.account)
                ORDER BY m.createdAt, n.noticeId
                """, arguments: [MailState.pending.rawValue])
        let held = rows.map { row -> Held in
            let since: Date = row["createdAt"]
            return Held(
                noticeId: row["noticeId"], account: row["account"], schoolURN: row["schoolURN"], schoolName: row["schoolName"],
                forceCode: row["forceCode"], occurrenceNumber: row["occurrenceNumber"], heldSince: since,
                ageSeconds: max(0, Int(now.timeIntervalSince(since))))
        }
        return Listing(
            held: held, accountsWithoutPassword: Array(Set(held.map(\.account))).sorted(),
            oldestAgeSeconds: held.map(\.ageSeconds).max() ?? 0)
    }

    /// Whether `account` has a password in this store.
    static func hasPassword(_ account: String, db: Database) throws -> Bool {
        try SchoolPassword.fetchOne(db, key: account) != nil
    }

    /// Who holds `account` when it is not a school's: a local authority, or a force's
    /// Education Safeguarding Manager.
    static func accountName(_ account: String) -> String? {
        if let force = NoticeAccount.educationSafeguardingManagerForce(account) { return "force \(force)'s Education Safeguarding Manager" }
        if account.hasPrefix("LA") { return "local authority \(account.dropFirst(2))" }
        return nil
    }

    /// The readiness warnings for `listing` (empty when nothing is held).
    public static func warnings(_ listing: Listing) -> [String] {
        guard !listing.held.isEmpty else { return [] }
        var byAccount: [String: (name: String, count: Int)] = [:]
        for item in listing.held {
            byAccount[item.account, default: (accountName(item.account) ?? item.schoolName, 0)].count += 1
        }
        return byAccount.keys.sorted().map { account in
            let entry = byAccount[account]!
            return "\(entry.count) notice\(entry.count == 1 ? "" : "s") held: \(account) \(entry.name) has no notice password; "
                + "set one with `encompass notifications set-password --urn \(account)` (or --file) and the mail goes out"
        }
    }
}

/// Keeps `encompass_dispatch_held_notices` and `encompass_dispatch_held_oldest_age_seconds` current
/// and logs the accounts that lack a password when the count changes.
public struct HeldNoticesWatch: Sendable {
    let store: ServiceStore
    let clock: ServiceClock
    let count: Gauge
    let oldest: Gauge
    let logger: Logger

    public init(store: ServiceStore, metrics: ServiceMetrics, clock: ServiceClock, logger: Logger) {
        self.store = store
        self.clock = clock
        self.logger = logger
        count = StoreWatch.gauge(
            metrics, "encompass_dispatch_held", unit: "notices",
            help: "Notice mails held because their school (or LA) has no notice-page password")
        oldest = StoreWatch.gauge(
            metrics, "encompass_dispatch_held_oldest_age", unit: "seconds",
            help: "Seconds the oldest held notice mail has waited for its school's password (0 when none is held)")
    }

    @discardableResult
    public func update() async throws -> HeldNotices.Listing {
        let now = clock.now()
        let listing = try await store.pool.read { db in try HeldNotices.list(db, now: now) }
        count.set(Int64(listing.held.count))
        oldest.set(Int64(listing.oldestAgeSeconds))
        return listing
    }

    public func run(every interval: Duration) async {
        await StoreWatch.run(every: interval, check: "held-notices", logger: logger, update: update, count: \.held.count) { listing in
            logger.warning(
                "notice mail held: no notice password for these accounts; set-password sends it",
                metadata: [
                    "count": "\(listing.held.count)", "accounts": "\(listing.accountsWithoutPassword.prefix(50).joined(separator: ","))",
                ])
        }
    }
}
