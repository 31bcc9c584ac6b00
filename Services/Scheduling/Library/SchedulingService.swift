import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging
import ServiceRuntime

/// Scheduling: holds each notice until the right school morning and releases it to dispatch exactly once in effect.
///
/// Requests (`encompass.notice.requests`, key notice id) are scheduled by the owner of their
/// partition; the state goes to `encompass.scheduling.changelog`, which every instance reads
/// whole (a standby replica of every partition). A background loop releases due notices of
/// the partitions this instance owns. docs/SCHEDULING.md describes the design.
public enum SchedulingService {
    public struct Settings: ServiceOwnSettings {
        public static let service = ServiceName.scheduling
        public var calendars: SchoolCalendars
        public var protocols: [String: SchedulingProtocol]
        /// How often the release loop looks for due notices (real time).
        public var releaseInterval: Duration
        /// How long a newly assigned request partition is owned before its notices are released,
        /// so the changelog replica can catch up first (as Kafka Streams restores a task's state
        /// before processing). A heuristic: a release before the replica caught up is still
        /// dropped downstream by its derived id.
        public var restoreGrace: Duration
        /// Personal-data retention (ENCOMPASS_RETENTION_DAYS…, docs/SECURITY.md).
        public var retention: RetentionSettings

        public init(
            calendars: SchoolCalendars, protocols: [String: SchedulingProtocol], releaseInterval: Duration = .seconds(1),
            restoreGrace: Duration = .seconds(2), retention: RetentionSettings = RetentionSettings()
        ) {
            self.calendars = calendars
            self.protocols = protocols
            self.releaseInterval = releaseInterval
            self.restoreGrace = restoreGrace
            self.retention = retention
        }

        /// One line per force whose escalation contact is still a placeholder, saying how to set it.
        public var contactWarnings: [String] {
            protocols.keys.sorted().compactMap { code in
                let problems = protocols[code]!.contactPlaceholders
                guard !problems.isEmpty else { return nil }
                return
                    "force \(code): the Education Safeguarding Manager's \(problems.joined(separator: " and ")) is a placeholder, so escalations cannot reach anyone; set ENCOMPASS_ESM_EMAIL_\(code) and ENCOMPASS_ESM_PHONE_\(code) (and ENCOMPASS_ESM_NAME_\(code)), or scheduling.educationSafeguardingManager in the force's protocol file (ENCOMPASS_PROTOCOLS_DIR)"
            }
        }

        /// `ENCOMPASS_ESM_NAME_<force>`, `ENCOMPASS_ESM_EMAIL_<force>`, `ENCOMPASS_ESM_PHONE_<force>`
        /// replace the fields of the force's escalation contact from its protocol file.
        static func contactOverrides(_ protocols: [String: SchedulingProtocol], _ env: EnvironmentReader) throws(ConfigurationError) -> [String:
            SchedulingProtocol]
        {
            var result = protocols
            for (code, var force) in protocols {
                let name = env.string("ENCOMPASS_ESM_NAME_\(code)"), email = env.string("ENCOMPASS_ESM_EMAIL_\(code)")
                let phone = env.string("ENCOMPASS_ESM_PHONE_\(code)")
                guard name != nil || email != nil || phone != nil else { continue }
                if let email, email.split(separator: "@").count != 2 {
                    throw ConfigurationError(
                        variable: "ENCOMPASS_ESM_EMAIL_\(code)", problem: "is '\(email)'; use the duty Education Safeguarding Manager's email address"
                    )
                }
                if let phone, phone.filter(\.isNumber).count < 10 {
                    throw ConfigurationError(
                        variable: "ENCOMPASS_ESM_PHONE_\(code)",
                        problem: "is '\(phone)'; use the duty Education Safeguarding Manager's full telephone number")
                }
                var contact = force.educationSafeguardingManager ?? SchoolContact(role: "esm")
                contact.name = name ?? contact.name
                contact.email = email ?? contact.email
                contact.phone = phone ?? contact.phone
                force.educationSafeguardingManager = contact
                result[code] = force
            }
            return result
        }

        /// `ENCOMPASS_BANK_HOLIDAYS_FILE`, `ENCOMPASS_TERM_DATES_DIR`, `ENCOMPASS_PROTOCOLS_DIR`,
        /// `ENCOMPASS_ESM_{NAME,EMAIL,PHONE}_<force>`,
        /// `ENCOMPASS_SCHEDULING_INTERVAL_MS`, `ENCOMPASS_SCHEDULING_RESTORE_GRACE_MS`, `ENCOMPASS_RETENTION_…`.
        public static func fromEnvironment(_ environment: [String: String], runtime: ServiceConfiguration) throws(ConfigurationError) -> Settings {
            let env = EnvironmentReader(environment)
            let holidays: BankHolidays
            do {
                holidays = try BankHolidays.load(path: env.string("ENCOMPASS_BANK_HOLIDAYS_FILE"))
            } catch {
                throw ConfigurationError(variable: "ENCOMPASS_BANK_HOLIDAYS_FILE", problem: "— \(error.description)")
            }
            var calendars: SchoolCalendars
            do {
                calendars = try SchoolCalendars.load(termDatesDirectory: env.string("ENCOMPASS_TERM_DATES_DIR"))
            } catch {
                throw ConfigurationError(variable: "ENCOMPASS_TERM_DATES_DIR", problem: "— \(error.description)")
            }
            calendars = SchoolCalendars(bankHolidays: holidays, localAuthorities: calendars.localAuthorities)
            var protocols: [String: SchedulingProtocol]
            do {
                protocols = try SchedulingProtocol.loadAll(
                    try ForceProtocols.load(directory: env.string("ENCOMPASS_PROTOCOLS_DIR") ?? ForceProtocols.bundledDirectory))
            } catch {
                throw ConfigurationError(variable: "ENCOMPASS_PROTOCOLS_DIR", problem: "— \(error)")
            }
            protocols = try contactOverrides(protocols, env)
            let interval = try env.int("ENCOMPASS_SCHEDULING_INTERVAL_MS", in: 10...600_000) ?? 1000
            let grace = try env.int("ENCOMPASS_SCHEDULING_RESTORE_GRACE_MS", in: 0...600_000) ?? 2000
            return Settings(
                calendars: calendars, protocols: protocols, releaseInterval: .milliseconds(interval),
                restoreGrace: .milliseconds(grace), retention: try RetentionSettings.fromEnvironment(environment))
        }
    }

