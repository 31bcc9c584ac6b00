import EncompassKafka
import EncompassModels
import EncompassSecrets
import Foundation
import GRDB
import Hummingbird
import Logging
import ServiceRuntime

/// Dispatch: renders each notice per force protocol, sends it securely and keeps its audit trail.
///
/// `encompass.notices.due` → a `notice` row and its `outgoingMail` (or `telephoneTask`) in the
/// handler's transaction; a background task hands pending mail to the SMTP relay (or the mail
/// folder) and records the outcome; schools read and acknowledge the notice on a signed-in
/// page; `encompass.notice.events` (scheduling's and dispatch's own) build the audit trail.
public enum DispatchService {
    /// Dispatch's own settings, from the environment (docs/DISPATCH.md lists them).
    public struct Settings: ServiceOwnSettings {
        public static let service = ServiceName.dispatch
        /// Where mail goes: the SMTP relay (ENCOMPASS_SMTP_URL…) or a folder of .eml files (ENCOMPASS_MAIL_DIR).
        public var mail: MailRoute
        /// Envelope sender and From address (ENCOMPASS_SMTP_FROM).
        public var fromAddress: String
        /// Base of notice links (ENCOMPASS_PUBLIC_URL), e.g. `https://encompass.example.police.uk`.
        public var publicURL: String
        public var protocols: DispatchProtocols
        /// Overrides every protocol's link expiry (ENCOMPASS_NOTICE_LINK_EXPIRY_HOURS).
        public var linkExpiryHours: Int?
        /// How often the sender and the follow-up check look for work (ENCOMPASS_DISPATCH_POLL_MS).
        public var pollInterval: Duration
        /// First retry delay after a temporary SMTP failure, doubled each attempt (ENCOMPASS_SMTP_RETRY_SECONDS).
        public var retryBase: TimeInterval
        /// Longest retry delay.
        public var retryCap: TimeInterval
        /// Attempts before a temporarily failing mail is dead-lettered (ENCOMPASS_SMTP_MAX_ATTEMPTS).
        public var maxAttempts: Int
        /// A signed-in page stays open this long.
        public var sessionLifetime: TimeInterval
        /// Wrong passwords per (account, client) before the account's sign-in is locked for `lockDuration`.
        public var maxFailedSignIns: Int
        public var lockDuration: TimeInterval
        /// Use the first X-Forwarded-For address as the client (only behind a trusted proxy;
        /// ENCOMPASS_TRUST_FORWARDED_FOR). Otherwise all clients of an account share one throttle.
        public var trustForwardedFor: Bool
        /// Personal-data retention (ENCOMPASS_RETENTION_DAYS…, docs/SECURITY.md).
        public var retention: RetentionSettings = RetentionSettings()
        /// A claimed notice not sent this long after its claim counts in
        /// `encompass_dispatch_claimed_unsent_notices` (ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES, default 30).
        public var unsentAlertAfter: TimeInterval = 30 * 60
        /// How long a newly assigned partition of `encompass.notices.due` is owned before the
        /// notices of other stores on `encompass.dispatch.changelog` are restored, so the
        /// replica can catch up first (ENCOMPASS_DISPATCH_RESTORE_GRACE_MS, default 2000).
        public var restoreGrace: Duration = .seconds(2)
        /// This instance's name in its `claimed` events' detail, for people (ENCOMPASS_INSTANCE_ID;
        /// taken from the service configuration). Claims themselves name the
        /// store (`NoticeClaims`).
        public var instanceId: String

