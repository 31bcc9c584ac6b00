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
    public func handleChild(_ message: ChildIdentified, messageId: String, db: Database, outbox: Outbox, now: Date, logger: Logger) throws -> Outcome
    {
        let noticeId = message.noticeKey
        if let existing = try ResolutionRow.fetchOne(db, where: "noticeId", equals: noticeId), existing.incidentRevision > message.incidentRevision {
            logger.info(
                "older incident revision ignored",
                metadata: ["notice": .string(noticeId), "revision": "\(message.incidentRevision)", "held": "\(existing.incidentRevision)"])
            return .stale
        }
        let previous = try ChildSchoolRow.fetchOne(db, where: "childId", equals: message.child.childId)?.held
        let resolution = try resolve(
            message, recorded: message.child.recordedSchool, label: message.source == .officer ? "recorded" : "recorded (research)",
            origin: message.child.schoolOrigin, previous: previous, db: db)
        let outcome = try record(resolution, for: message, causationId: messageId, purpose: "notice-requested", db: db, outbox: outbox, now: now)
        logger.info("child resolved", metadata: ["notice": .string(noticeId), "outcome": .string(outcome.rawValue)])
        return outcome
    }

    /// - Parameters:
    ///   - origin: the earlier record `recorded` was carried over from (nil: recorded with the incident, or returned by CSC).
    ///   - checkAge: false only for a school a MASH officer accepted despite an age-range conflict.
    func resolve(
        _ message: ChildIdentified, recorded: RecordedSchool?, label: String, origin: SchoolRecordOrigin? = nil,
        previous: HeldSchool?, checkAge: Bool = true, db: Database
    ) throws -> Resolution {
        let resolver = SchoolResolver(matcher: try cache.matcher(db), protocols: protocols)
        let blocked = Set(try ChildSchoolBlockRow.fetchAll(db, where: "childId", equals: message.child.childId).map(\.urn))
        var contacts: [String: [SchoolContact]] = [:]
        return resolver.resolve(
            child: message.child, incident: message.incident, recorded: recorded, recordedLabel: label,
            recordedOrigin: origin, previous: previous, blocked: blocked,
            place: ChildPlace.of(message.child, incident: message.incident, source: message.source),
            checkAge: checkAge
        ) { urn in
            if let held = contacts[urn] { return held }
            // `LA<code>`: a local authority's contacts (out-of-area schools without their own).
            let held =
                urn.hasPrefix("LA")
                ? (try? SchoolStore.laContacts(db, laCode: String(urn.dropFirst(2)))) ?? []
                : (try? SchoolStore.contacts(db, urn: urn)) ?? []
            contacts[urn] = held
            return held
        }
    }

    /// Stores the outcome; publishes the notice request when there is one.
    /// - Parameter noticeId: the notice the outcome is for: the request's id when it answers a
    ///   request to Children's Social Care (a redirect has its own), else the (incident, child)'s.
    func record(
        _ resolution: Resolution, for message: ChildIdentified, noticeId: String? = nil, causationId: String, purpose: String,
        db: Database, outbox: Outbox, now: Date
    ) throws -> Outcome {
        let noticeId = noticeId ?? message.noticeKey
        func save(_ outcome: Outcome, urn: String?, reasons: [String], request: Data? = nil) throws {
            try ResolutionRow(
                noticeId: noticeId, childId: message.child.childId, forceCode: message.incident.forceCode,
                occurrenceNumber: message.incident.occurrenceNumber, incidentRevision: message.incidentRevision,
                outcome: outcome.rawValue, urn: urn, reasons: String(decoding: try JSONEncoder().encode(reasons), as: UTF8.self),
                updatedAt: now, request: request
            ).insertOrReplace(db)
        }
        func settleRequest(_ status: String, urn: String?, event: (NoticeEvent.Kind, String)) throws {
            guard var request = try SchoolRequestRow.fetchOne(db, where: "requestId", equals: noticeId), request.status == "open" else { return }
            request.status = status
            request.resolvedURN = urn
            request.updatedAt = now
            try request.update(db)
            if let original = request.redirectOf {
                try Self.publishEvent(
                    event.0, noticeId: original, message: message, urn: urn, detail: event.1,
                    id: MessageID.derived(from: causationId, purpose + ":event"), causationId: causationId, outbox: outbox, now: now)
            }
        }
        switch resolution {
        case .notice(let school, let reasons):
            let request = NoticeRequested(
                noticeId: noticeId, incident: message.incident, incidentRevision: message.incidentRevision,
                child: message.child, childSource: message.source, school: school, resolution: reasons)
            let published = try outbox.publish(
                request, to: Topics.noticeRequests.name, key: noticeId,
                id: MessageID.derived(from: causationId, purpose), causationId: causationId, now: now)
            try ChildSchoolRow(
                childId: message.child.childId, urn: school.urn, noticeId: noticeId, verifiedAt: now,
                incidentDay: CalendarDate(message.incident.occurredAt).description,
                homePostcode: ChildPlace.of(message.child, incident: message.incident, source: message.source).homePostcode,
                occurrenceNumber: message.incident.occurrenceNumber
            ).insertOrReplace(db)
            try save(.notice, urn: school.urn, reasons: reasons, request: published)
            try settleRequest(
                purpose == "notice-requested" ? "superseded" : "resolved", urn: school.urn,
                event: (
                    .redirected,
                    "Children's Social Care named URN \(school.urn) \(school.name) as the child's current school: notice \(noticeId) requested"
                ))
            return .notice
        case .notNotified(let urn, let reasons):
            try save(.notNotified, urn: urn, reasons: reasons)
            try settleRequest(
                "closed", urn: urn, event: (.flagged, "Children's Social Care named URN \(urn): not notified (\(reasons.joined(separator: "; ")))"))
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
                try SchoolRequestRow(
                    requestId: noticeId, childId: message.child.childId, forceCode: message.incident.forceCode,
                    occurrenceNumber: message.incident.occurrenceNumber, lpa: Self.lpa(message.incident), reason: reason,
                    candidates: candidateJSON, child: encoded, causationId: causationId, status: "open",
                    createdAt: now, updatedAt: now
                ).insert(db)
            }
            return .request
        }
    }

    static func lpa(_ incident: Incident) -> String {
        incident.localPolicingArea?.trimmingCharacters(in: .whitespaces).nilIfEmpty ?? "unknown"
    }

    /// `encompass.school.feedback`: "pupil no longer attends" unlinks the child from the school
    /// and blocks further notices to it about the child. Then the loop the notice page promises:
    /// each of the child's notices to that school is withdrawn (a cancellation to scheduling for
    /// each one still pending; the reported one was sent) and replaced by a redirect, a request to
    /// Children's Social Care for the child's current school under a notice id of its own. When
    /// CSC answers, the redirect goes the normal way (verify, schedule, dispatch); the blocked
    /// school can never be the answer. Each step is an event on the original notice.
    public func handleFeedback(_ feedback: SchoolFeedback, messageId: String, db: Database, outbox: Outbox, now: Date, logger: Logger) throws {
        switch feedback.kind {
        case .noLongerAttends:
            let unlinked = try ChildSchoolRow.filter(Column("childId") == feedback.childId && Column("urn") == feedback.schoolURN).deleteAll(db)
            try ChildSchoolBlockRow(
                childId: feedback.childId, urn: feedback.schoolURN, noticeId: feedback.noticeId,
                reportedBy: feedback.reportedBy, reportedAt: feedback.reportedAt, note: feedback.note
            ).insert(db)
            let affected =
                try ResolutionRow
                .filter(Column("childId") == feedback.childId && Column("urn") == feedback.schoolURN && Column("outcome") == Outcome.notice.rawValue)
                .order(Column("updatedAt"), Column("noticeId")).fetchAll(db)
            let schoolName = (try SchoolRow.fetchOne(db, key: feedback.schoolURN)).map { " \($0.name)" } ?? ""
            let reason = "URN \(feedback.schoolURN)\(schoolName) reported on \(CalendarDate(feedback.reportedAt)) that the pupil no longer attends"
            var redirects: [String] = []
            for var row in affected {
                let redirectId = NoticeID.redirect(of: row.noticeId, awayFrom: feedback.schoolURN)
                guard let message = row.childIdentified else {
                    // Older than the stored request (or purged): the child's record is not held,
                    // so nobody can be asked; a MASH officer must find the school by hand.
                    try Self.publishEvent(
                        .flagged, noticeId: row.noticeId, forceCode: row.forceCode, occurrenceNumber: row.occurrenceNumber,
                        urn: feedback.schoolURN,
                        detail:
                            "\(reason); the child's record is no longer held here, so no request to Children's Social Care could be opened: find the child's current school by hand",
                        id: MessageID.derived(from: messageId, "flagged:\(row.noticeId)"), causationId: messageId, outbox: outbox, now: now)
                    logger.warning(
                        "no longer attends: notice cannot be redirected (child record not held)", metadata: ["notice": .string(row.noticeId)])
                    continue
                }
                if row.noticeId != feedback.noticeId {
                    try outbox.publish(
                        NoticeCancelled(
                            noticeId: row.noticeId, forceCode: row.forceCode, occurrenceNumber: row.occurrenceNumber,
                            schoolURN: feedback.schoolURN, reason: reason, requestedAt: now, replacedBy: redirectId),
                        to: Topics.noticeRequests.name, key: row.noticeId, id: MessageID.derived(from: messageId, "cancel:\(row.noticeId)"),
                        causationId: messageId, now: now)
                }
                // The redirect's outputs derive their ids from this event's id: one per notice
                // (several redirects opened by one report must not share ids).
                let eventId = MessageID.derived(from: messageId, "redirect:\(row.noticeId)")
                if try SchoolRequestRow.fetchOne(db, key: redirectId) == nil {
                    try SchoolRequestRow(
                        requestId: redirectId, childId: row.childId, forceCode: row.forceCode,
                        occurrenceNumber: row.occurrenceNumber, lpa: Self.lpa(message.incident),
                        reason: "\(reason): which school does the child attend now?", candidates: "[]",
                        child: try WireFormat.data(message), causationId: eventId, status: "open",
                        createdAt: now, updatedAt: now, redirectOf: row.noticeId
                    ).insert(db)
                }
                try Self.publishEvent(
                    .redirectRequested, noticeId: row.noticeId, forceCode: row.forceCode, occurrenceNumber: row.occurrenceNumber,
                    urn: feedback.schoolURN,
                    detail:
                        "\(reason)\(row.noticeId == feedback.noticeId ? "" : "; this notice, not yet sent, is cancelled"); request \(redirectId) to Children's Social Care for the child's current school",
                    id: eventId, causationId: messageId, outbox: outbox, now: now)
                row.outcome = Self.redirected
                row.reasons = String(decoding: try JSONEncoder().encode(row.reasonList + ["\(reason): redirected as \(redirectId)"]), as: UTF8.self)
                row.updatedAt = now
                try row.update(db)
                redirects.append(redirectId)
            }
            logger.info(
                "school feedback applied",
                metadata: [
                    "urn": .string(feedback.schoolURN), "unlinked": "\(unlinked > 0)",
                    "redirects": .string(redirects.joined(separator: ",")),
                ])
        }
    }

    /// The outcome of a notice whose school said the pupil no longer attends (its redirect is a request).
    public static let redirected = "redirected"

    static func publishEvent(
        _ kind: NoticeEvent.Kind, noticeId: String, message: ChildIdentified, urn: String?, detail: String,
        id: String, causationId: String, outbox: Outbox, now: Date
    ) throws {
        try publishEvent(
            kind, noticeId: noticeId, forceCode: message.incident.forceCode, occurrenceNumber: message.incident.occurrenceNumber,
            urn: urn, detail: detail, id: id, causationId: causationId, outbox: outbox, now: now)
    }

    static func publishEvent(
        _ kind: NoticeEvent.Kind, noticeId: String, forceCode: String, occurrenceNumber: String, urn: String?,
        detail: String, id: String, causationId: String, outbox: Outbox, now: Date
    ) throws {
        try outbox.publish(
            NoticeEvent(
                noticeId: noticeId, kind: kind, at: now, forceCode: forceCode, occurrenceNumber: occurrenceNumber,
                schoolURN: urn, detail: detail),
            to: Topics.noticeEvents.name, key: noticeId, id: id, causationId: causationId, now: now)
    }
}
