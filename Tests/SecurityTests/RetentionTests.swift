import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import Testing

@testable import ChildResearchService
@testable import ConsoleService
@testable import DispatchService
@testable import IntakeService
@testable import SchedulingService
@testable import SchoolResolutionService
@testable import ServiceRuntime

/// The store's file (and its write-ahead log) as bytes: what is really left on disk.
func fileBytes(_ store: ServiceStore) -> Data {
    [store.path, store.path + "-wal"].reduce(Data()) { $0 + (FileManager.default.contents(atPath: $1) ?? Data()) }
}

func fileContains(_ store: ServiceStore, _ text: String) -> Bool {
    fileBytes(store).range(of: Data(text.utf8)) != nil
}

/// Reads the SQLite file with a connection of its own (not the service's pool).
func rawRead<T>(_ store: ServiceStore, _ body: (Database) throws -> T) throws -> T {
    let queue = try DatabaseQueue(path: store.path)
    return try queue.read(body)
}

let day: TimeInterval = 86_400

/// What the outbox relay does once the broker has the messages (the store zeroes deleted content).
func clearOutbox(_ store: ServiceStore) async throws {
    try await store.pool.write { db in try db.execute(sql: "DELETE FROM outbox") }
}

/// The tombstones queued in the outbox: (topic, key), each with an empty value and the tombstone header.
func queuedTombstones(_ store: ServiceStore) throws -> [[String]] {
    try rawRead(store) { db in
        try Row.fetchAll(db, sql: "SELECT topic, key, length(value) AS size, headers FROM outbox ORDER BY key").compactMap { row in
            let headers: String = row["headers"]
            guard headers.contains(MessageHeader.tombstone) else { return nil }
            #expect(row["size"] as Int? == 0)
            return [row["topic"], row["key"]]
        }
    }
}

/// The records queued in the outbox, as a replica reads them from Kafka (tombstones excepted).
func queuedRecords(_ store: ServiceStore) throws -> [KafkaRecord] {
    try rawRead(store) { db in
        try OutboxMessage.order(Column("id")).fetchAll(db).map(\.producerRecord).filter { !$0.isTombstone }.enumerated().map { offset, record in
            KafkaRecord(topic: record.topic, partition: 0, offset: Int64(offset), key: record.key, value: record.value, headers: record.headers)
        }
    }
}

/// A tombstone as a replica reads it from Kafka.
func tombstoneRecord(_ topic: String, key: String) -> KafkaRecord {
    KafkaRecord(topic: topic, partition: 0, offset: 9, key: Array(key.utf8), value: [], isTombstone: true)
}

func incident(_ occurrence: String, child: String, occurredAt: Date) -> Incident {
    Incident(
        occurrenceNumber: occurrence, forceCode: "43", occurredAt: occurredAt, reportedAt: occurredAt.addingTimeInterval(3_600),
        incidentAddress: PostalAddress(lines: ["1 High Street"], town: "Reading", postcode: "RG1 7LL"),
        localPolicingArea: "Reading", riskLevel: .medium, crime: true,
        parties: [Party(role: .victim, givenName: child + "Mother", familyName: child + "Family", dateOfBirth: "1985-01-02")],
        children: [
            RecordedChild(
                givenName: child, familyName: child + "Family", dateOfBirth: "2016-05-04",
                homeAddress: PostalAddress(lines: [child + " Road"], town: "Reading", postcode: "RG1 7LL"))
        ])
}

@Suite("Personal data is purged after the retention period; the audit trail stays", .tags(.kafka))
struct RetentionTests {
    let start = Timestamp.parse("2025-01-06T09:00:00Z")!
    let settings = RetentionSettings(days: 400, interval: .seconds(3600), batchSize: 2) // small batches: several per run

    @Test("settings: ENCOMPASS_RETENTION_DAYS and friends, with ranges")
    func settingsFromEnvironment() throws {
        #expect(try RetentionSettings.fromEnvironment([:]) == RetentionSettings())
        let custom = try RetentionSettings.fromEnvironment([
            "ENCOMPASS_RETENTION_DAYS": "90", "ENCOMPASS_RETENTION_INTERVAL_MINUTES": "5",
            "ENCOMPASS_RETENTION_BATCH": "50",
        ])
        #expect(custom == RetentionSettings(days: 90, interval: .seconds(300), batchSize: 50))
        for bad in ["0", "7", "abc", "100000"] {
            #expect(throws: ConfigurationError.self) { try RetentionSettings.fromEnvironment(["ENCOMPASS_RETENTION_DAYS": bad]) }
        }
    }

