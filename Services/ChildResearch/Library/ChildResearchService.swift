import EncompassModels
import ServiceRuntime

/// Child research: finds children the officer did not record in earlier records, and passes every child on `encompass.children`.
///
/// The runtime gives the service its SQLite store, inbox, outbox, dead letters, HTTP
/// endpoint and graceful shutdown; this definition adds the service's own tables, handlers
/// and routes.
public enum ChildResearchService {
    public static func definition(_ configuration: ServiceConfiguration) throws -> ServiceDefinition {
        ServiceDefinition(
            service: .childResearch,
            produces: [Topics.children.name, Topics.reviewDecisions.name]
        )
    }
}
