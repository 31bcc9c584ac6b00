import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import ServiceRuntime

/// Intake: police records in (HTTP, spreadsheets, records-system feed), validated and
/// de-duplicated, out on `encompass.incidents`.
///
/// Every submission travels through `encompass.incidents.raw` keyed by occurrence number, so
/// one instance (the partition's owner) decides whether it is new, an amendment or a replay.
public enum IntakeService {
    /// Intake's own settings, from the environment.
    public struct Settings: ServiceOwnSettings {
        public static let service = ServiceName.intake

        /// Bearer token for POST /v1/incidents (ENCOMPASS_INTAKE_API_TOKEN). Without it the
        /// endpoint answers 503.
        public var apiToken: String?
        public var forces: ForceRegistry
        /// Personal-data retention (ENCOMPASS_RETENTION_DAYS…, docs/SECURITY.md).
        public var retention: RetentionSettings

        public init(apiToken: String?, forces: ForceRegistry, retention: RetentionSettings = RetentionSettings()) {
            self.apiToken = apiToken
            self.forces = forces
            self.retention = retention
        }

        /// `ENCOMPASS_INTAKE_API_TOKEN`, `ENCOMPASS_FORCES_FILE`, `ENCOMPASS_RETENTION_…`.
        public static func fromEnvironment(_ environment: [String: String], runtime: ServiceConfiguration) throws(ConfigurationError) -> Settings {
            let env = EnvironmentReader(environment)
            return Settings(
                apiToken: env.string("ENCOMPASS_INTAKE_API_TOKEN"), forces: try ForceRegistry.load(path: env.string("ENCOMPASS_FORCES_FILE")),
                retention: try RetentionSettings.fromEnvironment(environment))
        }
    }

    public static func definition(settings: Settings) -> ServiceDefinition {
        let validator = IncidentValidator(forces: settings.forces)
        return ServiceDefinition(
            service: .intake,
            migrations: [OccurrenceLedger.migration],
            handlers: [rawHandler(validator: validator)],
            produces: [Topics.incidents.name, Topics.history.name, Topics.incidentsRaw.name],
            routes: { router, environment in
                let api = IncidentAPI(validator: validator, apiToken: settings.apiToken, environment: environment)
                // Spools of uploads a crash interrupted: the upload was never answered, so the
                // sender sends it again; they hold personal data and are not kept.
                SpreadsheetReceiver.removeSpools(in: api.spoolDirectory)
                api.register(on: router)
            },
            background: [RetentionPurge.task(IntakeRetention.rules, settings: settings.retention)]
        )
    }

    /// The dead letter that keeps what was set aside from an accepted incident (its adults'
    /// bad or unknown fields), so that it is not lost silently: the submission as sent, listed
    /// with the open dead letters (`encompass dlq`, the console), to correct and replay (an
    /// amendment) or discard.
    static let setAsideClass = "payload.field-set-aside"

    static func setAsideMessage(_ warnings: [FieldError]) -> String {
        "accepted for its children without: " + warnings.map(\.description).joined(separator: "; ")
            + ". Replay this dead letter with the field corrected (the incident is amended), or discard it"
    }

    /// Applies submissions from `encompass.incidents.raw`: an Encompass envelope
    /// (`encompass.incident`) or a bare incident JSON object from a records system.
    static func rawHandler(validator: IncidentValidator) -> TopicHandler {
        TopicHandler(topic: Topics.incidentsRaw.name) { record, db, outbox, now, logger in
            let submission = try Submission.decode(record)
            return try InboxEntry.applyOnce(messageId: submission.messageId, record: record, db: db, now: now) {
                let incident = validator.forces.prepare(submission.incident)
                // Intake's own APIs checked the fields of what they queued and wrote only known
                // ones; a records system's submissions are checked for unknown fields here.
                let unknown =
                    submission.source.hasPrefix("intake-") ? [] : submission.payloadObject(record).map(IncidentShape.unknownFields(inObject:)) ?? []
                let review = validator.review(incident, now: now, unknownFields: unknown)
                guard review.errors.isEmpty else { throw EnvelopeError.validationFailed(review.errors) }
                for warning in review.warnings {
                    logger.warning(
                        "adult field set aside; incident accepted for its children",
                        metadata: [
                            "occurrence": .string(incident.occurrenceNumber), "field": .string(warning.field),
                            "reason": .string(warning.message), "source": .string(submission.source),
                        ])
                }
                try OccurrenceLedger.apply(
                    review.incident, source: submission.source, causationId: submission.messageId,
                    db: db, outbox: outbox, now: now)
                if !review.warnings.isEmpty {
                    try DeadLetterWriter.write(
                        db: db, service: .intake, record: record, errorClass: setAsideClass,
                        message: setAsideMessage(review.warnings), attempts: 1, firstFailedAt: now, now: now, outbox: outbox)
                }
            }
        }
    }
}

/// One submission read from the raw topic.
struct Submission {
    var incident: Incident
    var messageId: String
    var source: String
    /// The incident is the envelope's payload (else the record is a bare incident).
    var isEnvelope = false

    /// The incident's own JSON, parsed: the record's value, or its envelope's `payload`.
    func payloadObject(_ record: KafkaRecord) -> Any? {
        let value = try? JSONSerialization.jsonObject(with: Data(record.value))
        return isEnvelope ? (value as? [String: Any])?["payload"] : value
    }

    static func decode(_ record: KafkaRecord) throws(EnvelopeError) -> Submission {
        struct Probe: Decodable { var schema: String? }
        let probe: Probe
        do {
            probe = try WireFormat.value(Probe.self, from: Data(record.value))
        } catch {
            throw .notJSON(WireFormat.describe(error))
        }
        if probe.schema != nil {
            let envelope = try WireFormat.decode(Incident.self, from: record.value)
            return Submission(incident: envelope.payload, messageId: envelope.id, source: envelope.producer, isEnvelope: true)
        }
        do {
            let incident = try WireFormat.value(Incident.self, from: Data(record.value))
            return Submission(
                incident: incident, messageId: MessageID.derived(from: "\(record.topic)/\(record.partition)/\(record.offset)", "feed"),
                source: "feed")
        } catch {
            throw .invalidPayload(WireFormat.describe(error))
        }
    }
}

extension Incident {
    /// Trimmed identifiers and canonical postcodes, so the same incident typed twice compares equal.
    public func normalised() -> Incident {
        func address(_ a: PostalAddress) -> PostalAddress {
            var a = a
            a.lines = a.lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            a.postcode = UKPostcode.normalise(a.postcode) ?? a.postcode
            return a
        }
        var copy = self
        copy.occurrenceNumber = occurrenceNumber.trimmingCharacters(in: .whitespaces)
        copy.forceCode = forceCode.trimmingCharacters(in: .whitespaces)
        copy.incidentAddress = address(incidentAddress)
        func text(_ value: String?) -> String? {
            value.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        copy.circumstances = text(circumstances)
        copy.safeguardingInformation = text(safeguardingInformation)
        copy.parties = parties.map { party in
            var party = party
            party.givenName = party.givenName.trimmingCharacters(in: .whitespaces)
            party.familyName = party.familyName.trimmingCharacters(in: .whitespaces)
            party.address = party.address.map(address)
            return party
        }
        copy.children = children.map { child in
            var child = child
            child.givenName = child.givenName.trimmingCharacters(in: .whitespaces)
            child.familyName = child.familyName.trimmingCharacters(in: .whitespaces)
            child.homeAddress = child.homeAddress.map(address)
            return child
        }
        return copy
    }
}
