import EncompassModels
import ServiceRuntime

/// Intake: police records in (HTTP, spreadsheets, records-system feed), validated and de-duplicated, out on `encompass.incidents`.
///
/// The runtime gives the service its SQLite store, inbox, outbox, dead letters, HTTP
/// endpoint and graceful shutdown; this definition adds the service's own tables, handlers
/// and routes.
public enum IntakeService {
    public static func definition(_ configuration: ServiceConfiguration) throws -> ServiceDefinition {
        ServiceDefinition(
            service: .intake,
            produces: [Topics.incidents.name, Topics.history.name]
        )
    }
}
