import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import Testing

@testable import ChildResearchService
@testable import ServiceRuntime

@Suite("Review queue: amendments withdraw stale proposals; replicas keep the latest state")
struct AmendmentTests {
    /// Automatic confirmation off (the default): every found child waits for review.
    let settings = ChildResearchService.Settings()

    func apply(_ incident: Incident, revision: Int, id: String, db: Database) throws {
        let recorded = IncidentRecorded(kind: revision == 1 ? .new : .amendment, revision: revision, changes: [], source: "test", incident: incident)
        try ChildResearchService.apply(
            recorded, messageId: id, settings: settings, db: db, outbox: Outbox(db: db, producer: "child-research"),
            now: day("2026-11-21"), logger: TestLog.logger("research"))
    }

    func states(_ db: Database) throws -> [ReviewProposalState] {
        try OutboxMessage.filter(Column("topic") == Topics.reviewProposals.name).order(Column("id")).fetchAll(db)
            .map { try WireFormat.decode(ReviewProposalState.self, from: Array($0.value)).payload }
    }

    @Test(
        "the replicated index consumer: an incident this instance's work consumer applied is skipped undecoded; another is indexed and saved once; a newer revision replaces it"
    )
    func replicatedIndex() throws {
        let handler = ChildResearchService.incidentIndexHandler()
        func record(_ incident: Incident, revision: Int, id: String) throws -> KafkaRecord {
            let recorded = IncidentRecorded(
                kind: revision == 1 ? .new : .amendment, revision: revision, changes: [], source: "test", incident: incident)
            let value = try WireFormat.encode(Envelope(id: id, key: incident.occurrenceNumber, producer: "intake", payload: recorded))
            return KafkaRecord(
                topic: Topics.incidents.name, partition: 0, offset: Int64(revision), key: Array(incident.occurrenceNumber.utf8),
                value: value, headers: [KafkaHeader(key: "encompass-message-id", value: Array(id.utf8))])
        }
        func replicate(_ record: KafkaRecord, _ db: Database) throws -> (HandleOutcome, changes: Int) {
            let before = db.totalChangesCount
            let outcome = try handler.apply(record, db, Outbox(db: db, producer: "child-research"), day("2026-11-21"), TestLog.logger("replica"))
            return (outcome, db.totalChangesCount - before)
        }
        let store = try History.store()
        try store.pool.write { (db: Database) throws in
            // Applied by this instance's work consumer first: the replica has nothing to do.
            let work = ChildResearchService.incidentHandler(settings)
            let applied = try work.apply(
                try record(History.today, revision: 1, id: "m-1"), db, Outbox(db: db, producer: "child-research"),
                day("2026-11-21"), TestLog.logger("work"))
            #expect(applied == .applied)
            let own = try replicate(try record(History.today, revision: 1, id: "m-1"), db)
            #expect(own.0 == .duplicate && own.changes == 0)
        }
        let other = try History.store()
        try other.pool.write { (db: Database) throws in
            // Another instance's incident: indexed and saved, once.
            let first = try replicate(try record(History.today, revision: 1, id: "m-1"), db)
            #expect(first.0 == .applied && first.changes > 0)
            #expect(try ReviewQueue.recordedRevision(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber) == 1)
            #expect(try !HistoryIndex.people(forceCode: "43", occurrenceNumber: History.today.occurrenceNumber, db: db).isEmpty)
            #expect(try replicate(try record(History.today, revision: 1, id: "m-1"), db).0 == .duplicate)
            var amended = History.today
            amended.parties = [Party(role: .victim, givenName: "Grace", familyName: "Okafor", dateOfBirth: "1995-05-05")]
            let amendedRecord = try record(amended, revision: 2, id: "m-2")
            #expect(try replicate(amendedRecord, db).0 == .applied)
            #expect(try ReviewQueue.recordedRevision(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber) == 2)
            #expect(
                try ReviewQueue.recorded(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber)?.incident.parties.first?.givenName
                    == "Grace")
            // Kept as the message arrived, not encoded again.
            #expect(try Data.fetchOne(db, sql: "SELECT recorded FROM researchOccurrence") == Data(amendedRecord.value))
            #expect(
                try HistoryIndex.people(forceCode: "43", occurrenceNumber: History.today.occurrenceNumber, db: db).contains {
                    $0.givenName == "Grace"
                })
        }
    }

    @Test("an amendment that changes the victim withdraws only the child found through her; one that lists children withdraws the rest")
    func amendments() throws {
        let store = try History.store()
        try store.pool.write { (db: Database) throws in
            try apply(History.today, revision: 1, id: "m-1", db: db)
            let first = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber)
            #expect(Set(first.map(\.child.givenName)) == ["Oliver", "Amelia", "Lily"])
            #expect(first.allSatisfy { $0.status == "pending" && $0.version == 1 })
            #expect(try states(db).map(\.status) == ["pending", "pending", "pending"])

            // Revision 2: the victim was someone else of the household's family name (no earlier
            // records; a stranger's name would make the Hughes children previous occupants, see
            // ResidenceTests). Oliver and Amelia are still linked by the flat; Lily was found only
            // through Sarah Hughes.
            var amended = History.today
            amended.parties = [Party(role: .victim, givenName: "Grace", familyName: "Hughes", dateOfBirth: "1995-05-05")]
            try apply(amended, revision: 2, id: "m-2", db: db)
            let second = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber)
            let lily = try #require(second.first { $0.child.givenName == "Lily" })
            #expect(lily.status == "withdrawn" && lily.decidedBy == "auto" && lily.note?.contains("revision 2") == true)
            #expect(second.filter { $0.child.givenName != "Lily" }.allSatisfy { $0.status == "pending" })
            #expect(Set(try ReviewQueue.list(db).map(\.child.givenName)) == ["Oliver", "Amelia"], "withdrawn proposals leave the queue")
            #expect(try ReviewQueue.list(db, status: "withdrawn").map(\.proposalId) == [lily.proposalId])
            let withdrawnState = try #require(try states(db).last { $0.proposalId == lily.proposalId })
            #expect(withdrawnState.status == "withdrawn" && withdrawnState.version == lily.version && withdrawnState.note == lily.note)
            // A withdrawn child is not a rejection: it may be proposed again.
            #expect(try ReviewQueue.rejectedChildren(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber).isEmpty)

            // Revision 3: back to Sarah — Lily applies again and waits for review.
            try apply(History.today, revision: 3, id: "m-3", db: db)
            let third = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber)
            #expect(third.allSatisfy { $0.status == "pending" })
            #expect(third.first { $0.child.givenName == "Lily" }?.note == nil)

            // Revision 4: the officer now lists the children; every pending proposal is withdrawn
            // and the officer's child goes on.
            var listed = History.today
            listed.children = [RecordedChild(givenName: "Oliver", familyName: "Hughes", dateOfBirth: "2015-06-12")]
            try apply(listed, revision: 4, id: "m-4", db: db)
            let fourth = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber)
            #expect(fourth.count == 3 && fourth.allSatisfy { $0.status == "withdrawn" && $0.note?.contains("lists its children") == true })
            #expect(try ReviewQueue.list(db).isEmpty)
            let sent = try OutboxMessage.filter(Column("topic") == Topics.children.name).fetchAll(db)
                .map { try WireFormat.decode(ChildIdentified.self, from: Array($0.value)).payload }
            #expect(sent.map(\.child.givenName) == ["Oliver"] && sent[0].source == .officer && sent[0].incidentRevision == 4)
        }
    }

    @Test("a confirmed or rejected proposal is not withdrawn by an amendment; the rejection still holds")
    func decisionsSurvive() throws {
        let store = try History.store()
        try store.pool.write { (db: Database) throws in
            try apply(History.today, revision: 1, id: "m-1", db: db)
            let proposals = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber)
            let oliver = try #require(proposals.first { $0.child.givenName == "Oliver" })
            let lily = try #require(proposals.first { $0.child.givenName == "Lily" })
            _ = try ReviewQueue.decide(
                db, proposal: oliver,
                decision: ReviewDecision(
                    forceCode: "43", occurrenceNumber: oliver.occurrenceNumber,
                    proposalId: oliver.proposalId, verdict: .confirm, reviewer: "PS 1", decidedAt: day("2026-11-21")))
            _ = try ReviewQueue.decide(
                db, proposal: lily,
                decision: ReviewDecision(
                    forceCode: "43", occurrenceNumber: lily.occurrenceNumber,
                    proposalId: lily.proposalId, verdict: .reject, reviewer: "PS 1", decidedAt: day("2026-11-21")))
            var moved = History.today
            moved.incidentAddress = PostalAddress(lines: ["9 Nowhere Close"], town: "Slough", postcode: "SL1 9ZZ")
            moved.parties = [Party(role: .victim, givenName: "Grace", familyName: "Okafor")]
            try apply(moved, revision: 2, id: "m-2", db: db)
            let after = try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber)
            #expect(after.first { $0.child.givenName == "Oliver" }?.status == "confirmed")
            #expect(after.first { $0.child.givenName == "Lily" }?.status == "rejected")
            #expect(after.first { $0.child.givenName == "Amelia" }?.status == "withdrawn")
            // The confirmed child goes on with the amended incident.
            let sent = try OutboxMessage.filter(Column("topic") == Topics.children.name).fetchAll(db)
                .map { try WireFormat.decode(ChildIdentified.self, from: Array($0.value)).payload }
            #expect(sent.contains { $0.child.givenName == "Oliver" && $0.incidentRevision == 2 })
        }
    }

    @Test("a replica keeps the highest version of each proposal and remembers rejections")
    func replica() throws {
        let owner = try History.store()
        let replica = try History.store()
        let states = try owner.pool.write { (db: Database) throws -> [ReviewProposalState] in
            try apply(History.today, revision: 1, id: "m-1", db: db)
            let lily = try #require(
                try ReviewQueue.forOccurrence(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber)
                    .first { $0.child.givenName == "Lily" })
            let rejected = try ReviewQueue.decide(
                db, proposal: lily,
                decision: ReviewDecision(
                    forceCode: "43", occurrenceNumber: lily.occurrenceNumber,
                    proposalId: lily.proposalId, verdict: .reject, reviewer: "PS 9", decidedAt: day("2026-11-21")))
            try ReviewQueue.publish(rejected, outbox: Outbox(db: db, producer: "child-research"), causationId: "d-1", now: day("2026-11-21"))
            return try self.states(db)
        }
        #expect(states.count == 4)
        try replica.pool.write { (db: Database) throws in
            // Out of order: the rejection (version 2) first, then the older pending state of Lily.
            for state in states.reversed() { try ReviewQueue.applyReplica(db, state) }
            let held = try ReviewQueue.list(db, status: nil)
            #expect(held.count == 3)
            #expect(held.first { $0.child.givenName == "Lily" }?.status == "rejected")
            #expect(held.first { $0.child.givenName == "Lily" }?.version == 2)
            let lilyId = try #require(held.first { $0.child.givenName == "Lily" }).child.childId
            #expect(try ReviewQueue.rejectedChildren(db, forceCode: "43", occurrenceNumber: History.today.occurrenceNumber) == [lilyId])
            #expect(try ReviewQueue.applyReplica(db, states[0]) == false)
        }
    }
}
