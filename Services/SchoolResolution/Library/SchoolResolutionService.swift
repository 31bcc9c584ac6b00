import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

/// School resolution: verifies each child's school against the register, or asks Children's
/// Social Care, and emits notice requests.
///
/// Consumes `encompass.children` and `encompass.school.feedback` (work, key child id) and
/// `encompass.schools.register` (replicated: every instance holds the whole register) and
/// `encompass.school-resolution.changelog` (replicated: every child's open CSC requests, `CSCChangelog`);
/// produces `encompass.notice.requests` (key notice id: requests, and cancellations when a
/// school says the pupil no longer attends), the register updates it takes over HTTP, and the
/// redirect steps on `encompass.notice.events`. See docs/SCHOOLRESOLUTION.md.
public enum SchoolResolutionService {
    /// The service's own settings, from the environment.
    public struct Settings: ServiceOwnSettings {
        public static let service = ServiceName.schoolResolution
        /// The "schools" section of every force protocol, by force code.
        public var protocols: [String: SchoolsProtocol]
        /// Fill an empty register from the shipped 2018 list at first start (ENCOMPASS_SCHOOLS_SEED, default true).
        public var seedRegister: Bool
        /// Personal-data retention (ENCOMPASS_RETENTION_DAYS…, docs/SECURITY.md).
        public var retention: RetentionSettings
        /// How long a newly assigned partition of `encompass.children` is owned before the CSC
        /// requests of its children held by another store are restored, so the changelog replica
        /// can catch up first (ENCOMPASS_SCHOOL_RESOLUTION_RESTORE_GRACE_MS, default 2000).
        public var restoreGrace: Duration

        public init(
            protocols: [String: SchoolsProtocol], seedRegister: Bool = true, retention: RetentionSettings = RetentionSettings(),
            restoreGrace: Duration = .seconds(2)
        ) {
            self.protocols = protocols
            self.seedRegister = seedRegister
            self.retention = retention
            self.restoreGrace = restoreGrace
        }

        /// `ENCOMPASS_PROTOCOLS_DIR`, `ENCOMPASS_SCHOOLS_SEED`, `ENCOMPASS_SCHOOL_RESOLUTION_RESTORE_GRACE_MS`,
        /// `ENCOMPASS_RETENTION_…`.
        public static func fromEnvironment(_ environment: [String: String], runtime: ServiceConfiguration) throws(ConfigurationError) -> Settings {
            let env = EnvironmentReader(environment)
            let protocols: [String: SchoolsProtocol]
            do {
                protocols = try SchoolsProtocol.loadAll(
                    try ForceProtocols.load(directory: env.string("ENCOMPASS_PROTOCOLS_DIR") ?? ForceProtocols.bundledDirectory))
            } catch {
                throw ConfigurationError(variable: "ENCOMPASS_PROTOCOLS_DIR", problem: "gives an unusable force protocol: \(error)")
            }
            let grace = try env.int("ENCOMPASS_SCHOOL_RESOLUTION_RESTORE_GRACE_MS", in: 0...600_000) ?? 2000
            return Settings(
                protocols: protocols, seedRegister: try env.bool("ENCOMPASS_SCHOOLS_SEED") ?? true,
                retention: try RetentionSettings.fromEnvironment(environment), restoreGrace: .milliseconds(grace))
        }
    }

    public static func definition(settings: Settings) -> ServiceDefinition {
        let flow = SchoolFlow(protocols: settings.protocols)
        let changelog = CSCChangelog.make(grace: settings.restoreGrace)
        return ServiceDefinition(
            service: .schoolResolution,
            migrations: SchoolStore.migrations(seed: settings.seedRegister) + changelog.migrations,
            handlers: [
                TopicHandler.on(Topics.children.name, ChildIdentified.self) { envelope, ctx in
                    try flow.handleChild(envelope.payload, messageId: envelope.id, db: ctx.db, outbox: ctx.outbox, now: ctx.now, logger: ctx.logger)
                },
                TopicHandler.on(Topics.schoolFeedback.name, SchoolFeedback.self) { envelope, ctx in
                    try flow.handleFeedback(
                        envelope.payload, messageId: envelope.id, db: ctx.db, outbox: ctx.outbox, now: ctx.now, logger: ctx.logger)
                },
            ],
            replicated: [
                TopicHandler.bySchema(
                    Topics.schoolRegister.name,
                    [
                        LocalAuthorityContacts.schema: TopicHandler.on(Topics.schoolRegister.name, LocalAuthorityContacts.self) { envelope, ctx in
                            guard envelope.key == LocalAuthorityContacts.key(envelope.payload.laCode) else {
                                throw RejectedMessage(
                                    errorClass: "register.key-mismatch",
                                    reason:
                                        "record key \(envelope.key) is not LA\(envelope.payload.laCode); publish a local authority's contacts keyed LA<code>"
                                )
                            }
                            try SchoolStore.apply(envelope.payload, db: ctx.db)
                        }
                    ],
                    otherwise: TopicHandler.on(Topics.schoolRegister.name, SchoolRegisterUpdate.self) { envelope, ctx in
                        guard envelope.key == envelope.payload.school.urn else {
                            throw RejectedMessage(
                                errorClass: "register.key-mismatch",
                                reason:
                                    "record key \(envelope.key) is not the school's URN \(envelope.payload.school.urn); publish register updates keyed by URN"
                            )
                        }
                        try SchoolStore.apply(envelope.payload, db: ctx.db)
                    }),
                changelog.handler,
            ],
            produces: [Topics.noticeRequests.name, Topics.schoolRegister.name, Topics.noticeEvents.name, Topics.schoolRequestsChangelog.name],
            routes: { router, environment in
                // Notices to out-of-area schools with no contact for the school nor its local
                // authority: each is a telephone task for the MASH; how many there are is a gauge.
                let store = environment.store, metrics = environment.metrics
                metrics.addRefresher {
                    let unrouted =
                        (try? store.pool.read { db in
                            try Int.fetchOne(
                                db, sql: "SELECT count(*) FROM resolution WHERE outcome = 'notice' AND reasons LIKE ?",
                                arguments: ["%" + SchoolResolver.unroutedOutOfArea + "%"])
                        }) ?? 0
                    metrics.gauge(
                        "encompass_school_resolution_out_of_area_unrouted",
                        help:
                            "Notices to out-of-area schools with no contact held for the school nor its local authority (telephone tasks for the MASH)",
                        value: Double(unrouted))
                }
                SchoolsAPI(flow: flow, environment: environment).register(on: router)
            },
            background: [RetentionPurge.task(SchoolRetention.rules, settings: settings.retention), changelog.task]
        )
    }
}
