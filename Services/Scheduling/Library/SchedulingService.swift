import EncompassModels
import ServiceRuntime

/// Scheduling: holds each notice until the right school morning and releases it to dispatch exactly once in effect.
///
/// The runtime gives the service its SQLite store, inbox, outbox, dead letters, HTTP
/// endpoint and graceful shutdown; this definition adds the service's own tables, handlers
/// and routes.
public enum SchedulingService {
    public static func definition(_ configuration: ServiceConfiguration) throws -> ServiceDefinition {
        ServiceDefinition(
            service: .scheduling,
            produces: [Topics.noticesDue.name, Topics.schedulingChangelog.name, Topics.noticeEvents.name]
        )
    }
}
