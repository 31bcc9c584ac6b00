import EncompassModels
import Foundation
import GRDB
import Logging
import ServiceRuntime

/// Hands pending mail to the transport, at most once in effect.
///
/// Each attempt is: (1) mark the row `sending` and count the attempt, committed; (2) SMTP;
/// (3) record the relay's answer. A crash between (1) and (3) leaves the row in `sending`: on
/// the next start it is NOT sent again (the relay may already have it) but marked `uncertain`
/// and flagged for MASH follow-up. docs/DISPATCH.md explains this window.
public struct MailSender: Sendable {
    let settings: DispatchService.Settings
    let transport: any MailTransport
    let store: ServiceStore
    let wake: @Sendable () -> Void
    let clock: ServiceClock
    let logger: Logger
    /// Signalled when this store has won a notice's claim (its mail can go): a pass runs at
    /// once instead of at the next `pollInterval`.
    let claimsWon: Wakeup

    /// `wake` wakes the outbox relay after the sender's own writes.
    public init(
        settings: DispatchService.Settings, store: ServiceStore, wake: @escaping @Sendable () -> Void, clock: ServiceClock, logger: Logger,
        claimsWon: Wakeup = Wakeup()
    ) {
        self.settings = settings
        self.transport = settings.mail.makeTransport()
        self.store = store
        self.wake = wake
        self.clock = clock
        self.logger = logger
        self.claimsWon = claimsWon
    }

    /// Recovers once, then sends due mail until cancelled: every `pollInterval`, and at once
    /// when a claim is won.
    public func run() async throws {
        try await recoverInterrupted()
        while !Task.isCancelled {
            do {
                _ = try await sendDue()
            } catch is CancellationError {
                return
            } catch {
                logger.error("mail sender pass failed; retrying", metadata: ["error": "\(error)"])
            }
            await claimsWon.wait(timeout: settings.pollInterval)
            try Task.checkCancellation()
        }
    }

    func write<T: Sendable>(_ body: @Sendable @escaping (Database, Outbox) throws -> T) async throws -> T {
        let result = try await store.pool.write { db in try body(db, Outbox(db: db, producer: ServiceName.dispatch.rawValue)) }
        wake()
        return result
    }

    /// Rows left in `sending` by a previous process: marked `uncertain`, flagged, never re-sent automatically.
    @discardableResult
    public func recoverInterrupted() async throws -> [String] {
        let now = clock.now()
        let recovered = try await write { db, outbox -> [String] in
            let rows = try OutgoingMail.filter(Column("state") == MailState.sending.rawValue).fetchAll(db)
            for var mail in rows {
                mail.state = .uncertain
                mail.lastError =
                    "the service stopped while handing this mail to the relay (attempt \(mail.attempts) at \(mail.lastAttemptAt.map(Timestamp.format) ?? "?")); not re-sent automatically"
                try mail.update(db)
                guard var notice = try NoticeRow.fetchOne(db, key: mail.noticeId) else { continue }
                notice.state = .uncertain
                notice.flaggedAt = now
                notice.flagReason =
                    "delivery uncertain after a restart: check with the school whether the email arrived; resend with `encompass notifications resend` if not"
                try notice.update(db)
                try Audit.record(
                    .flagged, notice: notice, detail: notice.flagReason,
                    eventId: MessageID.derived(from: mail.idempotencyKey, "uncertain-\(mail.attempts)"),
                    db: db, outbox: outbox, now: now)
            }
            return rows.map(\.noticeId)
        }
        if !recovered.isEmpty {
            logger.warning("mail left in sending state by a previous run: flagged, not re-sent", metadata: ["notices": "\(recovered)"])
        }
        return recovered
    }

