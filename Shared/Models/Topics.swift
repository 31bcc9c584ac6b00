/// The five services. Their raw values name executables, consumer groups, stores and
/// dead-letter topics.
public enum ServiceName: String, Sendable, CaseIterable, Codable {
    case intake
    case childResearch = "child-research"
    case schoolResolution = "school-resolution"
    case scheduling
    case dispatch

    /// The topics the service's consumer group shares out between its instances (its work).
    /// Replicated topics (read whole by every instance) are read by per-instance groups.
    public var workTopics: [String] {
        switch self {
        case .intake: [Topics.incidentsRaw.name]
        case .childResearch: [Topics.incidents.name, Topics.reviewDecisions.name]
        case .schoolResolution: [Topics.children.name, Topics.schoolFeedback.name]
        case .scheduling: [Topics.noticeRequests.name]
        case .dispatch: [Topics.noticesDue.name]
        }
    }

    /// The topics every instance reads whole, each under a group of its own
    /// (`<group>.replica.<instance id>`): their lag is per instance.
    public var replicatedTopics: [String] {
        switch self {
        case .intake: []
        case .childResearch: [Topics.history.name, Topics.incidents.name, Topics.reviewProposals.name]
        case .schoolResolution: [Topics.schoolRegister.name, Topics.schoolRequestsChangelog.name]
        case .scheduling: [Topics.schedulingChangelog.name]
        case .dispatch: [Topics.noticeEvents.name, Topics.dispatchAccounts.name, Topics.dispatchChangelog.name]
        }
    }

    /// Each service's dead-letter topic.
    public var deadLetterTopic: String { "encompass.dlq.\(rawValue)" }
    /// Default consumer group.
    public var defaultGroupId: String { "encompass-\(rawValue)" }
    /// Default HTTP port for /healthz, /readyz, /metrics and the service's own API.
    public var defaultHTTPPort: Int {
        switch self {
        case .intake: 8081
        case .childResearch: 8082
        case .schoolResolution: 8083
        case .scheduling: 8084
        case .dispatch: 8085
        }
    }
}

/// One Kafka topic of the pipeline: its name, key and who writes and reads it.
public struct TopicDefinition: Sendable, Hashable {
    public let name: String
    /// What the record key is (it decides partitioning and so ordering).
    public let key: String
    public let producers: [String]
    public let consumers: [String]
    /// Compacted (latest value per key kept) rather than deleted by age.
    public let compacted: Bool

    public init(name: String, key: String, producers: [String], consumers: [String], compacted: Bool = false) {
        self.name = name
        self.key = key
        self.producers = producers
        self.consumers = consumers
        self.compacted = compacted
    }
}

/// Every topic of the pipeline, in one place. docs/ARCHITECTURE.md describes the flow.
public enum Topics {
    public static let incidentsRaw = TopicDefinition(
        name: "encompass.incidents.raw", key: "occurrence number",
        producers: ["police records system feed"], consumers: ["intake"])
    public static let incidents = TopicDefinition(
        name: "encompass.incidents", key: "occurrence number",
        producers: ["intake"], consumers: ["child-research"])
    public static let history = TopicDefinition(
        name: "encompass.history", key: "occurrence number",
        producers: ["intake (history import)"], consumers: ["child-research (every instance, own group)"])
    public static let reviewDecisions = TopicDefinition(
        name: "encompass.review.decisions", key: "occurrence number",
        producers: ["child-research (review API/CLI)"], consumers: ["child-research"])
    /// The latest state of every proposed child (pending, confirmed, rejected, withdrawn), so every
    /// child-research instance can list the whole review queue and accept any decision.
    public static let reviewProposals = TopicDefinition(
        name: "encompass.review.proposals", key: "proposal id",
        producers: ["child-research (instance owning the occurrence)"], consumers: ["child-research (every instance, own group)"],
        compacted: true)
    public static let children = TopicDefinition(
        name: "encompass.children", key: "child id",
        producers: ["child-research"], consumers: ["school-resolution"])
    public static let schoolFeedback = TopicDefinition(
        name: "encompass.school.feedback", key: "child id",
        producers: ["dispatch"], consumers: ["school-resolution"])
    public static let schoolRegister = TopicDefinition(
        name: "encompass.schools.register", key: "URN (LA<code> for a local authority's contacts)",
        producers: ["school-resolution (register import, contacts API/CLI, LA contacts)"],
        consumers: ["school-resolution (every instance, own group)"])
    public static let noticeRequests = TopicDefinition(
        name: "encompass.notice.requests", key: "notice id",
        producers: ["school-resolution (requests; cancellations of a school's pending notices)"], consumers: ["scheduling"])
    public static let schedulingChangelog = TopicDefinition(
        name: "encompass.scheduling.changelog", key: "notice id",
        producers: ["scheduling"], consumers: ["scheduling (every instance, own group: standby copy, restore on assignment)"], compacted: true)
    /// A child's open CSC requests and held answers, so the next owner of the child's partition
    /// restores them when their instance is lost (`SchoolRequestsChangelog`; a tombstone when none is open).
    public static let schoolRequestsChangelog = TopicDefinition(
        name: "encompass.school-resolution.changelog", key: "child id",
        producers: ["school-resolution (instance owning the child)"],
        consumers: ["school-resolution (every instance, own group: standby copy, restore on assignment)"], compacted: true)
    public static let noticesDue = TopicDefinition(
        name: "encompass.notices.due", key: "notice id",
        producers: ["scheduling"], consumers: ["dispatch"])
    /// The notices dispatch has not finished with, so the next owner of a notice's partition
    /// restores them when their instance is lost (`DispatchNoticeChangelog`; a tombstone once finished).
    public static let dispatchChangelog = TopicDefinition(
        name: "encompass.dispatch.changelog", key: "notice id",
        producers: ["dispatch (instance that took the notice)"],
        consumers: ["dispatch (every instance, own group: standby copy, restore on assignment)"], compacted: true)
    public static let noticeEvents = TopicDefinition(
        name: "encompass.notice.events", key: "notice id",
        producers: ["scheduling", "dispatch", "school-resolution (redirects)"],
        consumers: ["dispatch (every instance, own group: audit, claims)", "operations"])
    public static let dispatchAccounts = TopicDefinition(
        name: "encompass.dispatch.accounts", key: "account (school URN, LA<code> or ESM<force code>)",
        producers: ["dispatch (password API)"], consumers: ["dispatch (every instance, own group)"], compacted: true)

    public static let pipeline: [TopicDefinition] = [
        incidentsRaw, incidents, history, reviewDecisions, children, schoolFeedback, schoolRegister,
        noticeRequests, schedulingChangelog, noticesDue, noticeEvents, reviewProposals, dispatchAccounts,
        schoolRequestsChangelog, dispatchChangelog,
    ]

    public static let deadLetters: [TopicDefinition] = ServiceName.allCases.map {
        TopicDefinition(name: $0.deadLetterTopic, key: "original record key", producers: [$0.rawValue], consumers: ["operations (encompass dlq)"])
    }

    public static var all: [TopicDefinition] { pipeline + deadLetters }

    public static func named(_ name: String) -> TopicDefinition? { all.first { $0.name == name } }
}
