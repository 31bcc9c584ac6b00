import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import DispatchService

func mail(_ store: ServiceStore, _ id: String) async throws -> OutgoingMail? {
    try await store.pool.read { try OutgoingMail.fetchOne($0, key: id) }
}

func notice(_ store: ServiceStore, _ id: String) async throws -> NoticeRow? {
    try await store.pool.read { try NoticeRow.fetchOne($0, key: id) }
}

func auditKinds(_ store: ServiceStore, _ id: String) async throws -> [String] {
    try await store.pool.read { try AuditEntry.filter(Column("noticeId") == id).order(Column("id")).fetchAll($0).map(\.kind) }
}

func publishedEvents(_ store: ServiceStore) async throws -> [NoticeEvent] {
    try await store.pool.read { db in
        try OutboxMessage.filter(Column("topic") == Topics.noticeEvents.name).order(Column("id")).fetchAll(db)
            .map { try WireFormat.decode(NoticeEvent.self, from: Array($0.value)).payload }
    }
}

/// Each test starts its own relay (and store, cluster): the tests run side by side.
@Suite("Sending notice mail", .tags(.peers))
struct MailSenderTests {
    let start = Timestamp.parse("2026-11-24T08:00:05Z")!

    @Test("SMTP with STARTTLS and AUTH to a real server on loopback: mail received with the link and no personal data")
    func starttlsAuth() async throws {
        let certificate = try TestCertificate()
        let peer = try await SMTPPeer(certificate: certificate, user: "relay-user", password: "relay-secret-1")
        defer { peer.stop() }
        let route = MailRoute.smtp(url: peer.url, username: "relay-user", password: "relay-secret-1", tls: .required, caFile: certificate.cert)
        let settings = try Fixtures.settings(mail: route)
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let due = Fixtures.due()
        guard case .mailQueued(let queuedLink) = try await Fixtures.accept(due, settings: settings, store: store, now: clock.now) else {
            Issue.record("no mail queued")
            return
        }
        #expect(try await Fixtures.sender(settings, store, clock: clock).sendDue() == 1)

        let received = peer.messages()
        #expect(received.count == 1)
        let text = try #require(received.first)
        #expect(text.contains("X-TLS: yes"))
        #expect(text.contains("X-Auth: yes"))
        #expect(text.contains("X-Envelope-To: dsl@school.example"))
        #expect(link(in: text) == queuedLink)
        for sentinel in Sentinel.forbidden + Sentinel.byField.values.flatMap({ $0 }) {
            #expect(!text.contains(sentinel), "mail carries \(sentinel)")
        }
        let row = try #require(try await mail(store, due.noticeId))
        #expect(row.state == .sent)
        #expect(row.relayReply?.contains("250") == true)
        #expect(row.message == nil) // the link token is not kept once sent
        #expect(try await notice(store, due.noticeId)?.state == .sent)
        #expect(try await auditKinds(store, due.noticeId) == ["claimed", "mail-queued", "sent", "delivered-to-relay"])
        #expect(try await publishedEvents(store).map(\.kind) == [.claimed, .sent, .deliveredToRelay])
        // Dispatch keeps nothing about the other parties or children.
        let kept = try #require(try await notice(store, due.noticeId))
        let keptText = String(decoding: kept.payload + kept.content, as: UTF8.self)
        for sentinel in ["SENTINEL-VICTIM-GIVEN", "SENTINEL-SUSPECT-FAMILY", "SENTINEL-OTHERCHILD-GIVEN", "1971-03-17"] {
            #expect(!keptText.contains(sentinel))
        }
    }

    @Test("the relay's certificate is verified: an unknown CA is a temporary failure, nothing is sent")
    func unknownCA() async throws {
        let certificate = try TestCertificate()
        let other = try TestCertificate()
        let peer = try await SMTPPeer(certificate: certificate, user: "u", password: "p")
        defer { peer.stop() }
        let route = MailRoute.smtp(url: peer.url, username: "u", password: "p", tls: .required, caFile: other.cert)
        let settings = try Fixtures.settings(mail: route)
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let due = Fixtures.due()
        try await Fixtures.accept(due, settings: settings, store: store, now: clock.now)
        try await Fixtures.sender(settings, store, clock: clock).sendDue()
        let row = try #require(try await mail(store, due.noticeId))
        #expect(row.state == .pending)
        #expect(row.attempts == 1)
        #expect(peer.messages().isEmpty)
    }