        public init(
            mail: MailRoute, fromAddress: String = "operation-encompass@localhost", publicURL: String,
            protocols: DispatchProtocols, linkExpiryHours: Int? = nil, pollInterval: Duration = .seconds(1),
            retryBase: TimeInterval = 30, retryCap: TimeInterval = 3600, maxAttempts: Int = 8,
            sessionLifetime: TimeInterval = 30 * 60, maxFailedSignIns: Int = 5, lockDuration: TimeInterval = 15 * 60,
            trustForwardedFor: Bool = false, instanceId: String = "dispatch-1"
        ) {
            self.instanceId = instanceId
            self.mail = mail
            self.fromAddress = fromAddress
            self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
            self.protocols = protocols
            self.linkExpiryHours = linkExpiryHours
            self.pollInterval = pollInterval
            self.retryBase = retryBase
            self.retryCap = retryCap
            self.maxAttempts = maxAttempts
            self.sessionLifetime = sessionLifetime
            self.maxFailedSignIns = maxFailedSignIns
            self.lockDuration = lockDuration
            self.trustForwardedFor = trustForwardedFor
        }

        /// The session cookie's path: the notice pages under `publicURL`'s own path, so that a
        /// proxy routing `https://host/dispatch-2/notice/…` to one instance (stripping
        /// `/dispatch-2`) gets the cookie back.
        public var noticeCookiePath: String {
            let base = URLComponents(string: publicURL)?.path ?? ""
            return (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/notice/"
        }

        /// `ENCOMPASS_SMTP_…`, `ENCOMPASS_MAIL_DIR`, `ENCOMPASS_PUBLIC_URL` (default: the instance's own
        /// HTTP port on 127.0.0.1), `ENCOMPASS_PROTOCOLS_DIR`, `ENCOMPASS_DISPATCH_…`, `ENCOMPASS_RETENTION_…`.
        public static func fromEnvironment(_ environment: [String: String], runtime: ServiceConfiguration) throws(ConfigurationError) -> Settings {
            let env = EnvironmentReader(environment)
            let mail: MailRoute
            var from = env.string("ENCOMPASS_SMTP_FROM") ?? "operation-encompass@localhost"
            if let url = env.string("ENCOMPASS_SMTP_URL") {
                guard let components = URLComponents(string: url), ["smtp", "smtps"].contains(components.scheme ?? ""),
                    let host = components.host, !host.isEmpty
                else {
                    throw ConfigurationError(variable: "ENCOMPASS_SMTP_URL", problem: "is '\(url)'; expected smtp://host:587 or smtps://host:465")
                }
                let tlsText = env.string("ENCOMPASS_SMTP_TLS") ?? "required"
                guard let tls = SMTPTransport.TLS(rawValue: tlsText) else {
                    throw ConfigurationError(variable: "ENCOMPASS_SMTP_TLS", problem: "is '\(tlsText)'; use required or none")
                }
                if tls == .none && !["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) {
                    throw ConfigurationError(
                        variable: "ENCOMPASS_SMTP_TLS", problem: "is none for \(host); plain SMTP is allowed only on loopback (tests)")
                }
                guard let sender = env.string("ENCOMPASS_SMTP_FROM") else {
                    throw ConfigurationError(variable: "ENCOMPASS_SMTP_FROM", problem: "is missing; the relay needs a sender address")
                }
                from = sender
                mail = .smtp(
                    url: url, username: env.string("ENCOMPASS_SMTP_USERNAME"), password: env.string("ENCOMPASS_SMTP_PASSWORD"),
                    tls: tls, caFile: env.string("ENCOMPASS_SMTP_CA_FILE"))
            } else {
                mail = .folder(directory: env.string("ENCOMPASS_MAIL_DIR") ?? "var/dispatch/mail")
            }
            let protocols: DispatchProtocols
            do {
                protocols = try DispatchProtocols.load(
                    try ForceProtocols.load(directory: env.string("ENCOMPASS_PROTOCOLS_DIR") ?? ForceProtocols.bundledDirectory))
            } catch {
                throw ConfigurationError(variable: "ENCOMPASS_PROTOCOLS_DIR", problem: "\(error)")
            }
            var settings = Settings(
                mail: mail, fromAddress: from,
                publicURL: env.string("ENCOMPASS_PUBLIC_URL") ?? "http://127.0.0.1:\(runtime.httpPort)", protocols: protocols,
                linkExpiryHours: try env.int("ENCOMPASS_NOTICE_LINK_EXPIRY_HOURS", in: 1...744),
                pollInterval: .milliseconds(try env.int("ENCOMPASS_DISPATCH_POLL_MS", in: 10...60_000) ?? 1000),
                retryBase: TimeInterval(try env.int("ENCOMPASS_SMTP_RETRY_SECONDS", in: 1...3600) ?? 30),
                maxAttempts: try env.int("ENCOMPASS_SMTP_MAX_ATTEMPTS", in: 1...50) ?? 8,
                trustForwardedFor: try env.bool("ENCOMPASS_TRUST_FORWARDED_FOR") ?? false,
                instanceId: runtime.instanceId
            )
            settings.retention = try RetentionSettings.fromEnvironment(environment)
            if let minutes = try env.int("ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES", in: 1...1440) {
                settings.unsentAlertAfter = TimeInterval(minutes * 60)
            }
            if let grace = try env.int("ENCOMPASS_DISPATCH_RESTORE_GRACE_MS", in: 0...600_000) { settings.restoreGrace = .milliseconds(grace) }
            return settings
        }
    }

