import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchoolResolutionService

/// "This pupil no longer attends": the loop from the school's answer to the notice at the
/// child's current school, in school resolution's store and outbox.
@Suite("No longer attends: cancel, ask Children's Social Care, redirect", .serialized)
struct RedirectTests {
    let flow = SchoolFlow(protocols: Fixtures.protocols)
    let now = Fixtures.incidentDate.addingTimeInterval(3_600)

    func published<P: MessagePayload>(_ type: P.Type, _ store: ServiceStore, topic: String) throws -> [P] {
        try store.pool.read { db in
            try OutboxMessage.filter(Column("topic") == topic).order(Column("id")).fetchAll(db)
                .compactMap { try? WireFormat.decode(P.self, from: Array($0.value)).payload }
        }
    }

    @Test(
        "the child's other notices to the school are cancelled, each gets a redirect request, CSC's answer goes to the new school and never back to the blocked one; each step is an event"
    )
    func loop() throws {
        let store = try Fixtures.store()
        let child = Fixtures.child(id: "child-7", age: 8, school: RecordedSchool(urn: "109778"))
        let first = Fixtures.message(occurrence: "43260000101", child: child)
        let second = Fixtures.message(occurrence: "43260000102", child: child)
        try store.pool.write { db in
            let outbox = Outbox(db: db, producer: "test")
            let outcomes = [
                try flow.handleChild(first, messageId: "m-1", db: db, outbox: outbox, now: now, logger: TestLog.logger("t")),
                try flow.handleChild(second, messageId: "m-2", db: db, outbox: outbox, now: now, logger: TestLog.logger("t")),
            ]
            #expect(outcomes == [.notice, .notice])
        }
        // The school reads the first notice and answers that the pupil no longer attends.
        let feedback = SchoolFeedback(
            childId: "child-7", noticeId: first.noticeKey, schoolURN: "109778", kind: .noLongerAttends,
            reportedAt: now, reportedBy: "dsl@caversham.example")
        try store.pool.write { db in
            try flow.handleFeedback(
                feedback, messageId: "feedback-1", db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
        }
        // Only the second notice (not yet sent) is cancelled; the first was sent already.
        let cancellations = try published(NoticeCancelled.self, store, topic: Topics.noticeRequests.name)
        #expect(cancellations.map(\.noticeId) == [second.noticeKey])
        #expect(cancellations.first?.schoolURN == "109778" && cancellations.first?.reason.contains("no longer attends") == true)
        let firstRedirect = NoticeID.redirect(of: first.noticeKey, awayFrom: "109778")
        let secondRedirect = NoticeID.redirect(of: second.noticeKey, awayFrom: "109778")
        #expect(cancellations.first?.replacedBy == secondRedirect)
        let requests = try store.pool.read { try CSCRequests.open($0, lpa: "Reading") }
        #expect(Set(requests.map(\.requestId)) == [firstRedirect, secondRedirect])
        #expect(requests.allSatisfy { $0.reason.contains("URN 109778") && $0.reason.contains("no longer attends") })
        #expect(Set(requests.compactMap(\.redirectOf)) == [first.noticeKey, second.noticeKey])
        // The export carries the child, so CSC can answer.
        let rows = CSCRequests.rows(requests)
        #expect(rows.allSatisfy { $0[5] == "Amelia" && $0[6] == "Hughes" })
        let outcomes = try store.pool.read { try ResolutionRow.filter(Column("childId") == "child-7").fetchAll($0) }
        #expect(outcomes.filter { $0.outcome == SchoolFlow.redirected }.count == 2)
        var events = try published(NoticeEvent.self, store, topic: Topics.noticeEvents.name)
        #expect(Set(events.filter { $0.kind == .redirectRequested }.map(\.noticeId)) == [first.noticeKey, second.noticeKey])
        #expect(events.allSatisfy { $0.detail?.contains("Amelia") == false }, "events carry no personal data")

        // The same report again (a re-delivery past the inbox, or a second click): nothing new.
        try store.pool.write { db in
            try flow.handleFeedback(
                feedback, messageId: "feedback-2", db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
        }
        #expect(try published(NoticeCancelled.self, store, topic: Topics.noticeRequests.name).count == 1)
        #expect(try store.pool.read { try CSCRequests.open($0, lpa: "all") }.count == 2)

        // CSC answers: the blocked school for one (refused, the request stays open), Coley Primary for the other.
        let sheet = "request_id,school_urn,school_name\n\(firstRedirect),109778,\n\(secondRedirect),109779,\n"
        let answer = try store.pool.write { db in
            try CSCRequests.importReturned(
                Data(sheet.utf8), name: "returned.csv", flow: flow, db: db, outbox: Outbox(db: db, producer: "test"), now: now)
        }
        #expect(answer.answers.map(\.outcome) == ["rejected", "notice"])
        #expect(answer.answers[0].reasons.joined().contains("no longer attends"))
        let notices = try published(NoticeRequested.self, store, topic: Topics.noticeRequests.name).filter { $0.noticeId.contains("-r") }
        #expect(notices.map(\.noticeId) == [secondRedirect])
        #expect(notices.first?.school.urn == "109779" && notices.first?.incident.occurrenceNumber == second.incident.occurrenceNumber)
        #expect(try store.pool.read { try SchoolRequestRow.fetchOne($0, key: firstRedirect)?.status } == "open")
        #expect(try store.pool.read { try SchoolRequestRow.fetchOne($0, key: secondRedirect)?.status } == "resolved")
        #expect(try store.pool.read { try ChildSchoolRow.fetchOne($0, key: "child-7")?.urn } == "109779")
        events = try published(NoticeEvent.self, store, topic: Topics.noticeEvents.name)
        let redirected = try #require(events.first { $0.kind == .redirected })
        #expect(redirected.noticeId == second.noticeKey && redirected.schoolURN == "109779" && redirected.detail?.contains(secondRedirect) == true)

        // CSC corrects its answer for the first: both redirects now go, each under its own message id.
        let corrected = try store.pool.write { db in
            try CSCRequests.importReturned(
                Data("request_id,school_urn\n\(firstRedirect),109779\n".utf8), name: "corrected.csv", flow: flow,
                db: db, outbox: Outbox(db: db, producer: "test"), now: now)
        }
        #expect(corrected.answers.map(\.outcome) == ["notice"])
        let ids = try store.pool.read { db in
            try OutboxMessage.filter(Column("topic") == Topics.noticeRequests.name).fetchAll(db)
                .compactMap { try? WireFormat.decode(NoticeRequested.self, from: Array($0.value)) }.filter { $0.payload.noticeId.contains("-r") }.map(
                    \.id)
        }
        #expect(ids.count == 2 && Set(ids).count == 2, "one report's redirects must not share message ids (the inbox would drop one)")

        // The redirect's school also says no: the loop runs again from the redirect.
        let again = SchoolFeedback(
            childId: "child-7", noticeId: secondRedirect, schoolURN: "109779", kind: .noLongerAttends,
            reportedAt: now, reportedBy: "office@coley.example")
        try store.pool.write { db in
            try flow.handleFeedback(
                again, messageId: "feedback-3", db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
        }
        #expect(
            try store.pool.read { try SchoolRequestRow.fetchOne($0, key: NoticeID.redirect(of: secondRedirect, awayFrom: "109779"))?.status }
                == "open")
    }

    @Test("a notice whose child record is no longer held (purged) cannot be redirected: flagged for the MASH, never silently dropped")
    func purgedRecord() throws {
        let store = try Fixtures.store()
        let message = Fixtures.message(occurrence: "43260000201", child: Fixtures.child(id: "child-8", age: 8, school: RecordedSchool(urn: "109778")))
        try store.pool.write { db in
            let outcome = try flow.handleChild(
                message, messageId: "m-1", db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
            #expect(outcome == .notice)
            try db.execute(sql: "UPDATE resolution SET request = NULL")
            try flow.handleFeedback(
                SchoolFeedback(
                    childId: "child-8", noticeId: message.noticeKey, schoolURN: "109778", kind: .noLongerAttends,
                    reportedAt: now, reportedBy: "dsl"),
                messageId: "f-1", db: db, outbox: Outbox(db: db, producer: "test"), now: now, logger: TestLog.logger("t"))
        }
        let flagged = try published(NoticeEvent.self, store, topic: Topics.noticeEvents.name).filter { $0.kind == .flagged }
        #expect(flagged.map(\.noticeId) == [message.noticeKey])
        #expect(flagged.first?.detail?.contains("find the child's current school by hand") == true)
        #expect(try store.pool.read { try ChildSchoolBlockRow.fetchCount($0) } == 1)
    }
}