    /// Sends every mail whose time has come, whose notice this instance has won (its own claim
    /// read back first from `encompass.notice.events`, `NoticeClaims`) and whose school (or LA)
    /// has a notice password: a link nobody can open is held until one is set (`HeldNotices`);
    /// returns how many attempts were made.
    @discardableResult
    public func sendDue(limit: Int = 50) async throws -> Int {
        let now = clock.now()
        let due = try await store.pool.read { db in
            // Pending mail first (indexed by state), then each one's claim by primary key.
            try OutgoingMail.fetchAll(
                db,
                sql: """
                    SELECT m.* FROM outgoingMail m
                    WHERE m.state = ? AND m.nextAttemptAt <= ?
                      AND EXISTS (SELECT 1 FROM noticeClaim c WHERE c.noticeId = m.noticeId AND c.claimant = ?)
                      AND \(HeldNotices.hasPasswordSQL)
                    ORDER BY m.nextAttemptAt LIMIT ?
                    """, arguments: [MailState.pending.rawValue, now, try NoticeClaims.claimant(db), limit])
        }
        var attempts = 0
        for mail in due {
            try Task.checkCancellation()
            if try await attempt(mail.noticeId) { attempts += 1 }
        }
        return attempts
    }

    /// One attempt for one mail. false when another pass claimed it first.
    func attempt(_ noticeId: String) async throws -> Bool {
        let claimedAt = clock.now()
        // (1) Mark: the attempt is recorded and committed before any byte goes to the relay.
        let claimed = try await write { db, outbox -> OutgoingMail? in
            guard var mail = try OutgoingMail.fetchOne(db, key: noticeId), mail.state == .pending,
                let notice = try NoticeRow.fetchOne(db, key: noticeId),
                try NoticeClaims.won(noticeId, db: db), try HeldNotices.hasPassword(notice.account, db: db)
            else { return nil }
            mail.state = .sending
            mail.attempts += 1
            mail.lastAttemptAt = claimedAt
            try mail.update(db)
            if mail.attempts == 1 {
                try Audit.record(
                    .sent, notice: notice, detail: "handed to \(transport.description)",
                    eventId: MessageID.derived(from: mail.idempotencyKey, "sent"), db: db, outbox: outbox, now: claimedAt)
            }
            return mail
        }
        guard let claimed, let data = claimed.message else { return false }
        let message = MailMessage(
            from: settings.fromAddress, to: claimed.recipient, messageId: "<\(claimed.idempotencyKey)@encompass.invalid>",
            data: String(decoding: data, as: UTF8.self))
        // (2) SMTP (blocking work on the transport's own queue).
        let outcome = await transport.deliver(message)
        // (3) Record the answer.
        let now = clock.now()
        let settings = self.settings
        try await write { db, outbox in
            guard var mail = try OutgoingMail.fetchOne(db, key: noticeId), var notice = try NoticeRow.fetchOne(db, key: noticeId) else { return }
            switch outcome {
            case .accepted(let reply):
                mail.state = .sent
                mail.sentAt = now
                mail.relayReply = reply
                mail.message = nil
                mail.lastError = nil
                try mail.update(db)
                if notice.state == .pending { notice.state = .sent }
                notice.sentAt = now
                try notice.update(db)
                try Audit.record(
                    .deliveredToRelay, notice: notice, detail: "accepted: \(reply)",
                    eventId: MessageID.derived(from: mail.idempotencyKey, "delivered"), db: db, outbox: outbox, now: now)
            case .uncertain(let reason):
                // As after a crash mid-send: the relay may have it, so never re-sent by guessing.
                mail.state = .uncertain
                mail.lastError = reason
                try mail.update(db)
                notice.state = .uncertain
                notice.flaggedAt = now
                notice.flagReason =
                    "delivery uncertain: \(reason); check with the school whether the email arrived; resend with `encompass notifications resend` if not"
                try notice.update(db)
                try Audit.record(
                    .flagged, notice: notice, detail: notice.flagReason,
                    eventId: MessageID.derived(from: mail.idempotencyKey, "uncertain-\(mail.attempts)"),
                    db: db, outbox: outbox, now: now)
            case .temporary(let reason) where mail.attempts < settings.maxAttempts:
                let delay = min(settings.retryCap, settings.retryBase * pow(2, Double(mail.attempts - 1)))
                mail.state = .pending
                mail.lastError = reason
                mail.nextAttemptAt = now.addingTimeInterval(delay)
                try mail.update(db)
                try Audit.recordLocal(
                    "retry-scheduled", notice: notice,
                    detail: "attempt \(mail.attempts) failed temporarily (\(reason)); next attempt \(Timestamp.format(mail.nextAttemptAt))", db: db,
                    now: now)
            case .temporary(let reason), .permanent(let reason):
                let permanent: Bool
                if case .permanent = outcome { permanent = true } else { permanent = false }
                mail.state = .failed
                mail.lastError = reason
                mail.relayReply = reason
                try mail.update(db)
                notice.state = .failed
                notice.flaggedAt = notice.flaggedAt ?? now
                notice.flagReason = "mail not delivered: \(reason)"
                try notice.update(db)
                struct Letter: Encodable {
                    var noticeId: String
                    var recipient: String
                    var attempts: Int
                    var reply: String
                    var transport: String
                }
                let value = try WireFormat.data(
                    Letter(
                        noticeId: noticeId, recipient: mail.recipient, attempts: mail.attempts,
                        reply: reason, transport: transport.description))
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .dispatch, origin: "smtp:\(noticeId)", place: Int64(now.timeIntervalSince1970 * 1000), key: noticeId,
                    value: Array(value),
                    errorClass: permanent ? "smtp.permanent" : "smtp.retries-exhausted",
                    message: permanent
                        ? "the relay refused the notice mail: \(reason); fix the school's contact address and resend"
                        : "no delivery after \(mail.attempts) attempts: \(reason); check the relay and resend",
                    now: now, outbox: outbox)
                try Audit.record(
                    .failed, notice: notice, detail: "\(permanent ? "refused" : "gave up after \(mail.attempts) attempts"): \(reason)",
                    eventId: MessageID.derived(from: mail.idempotencyKey, "failed-\(mail.attempts)"), db: db, outbox: outbox, now: now)
            }
        }
        logger.info("notice mail attempt", metadata: ["notice": .string(noticeId), "attempt": "\(claimed.attempts)", "outcome": "\(outcome)"])
        return true
    }
}