    public static func definition(settings: Settings) -> ServiceDefinition {
        let changelog = NoticeChangelog.make(grace: settings.restoreGrace)
        let claimsWon = Wakeup()
        return ServiceDefinition(
            service: .dispatch,
            migrations: DispatchStore.migrations + changelog.migrations,
            handlers: [dueHandler(settings: settings)],
            replicated: [eventsHandler(claimsWon: claimsWon), accountsHandler(), changelog.handler],
            produces: [Topics.schoolFeedback.name, Topics.noticeEvents.name, Topics.dispatchAccounts.name, Topics.dispatchChangelog.name],
            routes: { router, environment in
                NoticePage(settings: settings, environment: environment).register(on: router)
                DispatchAPI(settings: settings, environment: environment).register(on: router)
            },
            background: [
                RetentionPurge.task(DispatchRetention.rules, settings: settings.retention),
                changelog.task,
                BackgroundTask(name: "mail-sender") { environment in
                    let sender = MailSender(
                        settings: settings, store: environment.store, wake: environment.relay.wake,
                        clock: environment.clock, logger: environment.logger, claimsWon: claimsWon)
                    environment.logger.notice(
                        "mail transport",
                        metadata: [
                            "transport": .string(sender.transport.description),
                            "note": .string(
                                sender.transport is MailFolderTransport
                                    ? "no SMTP relay configured (ENCOMPASS_SMTP_URL): notices are written as .eml files, not sent"
                                    : "sending through the SMTP relay"),
                        ])
                    try await sender.run()
                },
                BackgroundTask(name: "follow-up") { environment in
                    try await FollowUp(
                        store: environment.store, wake: environment.relay.wake, clock: environment.clock,
                        logger: environment.logger
                    ).run(every: settings.pollInterval)
                },
                BackgroundTask(name: "held-notices") { environment in
                    await HeldNoticesWatch(
                        store: environment.store, metrics: environment.metrics, clock: environment.clock,
                        logger: environment.logger
                    ).run(every: settings.pollInterval)
                },
                BackgroundTask(name: "unsent-claims") { environment in
                    await UnsentClaimsWatch(
                        store: environment.store, metrics: environment.metrics, clock: environment.clock,
                        overdue: settings.unsentAlertAfter, logger: environment.logger
                    ).run(every: .seconds(30))
                },
            ]
        )
    }

    /// `encompass.notices.due`: store the notice and its mail or telephone task; never send here.
    static func dueHandler(settings: Settings) -> TopicHandler {
        .on(Topics.noticesDue.name, NoticeDue.self) { envelope, ctx in
            try NoticeIntake.accept(envelope.payload, messageId: envelope.id, settings: settings, db: ctx.db, outbox: ctx.outbox, now: ctx.now)
        }
    }

