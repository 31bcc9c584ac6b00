import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import DispatchService

/// A notice cancelled after scheduling released it ("no longer attends" arrived, or an
/// amendment withdrew the child), read by dispatch from `encompass.notice.events`.
@Suite("Withdrawing a released notice", .serialized)
struct WithdrawalTests {
    let start = Timestamp.parse("2026-11-24T08:00:05Z")!
    let reason =
        "withdrawn after release at 2026-11-24T08:00:00Z: dispatch does not send it if it has not yet: URN 110001 reported that the pupil no longer attends"

    func cancel(_ due: NoticeDue, store: ServiceStore, now: Date) async throws {
        let event = NoticeEvent(
            noticeId: due.noticeId, kind: .cancelled, at: now, forceCode: due.request.incident.forceCode,
            occurrenceNumber: due.request.incident.occurrenceNumber, schoolURN: due.request.school.urn, detail: reason)
        try await store.pool.write { db in
            try DispatchService.applyEvent(
                event, eventId: MessageID.fresh(), producer: "scheduling", db: db, now: now, logger: TestLog.logger("events"))
        }
    }

    func folder() -> (MailRoute, String) {
        let directory = TestPaths.temporaryDirectory("withdrawn-mail")
        return (.folder(directory: directory), directory)
    }

    func mails(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".eml") }
    }

    @Test("mail held for a password, then cancelled: never sent, even once the password is set; the reason in its audit")
    func heldThenCancelled() async throws {
        let (route, directory) = folder()
        let settings = try Fixtures.settings(mail: route)
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let due = Fixtures.due(urn: "110009")
        guard case .mailQueued = try await Fixtures.accept(due, settings: settings, store: store, now: clock.now, password: false) else {
            Issue.record("no mail queued")
            return
        }
        #expect(try await Fixtures.sender(settings, store, clock: clock).sendDue() == 0, "held: no password")
        try await cancel(due, store: store, now: clock.now)
        try await Fixtures.givePasswords(["110009"], store: store)
        clock.advance(by: 60)
        #expect(try await Fixtures.sender(settings, store, clock: clock).sendDue() == 0)
        #expect(mails(directory).isEmpty)
        let row = try #require(try await notice(store, due.noticeId))
        #expect(row.state == .cancelled && row.sentAt == nil && row.linkTokenHash == nil)
        let queued = try #require(try await mail(store, due.noticeId))
        #expect(queued.state == .cancelled && queued.message == nil, "the link token is dropped")
        let audit = try await store.pool.read { db in
            try AuditEntry.filter(Column("noticeId") == due.noticeId && Column("kind") == "withdrawn").fetchOne(db)
        }
        #expect(audit?.detail?.contains("not sent") == true && audit?.detail?.contains("no longer attends") == true, "\(String(describing: audit))")
        #expect(try await publishedEvents(store).allSatisfy { $0.kind != .sent })
    }

    @Test("mail waiting for the sender, then cancelled: not sent; a cancellation after sending flags the notice instead")
    func pendingThenCancelled() async throws {
        let (route, directory) = folder()
        let settings = try Fixtures.settings(mail: route)
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let stopped = Fixtures.due()
        let sent = Fixtures.due(urn: "110002")
        try await Fixtures.accept(stopped, settings: settings, store: store, now: clock.now)
        try await Fixtures.accept(sent, settings: settings, store: store, now: clock.now)
        try await cancel(stopped, store: store, now: clock.now)
        #expect(try await Fixtures.sender(settings, store, clock: clock).sendDue() == 1, "only the other notice")
        #expect(mails(directory).count == 1)
        #expect(try await notice(store, stopped.noticeId)?.state == .cancelled)
        #expect(try await mail(store, stopped.noticeId)?.state == .cancelled)

        try await cancel(sent, store: store, now: clock.now)
        let late = try #require(try await notice(store, sent.noticeId))
        #expect(late.state == .sent && late.flaggedAt != nil && late.flagReason?.contains("cancelled after it was sent") == true)
        #expect(try await auditKinds(store, sent.noticeId).contains("withdrawal-too-late"))
    }

    @Test("a cancellation read before the notice itself: kept, never sent; a telephone task cancelled is closed")
    func cancellationFirstAndTelephone() async throws {
        let (route, directory) = folder()
        let settings = try Fixtures.settings(mail: route)
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let due = Fixtures.due()
        try await cancel(due, store: store, now: clock.now)
        let outcome = try await Fixtures.accept(due, settings: settings, store: store, now: clock.now)
        guard case .withdrawn(let why) = outcome else {
            Issue.record("accepted as \(outcome)")
            return
        }
        #expect(why.contains("no longer attends"))
        #expect(try await mail(store, due.noticeId) == nil)
        #expect(try await notice(store, due.noticeId)?.state == .cancelled)
        #expect(try await Fixtures.sender(settings, store, clock: clock).sendDue() == 0 && mails(directory).isEmpty)

        let phoned = Fixtures.due(channel: .telephone, urn: "110002")
        guard case .telephoneTask = try await Fixtures.accept(phoned, settings: settings, store: store, now: clock.now) else {
            Issue.record("no telephone task")
            return
        }
        try await cancel(phoned, store: store, now: clock.now)
        let task = try #require(try await store.pool.read { try TelephoneTask.fetchOne($0, key: "t-" + phoned.noticeId) })
        #expect(task.doneAt != nil && task.note?.contains("no longer attends") == true)
        #expect(try await notice(store, phoned.noticeId)?.state == .cancelled)
    }

    @Test("a home local authority's telephone task says whom to ring, about which child, by when; its audit event leaves the child's name out")
    func homeAuthorityReason() async throws {
        let settings = try Fixtures.settings(mail: folder().0)
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        var notOnRoll = Fixtures.due(channel: .telephone, urn: "LA870")
        notOnRoll.request.school = ResolvedSchool(
            urn: "LA870", name: "Reading local authority (child home-educated)", localAuthorityCode: "870", localAuthorityName: "Reading",
            contacts: [SchoolContact(role: "education-otherwise", name: "Reading EHE team", email: "ehe@reading.example", phone: "0118 937 3737")],
            channel: .telephone)
        guard case .telephoneTask(let reason) = try await Fixtures.accept(notOnRoll, settings: settings, store: store, now: clock.now) else {
            Issue.record("no telephone task")
            return
        }
        #expect(reason.hasPrefix("Ring Reading local authority's education-otherwise contact, Reading EHE team on 0118 937 3737."), "\(reason)")
        #expect(
            reason.contains("\(Sentinel.childGiven) \(Sentinel.childFamily), born \(Sentinel.childDOBShown)")
                && reason.contains("on no school roll (Reading local authority (child home-educated))"))
        #expect(reason.contains("incident \(Sentinel.occurrence)") && reason.contains("Ring by Tuesday 24 November 2026 at 10:00"), "\(reason)")
        let event = try #require(try await publishedEvents(store).first { $0.noticeId == notOnRoll.noticeId && $0.kind == .telephoneTask })
        #expect(
            event.detail?.contains("Ring Reading local authority's") == true && event.detail?.contains(Sentinel.childGiven) == false,
            "\(String(describing: event.detail))")

        var none = notOnRoll
        none.request.noticeId = notOnRoll.noticeId + "-2"
        none.request.school.contacts = []
        guard case .telephoneTask(let noContact) = try await Fixtures.accept(none, settings: settings, store: store, now: clock.now) else {
            Issue.record("no telephone task")
            return
        }
        #expect(
            noContact.contains("children missing education or elective home education team") && noContact.contains("la-contacts import"),
            "\(noContact)")

        var outOfArea = Fixtures.due(channel: .telephone, urn: "110640")
        outOfArea.request.noticeId = notOnRoll.noticeId + "-3"
        outOfArea.request.school = ResolvedSchool(
            urn: "110640", name: "Fen Ditton Primary School", localAuthorityCode: "873",
            localAuthorityName: "Cambridgeshire", contacts: [], channel: .telephone)
        outOfArea.request.resolution = [
            "URN 110640 is in Cambridgeshire (LA 873), outside force 43's local authorities; \(ResolvedSchool.unroutedOutOfArea) for the school nor for Cambridgeshire"
        ]
        guard case .telephoneTask(let across) = try await Fixtures.accept(outOfArea, settings: settings, store: store, now: clock.now) else {
            Issue.record("no telephone task")
            return
        }
        #expect(
            across.hasPrefix(
                "Ring the designated safeguarding lead of Fen Ditton Primary School (URN 110640, Cambridgeshire, outside the force's area;"),
            "\(across)")
        #expect(across.contains("\(Sentinel.childGiven) \(Sentinel.childFamily)") && across.contains("Ring by Tuesday 24 November 2026 at 10:00"))

        // An early years setting the protocol telephones keeps its own reason.
        let setting = Fixtures.due(channel: .telephone, urn: "EY512345")
        guard case .telephoneTask(let early) = try await Fixtures.accept(setting, settings: settings, store: store, now: clock.now) else {
            Issue.record("no telephone task")
            return
        }
        #expect(early == "the protocol asks for a telephone call to this setting")
    }
}