    @Test("dead letters: the old one's payload and error text go, the row and its actions stay; a purged letter cannot be replayed as it was")
    func deadLetters() async throws {
        let clock = ManualClock(start)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("ret-dl") + "/s.sqlite")
        try await store.pool.write { db in
            let outbox = Outbox(db: db, producer: "test")
            try DeadLetterWriter.writeRejectedInput(
                db: db, service: .intake, origin: "http:/v1/incidents", place: 1, key: "OLDKEY-SENTINEL",
                value: Array("{\"givenName\":\"OLD-DL-SENTINEL\"}".utf8), errorClass: "payload.invalid",
                message: "givenName OLD-DL-SENTINEL is wrong", now: clock.now, outbox: outbox)
            try DeadLetterWriter.writeRejectedInput(
                db: db, service: .intake, origin: "http:/v1/incidents", place: 3, key: nil,
                value: Array("{\"givenName\":\"OLD-OPEN-SENTINEL\"}".utf8), errorClass: "payload.invalid",
                message: "bad", now: clock.now, outbox: outbox)
        }
        let oldId = try #require(try await store.pool.read { try Int64.fetchOne($0, sql: "SELECT min(id) FROM deadLetter") })
        let openId = oldId + 1
        _ = try await store.pool.write { db in try DeadLetterOps.discard(db, id: oldId, actor: "mash-officer", reason: "bad input", now: clock.now) }
        clock.advance(by: 300 * day)
        try await store.pool.write { db in
            try DeadLetterWriter.writeRejectedInput(
                db: db, service: .intake, origin: "http:/v1/incidents", place: 2, key: nil,
                value: Array("{\"givenName\":\"NEW-DL-SENTINEL\"}".utf8), errorClass: "payload.invalid",
                message: "givenName NEW-DL-SENTINEL is wrong", now: clock.now, outbox: Outbox(db: db, producer: "test"))
        }
        try await clearOutbox(store) // the dead-letter events were published
        // 399 days after the first: nothing is due.
        clock.set(start.addingTimeInterval(399 * day))
        #expect(try await RetentionPurge.run([.deadLetterPayloads], store: store, settings: settings, now: clock.now).values.reduce(0, +) == 0)
        clock.set(start.addingTimeInterval(401 * day))
        #expect(try await RetentionPurge.run([.deadLetterPayloads], store: store, settings: settings, now: clock.now) == ["dead-letter.payload": 2])
        // Idempotent.
        #expect(try await RetentionPurge.run([.deadLetterPayloads], store: store, settings: settings, now: clock.now) == ["dead-letter.payload": 0])

