import EncompassModels
import Foundation
import Testing

/// The HTTP APIs' request and response bodies on the wire: each type written to the exact JSON
/// the services, the CLI and the console exchange, and read back to the same value.
@Suite("HTTP API bodies: the JSON each type writes and reads")
struct ServiceAPITests {
    func roundTrip<T: Codable & Equatable>(_ value: T, _ json: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(String(decoding: try WireFormat.data(value), as: UTF8.self) == json, sourceLocation: sourceLocation)
        #expect(try WireFormat.decoder().decode(T.self, from: Data(json.utf8)) == value, sourceLocation: sourceLocation)
    }

    let at = Timestamp.parse("2026-11-24T08:00:00Z")!

    @Test("refusals: one error, or an error per field")
    func refusals() throws {
        try roundTrip(APIError("no proposal p-1"), #"{"error":"no proposal p-1"}"#)
        let fields = APIFieldErrors([FieldError("reviewer", "required"), FieldError("note", "too long")])
        try roundTrip(fields, #"{"errors":[{"field":"reviewer","message":"required"},{"field":"note","message":"too long"}]}"#)
        #expect(fields.description == "reviewer: required; note: too long")
    }

    @Test("review decisions: a missing note is left out, not sent as null")
    func reviewDecision() throws {
        try roundTrip(ReviewDecisionRequest(reviewer: "PC 1234", note: nil), #"{"reviewer":"PC 1234"}"#)
        try roundTrip(ReviewDecisionRequest(reviewer: "PC 1234", note: "seen"), #"{"note":"seen","reviewer":"PC 1234"}"#)
        #expect(try WireFormat.decoder().decode(ReviewDecisionRequest.self, from: Data("{}".utf8)) == ReviewDecisionRequest())
    }

    @Test("CSC's open requests: each a sheet row, column to value")
    func openRequests() throws {
        try roundTrip(CSCOpenRequests(requests: [["lpa": "Oxford", "request_id": "r-1"]]), #"{"requests":[{"lpa":"Oxford","request_id":"r-1"}]}"#)
    }

    @Test("dead letters: a replay's edit as text or as JSON (whole numbers exact), a discard's reason")
    func deadLetters() throws {
        try roundTrip(DeadLetterReplayRequest(by: "ops"), #"{"by":"ops"}"#)
        try roundTrip(DeadLetterReplayRequest(by: "ops", payload: .text(#"{"a":1}"#)), #"{"by":"ops","payload":"{\"a\":1}"}"#)
        let edit = #"{"by":"ops","payload":{"big":9007199254740993,"list":[true,null,1.5,"x"],"nested":{"k":"v"}}}"#
        let decoded = try WireFormat.decoder().decode(DeadLetterReplayRequest.self, from: Data(edit.utf8))
        #expect(
            decoded.payload
                == .json(
                    .object([
                        "big": .integer(9_007_199_254_740_993), "list": .array([.bool(true), .null, .number(1.5), .string("x")]),
                        "nested": .object(["k": .string("v")]),
                    ])))
        #expect(
            String(decoding: try decoded.payload!.bytes(), as: UTF8.self)
                == #"{"big":9007199254740993,"list":[true,null,1.5,"x"],"nested":{"k":"v"}}"#)
        try roundTrip(DeadLetterDiscardRequest(by: "ops", reason: "test data"), #"{"by":"ops","reason":"test data"}"#)
        // Another instance's copy of the record was published: this one is only marked.
        try roundTrip(
            DeadLetterReplayRequest(
                by: "ops",
                replayedAs: DeadLetterReplayedCopy(
                    address: "intake/2:17", originalTopic: "encompass.incidents.raw", originalPartition: 3, originalOffset: 41,
                    topic: "encompass.incidents.raw", messageId: "m-1")),
            #"{"by":"ops","replayedAs":{"address":"intake/2:17","messageId":"m-1","originalOffset":41,"originalPartition":3,"originalTopic":"encompass.incidents.raw","topic":"encompass.incidents.raw"}}"#
        )
    }

    @Test("scheduling and school resolution: the notices held, readiness, a returned CSC sheet's answer")
    func schedulingAndCSC() throws {
        let item = PendingList.Item(
            noticeId: "n-1", forceCode: "43", occurrenceNumber: "43251100001", schoolURN: "100001", laCode: "931", incidentRevision: 1,
            releaseAt: "2025-11-04T08:00:00.000Z", escalate: false, state: "pending", partition: 2, ownedHere: true, releasedAt: nil)
        try roundTrip(
            PendingList(instance: "s-1", notices: [item]),
            #"{"instance":"s-1","notices":[{"escalate":false,"forceCode":"43","incidentRevision":1,"laCode":"931","noticeId":"n-1","occurrenceNumber":"43251100001","ownedHere":true,"partition":2,"releaseAt":"2025-11-04T08:00:00.000Z","schoolURN":"100001","state":"pending"}]}"#
        )
        let calendar = SchedulingReadiness.Calendar(
            la: "931", name: "Oxfordshire", source: "oxfordshire.json", firstDay: "2025-08-01", lastDay: "2027-07-31", daysLeft: 300,
            approximateYears: [], warning: false)
        let readiness = SchedulingReadiness(instance: "s-1", status: "ready", warnings: [], calendars: [calendar])
        #expect(try WireFormat.decoder().decode(SchedulingReadiness.self, from: WireFormat.data(readiness)) == readiness)
        try roundTrip(
            CSCImportAnswer(
                file: "r.csv", rows: 1, answers: [.init(outcome: "notice", row: 2, requestId: "q-1", urn: "110111", reasons: ["verified"])]),
            #"{"answers":[{"outcome":"notice","reasons":["verified"],"requestId":"q-1","row":2,"urn":"110111"}],"file":"r.csv","notices":[],"rows":1}"#
        )
        #expect(CSCImportAnswer(file: "r.csv", rows: 2, answers: [.init(outcome: "rejected", row: 2, requestId: nil, reasons: ["x"])]).rejected == 1)
    }

    @Test("dispatch: passwords one and many, telephone tasks done, resends")
    func dispatch() throws {
        try roundTrip(SchoolPasswordRequest(password: "correct horse", setBy: "cli"), #"{"password":"correct horse","setBy":"cli"}"#)
        try roundTrip(
            SchoolPasswordAnswer(account: "110001", setAt: "2026-11-24T08:00:00.000Z", scheme: "pbkdf2-sha256"),
            #"{"account":"110001","scheme":"pbkdf2-sha256","setAt":"2026-11-24T08:00:00.000Z"}"#)
        try roundTrip(
            SchoolPasswordsRequest(rows: [.init(row: 2, account: "LA931", password: "p")], setBy: "demo"),
            #"{"rows":[{"account":"LA931","password":"p","row":2}],"setBy":"demo"}"#)
        try roundTrip(
            SchoolPasswordsAnswer(
                set: [.init(row: 2, account: "LA931")], refused: [.init(row: 3, account: "x", field: "urn", message: "bad")],
                setAt: "2026-11-24T08:00:00.000Z"),
            #"{"refused":[{"account":"x","field":"urn","message":"bad","row":3}],"set":[{"account":"LA931","row":2}],"setAt":"2026-11-24T08:00:00.000Z"}"#
        )
        try roundTrip(TelephoneTaskDoneRequest(by: "MASH", at: at, note: nil), #"{"at":"2026-11-24T08:00:00.000Z","by":"MASH"}"#)
        try roundTrip(
            TelephoneTaskDoneAnswer(id: "t-1", doneBy: "MASH", doneAt: "2026-11-24T08:00:00.000Z"),
            #"{"doneAt":"2026-11-24T08:00:00.000Z","doneBy":"MASH","id":"t-1"}"#)
        try roundTrip(ResendRequest(by: "MASH"), #"{"by":"MASH"}"#)
        try roundTrip(ResendAnswer(noticeId: "n-1", state: "pending"), #"{"noticeId":"n-1","state":"pending"}"#)
        let held = HeldNoticeListing(
            held: [
                .init(
                    noticeId: "n-1", account: "110001", schoolURN: "110001", schoolName: "Oak", forceCode: "43",
                    occurrenceNumber: "4326", heldSince: at, ageSeconds: 60)
            ],
            accountsWithoutPassword: ["110001"], oldestAgeSeconds: 60)
        try roundTrip(
            held,
            #"{"accountsWithoutPassword":["110001"],"held":[{"account":"110001","ageSeconds":60,"forceCode":"43","heldSince":"2026-11-24T08:00:00.000Z","noticeId":"n-1","occurrenceNumber":"4326","schoolName":"Oak","schoolURN":"110001"}],"oldestAgeSeconds":60}"#
        )
        let task = TelephoneTaskView(
            id: "t-1", noticeId: "n-1", schoolURN: "EY123456", schoolName: "Little Oaks",
            contacts: [SchoolContact(role: "dsl", phone: "01865 000001")],
            reason: "early years setting", createdAt: at, doneAt: nil, doneBy: nil, note: nil,
            notice: NoticeContent(
                title: "T", senderName: "MASH", schoolName: "Little Oaks", schoolURN: "EY123456",
                lines: [.init(field: "childName", label: "Child", value: "A B")], wording: ["w"]))
        try roundTrip(
            TelephoneTaskListing(tasks: [task]),
            #"{"tasks":[{"contacts":[{"phone":"01865 000001","role":"dsl"}],"createdAt":"2026-11-24T08:00:00.000Z","id":"t-1","notice":{"lines":[{"field":"childName","label":"Child","value":"A B"}],"schoolName":"Little Oaks","schoolURN":"EY123456","senderName":"MASH","title":"T","wording":["w"]},"noticeId":"n-1","reason":"early years setting","schoolName":"Little Oaks","schoolURN":"EY123456"}]}"#
        )
    }

    @Test("the audit listings of several dispatch instances as one: each notice once, the flagged (owner's) copy kept, first-listed order")
    func mergedListings() throws {
        func line(_ id: String, flagged: Bool, events: Int) -> NotificationSummary {
            NotificationSummary(
                noticeId: id, forceCode: "43", occurrenceNumber: "1", schoolURN: "110001", schoolName: "Oak", channel: "email",
                state: "sent", releaseAt: at, sentAt: at, acknowledgeBy: nil, acknowledgedAt: nil, acknowledgedBy: nil,
                flagged: flagged, flagReason: flagged ? "not acknowledged by 10:00" : nil,
                events: (0..<events).map { NotificationSummary.Event(kind: "k\($0)", at: at, detail: nil, producer: "dispatch") })
        }
        let first = NotificationList(
            date: "2026-11-24", notifications: [line("a", flagged: false, events: 2), line("b", flagged: false, events: 1)], flagged: 0)
        let second = NotificationList(
            date: "2026-11-24",
            notifications: [
                line("b", flagged: true, events: 1), line("a", flagged: false, events: 3),
                line("c", flagged: false, events: 1),
            ], flagged: 1)
        let merged = NotificationList.merged([first, second], date: "2026-11-24")
        #expect(merged.notifications.map(\.noticeId) == ["a", "b", "c"])
        #expect(merged.notifications[0].events.count == 3)
        #expect(merged.notifications[1].flagged && merged.flagged == 1)
        let json = String(decoding: try WireFormat.data(merged), as: UTF8.self)
        #expect(try WireFormat.decoder().decode(NotificationList.self, from: Data(json.utf8)) == merged)
        #expect(json.hasPrefix(#"{"date":"2026-11-24","flagged":1,"notifications":[{"channel":"email","events":["#))
        #expect(!json.contains("acknowledgedAt"), "a notice not acknowledged has no acknowledgedAt key, not null")
        #expect(json.contains(#""flagReason":"not acknowledged by 10:00","flagged":true"#))
    }
}
