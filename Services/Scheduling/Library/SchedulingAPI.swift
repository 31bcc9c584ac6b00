import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Hummingbird
import NIOCore
import ServiceRuntime

/// Scheduling's operations API (bearer `ENCOMPASS_API_TOKEN`):
/// - `GET /v1/readiness`: configuration warnings that do not stop the service (placeholder
///   escalation contacts, term dates ending within 60 days or approximate).
/// - `GET /v1/pending[?state=pending|released|all]`: notices held, without personal data.
/// - `GET /v1/term-dates/school/{urn}`: a school's own term dates (404 when it follows its LA).
/// - `PUT /v1/term-dates/school/{urn}`: set them (a term dates document); replicated to every
///   instance through the changelog. 422 with the problem when the document is unusable.
/// - `DELETE /v1/term-dates/school/{urn}`: the school follows its LA's dates again.
struct SchedulingAPI: Sendable {
    let environment: ServiceEnvironment
    /// Configuration problems that do not stop the service (placeholder escalation contacts).
    var warnings: [String] = []
    /// For the term-date warnings, by the service clock.
    var calendars: SchoolCalendars? = nil

    /// Sets `encompass_scheduling_term_dates_left_days{la}` and
    /// `encompass_scheduling_term_dates_approximate{la}` (1 when the current or a later school
    /// year is approximate) at each scrape, by the service clock.
    static func registerCalendarMetrics(_ calendars: SchoolCalendars, environment: ServiceEnvironment) {
        let metrics = environment.metrics, clock = environment.clock
        metrics.addRefresher {
            for state in calendars.states(today: CalendarDate(clock.now())) {
                metrics.gauge(
                    "encompass_scheduling_term_dates_left", unit: "days",
                    help: "Days until a local authority's term dates end (negative once ended; weekdays then count as school days)",
                    labels: [("la", state.la)], value: state.daysLeft)
                metrics.gauge(
                    "encompass_scheduling_term_dates_approximate", unit: "",
                    help: "1 when a local authority's term dates for the current or a later school year are approximate",
                    labels: [("la", state.la)], value: state.approximateYears.isEmpty ? 0 : 1)
            }
        }
    }

    static let maximumBody = 1024 * 1024

    typealias PendingItem = PendingList.Item

