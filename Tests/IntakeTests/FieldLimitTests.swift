import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import IntakeService

/// Intake's field limits, unknown fields, adults' fields set aside, the service clock.
@Suite("Intake field limits, unknown fields and adults' fields")
struct FieldLimitTests {
    let validator = IncidentValidator(forces: try! ForceRegistry(ForceRegistry.builtIn))

    @Test("an over-long value is rejected with its field and length, without repeating the value")
    func lengthLimits() {
        let long = String(repeating: "a", count: 1_048_576)
        var value = incident()
        value.children[0].givenName = long
        value.incidentAddress.lines[0] = String(repeating: "b", count: 201)
        value.incidentAddress.postcode = String(repeating: "R", count: 600_000)
        value.children[0].school = RecordedSchool(name: String(repeating: "s", count: 201), urn: String(repeating: "9", count: 5000))
        let review = validator.review(value.normalised(), now: now)
        let fields = Set(review.errors.map(\.field))
        #expect(
            fields == [
                "children[0].givenName", "incidentAddress.lines[0]", "incidentAddress.postcode", "children[0].school.name",
                "children[0].school.urn",
            ])
        #expect(review.errors.first { $0.field == "children[0].givenName" }?.message == "is 1048576 characters long; at most 100")
        #expect(review.errors.allSatisfy { $0.message.count < 200 })
        // At the limits, accepted.
        var fits = incident()
        fits.children[0].givenName = String(repeating: "a", count: IncidentLimits.name)
        fits.incidentAddress.lines = Array(repeating: String(repeating: "c", count: IncidentLimits.addressLine), count: IncidentLimits.addressLines)
        #expect(validator.review(fits.normalised(), now: now).errors == [])
        fits.incidentAddress.lines.append("one line too many")
        #expect(validator.review(fits.normalised(), now: now).errors.map(\.field) == ["incidentAddress.lines"])
    }

    @Test(
        "brief circumstances and other safeguarding information: optional free text within its limit, line breaks kept, blank dropped, control characters refused"
    )
    func freeText() {
        var value = incident()
        value.circumstances = "  Child was upstairs and heard shouting.\nMother says the children slept through.  "
        value.safeguardingInformation = String(repeating: "s", count: IncidentLimits.safeguardingInformation)
        let normalised = value.normalised()
        #expect(normalised.circumstances == "Child was upstairs and heard shouting.\nMother says the children slept through.")
        #expect(validator.review(normalised, now: now).errors == [])
        value.circumstances = " \n "
        #expect(value.normalised().circumstances == nil, "blank text is no text")
        value.circumstances = String(repeating: "c", count: IncidentLimits.circumstances + 1)
        value.safeguardingInformation = "bell\u{07}"
        let review = validator.review(value.normalised(), now: now)
        #expect(review.errors.map(\.field) == ["circumstances", "safeguardingInformation"])
        #expect(review.errors.first?.message == "is 1001 characters long; at most 1000")
        #expect(review.errors.last?.message.contains("control characters") == true)
    }

    @Test("an incident whose every field is within its limit but is too large as a whole is rejected")
    func wholeIncidentSize() {
        let address = PostalAddress(
            lines: Array(repeating: String(repeating: "l", count: 200), count: 10),
            town: String(repeating: "t", count: 100), county: String(repeating: "c", count: 100), postcode: "RG1 7LL")
        var value = incident(
            children: (0..<50).map { _ in
                RecordedChild(
                    givenName: String(repeating: "g", count: 100), familyName: String(repeating: "f", count: 100), ageYears: 7,
                    homeAddress: address, school: RecordedSchool(name: String(repeating: "s", count: 200)))
            })
        value.parties = (0..<50).map { _ in
            Party(role: .other, givenName: String(repeating: "g", count: 100), familyName: String(repeating: "f", count: 100), address: address)
        }
        let review = validator.review(value.normalised(), now: now)
        #expect(review.errors.map(\.field) == ["(incident)"])
        #expect(review.errors.first?.message.contains("over the 262144 bytes intake takes") == true)
        value.children.append(value.children[0])
        #expect(validator.review(value.normalised(), now: now).errors.map(\.field) == ["children"])
    }

    @Test("a bad adult field is set aside with a warning and the incident goes on; a bad child field still rejects")
    func adultFieldsSetAside() throws {
        var value = incident()
        value.parties[0].dateOfBirth = "9187-02-11"
        value.parties[1].address = PostalAddress(lines: ["1 High St"], postcode: "nope")
        value.parties.append(Party(role: .other, givenName: "", familyName: "Nobody"))
        let review = validator.review(value.normalised(), now: now)
        #expect(review.errors == [])
        #expect(review.warnings.map(\.field) == ["parties[0].dateOfBirth", "parties[1].address.postcode", "parties[2].givenName"])
        #expect(review.warnings.first?.message.contains("after the incident") == true && review.warnings.first?.message.contains("set aside") == true)
        try #require(review.incident.parties.count == 2)
        #expect(review.incident.parties[0].dateOfBirth == nil && review.incident.parties[0].givenName == "Sarah")
        #expect(review.incident.parties[1].address == nil)
        #expect(review.incident.children == value.normalised().children)
        value.children[0].dateOfBirth = "9187-02-11"
        #expect(validator.review(value.normalised(), now: now).errors.map(\.field) == ["children[0].dateOfBirth"])
    }

    @Test("unknown fields: the incident's, its address's and a child's reject, naming the field; an adult's is a warning")
    func unknownFields() throws {
        var object = try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(incident())) as! [String: Any]
        object["notes"] = "free text"
        var address = object["incidentAddress"] as! [String: Any]
        address["flat"] = "2"
        object["incidentAddress"] = address
        var children = object["children"] as! [[String: Any]]
        children[0]["nickname"] = "Mia"
        var school = children[0]["school"] as! [String: Any]
        school["phone"] = "0118"
        children[0]["school"] = school
        object["children"] = children
        var parties = object["parties"] as! [[String: Any]]
        parties[1]["phone"] = "07700"
        object["parties"] = parties
        let unknown = IncidentShape.unknownFields(inObject: object)
        #expect(unknown == ["notes", "incidentAddress.flat", "parties[1].phone", "children[0].nickname", "children[0].school.phone"])
        let review = validator.review(incident().normalised(), now: now, unknownFields: unknown)
        #expect(review.errors.map(\.field) == ["notes", "incidentAddress.flat", "children[0].nickname", "children[0].school.phone"])
        #expect(review.errors.first?.message.contains("unknown field") == true)
        #expect(review.warnings.map(\.field) == ["parties[1].phone"])
        #expect(IncidentShape.unknownFields(in: try WireFormat.encoder().encode(incident())) == [])
    }

    @Test("IncidentShape's field lists are the schema's properties at every level")
    func shapeMatchesSchema() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(TestPaths.packageRoot)/docs/schemas/incident.schema.json"))
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        func keys(_ object: Any?) -> Set<String> { Set(((object as? [String: Any])?["properties"] as? [String: Any] ?? [:]).keys) }
        let properties = schema["properties"] as? [String: Any] ?? [:]
        let party = (properties["parties"] as? [String: Any])?["items"]
        let child = (properties["children"] as? [String: Any])?["items"]
        let school = ((child as? [String: Any])?["properties"] as? [String: Any])?["school"]
        #expect(keys(schema) == IncidentShape.incident)
        #expect(keys(party) == IncidentShape.party)
        #expect(keys(child) == IncidentShape.child)
        #expect(keys(school) == IncidentShape.school)
        #expect(keys((schema["$defs"] as? [String: Any])?["address"]) == IncidentShape.address)
    }

    @Test("every built-in force's local policing areas and occurrence format are listed in docs/DATA.md and the schema")
    func forcesDocumented() throws {
        let data = try String(contentsOfFile: "\(TestPaths.packageRoot)/docs/DATA.md", encoding: .utf8)
        let schema = try String(contentsOfFile: "\(TestPaths.packageRoot)/docs/schemas/incident.schema.json", encoding: .utf8)
        for force in ForceRegistry.builtIn {
            let row = try #require(data.split(separator: "\n").first { $0.hasPrefix("| \(force.code) ") }, "no row for force \(force.code)")
            #expect(row.contains(force.occurrenceFormat), "force \(force.code)")
            let listed = row.split(separator: "|").last.map { $0.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            #expect(Set(listed) == Set(force.localPolicingAreas), "force \(force.code): docs/DATA.md lists \(listed)")
            for area in force.localPolicingAreas { #expect(schema.contains(area), "schema lacks \(area)") }
        }
    }

    @Test("the schema's limits are the validator's: too long fails both, at the limit passes both")
    func schemaLimits() async throws {
        var atLimit = incident()
        atLimit.children[0].givenName = String(repeating: "a", count: IncidentLimits.name)
        atLimit.parties[0].familyName = String(repeating: "b", count: IncidentLimits.name)
        var over = atLimit
        over.children[0].givenName += "a"
        over.parties[0].familyName += "b"
        let results = try await schemaErrors([try WireFormat.encoder().encode(atLimit), try WireFormat.encoder().encode(over)])
        #expect(results.first == "[]")
        #expect(results.last?.contains("is too long") == true)
        #expect(validator.review(atLimit.normalised(), now: now).errors == [])
        #expect(validator.review(over.normalised(), now: now).errors.map(\.field) == ["children[0].givenName"])
        #expect(validator.review(over.normalised(), now: now).warnings.map(\.field) == ["parties[0].familyName"])
    }
}

@Suite("Intake over HTTP: limits, unknown fields, adults' fields, the service clock", .serialized, .tags(.kafka))
struct IntakeFieldServiceTests {
    @Test(
        "HTTP: a 1 MB child name is refused with the field named and the incidents after it go through; an adult's bad date of birth is set aside with a warning"
    )
    func httpLimitsAndWarnings() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "s3cret-token")
        var huge = incident(occurrence: "43260000001")
        huge.children[0].givenName = String(repeating: "A", count: 1_048_576)
        var adult = incident(occurrence: "43260000002")
        adult.parties[0].dateOfBirth = "9187-02-11"
        var unknownAtChild =
            try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(incident(occurrence: "43260000003"))) as! [String: Any]
        var children = unknownAtChild["children"] as! [[String: Any]]
        children[0]["nickname"] = "Mia"
        unknownAtChild["children"] = children
        var unknownAtParty =
            try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(incident(occurrence: "43260000004"))) as! [String: Any]
        var parties = unknownAtParty["parties"] as! [[String: Any]]
        parties[0]["phone"] = "07700 900123"
        unknownAtParty["parties"] = parties
        let body = try JSONSerialization.data(withJSONObject: [
            try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(huge)),
            try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(adult)),
            unknownAtChild, unknownAtParty,
            try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(incident(occurrence: "43260000005"))),
        ])
        let answer = try await post(intake.url, token: "s3cret-token", body: body)
        #expect(answer.status == 202)
        let accepted = answer.body["accepted"] as? [[String: Any]] ?? []
        let rejected = answer.body["rejected"] as? [[String: Any]] ?? []
        #expect(accepted.compactMap { $0["index"] as? Int } == [1, 3, 4])
        #expect(rejected.compactMap { $0["index"] as? Int } == [0, 2])
        func fields(_ item: [String: Any]?, _ key: String) -> [String] {
            (item?[key] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
        }
        #expect(fields(rejected.first, "errors") == ["children[0].givenName"])
        #expect(fields(rejected.last, "errors") == ["children[0].nickname"])
        #expect(fields(accepted.first, "warnings") == ["parties[0].dateOfBirth"])
        #expect(fields(accepted.dropFirst().first, "warnings") == ["parties[0].phone"])
        #expect(accepted.last?["warnings"] == nil)

        let events = try await recorded(kafka, count: 3)
        #expect(Set(events.map(\.incident.occurrenceNumber)) == ["43260000002", "43260000004", "43260000005"])
        let forAdult = try #require(events.first { $0.incident.occurrenceNumber == "43260000002" })
        #expect(forAdult.incident.parties[0].dateOfBirth == nil)
        #expect(forAdult.incident.children.map(\.givenName) == ["Amelia"])
        let letters = try await intake.host.store.pool.read { try DeadLetter.order(Column("id")).fetchAll($0) }
        let rejectedLetters = letters.filter { $0.errorClass == "payload.validation" }
        #expect(rejectedLetters.count == 2)
        #expect(rejectedLetters.first?.errorMessage.contains("children[0].givenName: is 1048576 characters long; at most 100") == true)
        // What was set aside is kept too (the item as sent), to correct and replay or discard.
        let setAside = letters.filter { $0.errorClass == "payload.field-set-aside" }
        #expect(setAside.map(\.originalKey) == ["43260000002", "43260000004"])
        let setAsideMessage = setAside.first.map(\.errorMessage) ?? ""
        #expect(setAsideMessage.contains("parties[0].dateOfBirth: 9187-02-11 is after the incident"))
        let keptItem = String(decoding: setAside.first.map(\.originalValue) ?? Data(), as: UTF8.self)
        #expect(keptItem.contains("9187-02-11"))
        #expect(intake.host.metrics.exposition().contains("encompass_intake_fields_set_aside_total"))
        try await intake.stop()
    }

    @Test("spreadsheet: a victim's mistyped date of birth is set aside with a warning in the answer; the child goes on")
    func spreadsheetAdultWarning() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: "t0ken")
        let csv = [header + ",victim_dob", csvRow("43260001234", child: ("Amelia", "Hughes", "2016-05-04")) + ",9187-02-11"].joined(separator: "\n")
        let answer = try await post("http://127.0.0.1:\(intake.port)/v1/spreadsheets?name=desk.csv", token: "t0ken", body: Data(csv.utf8))
        #expect(answer.status == 202)
        let accepted = answer.body["accepted"] as? [[String: Any]] ?? []
        #expect((accepted.first?["warnings"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String } == ["parties[0].dateOfBirth"])
        #expect((answer.body["rejectedRows"] as? [Any])?.isEmpty == true)
        let events = try await recorded(kafka, count: 1)
        #expect(events.first?.incident.children.map(\.givenName) == ["Amelia"])
        #expect(events.first?.incident.parties.first?.dateOfBirth == nil)
        let letters = try await intake.host.store.pool.read { try DeadLetter.fetchAll($0) }
        #expect(letters.map(\.errorClass) == ["payload.field-set-aside"])
        #expect(letters.first?.errorMessage.contains("rows 2: accepted for its children without: parties[0].dateOfBirth") == true)
        try await intake.stop()
    }

    @Test("records feed: an unknown incident field is dead-lettered naming it; an adult's unknown field only warns")
    func feedUnknownFields() async throws {
        let kafka = try TestKafka()
        let intake = try await RunningIntake(kafka, token: nil)
        var withNotes = try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(incident(occurrence: "43260000011"))) as! [String: Any]
        withNotes["notes"] = "x"
        var adultExtra = try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(incident(occurrence: "43260000012"))) as! [String: Any]
        var parties = adultExtra["parties"] as! [[String: Any]]
        parties[1]["phone"] = "07700"
        adultExtra["parties"] = parties
        let producer = try KafkaProducer(configuration: .init(client: kafka.client("feed")), logger: TestLog.logger("feed"))
        for (key, object) in [("43260000011", withNotes), ("43260000012", adultExtra)] {
            try await producer.send(
                ProducerRecord(
                    topic: Topics.incidentsRaw.name, key: key,
                    value: Array(try JSONSerialization.data(withJSONObject: object))))
        }
        await producer.close()
        let events = try await recorded(kafka, count: 1)
        #expect(events.map(\.incident.occurrenceNumber) == ["43260000012"])
        try await eventually("2 dead letters") { try await intake.host.store.pool.read { try DeadLetter.fetchCount($0) } == 2 }
        let letters = try await intake.host.store.pool.read { try DeadLetter.order(Column("originalKey")).fetchAll($0) }
        #expect(letters.map(\.originalKey) == ["43260000011", "43260000012"])
        #expect(letters.map(\.errorClass) == ["payload.validation", "payload.field-set-aside"])
        #expect(letters.first?.errorMessage.contains("notes: unknown field") == true)
        #expect(letters.last?.errorMessage.contains("parties[1].phone: unknown field") == true)
        try await intake.stop()
    }

    @Test("intake checks 'in the future' against the service clock, as the other services do")
    func serviceClock() async throws {
        let kafka = try TestKafka()
        let clockFile = TestPaths.temporaryDirectory("clock") + "/clock.json"
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(SimulatedClockFile(simulated: date("2031-03-02T10:00:00Z"), rate: 0)).write(to: URL(fileURLWithPath: clockFile))
        let intake = try await RunningIntake(kafka, token: "t0ken-for-clock", clockFile: clockFile)
        // In the real clock's future, in the service clock's past: accepted.
        let later = incident(occurrence: "43310000001", occurred: "2031-03-01T21:15:00")
        var copy = later
        copy.reportedAt = date("2031-03-01T22:00:00Z")
        let answer = try await post(intake.url, token: "t0ken-for-clock", body: try json([copy]))
        #expect(answer.status == 202, "\(answer.body)")
        // In the service clock's future: refused.
        var tooLate = incident(occurrence: "43310000002", occurred: "2031-03-03T21:15:00")
        tooLate.reportedAt = date("2031-03-03T22:00:00Z")
        let refused = try await post(intake.url, token: "t0ken-for-clock", body: try json([tooLate]))
        #expect(refused.status == 422)
        try await intake.stop()
    }
}
