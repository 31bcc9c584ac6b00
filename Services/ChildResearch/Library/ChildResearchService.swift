import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Hummingbird
import Logging
import ServiceRuntime

/// Child research: finds children the officer did not record in earlier records, and passes every child on `encompass.children`.
///
/// - `encompass.incidents` (work, split by the consumer group): index the incident, then pass
///   officer-recorded children on (matched to history for a stable id, a missing date of birth
///   or school), or research earlier records for an incident without children and queue the
///   proposals for review: a MASH officer confirms each, unless the force's protocol turns
///   automatic confirmation on (then at or above its threshold, confirmedBy `auto`).
/// - `encompass.review.decisions` (work, same key as incidents): apply a MASH officer's decision.
/// - `encompass.history` and `encompass.incidents` (replicated: every instance reads them whole
///   under its own group) feed the history index, so every instance holds all of it.
/// - `encompass.review.proposals` (replicated, compacted): the owner of an occurrence publishes
///   every change of its proposals; every instance keeps the latest, so any instance lists the
///   whole review queue and accepts a decision on any proposal (the decision goes on
///   `encompass.review.decisions`, keyed by occurrence, to the owner).
public enum ChildResearchService {
    /// Child research's settings: the research section of each force protocol, with environment overrides.
    public struct Settings: ServiceOwnSettings {
        public static let service = ServiceName.childResearch
        public var protocols: [String: ResearchProtocol]
        public var fallback: ResearchProtocol
        /// Personal-data retention (ENCOMPASS_RETENTION_DAYS…, docs/SECURITY.md); the history
        /// index follows each force's look-back window instead (ResearchRetention).
        public var retention: RetentionSettings = RetentionSettings()
        /// SQLite page cache of the connection that writes and searches the history index, MiB
        /// (`ENCOMPASS_RESEARCH_INDEX_CACHE_MIB`). A bigger cache indexes a large backfill and
        /// researches faster; it is resident memory of the service (docs/BENCHMARKS.md).
        public var indexCacheMiB: Int = 16
        /// The learned person-matching model: whether research uses it, and how it is kept current.
        public var matchModel = MatchModelSettings()

        public init(protocols: [String: ResearchProtocol] = [:], fallback: ResearchProtocol = .standard) {
            self.protocols = protocols
            self.fallback = fallback
        }

        public func research(forForce code: String) -> ResearchProtocol { protocols[code] ?? fallback }

        /// Reads the `research` section of every force protocol; `ENCOMPASS_RESEARCH_CONFIDENT_THRESHOLD`
        /// (the automatic confirmation threshold, used only where a protocol turns it on),
        /// `ENCOMPASS_RESEARCH_PROPOSAL_THRESHOLD` and `ENCOMPASS_RESEARCH_PERSON_THRESHOLD` (0…1) override them.
        /// No variable turns automatic confirmation on: only a force's protocol file does.
        public static func fromEnvironment(_ environment: [String: String], runtime: ServiceConfiguration) throws(ConfigurationError) -> Settings {
            let env = EnvironmentReader(environment)
            var protocols: [String: ResearchProtocol] = [:]
            do {
                let forces = try ForceProtocols.load(directory: env.string("ENCOMPASS_PROTOCOLS_DIR") ?? ForceProtocols.bundledDirectory)
                for (code, force) in forces.byCode where force.hasSection("research") {
                    protocols[code] = try force.section("research", as: ResearchProtocol.self)
                }
            } catch {
                throw ConfigurationError(variable: "ENCOMPASS_PROTOCOLS_DIR", problem: "gives an unusable force protocol: \(error)")
            }
            var settings = Settings(protocols: protocols)
            settings.retention = try RetentionSettings.fromEnvironment(environment)
            settings.matchModel = try MatchModelSettings.fromEnvironment(environment)
            settings.indexCacheMiB = try env.int("ENCOMPASS_RESEARCH_INDEX_CACHE_MIB", in: 2...4096) ?? settings.indexCacheMiB
            func threshold(_ name: String) throws(ConfigurationError) -> Double? {
                guard let text = env.string(name) else { return nil }
                guard let value = Double(text), (0...1).contains(value) else {
                    throw ConfigurationError(variable: name, problem: "is '\(text)'; expected a number from 0 to 1")
                }
                return value
            }
            let confident = try threshold("ENCOMPASS_RESEARCH_CONFIDENT_THRESHOLD")
            let proposal = try threshold("ENCOMPASS_RESEARCH_PROPOSAL_THRESHOLD")
            let person = try threshold("ENCOMPASS_RESEARCH_PERSON_THRESHOLD")
            func apply(_ p: inout ResearchProtocol) {
                if let confident { p.autoConfirm.threshold = confident }
                if let proposal { p.proposalThreshold = proposal }
                if let person { p.personMatchThreshold = person }
            }
            for code in settings.protocols.keys { apply(&settings.protocols[code]!) }
            apply(&settings.fallback)
            return settings
        }
    }