    public static func definition(settings: Settings) -> ServiceDefinition {
        let dueNow = Wakeup()
        return ServiceDefinition(
            service: .scheduling,
            migrations: Scheduler.migrations,
            handlers: [requestHandler(settings: settings, dueNow: dueNow)],
            replicated: [changelogHandler()],
            produces: [Topics.noticesDue.name, Topics.schedulingChangelog.name, Topics.noticeEvents.name],
            routes: { router, environment in
                // Placeholder escalation contacts do not stop the service (a demo runs with
                // them), nor do term dates running out or approximate: logged at start and
                // listed by `GET /v1/readiness`.
                for warning in settings.contactWarnings { environment.logger.warning("not ready to escalate: \(warning)") }
                for warning in settings.calendars.dataWarnings(today: CalendarDate(environment.clock.now())) {
                    environment.logger.warning("term dates: \(warning)")
                }
                SchedulingAPI(environment: environment, warnings: settings.contactWarnings, calendars: settings.calendars).register(on: router)
                SchedulingAPI.registerCalendarMetrics(settings.calendars, environment: environment)
            },
            background: [
                releaser(interval: settings.releaseInterval, restoreGrace: settings.restoreGrace, dueNow: dueNow),
                RetentionPurge.task(SchedulingRetention.rules, settings: settings.retention),
            ]
        )
    }

    static func requestHandler(settings: Settings, dueNow: Wakeup = Wakeup()) -> TopicHandler {
        let scheduler = Scheduler(calendars: settings.calendars, protocols: settings.protocols, dueNow: dueNow.signal)
        let topic = Topics.noticeRequests.name
        let cancellations = TopicHandler.on(topic, NoticeCancelled.self) { envelope, ctx in
            try scheduler.cancel(envelope, partition: Int(ctx.record.partition), ctx: ctx)
        }
        return TopicHandler.bySchema(
            topic, [NoticeCancelled.schema: cancellations],
            otherwise: TopicHandler.on(topic, NoticeRequested.self) { envelope, ctx in
                try scheduler.schedule(envelope, partition: Int(ctx.record.partition), ctx: ctx)
            })
    }

    static func changelogHandler() -> TopicHandler {
        TopicHandler.on(
            Topics.schedulingChangelog.name, SchedulingChangelog.self,
            alreadyHeld: { messageId, record, db in
                guard let key = record.keyString else { return false }
                return try Scheduler.holdsChangelog(messageId, noticeId: key, db: db)
            },
            tombstone: { key, db, _ in
                // An erasure of the key on the compacted topic (an operator's; the owner's own
                // retention purge publishes a `forgotten` marker instead): the copy held here goes too.
                try SchedulingRetention.forget(key, db: db)
            }
        ) { envelope, ctx in
            try Scheduler.apply(envelope.payload, messageId: envelope.id, message: ctx.record.value, db: ctx.db)
        }
    }

    /// Every `interval` (real time), and at once when `dueNow` is signalled (a notice due now was
    /// stored), releases the due notices of the request partitions this instance has owned for at
    /// least `restoreGrace`, by the service clock.
    public static func releaser(interval: Duration, restoreGrace: Duration = .zero, dueNow: Wakeup = Wakeup()) -> BackgroundTask {
        BackgroundTask(name: "release-due-notices") { environment in
            var partitions = SettledPartitions(topic: Topics.noticeRequests.name, grace: restoreGrace)
            while !Task.isCancelled {
                let owned = partitions.update(environment.ownedPartitions()).settled
                if !owned.isEmpty {
                    let now = environment.clock.now()
                    do {
                        var released: [String]
                        repeat {
                            released = try await environment.write { db, outbox in
                                try Scheduler.releaseDue(now: now, partitions: owned, db: db, outbox: outbox)
                            }
                            if !released.isEmpty {
                                environment.logger.info(
                                    "notices released",
                                    metadata: [
                                        "count": "\(released.count)", "notices": .string(released.prefix(20).joined(separator: ",")),
                                    ])
                            }
                        } while released.count >= 500 && !Task.isCancelled
                    } catch {
                        environment.logger.error("releasing due notices failed; retrying", metadata: ["error": "\(error)"])
                    }
                }
                await dueNow.wait(timeout: interval)
                try Task.checkCancellation()
            }
        }
    }
}