    /// `encompass.notice.events`: every event (scheduling's and dispatch's own echo) into the
    /// audit trail; `claimed` events also decide which instance sends (`NoticeClaims`), and
    /// once committed they wake the mail sender (`claimsWon`).
    static func eventsHandler(claimsWon: Wakeup = Wakeup()) -> TopicHandler {
        .on(Topics.noticeEvents.name, NoticeEvent.self) { envelope, ctx in
            try applyEvent(envelope.payload, eventId: envelope.id, producer: envelope.producer, db: ctx.db, now: ctx.now, logger: ctx.logger)
            if envelope.payload.kind == .claimed { ctx.db.afterNextTransaction { _ in claimsWon.signal() } }
        }
    }

    /// `encompass.dispatch.accounts`: passwords set through any instance's API (its own included).
    static func accountsHandler() -> TopicHandler {
        .on(Topics.dispatchAccounts.name, AccountPassword.self) { envelope, ctx in
            try AccountPasswords.apply(envelope.payload, db: ctx.db)
        }
    }

    /// What the events handler does with one event read from `encompass.notice.events`.
    public static func applyEvent(_ event: NoticeEvent, eventId: String, producer: String, db: Database, now: Date, logger: Logger) throws {
        try Audit.insert(event, eventId: eventId, producer: producer, db: db)
        try NoticeClaims.observe(event, db: db, now: now, logger: logger)
        if event.kind == .cancelled { try NoticeWithdrawal.apply(event, db: db, now: now, logger: logger) }
    }
}

/// Turns a due notice into dispatch state.
public enum NoticeIntake {
    public enum Outcome: Equatable, Sendable {
        case mailQueued(link: String)
        case telephoneTask(reason: String)
        case alreadyKnown
        /// Another dispatch instance claimed the notice first: it sends, this one does nothing.
        case claimedElsewhere(by: String)
        /// Cancelled before it arrived (a `cancelled` event read first): kept, never sent.
        case withdrawn(reason: String)
    }

    /// The role order in which a school's contacts receive the notice email.
    static let roleOrder = ["dsl", "deputy-dsl", "da-lead", "office"]