    func register(on router: Router<BasicRequestContext>) {
        let api = router.guarded(by: environment.configuration.apiAuth)
        api.get("v1/readiness") { request, _ -> Response in
            let today = CalendarDate(environment.clock.now())
            let all = warnings + (calendars?.dataWarnings(today: today) ?? [])
            return HTTPEndpoint.json(
                .ok,
                SchedulingReadiness(
                    instance: environment.configuration.instanceId, status: all.isEmpty ? "ready" : "warning",
                    warnings: all, calendars: calendars?.states(today: today) ?? []))
        }
        api.get("v1/pending") { request, _ -> Response in
            let filter = request.uri.queryParameters["state"].map(String.init) ?? "pending"
            guard filter == "all" || PendingState(rawValue: filter) != nil else {
                return HTTPEndpoint.json(.badRequest, APIError("state must be pending, released, cancelled or all"))
            }
            let owned = Set(environment.ownedPartitions().filter { $0.topic == Topics.noticeRequests.name }.map { Int($0.partition) })
            let rows = try await environment.store.pool.read { db in
                var query = PendingNoticeRow.order(Column("releaseAt"))
                if filter != "all" { query = query.filter(Column("state") == filter) }
                return try query.limit(10_000).fetchAll(db)
            }
            let items = rows.map {
                PendingItem(
                    noticeId: $0.noticeId, forceCode: $0.forceCode, occurrenceNumber: $0.occurrenceNumber, schoolURN: $0.schoolURN,
                    laCode: $0.laCode, incidentRevision: $0.incidentRevision, releaseAt: Timestamp.format($0.releaseAt),
                    escalate: $0.escalate, state: $0.state.rawValue, partition: $0.partition, ownedHere: owned.contains($0.partition),
                    releasedAt: $0.releasedAt.map(Timestamp.format))
            }
            return HTTPEndpoint.json(.ok, PendingList(instance: environment.configuration.instanceId, notices: items))
        }
        api.get("v1/term-dates/school/:urn") { request, context -> Response in
            let urn = context.parameters.get("urn") ?? ""
            guard let row = try await environment.store.pool.read({ try SchoolTermDatesRow.fetchOne($0, key: urn) }) else {
                return HTTPEndpoint.json(.notFound, APIError("school \(urn) has no term dates of its own; it follows its local authority's"))
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: row.document)))
        }
        api.put("v1/term-dates/school/:urn") { request, context -> Response in
            let urn = context.parameters.get("urn") ?? ""
            guard urn.count == 6, urn.allSatisfy(\.isNumber) else {
                return HTTPEndpoint.json(.badRequest, APIError("URN must be 6 digits"))
            }
            guard let buffer = try? await request.body.collect(upTo: Self.maximumBody) else {
                return HTTPEndpoint.json(.contentTooLarge, APIError("body larger than \(Self.maximumBody) bytes"))
            }
            let body = Array(buffer.readableBytesView)
            var document: TermDatesDocument
            do {
                document = try TermDatesImport.calendar(
                    Data(body), format: .init(contentType: request.headers[.contentType]),
                    label: "school \(urn) term dates"
                ).document
            } catch {
                let now = environment.clock.now()
                let problem = (error as? CalendarDataError)?.description ?? "\(error)"
                try await environment.write { db, outbox in
                    try DeadLetterWriter.writeRejectedInput(
                        db: db, service: .scheduling, origin: "http:/v1/term-dates/school", place: Int64(now.timeIntervalSince1970 * 1000),
                        key: urn, value: body, errorClass: "term-dates.invalid", message: problem, now: now, outbox: outbox)
                }
                return HTTPEndpoint.json(.unprocessableContent, APIError(problem))
            }
            document.urn = urn
            let stored = document
            let now = environment.clock.now()
            try await environment.write { db, outbox in
                let entry = SchedulingChangelog.SchoolTermDates(urn: urn, document: stored, updatedAt: now)
                try Scheduler.apply(SchedulingChangelog(schoolTermDates: entry), db: db)
                try outbox.publish(
                    SchedulingChangelog(schoolTermDates: entry), to: Topics.schedulingChangelog.name,
                    key: SchedulingChangelog.termDatesKey(urn),
                    id: MessageID.derived(from: "term-dates:\(urn):\(Timestamp.format(now))", "changelog"), now: now)
            }
            return HTTPEndpoint.json(.ok, ["urn": urn, "status": "stored", "years": stored.years.map(\.schoolYear).joined(separator: ",")])
        }
        api.delete("v1/term-dates/school/:urn") { request, context -> Response in
            let urn = context.parameters.get("urn") ?? ""
            let now = environment.clock.now()
            let existed = try await environment.write { db, outbox -> Bool in
                guard try SchoolTermDatesRow.fetchOne(db, key: urn) != nil else { return false }
                let entry = SchedulingChangelog.SchoolTermDates(urn: urn, document: nil, updatedAt: now)
                try Scheduler.apply(SchedulingChangelog(schoolTermDates: entry), db: db)
                try outbox.publish(
                    SchedulingChangelog(schoolTermDates: entry), to: Topics.schedulingChangelog.name,
                    key: SchedulingChangelog.termDatesKey(urn),
                    id: MessageID.derived(from: "term-dates:\(urn):\(Timestamp.format(now))", "changelog-delete"), now: now)
                return true
            }
            guard existed else { return HTTPEndpoint.json(.notFound, APIError("school \(urn) has no term dates of its own")) }
            return HTTPEndpoint.json(.ok, ["urn": urn, "status": "follows its local authority's term dates"])
        }
    }
}
