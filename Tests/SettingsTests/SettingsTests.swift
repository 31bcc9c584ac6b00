import ChildResearchService
import DispatchService
import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import IntakeService
import Logging
import SchedulingService
import SchoolResolutionService
import ServiceRuntime
import Testing

/// Each service's settings (the common runtime configuration and its own) parsed once from an
/// environment dictionary, as `ServiceMain` does with the process environment.
@Suite("Service settings from an environment dictionary")
struct SettingsTests {
    /// Parses `service`'s whole settings (common and own) from `environment`; the common part.
    static func parse(_ service: ServiceName, _ environment: [String: String]) throws(ConfigurationError) -> ServiceConfiguration {
        switch service {
        case .intake: try ServiceSettings<IntakeService.Settings>.parse(environment).runtime
        case .childResearch: try ServiceSettings<ChildResearchService.Settings>.parse(environment).runtime
        case .schoolResolution: try ServiceSettings<SchoolResolutionService.Settings>.parse(environment).runtime
        case .scheduling: try ServiceSettings<SchedulingService.Settings>.parse(environment).runtime
        case .dispatch: try ServiceSettings<DispatchService.Settings>.parse(environment).runtime
        }
    }

    @Test("an empty environment gives every service its defaults", arguments: ServiceName.allCases)
    func defaults(service: ServiceName) throws {
        let runtime = try Self.parse(service, [:])
        #expect(runtime.service == service)
        #expect(runtime.httpPort == service.defaultHTTPPort)
        #expect(runtime.kafka.bootstrapServers == "localhost:9092")
        #expect(runtime.dataDirectory == "var/\(service.rawValue)")
        #expect(runtime.groupId == service.defaultGroupId)
        #expect(runtime.logLevel == .info && runtime.logFormat == .json)
        #expect(runtime.apiToken == nil && runtime.clockFile == nil)
    }

    @Test("the common variables, the same for every service", arguments: ServiceName.allCases)
    func common(service: ServiceName) throws {
        let bootstrap = TestPaths.temporaryDirectory("settings-bootstrap") + "/bootstrap"
        try "127.0.0.1:39092\n".write(toFile: bootstrap, atomically: true, encoding: .utf8)
        let runtime = try Self.parse(
            service,
            [
                "ENCOMPASS_KAFKA_BOOTSTRAP_FILE": bootstrap, "ENCOMPASS_KAFKA_PROPERTY_SECURITY_PROTOCOL": "SASL_SSL",
                "ENCOMPASS_KAFKA_CONSUMER_PROPERTY_FETCH_WAIT_MAX_MS": "10", "ENCOMPASS_GROUP_ID": "g", "ENCOMPASS_DATA_DIR": "/srv/x",
                "ENCOMPASS_INSTANCE_ID": "i-1", "ENCOMPASS_HTTP_HOST": "0.0.0.0", "ENCOMPASS_HTTP_PORT": "0", "ENCOMPASS_LOG_LEVEL": "debug",
                "ENCOMPASS_LOG_FORMAT": "text", "ENCOMPASS_TOPIC_PARTITIONS": "3", "ENCOMPASS_REPLICATION_FACTOR": "3",
                "ENCOMPASS_CREATE_TOPICS": "no", "ENCOMPASS_MAX_ATTEMPTS": "2", "ENCOMPASS_RETRY_BACKOFF_MS": "50", "ENCOMPASS_BATCH_SIZE": "7",
                "ENCOMPASS_INBOX_RETENTION_HOURS": "2", "ENCOMPASS_API_TOKEN": "t", "ENCOMPASS_CLOCK_FILE": "/tmp/c.json",
                "ENCOMPASS_OUTBOX_MAX_AGE_SECONDS": "9",
            ])
        #expect(runtime.kafka.bootstrapServers == "127.0.0.1:39092")
        #expect(runtime.kafka.properties == ["security.protocol": "SASL_SSL"])
        #expect(runtime.kafka.consumerProperties == ["fetch.wait.max.ms": "10"])
        #expect(runtime.kafka.clientId == "encompass-\(service.rawValue)-i-1")
        #expect(runtime.groupId == "g" && runtime.replicaGroupId == "g.replica.i-1")
        #expect(runtime.databasePath == "/srv/x/\(service.rawValue).sqlite")
        #expect(runtime.httpHost == "0.0.0.0" && runtime.httpPort == 0)
        #expect(runtime.logLevel == .debug && runtime.logFormat == .text)
        #expect(runtime.topicPartitions == 3 && runtime.replicationFactor == 3 && !runtime.createTopics)
        #expect(runtime.maxAttempts == 2 && runtime.retryBackoff == .milliseconds(50) && runtime.batchSize == 7)
        #expect(runtime.inboxRetention == .seconds(7200) && runtime.outboxMaxAge == .seconds(9))
        #expect(runtime.apiToken == "t" && runtime.clockFile == "/tmp/c.json")
    }