    @discardableResult
    public static func accept(
        _ due: NoticeDue, messageId: String, settings: DispatchService.Settings, db: Database, outbox: Outbox, now: Date
    ) throws -> Outcome {
        let request = due.request
        // One notice id, one notice: a redelivery or a re-release never mails twice.
        if try NoticeRow.exists(db, key: due.noticeId) { return .alreadyKnown }
        let withdrawal = try NoticeWithdrawal.cancellation(of: due.noticeId, db: db)
        let me = try NoticeClaims.claimant(db)
        if let winner = try NoticeClaims.winner(of: due.noticeId, db: db), winner != me { return .claimedElsewhere(by: winner) }
        guard let rules = settings.protocols[request.incident.forceCode] else {
            throw RejectedMessage(
                errorClass: "protocol.missing",
                reason:
                    "force \(request.incident.forceCode) has no \"dispatch\" protocol section; add it to the force's protocol file and replay this dead letter"
            )
        }
        var problems: [String] = []
        if due.noticeId.isEmpty { problems.append("request.noticeId is empty") }
        if request.school.urn.isEmpty { problems.append("request.school.urn is empty") }
        if due.escalation && due.escalationContact == nil { problems.append("escalation without escalationContact") }
        guard problems.isEmpty else { throw RejectedMessage(errorClass: "payload.validation", reason: problems.joined(separator: "; ")) }

        let content = NoticeContent.render(due, under: rules)
        // An escalation belongs to the force that handles the incident: its own Education
        // Safeguarding Manager signs in to the force's account, whichever local authority the
        // child's school is in (a school across the border included).
        let account = due.escalation ? NoticeAccount.educationSafeguardingManager(forceCode: request.incident.forceCode) : request.school.urn
        let recipient: String?
        let telephoneReason: String?
        var contacts = request.school.contacts
        if due.escalation, let contact = due.escalationContact {
            recipient = contact.email
            contacts = [contact]
            telephoneReason = recipient == nil ? "escalation contact has no email address" : nil
        } else if let homeTask = TelephoneTaskReason.homeAuthorityTask(due, ringBy: acknowledgeDeadline(releaseAt: due.releaseAt, rules: rules)) {
            recipient = nil
            telephoneReason = homeTask
        } else if request.school.channel == .telephone {
            recipient = nil
            telephoneReason = "the protocol asks for a telephone call to this setting"
        } else {
            recipient = emailRecipient(request.school.contacts)
            telephoneReason = recipient == nil ? "the school has no safeguarding email contact" : nil
        }
        let ackBy = acknowledgeDeadline(releaseAt: due.releaseAt, rules: rules)
        var notice = NoticeRow(
            noticeId: due.noticeId, forceCode: request.incident.forceCode, occurrenceNumber: request.incident.occurrenceNumber,
            childId: request.child.childId, schoolURN: request.school.urn, schoolName: request.school.name, account: account,
            channel: recipient == nil ? NoticeChannel.telephone.rawValue : NoticeChannel.email.rawValue, recipient: recipient,
            escalation: due.escalation, payload: try WireFormat.data(minimised(due)), content: try JSONEncoder().encode(content),
            state: .pending, linkTokenHash: nil, linkExpiresAt: nil, releaseAt: due.releaseAt, acknowledgeBy: ackBy, receivedAt: now)
        if let withdrawal {
            // Cancelled after release and before it reached dispatch (the events topic can run
            // ahead of the due topic): kept for the audit, never sent.
            notice.state = .cancelled
            try notice.insert(db)
            try Audit.insertLocal(
                "withdrawn", notice: notice, detail: "not sent: withdrawn before dispatch received it: \(withdrawal)", db: db, now: now)
            return .withdrawn(reason: withdrawal)
        }
        try NoticeClaims.claim(notice, claimant: me, instanceId: settings.instanceId, causationId: messageId, db: db, outbox: outbox, now: now)

        if let recipient {
            let key = MessageID.derived(from: due.noticeId, "notice-mail")
            let (link, expires, message) = try linkMail(
                due, notice: &notice, recipient: recipient, rules: rules, settings: settings, idempotencyKey: key, now: now)
            try notice.insert(db)
            try OutgoingMail(
                noticeId: due.noticeId, idempotencyKey: key, recipient: recipient, message: Data(message.data.utf8),
                state: .pending, attempts: 0, nextAttemptAt: now, createdAt: now
            ).insert(db)
            try Audit.insertLocal(
                "mail-queued", notice: notice,
                detail:
                    "email to the \(due.escalation ? "education safeguarding manager" : "school") queued; link expires \(Timestamp.format(expires))",
                db: db, now: now)
            if try !HeldNotices.hasPassword(account, db: db) {
                try Audit.insertLocal(
                    "held-no-password", notice: notice,
                    detail:
                        "held: \(account) has no notice password, so the link could not be opened; it is sent once one is set (encompass notifications set-password)",
                    db: db, now: now)
            }
            return .mailQueued(link: link)
        }
        let reason = telephoneReason ?? "telephone"
        try notice.insert(db)
        try TelephoneTask(
            id: "t-" + due.noticeId, noticeId: due.noticeId, schoolURN: request.school.urn, schoolName: request.school.name,
            contacts: try JSONEncoder().encode(contacts), reason: reason, createdAt: now
        ).insert(db)
        // The audit event travels on `encompass.notice.events`: it says whom to ring, not the child's name.
        let audited = TelephoneTaskReason.homeAuthorityTask(due, ringBy: ackBy, namingChild: false) ?? reason
        try Audit.record(
            .telephoneTask, notice: notice, detail: "telephone task for MASH: \(audited)",
            eventId: MessageID.derived(from: messageId, "telephone-task"), causationId: messageId, db: db, outbox: outbox, now: now)
        return .telephoneTask(reason: reason)
    }