    /// The store's migrations, in order (index-v1, review-v1, index-v2 key generations, review-v2
    /// versions, index-v3 key kinds, the learned match model, the day it was learned for, the
    /// people by day).
    public static let migrations = [
        HistoryIndex.migration, ReviewQueue.migration, HistoryIndex.generationsMigration, ReviewQueue.versionMigration,
        HistoryIndex.kindsMigration, MatchModelStore.migration, MatchModelStore.dayMigration,
        MatchModelStore.personDayMigration,
    ]

    public static func definition(settings: Settings) -> ServiceDefinition {
        let models = MatchModelCache()
        return ServiceDefinition(
            service: .childResearch,
            migrations: migrations,
            handlers: [incidentHandler(settings, models: models), decisionHandler()],
            replicated: [historyHandler(), incidentIndexHandler(), proposalReplicaHandler()],
            produces: [Topics.children.name, Topics.reviewDecisions.name, Topics.reviewProposals.name],
            routes: { router, environment in ReviewAPI(environment: environment).register(on: router) },
            background: [
                RetentionPurge.task(ResearchRetention.rules(settings), settings: settings.retention), MatchModelUpkeep.task(settings.matchModel),
            ],
            storeWriterSetup: { [cacheMiB = settings.indexCacheMiB] db in try HistoryIndex.tuneConnection(db, cacheMiB: cacheMiB) }
        )
    }

    /// Work: one instance per occurrence indexes, researches and publishes.
    static func incidentHandler(_ settings: Settings, models: MatchModelCache = MatchModelCache()) -> TopicHandler {
        TopicHandler.on(Topics.incidents.name, IncidentRecorded.self) { envelope, ctx in
            let recorded = envelope.payload
            try validate(recorded.incident, revision: recorded.revision)
            try apply(
                recorded, messageId: envelope.id, message: ctx.record.value, settings: settings, models: models, db: ctx.db, outbox: ctx.outbox,
                now: ctx.now, logger: ctx.logger)
        }
    }