    @Test("intake's own settings")
    func intake() throws {
        let file = TestPaths.temporaryDirectory("settings-forces") + "/forces.json"
        try
            #"[{"code": "99", "name": "Test Constabulary", "occurrencePattern": "[0-9]{6}", "occurrenceFormat": "NNNNNN", "localPolicingAreas": ["North"]}]"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        let settings = try IntakeService.Settings.fromEnvironment([
            "ENCOMPASS_INTAKE_API_TOKEN": "intake-token", "ENCOMPASS_FORCES_FILE": file, "ENCOMPASS_RETENTION_DAYS": "90",
        ])
        #expect(settings.apiToken == "intake-token")
        #expect(settings.forces.forces.keys.sorted() == ["99"])
        #expect(settings.retention.days == 90)
        let builtIn = try IntakeService.Settings.fromEnvironment([:])
        #expect(builtIn.apiToken == nil && builtIn.forces.forces.keys.sorted() == ["05", "43"])
    }

    @Test("child research's own settings")
    func childResearch() throws {
        let settings = try ChildResearchService.Settings.fromEnvironment([
            "ENCOMPASS_RESEARCH_INDEX_CACHE_MIB": "64", "ENCOMPASS_RESEARCH_PROPOSAL_THRESHOLD": "0.4",
            "ENCOMPASS_RESEARCH_PERSON_THRESHOLD": "0.7", "ENCOMPASS_RESEARCH_CONFIDENT_THRESHOLD": "0.99",
            "ENCOMPASS_RESEARCH_MATCHER": "hand", "ENCOMPASS_RESEARCH_MODEL_EVERY": "10", "ENCOMPASS_RESEARCH_MODEL_CHECK_SECONDS": "0.5",
        ])
        #expect(settings.indexCacheMiB == 64)
        for force in ["43", "05", "99"] {
            let research = settings.research(forForce: force)
            #expect(research.proposalThreshold == 0.4 && research.personMatchThreshold == 0.7 && research.autoConfirm.threshold == 0.99)
        }
        #expect(!settings.matchModel.useLearned && settings.matchModel.every == 10 && settings.matchModel.checkInterval == .milliseconds(500))
    }

    @Test("school resolution's own settings")
    func schoolResolution() throws {
        let settings = try SchoolResolutionService.Settings.fromEnvironment([
            "ENCOMPASS_SCHOOLS_SEED": "false", "ENCOMPASS_SCHOOL_RESOLUTION_RESTORE_GRACE_MS": "0",
        ])
        #expect(!settings.seedRegister && settings.restoreGrace == .zero)
        #expect(settings.protocols.keys.sorted() == ["05", "43"])
    }

    @Test("scheduling's own settings")
    func scheduling() throws {
        let settings = try SchedulingService.Settings.fromEnvironment([
            "ENCOMPASS_SCHEDULING_INTERVAL_MS": "100", "ENCOMPASS_SCHEDULING_RESTORE_GRACE_MS": "10",
            "ENCOMPASS_ESM_EMAIL_43": "esm@oxfordshire.gov.uk", "ENCOMPASS_ESM_PHONE_43": "01865 000000",
        ])
        #expect(settings.releaseInterval == .milliseconds(100) && settings.restoreGrace == .milliseconds(10))
        let esm = try #require(settings.protocols["43"]?.educationSafeguardingManager)
        #expect(esm.email == "esm@oxfordshire.gov.uk" && esm.phone == "01865 000000")
    }

    @Test("dispatch's own settings: the relay is a value, its defaults follow the common configuration")
    func dispatch() throws {
        let settings = try ServiceSettings<DispatchService.Settings>.parse([
            "ENCOMPASS_HTTP_PORT": "9185", "ENCOMPASS_INSTANCE_ID": "dispatch-7",
            "ENCOMPASS_SMTP_URL": "smtps://relay.example:465", "ENCOMPASS_SMTP_FROM": "mash@police.example",
            "ENCOMPASS_SMTP_USERNAME": "u", "ENCOMPASS_SMTP_PASSWORD": "relay-secret", "ENCOMPASS_NOTICE_LINK_EXPIRY_HOURS": "48",
            "ENCOMPASS_DISPATCH_POLL_MS": "200", "ENCOMPASS_SMTP_RETRY_SECONDS": "5", "ENCOMPASS_SMTP_MAX_ATTEMPTS": "3",
            "ENCOMPASS_TRUST_FORWARDED_FOR": "true", "ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES": "5",
            "ENCOMPASS_DISPATCH_RESTORE_GRACE_MS": "100",
        ]).own
        #expect(settings.mail == .smtp(url: "smtps://relay.example:465", username: "u", password: "relay-secret", tls: .required))
        #expect(!"\(settings.mail)".contains("relay-secret"))
        #expect(settings.fromAddress == "mash@police.example")
        #expect(settings.publicURL == "http://127.0.0.1:9185" && settings.instanceId == "dispatch-7")
        #expect(settings.linkExpiryHours == 48 && settings.pollInterval == .milliseconds(200))
        #expect(settings.retryBase == 5 && settings.maxAttempts == 3 && settings.trustForwardedFor)
        #expect(settings.unsentAlertAfter == 300 && settings.restoreGrace == .milliseconds(100))
    }

    /// One bad or missing variable, and the variable its error must name.
    struct Bad: Sendable, CustomTestStringConvertible {
        var service: ServiceName
        var environment: [String: String]
        var variable: String
        var testDescription: String {
            "\(service.rawValue): \(environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
        }
    }

    static let missing = "/no/such/encompass-path"

    /// A forces file holding `text`.
    static func forcesFile(_ text: String) -> String {
        let path = TestPaths.temporaryDirectory("settings-bad-forces") + "/forces.json"
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let bad: [Bad] = {
        var rows: [Bad] = []
        let common: [(String, String)] = [
            ("ENCOMPASS_KAFKA_BOOTSTRAP_FILE", missing), ("ENCOMPASS_HTTP_PORT", "eighty"), ("ENCOMPASS_HTTP_PORT", "70000"),
            ("ENCOMPASS_LOG_LEVEL", "loud"), ("ENCOMPASS_LOG_FORMAT", "xml"), ("ENCOMPASS_TOPIC_PARTITIONS", "0"),
            ("ENCOMPASS_REPLICATION_FACTOR", "11"), ("ENCOMPASS_CREATE_TOPICS", "maybe"), ("ENCOMPASS_MAX_ATTEMPTS", "0"),
            ("ENCOMPASS_RETRY_BACKOFF_MS", "0"), ("ENCOMPASS_BATCH_SIZE", "many"), ("ENCOMPASS_INBOX_RETENTION_HOURS", "0"),
            ("ENCOMPASS_OUTBOX_MAX_AGE_SECONDS", "-1"), ("ENCOMPASS_RETENTION_DAYS", "10"), ("ENCOMPASS_RETENTION_INTERVAL_MINUTES", "0"),
            ("ENCOMPASS_RETENTION_BATCH", "0"),
        ]
        for service in ServiceName.allCases {
            rows += common.map { Bad(service: service, environment: [$0.0: $0.1], variable: $0.0) }
        }
        let own: [(ServiceName, [String: String], String)] = [
            (.intake, ["ENCOMPASS_FORCES_FILE": missing], "ENCOMPASS_FORCES_FILE"),
            (.intake, ["ENCOMPASS_FORCES_FILE": forcesFile("not json")], "ENCOMPASS_FORCES_FILE"),
            (
                .intake,
                [
                    "ENCOMPASS_FORCES_FILE": forcesFile(
                        #"[{"code": "99", "name": "X", "occurrencePattern": "[0-9", "occurrenceFormat": "N", "localPolicingAreas": []}]"#)
                ],
                "ENCOMPASS_FORCES_FILE"
            ),
            (.childResearch, ["ENCOMPASS_PROTOCOLS_DIR": missing], "ENCOMPASS_PROTOCOLS_DIR"),
            (.childResearch, ["ENCOMPASS_RESEARCH_INDEX_CACHE_MIB": "1"], "ENCOMPASS_RESEARCH_INDEX_CACHE_MIB"),
            (.childResearch, ["ENCOMPASS_RESEARCH_PROPOSAL_THRESHOLD": "1.5"], "ENCOMPASS_RESEARCH_PROPOSAL_THRESHOLD"),
            (.childResearch, ["ENCOMPASS_RESEARCH_PERSON_THRESHOLD": "high"], "ENCOMPASS_RESEARCH_PERSON_THRESHOLD"),
            (.childResearch, ["ENCOMPASS_RESEARCH_CONFIDENT_THRESHOLD": "-0.1"], "ENCOMPASS_RESEARCH_CONFIDENT_THRESHOLD"),
            (.childResearch, ["ENCOMPASS_RESEARCH_MATCHER": "neural"], "ENCOMPASS_RESEARCH_MATCHER"),
            (.childResearch, ["ENCOMPASS_RESEARCH_MODEL_EVERY": "0"], "ENCOMPASS_RESEARCH_MODEL_EVERY"),
            (.childResearch, ["ENCOMPASS_RESEARCH_MODEL_CHECK_SECONDS": "0"], "ENCOMPASS_RESEARCH_MODEL_CHECK_SECONDS"),
            (.schoolResolution, ["ENCOMPASS_PROTOCOLS_DIR": missing], "ENCOMPASS_PROTOCOLS_DIR"),
            (.schoolResolution, ["ENCOMPASS_SCHOOLS_SEED": "perhaps"], "ENCOMPASS_SCHOOLS_SEED"),
            (.schoolResolution, ["ENCOMPASS_SCHOOL_RESOLUTION_RESTORE_GRACE_MS": "-1"], "ENCOMPASS_SCHOOL_RESOLUTION_RESTORE_GRACE_MS"),
            (.scheduling, ["ENCOMPASS_PROTOCOLS_DIR": missing], "ENCOMPASS_PROTOCOLS_DIR"),
            (.scheduling, ["ENCOMPASS_BANK_HOLIDAYS_FILE": missing], "ENCOMPASS_BANK_HOLIDAYS_FILE"),
            (.scheduling, ["ENCOMPASS_TERM_DATES_DIR": missing], "ENCOMPASS_TERM_DATES_DIR"),
            (.scheduling, ["ENCOMPASS_ESM_EMAIL_43": "nobody"], "ENCOMPASS_ESM_EMAIL_43"),
            (.scheduling, ["ENCOMPASS_ESM_PHONE_05": "999"], "ENCOMPASS_ESM_PHONE_05"),
            (.scheduling, ["ENCOMPASS_SCHEDULING_INTERVAL_MS": "1"], "ENCOMPASS_SCHEDULING_INTERVAL_MS"),
            (.scheduling, ["ENCOMPASS_SCHEDULING_RESTORE_GRACE_MS": "soon"], "ENCOMPASS_SCHEDULING_RESTORE_GRACE_MS"),
            (.dispatch, ["ENCOMPASS_SMTP_URL": "smtp://relay.example:587"], "ENCOMPASS_SMTP_FROM"),
            (.dispatch, ["ENCOMPASS_SMTP_URL": "http://relay.example", "ENCOMPASS_SMTP_FROM": "a@b"], "ENCOMPASS_SMTP_URL"),
            (
                .dispatch, ["ENCOMPASS_SMTP_URL": "smtp://relay.example:587", "ENCOMPASS_SMTP_FROM": "a@b", "ENCOMPASS_SMTP_TLS": "sometimes"],
                "ENCOMPASS_SMTP_TLS"
            ),
            (
                .dispatch, ["ENCOMPASS_SMTP_URL": "smtp://relay.example:25", "ENCOMPASS_SMTP_FROM": "a@b", "ENCOMPASS_SMTP_TLS": "none"],
                "ENCOMPASS_SMTP_TLS"
            ),
            (.dispatch, ["ENCOMPASS_PROTOCOLS_DIR": missing], "ENCOMPASS_PROTOCOLS_DIR"),
            (.dispatch, ["ENCOMPASS_NOTICE_LINK_EXPIRY_HOURS": "0"], "ENCOMPASS_NOTICE_LINK_EXPIRY_HOURS"),
            (.dispatch, ["ENCOMPASS_DISPATCH_POLL_MS": "1"], "ENCOMPASS_DISPATCH_POLL_MS"),
            (.dispatch, ["ENCOMPASS_SMTP_RETRY_SECONDS": "0"], "ENCOMPASS_SMTP_RETRY_SECONDS"),
            (.dispatch, ["ENCOMPASS_SMTP_MAX_ATTEMPTS": "51"], "ENCOMPASS_SMTP_MAX_ATTEMPTS"),
            (.dispatch, ["ENCOMPASS_TRUST_FORWARDED_FOR": "maybe"], "ENCOMPASS_TRUST_FORWARDED_FOR"),
            (.dispatch, ["ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES": "0"], "ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES"),
            (.dispatch, ["ENCOMPASS_DISPATCH_RESTORE_GRACE_MS": "-5"], "ENCOMPASS_DISPATCH_RESTORE_GRACE_MS"),
        ]
        rows += own.map { Bad(service: $0.0, environment: $0.1, variable: $0.2) }
        return rows
    }()

    @Test("each bad or missing variable stops the parse with an error that names it", arguments: bad)
    func refused(_ row: Bad) {
        do {
            _ = try Self.parse(row.service, row.environment)
            Issue.record("parsed without an error")
        } catch {
            #expect(error.variable == row.variable)
            #expect(error.description.hasPrefix("configuration error: \(row.variable) "))
            #expect(error.problem.count > 10, "says what is wrong and what to set: \(error.problem)")
        }
    }
}