/// Flags notices nobody acknowledged by the protocol's time (10:00 London on the release day).
public struct FollowUp: Sendable {
    let store: ServiceStore
    let wake: @Sendable () -> Void
    let clock: ServiceClock
    let logger: Logger

    public init(store: ServiceStore, wake: @escaping @Sendable () -> Void, clock: ServiceClock, logger: Logger) {
        self.store = store
        self.wake = wake
        self.clock = clock
        self.logger = logger
    }

    public func run(every interval: Duration) async throws {
        while !Task.isCancelled {
            do { _ = try await check() } catch is CancellationError { return } catch {
                logger.error("follow-up check failed; retrying", metadata: ["error": "\(error)"])
            }
            try await Task.sleep(for: interval)
        }
    }

    /// Flags what is overdue now; returns the notice ids flagged.
    @discardableResult
    public func check() async throws -> [String] {
        let now = clock.now()
        let flagged = try await store.pool.write { db -> [String] in
            let outbox = Outbox(db: db, producer: ServiceName.dispatch.rawValue)
            let overdue =
                try NoticeRow
                .filter(Column("acknowledgedAt") == nil && Column("flaggedAt") == nil && Column("feedbackAt") == nil)
                .filter([NoticeState.pending.rawValue, NoticeState.sent.rawValue].contains(Column("state")))
                .filter(Column("acknowledgeBy") <= now)
                .fetchAll(db)
            for var notice in overdue {
                notice.flaggedAt = now
                let local = NoticeFormat.dateTime(notice.acknowledgeBy)
                notice.flagReason =
                    notice.channel == NoticeChannel.telephone.rawValue
                    ? "telephone call not recorded as done by \(local): follow up"
                    : "not acknowledged by \(local): telephone the school"
                try notice.update(db)
                try Audit.record(
                    .flagged, notice: notice, detail: notice.flagReason,
                    eventId: MessageID.derived(from: notice.noticeId, "unacknowledged"), db: db, outbox: outbox, now: now)
            }
            return overdue.map(\.noticeId)
        }
        if !flagged.isEmpty {
            wake()
            logger.warning("notices not acknowledged in time: flagged for follow-up", metadata: ["notices": "\(flagged)"])
        }
        return flagged
    }
}