    @Test("451 then accepted: retried after the backoff, delivered once")
    func temporaryThenAccepted() async throws {
        let peer = try await SMTPPeer(mode: "451-once")
        defer { peer.stop() }
        let settings = try Fixtures.settings(mail: .smtp(url: peer.url, tls: .none), retryBase: 60)
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let due = Fixtures.due()
        try await Fixtures.accept(due, settings: settings, store: store, now: clock.now)
        let sender = Fixtures.sender(settings, store, clock: clock)
        try await sender.sendDue()
        var row = try #require(try await mail(store, due.noticeId))
        #expect(row.state == .pending)
        #expect(row.attempts == 1)
        #expect(row.lastError?.contains("451") == true)
        #expect(row.nextAttemptAt == start.addingTimeInterval(60))
        #expect(peer.messages().isEmpty)

        clock.advance(by: 30)
        #expect(try await sender.sendDue() == 0) // not before the backoff
        clock.advance(by: 31)
        #expect(try await sender.sendDue() == 1)
        row = try #require(try await mail(store, due.noticeId))
        #expect(row.state == .sent)
        #expect(row.attempts == 2)
        #expect(peer.messages().count == 1)
        #expect(try await auditKinds(store, due.noticeId) == ["claimed", "mail-queued", "sent", "retry-scheduled", "delivered-to-relay"])
    }

