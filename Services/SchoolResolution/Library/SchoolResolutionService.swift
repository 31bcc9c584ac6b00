import EncompassModels
import ServiceRuntime

/// School resolution: verifies each child's school against the register, or asks Children's Social Care, and emits notice requests.
///
/// The runtime gives the service its SQLite store, inbox, outbox, dead letters, HTTP
/// endpoint and graceful shutdown; this definition adds the service's own tables, handlers
/// and routes.
public enum SchoolResolutionService {
    public static func definition(_ configuration: ServiceConfiguration) throws -> ServiceDefinition {
        ServiceDefinition(
            service: .schoolResolution,
            produces: [Topics.noticeRequests.name]
        )
    }
}