        let rows = try rawRead(store) { db in try Row.fetchAll(db, sql: "SELECT * FROM deadLetter ORDER BY id") }
        #expect(rows.count == 3)
        let old = try #require(rows.first)
        #expect((old["originalValue"] as Data?)?.isEmpty == true)
        #expect((old["originalKey"] as String?) == nil)
        #expect((old["errorMessage"] as String?)?.hasPrefix(DeadLetterPurge.marker) == true)
        #expect((old["errorClass"] as String?) == "payload.invalid")
        #expect((old["status"] as String?) == "discarded")
        #expect(String(decoding: (rows[2]["originalValue"] as Data?) ?? Data(), as: UTF8.self).contains("NEW-DL-SENTINEL"))
        // The purged open letter cannot be replayed as it was (there is nothing left to replay).
        let refused = await #expect(throws: DeadLetterOpError.self) {
            try await store.pool.write { db in
                _ = try DeadLetterOps.replay(
                    db, id: openId, actor: "mash-officer", editedValue: nil, outbox: Outbox(db: db, producer: "test"), now: clock.now)
            }
        }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("purged"))
        let actions = try rawRead(store) { db in
            try Row.fetchAll(db, sql: "SELECT actor, action FROM deadLetterAction WHERE deadLetterId = ?", arguments: [oldId])
        }
        #expect(actions.map { $0["actor"] as String? } == ["mash-officer"])
        #expect(!fileContains(store, "OLD-DL-SENTINEL"))
        #expect(!fileContains(store, "OLDKEY-SENTINEL"))
        #expect(!fileContains(store, "OLD-OPEN-SENTINEL"))
        #expect(fileContains(store, "NEW-DL-SENTINEL"))
    }

    /// Every service's store (and the console's), with its own migrations and purge rules.
    static let stores: [(name: String, migrations: [StoreMigration], rules: [PurgeRule])] = [
        ("intake", [OccurrenceLedger.migration], IntakeRetention.rules),
        (
            "child-research", ChildResearchService.migrations,
            ResearchRetention.rules(
                ChildResearchService.Settings(protocols: ["43": ResearchProtocol(lookbackYears: 10)], fallback: ResearchProtocol(lookbackYears: 3)))
        ),
        ("school-resolution", SchoolStore.migrations(seed: false), SchoolRetention.rules),
        ("scheduling", Scheduler.migrations, SchedulingRetention.rules),
        ("dispatch", DispatchStore.migrations, DispatchRetention.rules),
        ("console", StaffDirectory.migrations, ConsoleRetention.rules),
    ]

    @Test(
        "every store: a purge leaves no copy of the purged values in the file or its write-ahead log, after rows were updated and relayed, and after an earlier purge; secure_delete goes back to FAST",
        arguments: RetentionTests.stores.map(\.name))
    func noTraceInFiles(_ service: String) async throws {
        let (_, migrations, rules) = try #require(Self.stores.first { $0.name == service })
        let clock = ManualClock(start)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("ret-trace-\(service)") + "/s.sqlite", migrations: migrations + [])
        let allRules = rules + [.deadLetterPayloads]
        /// A rejected input of 6 KiB (more than a page: its tail lives on overflow pages), relayed to the dead-letter
        /// topic (the outbox row is deleted, as the relay does) and then retried twice (the row rewritten each time).
        func reject(_ sentinel: String, place: Int64) async throws {
            let value = Array(
                "{\"givenName\":\"\(sentinel)\",\"dateOfBirth\":\"2016-05-04\",\"address\":\"\(sentinel) Road, \(String(repeating: "Reading ", count: 750))\"}"
                    .utf8)
            try await store.pool.write { db in
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .intake, origin: "http:/v1/incidents", place: place, key: sentinel,
                    value: value, errorClass: "payload.invalid", message: "givenName \(sentinel) is wrong",
                    now: clock.now, outbox: Outbox(db: db, producer: "test"))
            }
            try await clearOutbox(store)
            for attempt in 1...2 {
                try await store.pool.write { db in
                    try db.execute(
                        sql:
                            "UPDATE deadLetter SET attempts = attempts + 1, errorMessage = errorMessage || ?, originalHeaders = ? WHERE originalKey = ?",
                        arguments: [" (attempt \(attempt))", "{\"retry\":\"\(String(repeating: "r", count: attempt * 300))\"}", sentinel])
                }
            }
        }
        try await reject("FIRSTPURGEDSENTINEL", place: 1)
        clock.advance(by: 401 * day)
        #expect(try await RetentionPurge.run(allRules, store: store, settings: settings, now: clock.now)["dead-letter.payload"] == 1)
        #expect(!fileContains(store, "FIRSTPURGEDSENTINEL"))
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA secure_delete") } == 2, "the store's FAST again")

        // Life goes on after a purge: new records arrive, are relayed and updated; a year later they are purged too.
        try await reject("SECONDPURGEDSENTINEL", place: 2)
        clock.advance(by: 200 * day)
        try await reject("KEPTSENTINEL", place: 3)
        clock.advance(by: 201 * day)
        #expect(try await RetentionPurge.run(allRules, store: store, settings: settings, now: clock.now)["dead-letter.payload"] == 1)
        let wal = (try? FileManager.default.attributesOfItem(atPath: store.path + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0, "the write-ahead log is truncated after a purge")
        #expect(!fileContains(store, "SECONDPURGEDSENTINEL"), "a purged value is still in \(service)'s store file or its log")
        #expect(fileContains(store, "KEPTSENTINEL"))
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA secure_delete") } == 2, "the store's FAST again")
    }

    @Test("console: the staff audit's free text (review notes) goes after the retention period; who did what, to what, when, stays")
    func console() async throws {
        let clock = ManualClock(start)
        var consoleSettings = ConsoleService.Settings()
        consoleSettings.dataDirectory = TestPaths.temporaryDirectory("ret-console")
        consoleSettings.passwordIterations = 1_000
        let staff = StaffDirectory(store: try StaffDirectory.openStore(consoleSettings), settings: consoleSettings, clock: .manual(clock))
        try await staff.audit("j.smith", "review-confirm", target: "p-1", outcome: "ok", detail: "OLDNOTESENTINEL saw the child at the address")
        clock.advance(by: 300 * day)
        try await staff.audit("j.smith", "review-confirm", target: "p-2", outcome: "ok", detail: "NEWNOTESENTINEL checked")
        clock.set(start.addingTimeInterval(401 * day))
        #expect(
            try await RetentionPurge.run(ConsoleRetention.rules, store: staff.store, settings: settings, now: clock.now)["console.staff-audit"] == 1)
        #expect(
            try await RetentionPurge.run(ConsoleRetention.rules, store: staff.store, settings: settings, now: clock.now)["console.staff-audit"] == 0)
        let trail = try await staff.auditTrail().reversed().map { [$0.staffName, $0.action, $0.target, $0.outcome, $0.detail] }
        #expect(trail == [["j.smith", "review-confirm", "p-1", "ok", ""], ["j.smith", "review-confirm", "p-2", "ok", "NEWNOTESENTINEL checked"]])
        #expect(!fileContains(staff.store, "OLDNOTESENTINEL"))
        #expect(fileContains(staff.store, "NEWNOTESENTINEL"))
        #expect(try ConsoleService.Settings.fromEnvironment(["ENCOMPASS_RETENTION_DAYS": "90"]).retention.days == 90)
    }

    @Test("intake: old incidents leave the occurrence ledger (versions too), the ledger rows stay, a late amendment still counts as one")
    func intake() async throws {
        let clock = ManualClock(start)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("ret-intake") + "/s.sqlite", migrations: [OccurrenceLedger.migration])
        let first = incident("43250000001", child: "OLDINTAKESENTINEL", occurredAt: start.addingTimeInterval(-day))
        try await store.pool.write { db in
            let outbox = Outbox(db: db, producer: "test")
            try OccurrenceLedger.apply(first, source: "http", causationId: nil, db: db, outbox: outbox, now: clock.now)
            var amended = first
            amended.riskLevel = .high
            try OccurrenceLedger.apply(amended, source: "http", causationId: nil, db: db, outbox: outbox, now: clock.now.addingTimeInterval(60))
        }
        clock.advance(by: 200 * day)
        let recent = incident("43250000002", child: "NEWINTAKESENTINEL", occurredAt: clock.now.addingTimeInterval(-day))
        _ = try await store.pool.write { db in
            try OccurrenceLedger.apply(recent, source: "http", causationId: nil, db: db, outbox: Outbox(db: db, producer: "test"), now: clock.now)
        }
        try await clearOutbox(store) // published long ago
        clock.set(start.addingTimeInterval(401 * day))
        let counts = try await RetentionPurge.run(IntakeRetention.rules, store: store, settings: settings, now: clock.now)
        #expect(counts == ["intake.occurrence": 1, "intake.occurrence-version": 2])
        let ledger = try rawRead(store) { db in
            try Row.fetchAll(
                db, sql: "SELECT occurrenceNumber, revision, contentHash, length(incident) AS size FROM occurrence ORDER BY occurrenceNumber")
        }
        #expect(ledger.map { $0["occurrenceNumber"] as String? } == ["43250000001", "43250000002"])
        #expect((ledger[0]["size"] as Int?) == 0)
        #expect(((ledger[1]["size"] as Int?) ?? 0) > 0)
        #expect(ledger[0]["revision"] as Int? == 2)
        #expect(try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM occurrenceVersion") } == 3)
        #expect(!fileContains(store, "OLDINTAKESENTINEL"))
        #expect(fileContains(store, "NEWINTAKESENTINEL"))
        // An amendment of the purged occurrence is still an amendment (revision 3).
        let late = {
            var value = first
            value.riskLevel = .standard
            return value
        }()
        let outcome = try await store.pool.write { db in
            try OccurrenceLedger.apply(late, source: "http", causationId: nil, db: db, outbox: Outbox(db: db, producer: "test"), now: clock.now)
        }
        #expect(outcome == .amendment(revision: 3, changes: ["earlier version purged after the retention period"]))
    }

    @Test("school resolution: old CSC requests lose the child (open ones close as purged), child links and blocks go, resolutions stay")
    func schoolResolution() async throws {
        let clock = ManualClock(start)
        let store = try ServiceStore(
            path: TestPaths.temporaryDirectory("ret-schools") + "/s.sqlite",
            migrations: SchoolStore.migrations(seed: false))
        let flow = SchoolFlow(protocols: try SchoolsProtocol.loadAll(ForceProtocols.load(directory: ForceProtocols.bundledDirectory)))
        @Sendable func child(_ id: String, _ name: String) -> ChildIdentified {
            ChildIdentified(
                incident: incident("4325000\(id)", child: name, occurredAt: clock.now.addingTimeInterval(-day)), incidentRevision: 1,
                child: IdentifiedChild(
                    childId: "c-\(id)", givenName: name, familyName: name + "Family", ageYears: 8,
                    recordedSchool: RecordedSchool(name: "Nowhere Academy")),
                source: .officer)
        }
        try await store.pool.write { db in
            let outbox = Outbox(db: db, producer: "test")
            for (id, name) in [("0001", "OLDREQSENTINEL"), ("0002", "OLDREQTWOSENTINEL")] {
                #expect(
                    try flow.handleChild(child(id, name), messageId: "m-\(id)", db: db, outbox: outbox, now: clock.now, logger: TestLog.logger("t"))
                        == .request)
            }
            try db.execute(sql: "UPDATE schoolRequest SET status = 'resolved', resolvedURN = '110001' WHERE childId = 'c-0002'")
            try ChildSchoolRow(childId: "c-0003", urn: "110001", noticeId: "n-3", verifiedAt: clock.now).insert(db)
            try ChildSchoolBlockRow(childId: "c-0003", urn: "110002", noticeId: "n-3", reportedBy: "Ms Head", reportedAt: clock.now, note: "moved")
                .insert(db)
            // A notice's published request, kept for a redirect: the child's record in it goes.
            try ResolutionRow(
                noticeId: "n-4", childId: "c-0004", forceCode: "43", occurrenceNumber: "43250000004", incidentRevision: 1,
                outcome: "notice", urn: "110001", reasons: "[]", updatedAt: clock.now,
                request: Data("{\"givenName\":\"OLDNOTICESENTINEL\"}".utf8)
            ).insertOrReplace(db)
        }
        clock.advance(by: 300 * day)
        try await store.pool.write { db in
            _ = try flow.handleChild(
                child("0009", "NEWREQSENTINEL"), messageId: "m-9", db: db, outbox: Outbox(db: db, producer: "test"), now: clock.now,
                logger: TestLog.logger("t"))
            try ChildSchoolRow(childId: "c-0009", urn: "110001", noticeId: "n-9", verifiedAt: clock.now).insert(db)
        }
        try await clearOutbox(store)
        clock.set(start.addingTimeInterval(401 * day))
        let counts = try await RetentionPurge.run(SchoolRetention.rules, store: store, settings: settings, now: clock.now)
        #expect(counts == ["schools.request": 2, "schools.child-link": 1, "schools.child-block": 1, "schools.resolution-request": 1])
        let requests = try rawRead(store) { db in
            try Row.fetchAll(db, sql: "SELECT childId, status, resolvedURN, length(child) AS size FROM schoolRequest ORDER BY childId")
        }
        #expect(requests.map { $0["childId"] as String? } == ["c-0001", "c-0002", "c-0009"])
        #expect(requests.map { $0["status"] as String? } == ["purged", "resolved", "open"])
        #expect(requests[1]["resolvedURN"] as String? == "110001")
        #expect(requests.map { ($0["size"] as Int? ?? 0) > 0 } == [false, false, true])
        #expect(try rawRead(store) { try String.fetchAll($0, sql: "SELECT childId FROM childSchool") } == ["c-0009"])
        #expect(try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM childSchoolBlock") } == 0)
        #expect(try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM resolution") } == 4)
        #expect(try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM resolution WHERE request IS NOT NULL") } == 0)
        for old in ["OLDREQSENTINEL", "OLDREQTWOSENTINEL", "OLDNOTICESENTINEL"] { #expect(!fileContains(store, old), "\(old) still in the file") }
        #expect(fileContains(store, "NEWREQSENTINEL"))
        // The purged request is no longer exported.
        #expect(try await store.pool.read { db in try CSCRequests.open(db, lpa: "all").map(\.childId) } == ["c-0009"])
    }

    @Test("scheduling: released and cancelled notices lose their NoticeDue, a pending one keeps it; the changelog keeps a marker without it")
    func scheduling() async throws {
        let clock = ManualClock(start)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("ret-scheduling") + "/s.sqlite", migrations: Scheduler.migrations)
        @Sendable func row(_ id: String, _ state: PendingState, _ sentinel: String) throws -> PendingNoticeRow {
            PendingNoticeRow(
                noticeId: id, partition: 0, forceCode: "43", occurrenceNumber: "4325000\(id)", schoolURN: "110001", laCode: "870",
                incidentRevision: 1, releaseAt: clock.now, escalate: false, state: state,
                due: Data("{\"child\":\"\(sentinel)\"}".utf8), updatedAt: clock.now, releasedAt: state == .released ? clock.now : nil)
        }
        try await store.pool.write { db in
            try row("0001", .released, "OLDRELEASEDSENTINEL").insert(db)
            try row("0002", .cancelled, "OLDCANCELLEDSENTINEL").insert(db)
            try row("0003", .pending, "OLDPENDINGSENTINEL").insert(db)
        }
        clock.advance(by: 300 * day)
        try await store.pool.write { db in try row("0004", .released, "NEWRELEASEDSENTINEL").insert(db) }
        clock.set(start.addingTimeInterval(401 * day))
        #expect(try await RetentionPurge.run(SchedulingRetention.rules, store: store, settings: settings, now: clock.now) == ["scheduling.notice": 2])
        let rows = try rawRead(store) { db in
            try Row.fetchAll(db, sql: "SELECT noticeId, state, releasedAt, length(due) AS size FROM pendingNotice ORDER BY noticeId")
        }
        #expect(rows.map { $0["noticeId"] as String? } == ["0001", "0002", "0003", "0004"])
        #expect(rows.map { ($0["size"] as Int? ?? 0) > 0 } == [false, false, true, true])
        #expect(rows[0]["releasedAt"] as Date? != nil)
        #expect(!fileContains(store, "OLDRELEASEDSENTINEL") && !fileContains(store, "OLDCANCELLEDSENTINEL"))
        #expect(fileContains(store, "OLDPENDINGSENTINEL") && fileContains(store, "NEWRELEASEDSENTINEL"))
        // The compacted changelog still holds each purged notice's last state: the purge
        // publishes what the row keeps as the notice's last record, without the NoticeDue.
        let changelog = Topics.schedulingChangelog.name
        #expect(try queuedTombstones(store).isEmpty)
        let markers = try queuedRecords(store).sorted { ($0.keyString ?? "") < ($1.keyString ?? "") }
        #expect(markers.map { [$0.topic, $0.keyString ?? ""] } == [[changelog, "0001"], [changelog, "0002"]])
        for marker in markers {
            #expect(!marker.value.isEmpty && !Data(marker.value).contains(Data("SENTINEL".utf8)))
            let gone = try #require(try WireFormat.decode(SchedulingChangelog.self, from: marker.value).payload.forgotten)
            #expect(gone.noticeId == marker.keyString && gone.state.isFinal && gone.schoolURN == "110001")
        }
        // The owner's row points at its marker, so the marker coming back is skipped undecoded.
        #expect(
            try rawRead(store) {
                try String.fetchAll($0, sql: "SELECT changelogId FROM pendingNotice WHERE noticeId IN ('0001', '0002') ORDER BY noticeId")
            }
                == markers.map { $0.header(MessageHeader.messageId)?.stringValue ?? "-" })

        // A replica that reads a marker purges its own copy and learns of a notice it never held;
        // a pending notice's copy is not touched.
        let replica = try ServiceStore(path: TestPaths.temporaryDirectory("ret-scheduling-replica") + "/s.sqlite", migrations: Scheduler.migrations)
        try await replica.pool.write { db in
            try row("0001", .released, "REPLICARELEASEDSENTINEL").insert(db)
            try row("0003", .pending, "REPLICAPENDINGSENTINEL").insert(db)
        }
        let handler = SchedulingService.changelogHandler()
        try await replica.pool.write { db in
            for marker in markers {
                let outcome = try handler.apply(marker, db, Outbox(db: db, producer: "scheduling"), clock.now, TestLog.logger("replica"))
                #expect(outcome == .applied)
            }
        }
        let copies = try rawRead(replica) {
            try Row.fetchAll($0, sql: "SELECT noticeId, state, length(due) AS size FROM pendingNotice ORDER BY noticeId")
        }
        #expect(copies.map { $0["noticeId"] as String? } == ["0001", "0002", "0003"])
        #expect(copies.map { $0["state"] as String? } == ["released", "cancelled", "pending"])
        #expect(copies.map { ($0["size"] as Int? ?? 0) > 0 } == [false, false, true])
        try await replica.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        #expect(!fileContains(replica, "REPLICARELEASEDSENTINEL") && fileContains(replica, "REPLICAPENDINGSENTINEL"))

        // An instance restored from the changelog after compaction (only the markers left)
        // still knows the notice was sent: a re-delivered request for it is not scheduled again.
        let restored = try ServiceStore(path: TestPaths.temporaryDirectory("ret-scheduling-restored") + "/s.sqlite", migrations: Scheduler.migrations)
        let requests = SchedulingService.requestHandler(settings: try SchedulingService.Settings.fromEnvironment([:]))
        var request = notice(
            urn: "110001", childGiven: "REDELIVEREDSENTINEL", email: "dsl@110001.example", occurrence: "432500001",
            releaseAt: clock.now
        ).request
        request.noticeId = "0001"
        let redelivered = Envelope(id: MessageID.fresh(), key: "0001", producer: "school-resolution", createdAt: clock.now, payload: request)
        try await restored.pool.write { db in
            for marker in markers { _ = try handler.apply(marker, db, Outbox(db: db, producer: "scheduling"), clock.now, TestLog.logger("restored")) }
            let record = KafkaRecord(
                topic: Topics.noticeRequests.name, partition: 0, offset: 1, key: Array("0001".utf8),
                value: try WireFormat.encode(redelivered))
            let outcome = try requests.apply(record, db, Outbox(db: db, producer: "scheduling"), clock.now, TestLog.logger("restored"))
            #expect(outcome == .applied)
        }
        #expect(try queuedRecords(restored).isEmpty)
        #expect(
            try rawRead(restored) { try Row.fetchAll($0, sql: "SELECT state, length(due) AS size FROM pendingNotice WHERE noticeId = '0001'") }
                .map { [$0["state"] as String? ?? "", "\($0["size"] as Int? ?? -1)"] } == [["released", "0"]])

        // A tombstone (an operator's erasure of the key) purges a replica's copy too, never a pending notice's.
        try await replica.pool.write { db in
            try db.execute(sql: "DELETE FROM pendingNotice")
            try row("0001", .released, "TOMBSTONEDSENTINEL").insert(db)
            try row("0003", .pending, "REPLICAPENDINGSENTINEL").insert(db)
            for key in ["0001", "0003", "0009"] {
                let outcome = try handler.apply(
                    tombstoneRecord(changelog, key: key), db, Outbox(db: db, producer: "scheduling"), clock.now, TestLog.logger("replica"))
                #expect(outcome == .applied)
            }
        }
        #expect(
            try rawRead(replica) { try Int.fetchAll($0, sql: "SELECT length(due) FROM pendingNotice ORDER BY noticeId") }.map { $0 > 0 } == [
                false, true,
            ])
        // Old page images stay in the write-ahead log until a checkpoint: then the value is gone from the files.
        try await replica.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        #expect(!fileContains(replica, "TOMBSTONEDSENTINEL") && fileContains(replica, "REPLICAPENDINGSENTINEL"))
        // A topic that takes no tombstones refuses one, with the reason.
        try await replica.pool.write { db -> Void in
            #expect {
                try requests.apply(
                    tombstoneRecord(Topics.noticeRequests.name, key: "0001"), db, Outbox(db: db, producer: "scheduling"), clock.now,
                    TestLog.logger("replica"))
            } throws: { ($0 as? RejectedMessage)?.errorClass == "message.tombstone" }
        }
    }

    @Test("dispatch: old notices lose their contents and link, sessions and throttles go; the audit trail, states and who acknowledged stay")
    func dispatch() async throws {
        let clock = ManualClock(start)
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("ret-dispatch") + "/s.sqlite", migrations: DispatchStore.migrations)
        let settings = DispatchService.Settings(
            mail: .folder(directory: TestPaths.temporaryDirectory("ret-mail")),
            publicURL: "http://127.0.0.1:1",
            protocols: try DispatchProtocols.load(ForceProtocols.load(directory: ForceProtocols.bundledDirectory)))
        func accept(_ urn: String, _ name: String, occurrence: String) async throws -> String {
            let due = notice(urn: urn, childGiven: name, email: "dsl@\(urn).example", occurrence: occurrence, releaseAt: clock.now)
            try await store.pool.write { db in
                _ = try NoticeIntake.accept(
                    due, messageId: MessageID.fresh(), settings: settings, db: db, outbox: Outbox(db: db, producer: "dispatch"), now: clock.now)
            }
            return due.noticeId
        }
        let sentOld = try await accept("110001", "OLDSENTSENTINEL", occurrence: "43250000001")
        let queuedOld = try await accept("110002", "OLDQUEUEDSENTINEL", occurrence: "43250000002")
        try await store.pool.write { db in
            try db.execute(sql: "UPDATE outgoingMail SET state = 'sent', sentAt = ? WHERE noticeId = ?", arguments: [clock.now, sentOld])
            try db.execute(
                sql: "UPDATE notice SET state = 'acknowledged', acknowledgedAt = ?, acknowledgedBy = 'Ms Head' WHERE noticeId = ?",
                arguments: [clock.now, sentOld])
            try NoticeSession(
                sessionHash: "h1", noticeId: sentOld, signedInAs: "Ms Head", createdAt: clock.now, expiresAt: clock.now.addingTimeInterval(1800),
                csrfToken: "t"
            ).insert(db)
            try SignInThrottle(account: "110001", client: "any", failures: 2, lockedUntil: nil, updatedAt: clock.now).insert(db)
            if let row = try NoticeRow.fetchOne(db, key: sentOld) {
                try Audit.recordLocal("link-opened", notice: row, detail: "viewed by Ms Head (110001)", db: db, now: clock.now)
            }
        }
        clock.advance(by: 300 * day)
        let sentNew = try await accept("110003", "NEWSENTSENTINEL", occurrence: "43250000003")
        try await store.pool.write { db in
            try db.execute(sql: "UPDATE outgoingMail SET state = 'sent' WHERE noticeId = ?", arguments: [sentNew])
        }
        try await clearOutbox(store)
        let auditBefore = try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM noticeAudit") }
        clock.set(start.addingTimeInterval(401 * day))
        let counts = try await RetentionPurge.run(DispatchRetention.rules, store: store, settings: self.settings, now: clock.now)
        #expect(counts["dispatch.notice"] == 1)
        #expect(counts["dispatch.session"] == 1)
        #expect(counts["dispatch.sign-in-throttle"] == 1)
        let rows = try rawRead(store) { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT noticeId, state, acknowledgedBy, recipient, schoolURN, linkTokenHash, length(payload) AS payloadSize, length(content) AS contentSize
                    FROM notice ORDER BY schoolURN
                    """)
        }
        #expect(rows.map { $0["schoolURN"] as String? } == ["110001", "110002", "110003"])
        #expect(rows[0]["noticeId"] as String? == sentOld && rows[1]["noticeId"] as String? == queuedOld)
        #expect(rows.map { $0["payloadSize"] as Int? ?? 0 > 0 } == [false, true, true])
        #expect(rows.map { $0["contentSize"] as Int? ?? 0 > 0 } == [false, true, true])
        #expect(rows[0]["linkTokenHash"] as String? == nil)
        #expect(rows[0]["state"] as String? == "acknowledged")
        #expect(rows[0]["acknowledgedBy"] as String? == "Ms Head")
        #expect(rows[0]["recipient"] as String? == "dsl@110001.example")
        #expect(try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM noticeAudit") } == auditBefore)
        #expect(try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM noticeSession") } == 0)
        #expect(!fileContains(store, "OLDSENTSENTINEL"))
        #expect(fileContains(store, "OLDQUEUEDSENTINEL")) // its mail is still queued: kept until it is not
        #expect(fileContains(store, "NEWSENTSENTINEL"))
    }

    @Test("child research: the history index keeps each force's look-back window; proposals and researched occurrences follow the retention period")
    func research() async throws {
        let clock = ManualClock(Timestamp.parse("2026-11-24T09:00:00Z")!)
        let store = try ServiceStore(
            path: TestPaths.temporaryDirectory("ret-research") + "/s.sqlite",
            migrations: [HistoryIndex.migration, ReviewQueue.migration])
        let settings = ChildResearchService.Settings(
            protocols: ["43": ResearchProtocol(lookbackYears: 10)], fallback: ResearchProtocol(lookbackYears: 3))
        let now = clock.now
        try await store.pool.write { db in
            // Thames Valley (10 years): 11 years old goes, 9 years old stays; an unknown force (fallback 3 years): 4 years old goes.
            try HistoryIndex.index(
                incident("43150000001", child: "ELEVENYEARSENTINEL", occurredAt: now.addingTimeInterval(-11 * 366 * day)), revision: 0,
                source: "history", db: db)
            try HistoryIndex.index(
                incident("43170000002", child: "NINEYEARSENTINEL", occurredAt: now.addingTimeInterval(-9 * 365 * day)), revision: 0,
                source: "history", db: db)
            var other = incident("99220000003", child: "FOURYEARSENTINEL", occurredAt: now.addingTimeInterval(-4 * 365 * day))
            other.forceCode = "99"
            try HistoryIndex.index(other, revision: 0, source: "history", db: db)
            // A live occurrence researched 500 days ago, with a proposal; and a recent one.
            try HistoryIndex.index(
                incident("43240000004", child: "OLDLIVESENTINEL", occurredAt: now.addingTimeInterval(-500 * day)), revision: 1, source: "live", db: db
            )
            for (occurrence, name, age) in [("43240000004", "OLDPROPOSALSENTINEL", 500.0), ("43260000005", "NEWPROPOSALSENTINEL", 10.0)] {
                try db.execute(
                    sql: "INSERT INTO researchOccurrence (forceCode, occurrenceNumber, revision, recorded) VALUES ('43', ?, 1, ?)",
                    arguments: [occurrence, Data("{\"child\":\"\(name)\"}".utf8)])
                try db.execute(
                    sql: """
                        INSERT INTO proposal (proposalId, forceCode, occurrenceNumber, childId, child, evidence, score, status, createdAt)
                        VALUES (?, '43', ?, 'c-1', ?, X'7B7D', 0.8, 'pending', ?)
                        """, arguments: ["p-\(occurrence)", occurrence, Data("{\"givenName\":\"\(name)\"}".utf8), now.addingTimeInterval(-age * day)])
            }
            try HistoryIndex.index(
                incident("43260000005", child: "NEWLIVESENTINEL", occurredAt: now.addingTimeInterval(-10 * day)), revision: 1, source: "live", db: db)
        }
        let keysBefore = try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM researchKey") } ?? 0
        let counts = try await RetentionPurge.run(ResearchRetention.rules(settings), store: store, settings: self.settings, now: now)
        #expect(counts == ["research.occurrence": 1, "research.proposal": 1, "research.history": 2])
        let incidents = try rawRead(store) { try String.fetchAll($0, sql: "SELECT occurrenceNumber FROM researchIncident ORDER BY occurrenceNumber") }
        #expect(incidents == ["43170000002", "43240000004", "43260000005"])
        let persons = try rawRead(store) {
            try String.fetchAll($0, sql: "SELECT DISTINCT occurrenceNumber FROM researchPerson ORDER BY occurrenceNumber")
        }
        #expect(persons == incidents)
        // No blocking key points at a deleted person.
        #expect(
            try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM researchKey WHERE person NOT IN (SELECT id FROM researchPerson)") }
                == 0)
        #expect((try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM researchKey") } ?? 0) < keysBefore)
        #expect(try rawRead(store) { try String.fetchAll($0, sql: "SELECT occurrenceNumber FROM researchOccurrence") } == ["43260000005"])
        #expect(try rawRead(store) { try String.fetchAll($0, sql: "SELECT proposalId FROM proposal") } == ["p-43260000005"])
        for gone in ["ELEVENYEARSENTINEL", "FOURYEARSENTINEL", "OLDPROPOSALSENTINEL"] { #expect(!fileContains(store, gone), "\(gone)") }
        for kept in ["NINEYEARSENTINEL", "OLDLIVESENTINEL", "NEWPROPOSALSENTINEL", "NEWLIVESENTINEL"] {
            #expect(fileContains(store, kept), "\(kept)")
        }
        // The compacted proposals topic gets a tombstone for the purged proposal.
        #expect(try queuedTombstones(store) == [[Topics.reviewProposals.name, "p-43240000004"]])
        // Again: nothing more.
        #expect(
            try await RetentionPurge.run(ResearchRetention.rules(settings), store: store, settings: self.settings, now: now).values.reduce(0, +) == 0)
        // A replica reading a proposal's tombstone deletes its copy.
        try await store.pool.write { db in
            let outcome = try ChildResearchService.proposalReplicaHandler().apply(
                tombstoneRecord(Topics.reviewProposals.name, key: "p-43260000005"), db, Outbox(db: db, producer: "child-research"), now,
                TestLog.logger("replica"))
            #expect(outcome == .applied)
        }
        #expect(try rawRead(store) { try Int.fetchOne($0, sql: "SELECT count(*) FROM proposal") } == 0)
    }

    @Test("the background task runs on the service clock, purges, and counts it in /metrics")
    func backgroundTask() async throws {
        let kafka = try TestKafka(partitions: 2)
        let dir = TestPaths.temporaryDirectory("ret-host")
        let clockFile = dir + "/clock.json"
        try SimulatedClockFile(simulated: start, real: Date(), rate: 0).write(to: clockFile)
        let configuration = ServiceConfiguration(
            service: .intake, kafka: kafka.client("intake"), groupId: "intake-\(UUID())", dataDirectory: dir, instanceId: "intake-ret",
            httpPort: 0, topicPartitions: 2, apiToken: Tokens.operations, clockFile: clockFile)
        let definition = IntakeService.definition(
            settings: .init(
                apiToken: Tokens.intake, forces: try ForceRegistry(ForceRegistry.builtIn),
                retention: RetentionSettings(days: 400, interval: .milliseconds(100), batchSize: 10)))
        let host = try await ServiceHost(definition: definition, configuration: configuration, logger: TestLog.logger("intake"))
        _ = try await host.store.pool.write { db in
            try OccurrenceLedger.apply(
                incident("43250000001", child: "HOSTSENTINEL", occurredAt: start.addingTimeInterval(-day)), source: "http",
                causationId: nil, db: db, outbox: Outbox(db: db, producer: "test"), now: start)
        }
        let task = Task { try await host.run(handleSignals: false) }
        let base = "http://127.0.0.1:\(await host.httpPort())"
        try await Task.sleep(for: .milliseconds(400))
        // Not yet due on the service clock.
        #expect(try await host.store.pool.read { try Int.fetchOne($0, sql: "SELECT length(incident) FROM occurrence") } ?? 0 > 0)
        try SimulatedClockFile(simulated: start.addingTimeInterval(401 * day), real: Date(), rate: 0).write(to: clockFile)
        try await eventually("purged by the background task", timeout: .seconds(20)) {
            try await host.store.pool.read { try Int.fetchOne($0, sql: "SELECT length(incident) FROM occurrence") } == 0
        }
        // The run counts what it purged once it has also zeroed the free pages and emptied the log.
        let counted = "encompass_personal_data_purged_total{service=\"intake\",rule=\"intake.occurrence\"} 1"
        var metrics = ""
        try? await eventually("the purge counted in /metrics", timeout: .seconds(20)) {
            metrics = try await httpGet(base + "/metrics").body
            return metrics.contains(counted)
        }
        #expect(metrics.contains(counted), "\(metrics.prefix(3000))")
        await host.shutdown()
        try await task.value
    }
}