    static func validate(_ incident: Incident, revision: Int) throws {
        var problems: [String] = []
        if incident.occurrenceNumber.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("incident.occurrenceNumber is empty") }
        if incident.forceCode.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("incident.forceCode is empty") }
        if revision < 1 { problems.append("revision \(revision) is below 1") }
        for (i, child) in incident.children.enumerated()
        where child.givenName.trimmingCharacters(in: .whitespaces).isEmpty && child.familyName.trimmingCharacters(in: .whitespaces).isEmpty {
            problems.append("children[\(i)] has no name")
        }
        if !problems.isEmpty {
            throw RejectedMessage(
                errorClass: "payload.validation", reason: problems.joined(separator: "; ") + "; fix the incident in intake and re-send it")
        }
    }

    /// `message`: the envelope `recorded` arrived in, kept as it is (see `ReviewQueue.saveRecorded`).
    /// `models`: the stored learned model (nil: the hand-weighted matcher).
    static func apply(
        _ recorded: IncidentRecorded, messageId: String, message: [UInt8]? = nil, settings: Settings, models: MatchModelCache? = nil,
        db: Database, outbox: Outbox, now: Date, logger: Logger
    ) throws {
        let incident = recorded.incident
        if let previous = try ReviewQueue.recordedRevision(db, forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber),
            previous > recorded.revision
        {
            logger.info("older revision ignored", metadata: ["occurrence": "\(incident.occurrenceNumber)", "revision": "\(recorded.revision)"])
            return
        }
        try HistoryIndex.index(incident, revision: recorded.revision, source: "incident", db: db)
        try ReviewQueue.saveRecorded(db, recorded, message: message)
        // The model learned for the incident's day, from the records of the days before it: the
        // records research reads, which every instance holds, so every instance scores alike.
        let learned = settings.matchModel.useLearned ? try models?.matcher(forDay: CalendarDate(incident.occurredAt).description, db: db) : nil
        let researcher = Researcher(settings: settings.research(forForce: incident.forceCode), learned: learned)
        func publish(_ child: IdentifiedChild, source: ChildSource, evidence: ResearchEvidence?, purpose: String) throws {
            let message = ChildIdentified(incident: incident, incidentRevision: recorded.revision, child: child, source: source, evidence: evidence)
            try outbox.publish(
                message, to: Topics.children.name, key: child.childId, id: MessageID.derived(from: messageId, purpose),
                causationId: messageId, now: now)
        }
        var published = Set<String>()
        var listed: [String: RecordedChild] = [:]
        for (i, recordedChild) in incident.children.enumerated() {
            var (child, notes) = try researcher.identify(recordedChild, in: incident, db: db)
            if let earlier = listed[child.childId] {
                // The same child listed twice is one child; two children matched to one earlier
                // record are two, and only the first keeps that record's id.
                guard !Researcher.sameChild(earlier, recordedChild, on: incident.occurredAt) else { continue }
                child = researcher.unmatched(recordedChild, in: incident)
                notes = ["another child of this incident matched the same earlier record: kept apart"]
            }
            guard published.insert(child.childId).inserted else { continue }
            listed[child.childId] = recordedChild
            try publish(child, source: .officer, evidence: nil, purpose: "officer/\(i)")
            if !notes.isEmpty { logger.debug("officer child matched", metadata: ["childId": "\(child.childId)", "notes": "\(notes)"]) }
        }
        // Proposals waiting for review before this revision: those the revision no longer
        // supports are withdrawn (an amendment may list the children, or change the adults or address).
        let pendingBefore = try ReviewQueue.forOccurrence(db, forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber)
            .filter { $0.status == "pending" }
        var stillFound = Set<String>()
        if incident.children.isEmpty {
            let excluded = try ReviewQueue.rejectedChildren(db, forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber)
            let candidates = try researcher.research(incident, db: db, excluded: excluded)
            for candidate in candidates {
                let confident = researcher.settings.confirmsAutomatically(score: candidate.evidence.score)
                let (proposal, changed) = try ReviewQueue.upsert(
                    db, candidate: candidate, incident: incident, status: confident ? "confirmed" : "pending",
                    decidedBy: confident ? "auto" : nil, now: now)
                stillFound.insert(proposal.proposalId)
                if changed { try ReviewQueue.publish(proposal, outbox: outbox, causationId: messageId, now: now) }
            }
            logger.info("researched", metadata: ["occurrence": "\(incident.occurrenceNumber)", "candidates": "\(candidates.count)"])
        }
        for proposal in pendingBefore where !stillFound.contains(proposal.proposalId) {
            let reason =
                incident.children.isEmpty
                ? "withdrawn: revision \(recorded.revision) of the incident (adults or address amended) no longer links this child"
                : "withdrawn: revision \(recorded.revision) of the incident lists its children (\(incident.children.count)); research is not needed"
            let withdrawn = try ReviewQueue.withdraw(db, proposal: proposal, reason: reason, now: now)
            try ReviewQueue.publish(withdrawn, outbox: outbox, causationId: messageId, now: now)
            logger.info("proposal withdrawn", metadata: ["proposal": "\(proposal.proposalId)", "revision": "\(recorded.revision)"])
        }
        // Confirmed research children (earlier or just now) go on with this revision.
        for proposal in try ReviewQueue.forOccurrence(db, forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber)
        where proposal.status == "confirmed" && !published.contains(proposal.child.childId) {
            published.insert(proposal.child.childId)
            try publish(proposal.child, source: .research, evidence: proposal.evidence, purpose: "research/\(proposal.child.childId)")
        }
    }

    /// Work: a MASH officer's decision, on the instance that owns the occurrence.
    static func decisionHandler() -> TopicHandler {
        TopicHandler.on(Topics.reviewDecisions.name, ReviewDecision.self) { envelope, ctx in
            let decision = envelope.payload
            guard let proposal = try ReviewQueue.find(ctx.db, proposalId: decision.proposalId) else {
                throw RejectedMessage(
                    errorClass: "review.unknown-proposal",
                    reason: "no proposal \(decision.proposalId) on this instance's review queue; list proposals with `encompass review list`")
            }
            guard proposal.forceCode == decision.forceCode, proposal.occurrenceNumber == decision.occurrenceNumber else {
                throw RejectedMessage(
                    errorClass: "review.mismatch",
                    reason:
                        "proposal \(decision.proposalId) belongs to \(proposal.forceCode)/\(proposal.occurrenceNumber), not \(decision.forceCode)/\(decision.occurrenceNumber)"
                )
            }
            let target = decision.verdict == .confirm ? "confirmed" : "rejected"
            guard proposal.status != target else { return } // the same decision again: already applied
            guard proposal.status != "withdrawn" else {
                ctx.logger.notice(
                    "decision on a withdrawn proposal ignored",
                    metadata: [
                        "proposal": "\(proposal.proposalId)", "verdict": "\(decision.verdict.rawValue)", "reason": "\(proposal.note ?? "")",
                    ])
                return
            }
            let updated = try ReviewQueue.decide(ctx.db, proposal: proposal, decision: decision)
            try ReviewQueue.publish(updated, outbox: ctx.outbox, causationId: envelope.id, now: ctx.now)
            ctx.logger.info("review decision applied", metadata: ["proposal": "\(proposal.proposalId)", "verdict": "\(decision.verdict.rawValue)"])
            guard decision.verdict == .confirm,
                let recorded = try ReviewQueue.recorded(ctx.db, forceCode: proposal.forceCode, occurrenceNumber: proposal.occurrenceNumber)
            else { return }
            let message = ChildIdentified(
                incident: recorded.incident, incidentRevision: recorded.revision, child: updated.child,
                source: .research, evidence: updated.evidence)
            try ctx.outbox.publish(
                message, to: Topics.children.name, key: updated.child.childId,
                id: MessageID.derived(from: envelope.id, "confirmed"), causationId: envelope.id, now: ctx.now)
        }
    }

    /// Replicated: past incidents from history imports.
    static func historyHandler() -> TopicHandler {
        TopicHandler.on(Topics.history.name, HistoricalIncident.self) { envelope, ctx in
            let incident = envelope.payload.incident
            guard !incident.occurrenceNumber.isEmpty, !incident.forceCode.isEmpty else {
                throw RejectedMessage(
                    errorClass: "payload.validation", reason: "history incident without occurrence number or force code; fix the import file")
            }
            try HistoryIndex.index(incident, revision: 0, source: envelope.payload.source, db: ctx.db)
        }
    }

    /// Replicated: every incident also enters every instance's index. The same messages are the
    /// work handler's input, so this path records its own inbox id (derived from the message id)
    /// and leaves undecodable records to the work path, which dead-letters them once.
    static func incidentIndexHandler() -> TopicHandler {
        TopicHandler(topic: Topics.incidents.name) { record, db, _, now, _ in
            // The same message already applied by this instance's work consumer has indexed and
            // saved this revision: no need to decode it again (the header carries the envelope id).
            if let id = record.header(MessageHeader.messageId)?.stringValue, try InboxEntry.contains(id, db: db) { return .duplicate }
            guard let envelope = try? WireFormat.decode(IncidentRecorded.self, from: record.value),
                !envelope.payload.incident.occurrenceNumber.isEmpty, !envelope.payload.incident.forceCode.isEmpty
            else { return .applied }
            return try InboxEntry.applyOnce(messageId: MessageID.derived(from: envelope.id, "replica-index"), record: record, db: db, now: now) {
                let incident = envelope.payload.incident, revision = envelope.payload.revision
                try HistoryIndex.index(incident, revision: revision, source: "incident", db: db)
                // Every instance keeps the latest revision, so the one that takes the occurrence
                // over after a rebalance can pass a confirmed child on with its incident. The
                // instance's own incidents come back here already saved: not encoded and written
                // again (a tenth of child research's time in the pipeline benchmark).
                let held = try ReviewQueue.recordedRevision(db, forceCode: incident.forceCode, occurrenceNumber: incident.occurrenceNumber)
                if held.map({ $0 < revision }) ?? true { try ReviewQueue.saveRecorded(db, envelope.payload, message: record.value) }
            }
        }
    }

    /// Replicated: proposal states from the owners of their occurrences (this instance's own
    /// come back too and are ignored, being no newer than what it holds).
    static func proposalReplicaHandler() -> TopicHandler {
        TopicHandler.on(
            Topics.reviewProposals.name, ReviewProposalState.self,
            tombstone: { key, db, _ in
                // The retention purge of an instance: the proposal goes here too.
                try ResearchRetention.forgetProposal(key, db: db)
            }
        ) { envelope, ctx in
            let state = envelope.payload
            guard !state.proposalId.isEmpty, !state.occurrenceNumber.isEmpty, state.version >= 1,
                ["pending", "confirmed", "rejected", "withdrawn"].contains(state.status)
            else {
                throw RejectedMessage(
                    errorClass: "payload.validation",
                    reason:
                        "proposal state without id or occurrence, version \(state.version) or status '\(state.status)'; only child-research publishes these"
                )
            }
            try ReviewQueue.applyReplica(ctx.db, state)
        }
    }
}