    /// A new link to the notice's page on this instance (its token hash and expiry set on
    /// `notice`) and the email that carries it.
    static func linkMail(
        _ due: NoticeDue, notice: inout NoticeRow, recipient: String, rules: DispatchProtocol, settings: DispatchService.Settings,
        idempotencyKey: String, now: Date
    ) throws -> (link: String, expires: Date, message: MailMessage) {
        let token = try Secrets.newToken()
        let expires = now.addingTimeInterval(TimeInterval((settings.linkExpiryHours ?? rules.linkExpiryHours) * 3600))
        let link = "\(settings.publicURL)/notice/\(token)"
        notice.linkTokenHash = Secrets.sha256Hex(token)
        notice.linkExpiresAt = expires
        let school = due.request.school
        let email = NoticeEmail.render(
            rules, schoolName: due.escalation ? "the Education Safeguarding Manager (a holiday escalation)" : school.name,
            link: link, expiresAt: expires)
        let message = MailMessage.compose(
            fromAddress: settings.fromAddress, fromName: rules.senderName, to: recipient,
            subject: email.subject, body: email.body, idempotencyKey: idempotencyKey, date: now)
        return (link, expires, message)
    }

    /// The NoticeDue as kept by dispatch: without the incident's parties and other children,
    /// which dispatch never needs (data minimisation).
    static func minimised(_ due: NoticeDue) -> NoticeDue {
        var copy = due
        copy.request.incident.parties = []
        copy.request.incident.children = []
        return copy
    }

    static func emailRecipient(_ contacts: [SchoolContact]) -> String? {
        for role in roleOrder {
            if let email = contacts.first(where: { $0.role.lowercased() == role && ($0.email ?? "").contains("@") })?.email { return email }
        }
        return contacts.first(where: { ($0.email ?? "").contains("@") })?.email
    }

    /// The protocol's time (10:00 London) on the release day; if the release is later than
    /// that, the same time the next day.
    public static func acknowledgeDeadline(releaseAt: Date, rules: DispatchProtocol) -> Date {
        let (hour, minute) = rules.acknowledgeBy ?? (10, 0)
        let day = CalendarDate(releaseAt)
        let deadline = day.at(hour: hour, minute: minute)
        return releaseAt < deadline ? deadline : day.adding(days: 1).at(hour: hour, minute: minute)
    }
}

extension Audit {
    /// A local audit row with a kind of dispatch's own (not a NoticeEvent kind).
    static func insertLocal(_ kind: String, notice: NoticeRow, detail: String?, db: Database, now: Date) throws {
        try recordLocal(kind, notice: notice, detail: detail, db: db, now: now)
    }
}

/// What a telephone task asks of the MASH, in plain words, where the notice cannot go to a
/// school: whom to ring, about which child, by when.
public enum TelephoneTaskReason {
    /// The task for a child on no school roll (the child's home local authority, account
    /// `LA<code>`) or for an out-of-area school with no contact held for it nor for its local
    /// authority; nil for any other notice. `namingChild` false leaves the child's name and
    /// date of birth out (for the audit event).
    public static func homeAuthorityTask(_ due: NoticeDue, ringBy: Date, namingChild: Bool = true) -> String? {
        let request = due.request, school = request.school
        guard !due.escalation else { return nil }
        let child = request.child
        let born = child.dateOfBirth.flatMap(CalendarDate.init(iso:)).map { ", born \(NoticeFormat.day($0))" } ?? ""
        let who = namingChild ? "\(child.givenName) \(child.familyName)\(born)" : "the child named in notice \(due.noticeId)"
        let incident = "domestic abuse incident \(request.incident.occurrenceNumber) on \(NoticeFormat.dateTime(request.incident.occurredAt))"
        let by = "Ring by \(NoticeFormat.dateTime(ringBy)) and mark this task done with what was agreed."
        let held = school.contacts.filter { $0.phone?.isEmpty == false }
            .map { "\($0.name ?? $0.role) on \($0.phone ?? "")" }.joined(separator: " or ")
        if school.urn.hasPrefix("LA") {
            let whom =
                held.isEmpty
                ? "\(school.localAuthorityName) local authority's children missing education or elective home education team (no education-otherwise contact is held for LA \(school.localAuthorityCode): add it with `encompass schools la-contacts import`)"
                : "\(school.localAuthorityName) local authority's education-otherwise contact, \(held)"
            return
                "Ring \(whom). Tell them that \(who), whom the police record as on no school roll (\(school.name)), was affected by \(incident), so that the local authority can support the child. \(by)"
        }
        guard school.channel == .telephone, request.resolution.contains(where: { $0.contains(ResolvedSchool.unroutedOutOfArea) }) else { return nil }
        let whom =
            held.isEmpty
            ? "the designated safeguarding lead of \(school.name) (URN \(school.urn), \(school.localAuthorityName), outside the force's area; no contact is held for the school nor for its local authority's Operation Encompass: find the school's number, and add the LA's contact with `encompass schools la-contacts import`)"
            : "the designated safeguarding lead of \(school.name) (URN \(school.urn), \(school.localAuthorityName), outside the force's area) on \(held)"
        return "Ring \(whom). Tell them that \(who), a pupil there, was affected by \(incident), as an Operation Encompass notice. \(by)"
    }
}

/// A notice cancelled after scheduling released it (a `cancelled` event on
/// `encompass.notice.events`, read by every instance): dispatch stops it if it has not sent it
/// yet (mail waiting for its time, the relay or the school's password; a telephone task not
/// yet made), marking it cancelled with the reason in its audit. One already sent cannot be
/// recalled: it is flagged for the MASH instead.
public enum NoticeWithdrawal {
    /// The reason of a cancellation recorded for `noticeId`, if any.
    static func cancellation(of noticeId: String, db: Database) throws -> String? {
        guard
            let entry = try AuditEntry.filter(Column("noticeId") == noticeId && Column("kind") == NoticeEvent.Kind.cancelled.rawValue)
                .order(Column("at")).fetchOne(db)
        else { return nil }
        return entry.detail ?? "cancelled"
    }

