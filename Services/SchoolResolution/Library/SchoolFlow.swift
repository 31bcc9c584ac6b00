import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging
import ServiceRuntime

/// What happens to one child: resolve, then record the outcome and publish the notice request
/// or file the request to Children's Social Care, all in the caller's transaction.
public struct SchoolFlow: Sendable {
    public let cache: RegisterCache
    public let protocols: [String: SchoolsProtocol]

    public init(cache: RegisterCache = RegisterCache(), protocols: [String: SchoolsProtocol]) {
        self.cache = cache
        self.protocols = protocols
    }

    /// The outcome of handling one child.
    public enum Outcome: String, Sendable { case notice, notNotified = "not-notified", request, stale }

    /// `encompass.children`: a child of an incident (or of a revision of it).
    @discardableResult
    public func handleChild(_ message: ChildIdentified, messageId: String, db: Database, outbox: Outbox, now: Date, logger: Logger) throws -> Outcome {
        let noticeId = message.noticeKey
        if let existing = try ResolutionRow.fetchOne(db, where: "noticeId", equals: noticeId), existing.incidentRevision > message.incidentRevision {
            logger.info("older incident revision ignored", metadata: ["notice": .string(noticeId), "revision": "\(message.incidentRevision)", "held": "\(existing.incidentRevision)"])
            return .stale
        }
        let previous = try ChildSchoolRow.fetchOne(db, where: "childId", equals: message.child.childId)?.held
        let resolution = try resolve(message, recorded: message.child.recordedSchool, label: message.source == .officer ? "recorded" : "recorded (research)",
                                     origin: message.child.schoolOrigin, previous: previous, db: db)
        let outcome = try record(resolution, for: message, causationId: messageId, purpose: "notice-requested", db: db, outbox: outbox, now: now)
        logger.info("child resolved", metadata: ["notice": .string(noticeId), "outcome": .string(outcome.rawValue)])
        return outcome
    }

    /// - Parameters:
    ///   - origin: the earlier record `recorded` was carried over from (nil: recorded with the incident, or returned by CSC).
    ///   - checkAge: false only for a school a MASH officer accepted despite an age-range conflict.
    func resolve(_ message: ChildIdentified, recorded: RecordedSchool?, label: String, origin: SchoolRecordOrigin? = nil,
                 previous: HeldSchool?, checkAge: Bool = true, db: Database) throws -> Resolution {
        let resolver = SchoolResolver(matcher: try cache.matcher(db), protocols: protocols)
        let blocked = Set(try ChildSchoolBlockRow.fetchAll(db, where: "childId", equals: message.child.childId).map(\.urn))
        var contacts: [String: [SchoolContact]] = [:]
        return resolver.resolve(child: message.child, incident: message.incident, recorded: recorded, recordedLabel: label,
                                recordedOrigin: origin, previous: previous, blocked: blocked,
                                place: ChildPlace.of(message.child, incident: message.incident, source: message.source),
                                checkAge: checkAge) { urn in
            if let held = contacts[urn] { return held }
            let held = (try? SchoolStore.contacts(db, urn: urn)) ?? []
            contacts[urn] = held
            return held
        }
    }

    /// Stores the outcome; publishes the notice request when there is one.
    func record(_ resolution: Resolution, for message: ChildIdentified, causationId: String, purpose: String,
                db: Database, outbox: Outbox, now: Date) throws -> Outcome {
        let noticeId = message.noticeKey
        func save(_ outcome: Outcome, urn: String?, reasons: [String]) throws {
            try ResolutionRow(noticeId: noticeId, childId: message.child.childId, forceCode: message.incident.forceCode,
                              occurrenceNumber: message.incident.occurrenceNumber, incidentRevision: message.incidentRevision,
                              outcome: outcome.rawValue, urn: urn, reasons: String(decoding: try JSONEncoder().encode(reasons), as: UTF8.self),
                              updatedAt: now).insertOrReplace(db)
        }
        func settleRequest(_ status: String, urn: String?) throws {
            guard var request = try SchoolRequestRow.fetchOne(db, where: "requestId", equals: noticeId), request.status == "open" else { return }
            request.status = status
            request.resolvedURN = urn
            request.updatedAt = now
            try request.update(db)
        }
        switch resolution {
        case .notice(let school, let reasons):
            let request = NoticeRequested(noticeId: noticeId, incident: message.incident, incidentRevision: message.incidentRevision,
                                          child: message.child, childSource: message.source, school: school, resolution: reasons)
            try outbox.publish(request, to: Topics.noticeRequests.name, key: noticeId,
                               id: MessageID.derived(from: causationId, purpose), causationId: causationId, now: now)
            try ChildSchoolRow(childId: message.child.childId, urn: school.urn, noticeId: noticeId, verifiedAt: now,
                               incidentDay: CalendarDate(message.incident.occurredAt).description,
                               homePostcode: ChildPlace.of(message.child, incident: message.incident, source: message.source).homePostcode,
                               occurrenceNumber: message.incident.occurrenceNumber).insertOrReplace(db)
            try save(.notice, urn: school.urn, reasons: reasons)
            try settleRequest(purpose == "notice-requested" ? "superseded" : "resolved", urn: school.urn)
            return .notice
        case .notNotified(let urn, let reasons):
            try save(.notNotified, urn: urn, reasons: reasons)
            try settleRequest("closed", urn: urn)
            return .notNotified
        case .request(let reason, let candidates, let reasons):
            try save(.request, urn: nil, reasons: reasons.isEmpty ? [reason] : reasons)
            let encoded = try WireFormat.data(message)
            let candidateJSON = String(decoding: try JSONEncoder().encode(candidates), as: UTF8.self)
            if var existing = try SchoolRequestRow.fetchOne(db, where: "requestId", equals: noticeId) {
                existing.reason = reason
                existing.candidates = candidateJSON
                existing.child = encoded
                existing.causationId = causationId
                existing.lpa = Self.lpa(message.incident)
                existing.status = "open"
                existing.updatedAt = now
                try existing.update(db)
            } else {
                try SchoolRequestRow(requestId: noticeId, childId: message.child.childId, forceCode: message.incident.forceCode,
                                     occurrenceNumber: message.incident.occurrenceNumber, lpa: Self.lpa(message.incident), reason: reason,
                                     candidates: candidateJSON, child: encoded, causationId: causationId, status: "open",
                                     createdAt: now, updatedAt: now).insert(db)
            }
            return .request
        }
    }

    static func lpa(_ incident: Incident) -> String {
        incident.localPolicingArea?.trimmingCharacters(in: .whitespaces).nilIfEmpty ?? "unknown"
    }

    /// `encompass.school.feedback`: "pupil no longer attends" unlinks the child from the school
    /// and blocks further notices to it about the child.
    public func handleFeedback(_ feedback: SchoolFeedback, db: Database, logger: Logger) throws {
        switch feedback.kind {
        case .noLongerAttends:
            let unlinked = try ChildSchoolRow.filter(Column("childId") == feedback.childId && Column("urn") == feedback.schoolURN).deleteAll(db)
            try ChildSchoolBlockRow(childId: feedback.childId, urn: feedback.schoolURN, noticeId: feedback.noticeId,
                                    reportedBy: feedback.reportedBy, reportedAt: feedback.reportedAt, note: feedback.note).insert(db)
            logger.info("school feedback applied", metadata: ["urn": .string(feedback.schoolURN), "unlinked": "\(unlinked > 0)"])
        }
    }
}