    @Test("550: dead letter with the relay's reply and a failed event; never retried")
    func permanentFailure() async throws {
        let peer = try await SMTPPeer(mode: "550")
        defer { peer.stop() }
        let settings = try Fixtures.settings(mail: .smtp(url: peer.url, tls: .none))
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let due = Fixtures.due()
        try await Fixtures.accept(due, settings: settings, store: store, now: clock.now)
        let sender = Fixtures.sender(settings, store, clock: clock)
        try await sender.sendDue()
        let row = try #require(try await mail(store, due.noticeId))
        #expect(row.state == .failed)
        #expect(row.relayReply?.contains("550 5.1.1") == true, "reply: \(row.relayReply ?? "nil")")
        let letters = try await store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.count == 1)
        #expect(letters.first?.originalTopic == "smtp:\(due.noticeId)")
        #expect(letters.first?.errorClass == "smtp.permanent")
        #expect(letters.first?.errorMessage.contains("550 5.1.1") == true)
        #expect(try await publishedEvents(store).map(\.kind) == [.claimed, .sent, .failed])
        clock.advance(by: 86_400)
        #expect(try await sender.sendDue() == 0)
        #expect(peer.messages().isEmpty)
    }

    @Test("restart: mail found in `sending` is not re-sent but flagged; a redelivered notice is not mailed twice")
    func restartDoesNotResend() async throws {
        let peer = try await SMTPPeer()
        defer { peer.stop() }
        let settings = try Fixtures.settings(mail: .smtp(url: peer.url, tls: .none))
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let due = Fixtures.due()
        try await Fixtures.accept(due, settings: settings, store: store, now: clock.now)
        // The previous process claimed the mail (committed) and died before the relay's answer.
        try await store.pool.write { db in
            try db.execute(
                sql: "UPDATE outgoingMail SET state = 'sending', attempts = 1, lastAttemptAt = ? WHERE noticeId = ?",
                arguments: [clock.now, due.noticeId])
        }
        let sender = Fixtures.sender(settings, store, clock: clock)
        #expect(try await sender.recoverInterrupted() == [due.noticeId])
        #expect(try await sender.sendDue() == 0)
        #expect(peer.messages().isEmpty)
        #expect(try await mail(store, due.noticeId)?.state == .uncertain)
        let flagged = try #require(try await notice(store, due.noticeId))
        #expect(flagged.state == .uncertain && flagged.flaggedAt != nil)
        #expect(try await publishedEvents(store).last?.kind == .flagged)
        let listed = try await store.pool.read { try NotificationQuery.list(on: CalendarDate(self.start), db: $0) }
        #expect(listed.notifications.first?.flagged == true)
        #expect(listed.notifications.first?.state == "uncertain")

        // The same notice delivered again (Kafka redelivery, a re-release): nothing new.
        #expect(try await Fixtures.accept(due, settings: settings, store: store, now: clock.now) == .alreadyKnown)
        #expect(try await sender.sendDue() == 0)
        #expect(peer.messages().isEmpty)
        #expect(try await store.pool.read { try OutgoingMail.fetchCount($0) } == 1)
    }

    @Test(
        "two instances took one notice: the first claim in the topic's order sends, the other drops its unsent copy; the claimant survives a reopen")
    func claims() async throws {
        let folderA = TestPaths.temporaryDirectory("mail-a"), folderB = TestPaths.temporaryDirectory("mail-b")
        let settingsA = try Fixtures.settings(mail: .folder(directory: folderA))
        var settingsB = try Fixtures.settings(mail: .folder(directory: folderB))
        settingsB.instanceId = "dispatch-2"
        let pathA = TestPaths.temporaryDirectory("dispatch-a") + "/dispatch.sqlite"
        var storeA = try ServiceStore(path: pathA, migrations: DispatchStore.migrations)
        let storeB = try Fixtures.store()
        let clock = ManualClock(start)
        let email = Fixtures.due(), phone = Fixtures.due(channel: .telephone)
        for due in [email, phone] {
            // The same NoticeDue reached both (a partition moved before A's offsets were committed).
            _ = try await Fixtures.accept(due, settings: settingsA, store: storeA, now: clock.now, echo: false)
            _ = try await Fixtures.accept(due, settings: settingsB, store: storeB, now: clock.now, echo: false)
        }
        let claimantA = try await storeA.pool.read { try NoticeClaims.claimant($0) }
        let claimantB = try await storeB.pool.read { try NoticeClaims.claimant($0) }
        #expect(claimantA != claimantB)
        // Before either has read a claim back, neither sends.
        #expect(try await Fixtures.sender(settingsA, storeA, clock: clock).sendDue() == 0)
        #expect(try await Fixtures.sender(settingsB, storeB, clock: clock).sendDue() == 0)

        // The topic's order, which both read: A's claims, then B's.
        let claimsA = try await publishedEvents(storeA).filter { $0.kind == .claimed }
        let claimsB = try await publishedEvents(storeB).filter { $0.kind == .claimed }
        #expect(claimsA.map(\.claimant) == [claimantA, claimantA] && claimsB.map(\.claimant) == [claimantB, claimantB])
        for store in [storeA, storeB] {
            try await store.pool.write { db in
                for event in claimsA + claimsB {
                    try DispatchService.applyEvent(
                        event, eventId: MessageID.derived(from: event.noticeId, "claimed-\(event.claimant ?? "")"),
                        producer: "dispatch", db: db, now: self.start, logger: TestLog.logger("events"))
                }
            }
        }
        for due in [email, phone] {
            #expect(try await storeA.pool.read { try NoticeClaims.winner(of: due.noticeId, db: $0) } == claimantA)
            #expect(try await storeB.pool.read { try NoticeClaims.winner(of: due.noticeId, db: $0) } == claimantA)
            #expect(try await notice(storeB, due.noticeId) == nil, "the loser holds no copy")
            #expect(try await auditKinds(storeB, due.noticeId).contains("claim-lost"))
        }
        #expect(try await storeB.pool.read { try TelephoneTask.fetchCount($0) } == 0)
        #expect(try await storeA.pool.read { try TelephoneTask.fetchCount($0) } == 1)
        #expect(try await Fixtures.sender(settingsB, storeB, clock: clock).sendDue() == 0)
        #expect(try await Fixtures.sender(settingsA, storeA, clock: clock).sendDue() == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folderA).filter { $0.hasSuffix(".eml") }.count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folderB).isEmpty)

        // B gets the notice once more (another redelivery): it knows who took it.
        #expect(try await Fixtures.accept(email, settings: settingsB, store: storeB, now: clock.now) == .claimedElsewhere(by: claimantA))
        #expect(try await notice(storeB, email.noticeId) == nil)

        // A restarts (its process id, so its default instance id, changes): it still owns what it claimed.
        storeA = try ServiceStore(path: pathA, migrations: DispatchStore.migrations)
        #expect(try await storeA.pool.read { try NoticeClaims.claimant($0) } == claimantA)
        let later = Fixtures.due()
        _ = try await Fixtures.accept(later, settings: settingsA, store: storeA, now: clock.now)
        #expect(try await Fixtures.sender(settingsA, storeA, clock: clock).sendDue() == 1)
    }

    @Test("a store from before claims: the upgrade claims every notice it holds, so its queued mail still goes out")
    func upgradeFromSingleInstanceStore() async throws {
        let folder = TestPaths.temporaryDirectory("mail")
        let settings = try Fixtures.settings(mail: .folder(directory: folder))
        let clock = ManualClock(start)
        // A notice and its queued mail as the previous version wrote them (no claim).
        let scratch = try Fixtures.store()
        let due = Fixtures.due()
        try await Fixtures.accept(due, settings: settings, store: scratch, now: clock.now, echo: false)
        let (row, queued) = try await scratch.pool.read { db in
            (try NoticeRow.fetchOne(db, key: due.noticeId)!, try OutgoingMail.fetchOne(db, key: due.noticeId)!)
        }
        let path = TestPaths.temporaryDirectory("dispatch-v1") + "/dispatch.sqlite"
        let old = try ServiceStore(path: path, migrations: [DispatchStore.migration])
        try await old.pool.write { db in
            try row.insert(db)
            try queued.insert(db)
        }
        try old.pool.close()

        let upgraded = try ServiceStore(path: path, migrations: DispatchStore.migrations)
        let claimant = try await upgraded.pool.read { try NoticeClaims.claimant($0) }
        #expect(try await upgraded.pool.read { try NoticeClaims.winner(of: due.noticeId, db: $0) } == claimant)
        try await Fixtures.givePasswords([due.request.school.urn], store: upgraded)
        #expect(try await Fixtures.sender(settings, upgraded, clock: clock).sendDue() == 1)
        #expect(try await mail(upgraded, due.noticeId)?.state == .sent)
    }

    @Test("upgrading a store publishes the passwords it held before they were shared, once; another instance takes them")
    func upgradePublishesPasswords() async throws {
        let path = TestPaths.temporaryDirectory("dispatch-v3") + "/dispatch.sqlite"
        let old = try ServiceStore(path: path, migrations: [DispatchStore.migration, DispatchStore.claims, DispatchStore.claimTimes])
        let rows = [
            SchoolPassword(account: "110001", hash: "pbkdf2-sha256$1$c2FsdA==$aA==", setAt: start, setBy: "mash-officer-1"),
            SchoolPassword(account: "110002", hash: "pbkdf2-sha256$1$c2FsdA==$aQ==", setAt: start.addingTimeInterval(60), setBy: "api"),
        ]
        try await old.pool.write { db in for row in rows { try row.insert(db) } }
        try old.pool.close()

        let upgraded = try ServiceStore(path: path, migrations: DispatchStore.migrations)
        let queued = try await upgraded.pool.read { try OutboxMessage.order(Column("id")).fetchAll($0) }
        #expect(queued.map(\.topic) == [Topics.dispatchAccounts.name, Topics.dispatchAccounts.name])
        #expect(queued.map(\.key) == ["110001", "110002"])
        let published = try queued.map { try WireFormat.decode(AccountPassword.self, from: Array($0.value)).payload }
        #expect(
            published.map(\.hash) == rows.map(\.hash) && published.map(\.setAt) == rows.map(\.setAt)
                && published.map(\.setBy) == rows.map(\.setBy))

        // Another instance applies them; its own later password for an account is kept.
        let other = try Fixtures.store()
        let later = SchoolPassword(account: "110002", hash: "pbkdf2-sha256$1$c2FsdA==$ag==", setAt: start.addingTimeInterval(120), setBy: "api")
        try await other.pool.write { db in
            try AccountPasswords.apply(later, db: db)
            for password in published { try AccountPasswords.apply(password, db: db) }
        }
        let held = try await other.pool.read { try SchoolPassword.order(Column("account")).fetchAll($0) }
        #expect(held.map(\.hash) == [rows[0].hash, later.hash])

        // Opening the upgraded store again queues nothing more.
        try upgraded.pool.close()
        let reopened = try ServiceStore(path: path, migrations: DispatchStore.migrations)
        #expect(try await reopened.pool.read { try OutboxMessage.fetchCount($0) } == 2)
    }

    @Test("without a relay: .eml files in the mail folder")
    func emlFolder() async throws {
        let folder = TestPaths.temporaryDirectory("mail")
        let settings = try Fixtures.settings(mail: .folder(directory: folder))
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let due = Fixtures.due(force: "05")
        try await Fixtures.accept(due, settings: settings, store: store, now: clock.now)
        #expect(try await Fixtures.sender(settings, store, clock: clock).sendDue() == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".eml") }
        #expect(files.count == 1)
        let text = try String(contentsOfFile: folder + "/" + files[0], encoding: .utf8)
        #expect(text.contains("Subject: Operation Encompass notice for Oakwood Primary School"))
        #expect(text.contains("Message-ID: <"))
        #expect(link(in: text)?.hasPrefix("https://notices.example.test/notice/") == true)
        for sentinel in Sentinel.forbidden + Sentinel.byField.values.flatMap({ $0 }) { #expect(!text.contains(sentinel)) }
        #expect(try await mail(store, due.noticeId)?.relayReply?.contains(folder) == true)
    }

    @Test("telephone channel: a task for MASH staff, no email; escalation: mail to the education safeguarding manager")
    func telephoneAndEscalation() async throws {
        let folder = TestPaths.temporaryDirectory("mail")
        let settings = try Fixtures.settings(mail: .folder(directory: folder))
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let phone = Fixtures.due(force: "05", channel: .telephone)
        #expect(
            try await Fixtures.accept(phone, settings: settings, store: store, now: clock.now)
                == .telephoneTask(reason: "the protocol asks for a telephone call to this setting"))
        #expect(try await mail(store, phone.noticeId) == nil)
        #expect(try await store.pool.read { try TelephoneTask.fetchCount($0) } == 1)
        #expect(try await auditKinds(store, phone.noticeId) == ["claimed", "telephone-task"])
        let noEmail = Fixtures.due(email: nil)
        #expect(
            try await Fixtures.accept(noEmail, settings: settings, store: store, now: clock.now)
                == .telephoneTask(reason: "the school has no safeguarding email contact"))

        let escalated = Fixtures.due(escalation: true)
        try await Fixtures.accept(escalated, settings: settings, store: store, now: clock.now)
        #expect(try await mail(store, escalated.noticeId)?.recipient == "esm@la.example")
        #expect(try await notice(store, escalated.noticeId)?.account == "ESM43")
        try await Fixtures.sender(settings, store, clock: clock).sendDue()
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).count == 1)
    }

    @Test(
        "a holiday escalation about a child at a school in another force's area goes to this force's Education Safeguarding Manager under the force's account (ESM43), not the school's LA account (LA874); the school's own notice still goes to the school"
    )
    func escalationOutOfArea() async throws {
        let folder = TestPaths.temporaryDirectory("mail")
        let settings = try Fixtures.settings(mail: .folder(directory: folder))
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        // A Thames Valley incident; the child attends a Peterborough school (LA 874, Cambridgeshire's area).
        func acrossTheBorder(_ due: NoticeDue) -> NoticeDue {
            var due = due
            due.request.school.urn = "110874"
            due.request.school.localAuthorityCode = "874"
            due.request.school.localAuthorityName = "Peterborough"
            due.request.school.contacts = [SchoolContact(role: "dsl", name: "DSL", email: "dsl@peterborough-school.example")]
            return due
        }
        let school = acrossTheBorder(Fixtures.due(force: "43"))
        var escalated = acrossTheBorder(Fixtures.due(force: "43", escalation: true))
        escalated.request.noticeId = school.noticeId + "-esm"
        escalated.escalationContact = SchoolContact(role: "esm", name: "Thames Valley ESM", email: "esm@thamesvalley.example")
        // Only the force's accounts have passwords: Peterborough's LA account has none.
        try await Fixtures.givePasswords(["ESM43", "110874"], store: store)
        try await Fixtures.accept(escalated, settings: settings, store: store, now: clock.now, password: false)
        try await Fixtures.accept(school, settings: settings, store: store, now: clock.now, password: false)
        #expect(try await notice(store, escalated.noticeId)?.account == "ESM43")
        #expect(try await mail(store, escalated.noticeId)?.recipient == "esm@thamesvalley.example")
        #expect(try await notice(store, school.noticeId)?.account == "110874")
        #expect(try await mail(store, school.noticeId)?.recipient == "dsl@peterborough-school.example")
        // Nothing waits for a password the force's ESM could not have: both mails go.
        #expect(try await store.pool.read { try HeldNotices.list($0, now: clock.now) }.held.isEmpty)
        #expect(try await Fixtures.sender(settings, store, clock: clock).sendDue() == 2)
        let texts = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".eml") }
            .map { try String(contentsOfFile: folder + "/" + $0, encoding: .utf8) }
        let esm = try #require(texts.first { $0.contains("To: <esm@thamesvalley.example>") })
        #expect(esm.contains("Subject: Operation Encompass notice for the Education Safeguarding Manager (a holiday escalation)"))
        #expect(!esm.contains("Peterborough"), "the email names no school nor local authority")
    }

    @Test(
        "notice accounts: a school's URN or EY reference, LA and a 3-digit LA code, ESM and a 2-digit force code; held mail names whose account it waits for"
    )
    func accounts() {
        for good in ["110001", "EY123456", "LA874", "ESM43", "ESM05"] { #expect(DispatchAPI.validAccount(good), "\(good)") }
        for bad in ["ESM4", "ESM431", "ESMAB", "ESM", "LA87", "LA8744"] { #expect(!DispatchAPI.validAccount(bad), "\(bad)") }
        #expect(NoticeAccount.educationSafeguardingManagerForce("ESM43") == "43" && NoticeAccount.educationSafeguardingManagerForce("LA874") == nil)
        let held = { (account: String) in
            HeldNotices.Held(
                noticeId: "n", account: account, schoolURN: "110874", schoolName: "Oakwood Primary School",
                forceCode: "43", occurrenceNumber: "o", heldSince: start, ageSeconds: 0)
        }
        let warnings = HeldNotices.warnings(
            HeldNotices.Listing(held: [held("ESM43"), held("110874")], accountsWithoutPassword: ["110874", "ESM43"], oldestAgeSeconds: 0))
        #expect(warnings.contains { $0.hasPrefix("1 notice held: ESM43 force 43's Education Safeguarding Manager has no notice password") })
        #expect(warnings.contains { $0.hasPrefix("1 notice held: 110874 Oakwood Primary School has no notice password") })
    }

    @Test("not acknowledged by 10:00 London on the release day: flagged once; acknowledged notices are not")
    func followUp() async throws {
        let settings = try Fixtures.settings(mail: .folder(directory: TestPaths.temporaryDirectory("mail")))
        let store = try Fixtures.store()
        let clock = ManualClock(start)
        let late = Fixtures.due()
        let done = Fixtures.due()
        try await Fixtures.accept(late, settings: settings, store: store, now: clock.now)
        try await Fixtures.accept(done, settings: settings, store: store, now: clock.now)
        try await Fixtures.sender(settings, store, clock: clock).sendDue()
        try await store.pool.write { db in
            try db.execute(
                sql: "UPDATE notice SET acknowledgedAt = ?, state = 'acknowledged' WHERE noticeId = ?", arguments: [clock.now, done.noticeId])
        }
        let followUp = FollowUp(store: store, wake: {}, clock: .manual(clock), logger: TestLog.logger("follow-up"))
        clock.set(Timestamp.parse("2026-11-24T09:59:00Z")!)
        #expect(try await followUp.check().isEmpty)
        clock.set(Timestamp.parse("2026-11-24T10:00:00Z")!)
        #expect(try await followUp.check() == [late.noticeId])
        #expect(try await followUp.check().isEmpty)
        #expect(try await auditKinds(store, late.noticeId).last == "flagged")
        let list = try await store.pool.read { try NotificationQuery.list(on: CalendarDate(year: 2026, month: 11, day: 24), db: $0) }
        #expect(list.flagged == 1)
        #expect(list.notifications.count == 2)
    }
}

@Suite("Dispatch's audit rows")
struct AuditRowTests {
    @Test("an audit row is written whole by the prepared insert; the same event id again is dropped, a new one comes after it")
    func auditInsert() throws {
        let store = try Fixtures.store()
        let at = Timestamp.parse("2026-11-24T08:00:05.250Z")!
        let event = NoticeEvent(
            noticeId: "n-1", kind: .scheduled, at: at, forceCode: "43", occurrenceNumber: "43251100001",
            schoolURN: "110001", detail: "release 2026-11-25T08:00:00Z")
        let expected = AuditEntry(
            eventId: "e-1", noticeId: "n-1", kind: "scheduled", at: at, forceCode: "43", occurrenceNumber: "43251100001",
            schoolURN: "110001", detail: "release 2026-11-25T08:00:00Z", producer: "scheduling")
        #expect(try expected.replacementDrift() == [])
        try store.pool.write { db in
            try Audit.insert(event, eventId: "e-1", producer: "scheduling", db: db)
            var changed = event
            changed.detail = "a replay with other text"
            try Audit.insert(changed, eventId: "e-1", producer: "scheduling", db: db)
            try Audit.insert(event, eventId: "e-2", producer: "dispatch", db: db)
            let rows = try AuditEntry.order(Column("id")).fetchAll(db)
            var first = expected
            first.id = rows.first?.id
            #expect(rows.first == first)
            #expect(rows.map(\.eventId) == ["e-1", "e-2"])
            // Ids only order the trail (the ignored insert may use up a number of the sequence).
            #expect(rows.count == 2 && (rows[0].id ?? 0) < (rows[1].id ?? 0))
        }
    }
}

@Suite("Replicated notice passwords")
struct AccountPasswordTests {
    @Test("a password read from the topic replaces an older one and ends that account's sessions; an older or the same one changes nothing")
    func lastSetWins() async throws {
        let store = try Fixtures.store()
        let at = Timestamp.parse("2026-11-24T09:00:00Z")!
        let settings = try Fixtures.settings(mail: .folder(directory: TestPaths.temporaryDirectory("mail")))
        let due = Fixtures.due()
        try await Fixtures.accept(due, settings: settings, store: store, now: at)
        let first = SchoolPassword(account: "110001", hash: "pbkdf2-sha256$1$YQ==$YQ==", setAt: at, setBy: "a")
        let newer = SchoolPassword(account: "110001", hash: "pbkdf2-sha256$1$Yg==$Yg==", setAt: at.addingTimeInterval(60), setBy: "b")
        try await store.pool.write { db in
            #expect(try AccountPasswords.apply(first, db: db))
            try NoticeSession(
                sessionHash: "s1", noticeId: due.noticeId, signedInAs: "Ms Head", createdAt: at, expiresAt: at.addingTimeInterval(1800),
                csrfToken: "t"
            ).insert(db)
            #expect(try !AccountPasswords.apply(first, db: db), "its own record read back")
            #expect(try NoticeSession.fetchCount(db) == 1)
            #expect(try AccountPasswords.apply(newer, db: db))
            #expect(try NoticeSession.fetchCount(db) == 0, "a new password ends the account's sessions")
            #expect(try !AccountPasswords.apply(first, db: db), "an older password arriving late")
            #expect(try SchoolPassword.fetchOne(db, key: "110001")?.setBy == "b")
        }
    }
}

@Suite("Claimed and not sent")
struct UnsentClaimsTests {
    @Test(
        "a notice claimed over the limit ago with no sent, telephone-task, failed, cancelled or flagged event counts; younger, older than a week or handled ones do not"
    )
    func unsentClaims() async throws {
        let store = try Fixtures.store()
        let metrics = ServiceMetrics(service: "dispatch")
        let now = Timestamp.parse("2026-11-24T09:00:00Z")!
        func event(_ notice: String, _ kind: NoticeEvent.Kind, minutesAgo: Double, claimant: String? = nil) -> NoticeEvent {
            NoticeEvent(
                noticeId: notice, kind: kind, at: now.addingTimeInterval(-minutesAgo * 60), forceCode: "43",
                occurrenceNumber: "43251100001", schoolURN: "110001", claimant: claimant)
        }
        // What an instance reads from encompass.notice.events, another instance's claims included.
        let events: [NoticeEvent] = [
            event("lost", .claimed, minutesAgo: 45, claimant: "d-elsewhere"),
            event("sent", .claimed, minutesAgo: 45, claimant: "d-elsewhere"), event("sent", .sent, minutesAgo: 44),
            event("phoned", .claimed, minutesAgo: 45, claimant: "d-elsewhere"), event("phoned", .telephoneTask, minutesAgo: 45),
            event("failed", .claimed, minutesAgo: 50, claimant: "d-elsewhere"), event("failed", .failed, minutesAgo: 20),
            event("cancelled", .claimed, minutesAgo: 50, claimant: "d-elsewhere"), event("cancelled", .cancelled, minutesAgo: 20),
            event("uncertain", .claimed, minutesAgo: 50, claimant: "d-elsewhere"), event("uncertain", .flagged, minutesAgo: 49),
            event("recent", .claimed, minutesAgo: 10, claimant: "d-elsewhere"),
            event("last-week", .claimed, minutesAgo: 8 * 24 * 60, claimant: "d-elsewhere"),
            event("retrying", .claimed, minutesAgo: 31, claimant: "d-elsewhere"), event("retrying", .released, minutesAgo: 31),
        ]
        try await store.pool.write { db in
            for (i, e) in events.enumerated() {
                try DispatchService.applyEvent(e, eventId: "e-\(i)", producer: "dispatch", db: db, now: now, logger: TestLog.logger("unsent"))
            }
        }
        let watch = UnsentClaimsWatch(store: store, metrics: metrics, clock: ServiceClock { now }, overdue: 30 * 60, logger: TestLog.logger("unsent"))
        #expect(try await watch.update() == ["lost", "retrying"])
        #expect(metrics.exposition().contains(#"encompass_dispatch_claimed_unsent_notices{service="dispatch"} 2"#))

        // The claiming instance sends one of them: it leaves the count.
        let late = event("lost", .sent, minutesAgo: 0)
        try await store.pool.write { db in
            try DispatchService.applyEvent(late, eventId: "e-late", producer: "dispatch", db: db, now: now, logger: TestLog.logger("unsent"))
        }
        #expect(try await watch.update() == ["retrying"])
        #expect(metrics.exposition().contains(#"encompass_dispatch_claimed_unsent_notices{service="dispatch"} 1"#))
    }

    @Test("ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES sets the limit; out of range is refused with the variable named")
    func unsentSetting() throws {
        let folder = TestPaths.temporaryDirectory("mail")
        #expect(try DispatchService.Settings.fromEnvironment(["ENCOMPASS_MAIL_DIR": folder]).unsentAlertAfter == 30 * 60)
        #expect(
            try DispatchService.Settings.fromEnvironment(["ENCOMPASS_MAIL_DIR": folder, "ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES": "90"])
                .unsentAlertAfter == 90 * 60)
        let error = #expect(throws: ConfigurationError.self) {
            try DispatchService.Settings.fromEnvironment(["ENCOMPASS_MAIL_DIR": folder, "ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES": "0"])
        }
        #expect(error?.variable == "ENCOMPASS_DISPATCH_UNSENT_ALERT_MINUTES")
    }
}
