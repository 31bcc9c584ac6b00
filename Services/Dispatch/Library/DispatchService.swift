import EncompassModels
import ServiceRuntime

/// Dispatch: renders each notice per force protocol, sends it securely and keeps its audit trail.
///
/// The runtime gives the service its SQLite store, inbox, outbox, dead letters, HTTP
/// endpoint and graceful shutdown; this definition adds the service's own tables, handlers
/// and routes.
public enum DispatchService {
    public static func definition(_ configuration: ServiceConfiguration) throws -> ServiceDefinition {
        ServiceDefinition(
            service: .dispatch,
            produces: [Topics.schoolFeedback.name, Topics.noticeEvents.name]
        )
    }
}