    public static func apply(_ event: NoticeEvent, db: Database, now: Date, logger: Logger) throws {
        guard var notice = try NoticeRow.fetchOne(db, key: event.noticeId) else { return }
        let reason = event.detail ?? "cancelled"
        guard notice.state != .cancelled else { return }
        let mail = try OutgoingMail.fetchOne(db, key: notice.noticeId)
        let task = try TelephoneTask.fetchOne(db, key: "t-" + notice.noticeId)
        let unsent = notice.sentAt == nil && (mail.map { $0.state == .pending } ?? (task?.doneAt == nil))
        guard unsent else {
            notice.flaggedAt = notice.flaggedAt ?? now
            notice.flagReason =
                "cancelled after it was sent\(notice.sentAt.map { " (\(Timestamp.format($0)))" } ?? ""): the school has it; the MASH follows up: \(reason)"
            try notice.update(db)
            try Audit.insertLocal("withdrawal-too-late", notice: notice, detail: notice.flagReason, db: db, now: now)
            logger.warning("cancellation arrived after the notice was sent", metadata: ["noticeId": .string(notice.noticeId)])
            return
        }
        if var mail {
            mail.state = .cancelled
            mail.message = nil // it holds the link token
            mail.lastError = "withdrawn: \(reason)"
            try mail.update(db)
        }
        if var task {
            task.doneAt = now
            task.doneBy = "nobody: the notice was withdrawn"
            task.note = reason
            try task.update(db)
        }
        notice.state = .cancelled
        notice.linkTokenHash = nil
        try notice.update(db)
        try Audit.insertLocal("withdrawn", notice: notice, detail: "not sent: withdrawn before dispatch sent it: \(reason)", db: db, now: now)
        logger.info("released notice withdrawn before sending", metadata: ["noticeId": .string(notice.noticeId)])
    }
}
