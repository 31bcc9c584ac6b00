import Foundation

// The hand-written wire codec of the messages on a notice's path (`WireCodable`): each type
// writes its fields in UTF-8 order of their names and reads them back by name. The `Codable`
// conformances stay the definition; `Tests/ModelsTests/WireCodableTests.swift` checks these
// against Foundation, byte for byte and value for value.

extension Envelope: WireCodable where Payload: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("causationId", causationId)
        writer.field("createdAt", createdAt)
        writer.field("id", id)
        writer.field("key", key)
        try writer.field("payload", payload)
        writer.field("producer", producer)
        writer.field("schema", schema)
        writer.field("version", version)
    }

    public init(wire object: WireObject) throws {
        self.init(
            id: try object.string("id"), key: try object.string("key"), producer: try object.string("producer"),
            createdAt: try object.date("createdAt"), causationId: try object.string(ifPresent: "causationId"),
            payload: try object.value("payload"))
        schema = try object.string("schema")
        version = try object.int("version")
    }
}

extension PostalAddress: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("county", county)
        writer.field("lines", lines)
        writer.field("postcode", postcode)
        writer.field("town", town)
    }

    public init(wire object: WireObject) throws {
        self.init(
            lines: try object.strings("lines"), town: try object.string(ifPresent: "town"),
            county: try object.string(ifPresent: "county"), postcode: try object.string("postcode"))
    }
}

extension Party: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        try writer.field("address", address)
        writer.field("dateOfBirth", dateOfBirth)
        writer.field("familyName", familyName)
        writer.field("givenName", givenName)
        writer.field("role", role)
    }

    public init(wire object: WireObject) throws {
        self.init(
            role: try object.value("role"), givenName: try object.string("givenName"), familyName: try object.string("familyName"),
            dateOfBirth: try object.string(ifPresent: "dateOfBirth"), address: try object.value(ifPresent: "address"))
    }
}

extension RecordedSchool: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("name", name)
        writer.field("urn", urn)
    }

    public init(wire object: WireObject) throws {
        self.init(name: try object.string(ifPresent: "name"), urn: try object.string(ifPresent: "urn"))
    }
}

extension SchoolRecordOrigin: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("homePostcode", homePostcode)
        writer.field("occurrenceNumber", occurrenceNumber)
        writer.field("recordedOn", recordedOn)
    }

    public init(wire object: WireObject) throws {
        self.init(
            occurrenceNumber: try object.string("occurrenceNumber"), recordedOn: try object.string("recordedOn"),
            homePostcode: try object.string(ifPresent: "homePostcode"))
    }
}

extension RecordedChild: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("ageYears", ageYears)
        writer.field("dateOfBirth", dateOfBirth)
        writer.field("familyName", familyName)
        writer.field("givenName", givenName)
        try writer.field("homeAddress", homeAddress)
        writer.field("presence", presence)
        try writer.field("school", school)
    }

    public init(wire object: WireObject) throws {
        self.init(
            givenName: try object.string("givenName"), familyName: try object.string("familyName"),
            dateOfBirth: try object.string(ifPresent: "dateOfBirth"), ageYears: try object.int(ifPresent: "ageYears"),
            homeAddress: try object.value(ifPresent: "homeAddress"), presence: try object.value("presence"),
            school: try object.value(ifPresent: "school"))
    }
}

extension Incident: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        try writer.field("children", children)
        writer.field("circumstances", circumstances)
        writer.field("crime", crime)
        writer.field("forceCode", forceCode)
        try writer.field("incidentAddress", incidentAddress)
        writer.field("localPolicingArea", localPolicingArea)
        writer.field("occurredAt", occurredAt)
        writer.field("occurrenceNumber", occurrenceNumber)
        try writer.field("parties", parties)
        writer.field("reportedAt", reportedAt)
        writer.field("riskLevel", riskLevel)
        writer.field("safeguardingInformation", safeguardingInformation)
    }

    public init(wire object: WireObject) throws {
        self.init(
            occurrenceNumber: try object.string("occurrenceNumber"), forceCode: try object.string("forceCode"),
            occurredAt: try object.date("occurredAt"), reportedAt: try object.date("reportedAt"),
            incidentAddress: try object.value("incidentAddress"), localPolicingArea: try object.string(ifPresent: "localPolicingArea"),
            riskLevel: try object.value("riskLevel"), crime: try object.bool("crime"),
            parties: try object.values("parties"), children: try object.values("children"),
            circumstances: try object.string(ifPresent: "circumstances"),
            safeguardingInformation: try object.string(ifPresent: "safeguardingInformation"))
    }
}

extension IncidentRecorded: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("changes", changes)
        try writer.field("incident", incident)
        writer.field("kind", kind)
        writer.field("revision", revision)
        writer.field("source", source)
    }

    public init(wire object: WireObject) throws {
        self.init(
            kind: try object.value("kind"), revision: try object.int("revision"), changes: try object.strings("changes"),
            source: try object.string("source"), incident: try object.value("incident"))
    }
}

extension HistoricalIncident: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        try writer.field("incident", incident)
        writer.field("source", source)
    }

    public init(wire object: WireObject) throws {
        self.init(source: try object.string("source"), incident: try object.value("incident"))
    }
}

extension IdentifiedChild: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("ageYears", ageYears)
        writer.field("childId", childId)
        writer.field("dateOfBirth", dateOfBirth)
        writer.field("familyName", familyName)
        writer.field("givenName", givenName)
        try writer.field("homeAddress", homeAddress)
        writer.field("presence", presence)
        try writer.field("recordedSchool", recordedSchool)
        writer.field("relationship", relationship)
        try writer.field("schoolOrigin", schoolOrigin)
    }

    public init(wire object: WireObject) throws {
        self.init(
            childId: try object.string("childId"), givenName: try object.string("givenName"), familyName: try object.string("familyName"),
            dateOfBirth: try object.string(ifPresent: "dateOfBirth"), ageYears: try object.int(ifPresent: "ageYears"),
            homeAddress: try object.value(ifPresent: "homeAddress"), presence: try object.value("presence"),
            recordedSchool: try object.value(ifPresent: "recordedSchool"), relationship: try object.string(ifPresent: "relationship"),
            schoolOrigin: try object.value(ifPresent: "schoolOrigin"))
    }
}

extension ResearchEvidence: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("confirmedAt", confirmedAt)
        writer.field("confirmedBy", confirmedBy)
        writer.field("explanation", explanation)
        try writer.field("score", score)
        writer.field("sourceOccurrences", sourceOccurrences)
    }

    public init(wire object: WireObject) throws {
        self.init(
            score: try object.double("score"), explanation: try object.strings("explanation"),
            sourceOccurrences: try object.strings("sourceOccurrences"), confirmedBy: try object.string(ifPresent: "confirmedBy"),
            confirmedAt: try object.date(ifPresent: "confirmedAt"))
    }
}

extension ChildIdentified: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        try writer.field("child", child)
        try writer.field("evidence", evidence)
        try writer.field("incident", incident)
        writer.field("incidentRevision", incidentRevision)
        writer.field("source", source)
    }

    public init(wire object: WireObject) throws {
        self.init(
            incident: try object.value("incident"), incidentRevision: try object.int("incidentRevision"),
            child: try object.value("child"), source: try object.value("source"), evidence: try object.value(ifPresent: "evidence"))
    }
}

extension SchoolContact: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("email", email)
        writer.field("name", name)
        writer.field("phone", phone)
        writer.field("role", role)
    }

    public init(wire object: WireObject) throws {
        self.init(
            role: try object.string("role"), name: try object.string(ifPresent: "name"),
            email: try object.string(ifPresent: "email"), phone: try object.string(ifPresent: "phone"))
    }
}

extension ResolvedSchool: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("channel", channel)
        try writer.field("contacts", contacts)
        writer.field("earlyYears", earlyYears)
        writer.field("localAuthorityCode", localAuthorityCode)
        writer.field("localAuthorityName", localAuthorityName)
        writer.field("name", name)
        writer.field("phase", phase)
        writer.field("postcode", postcode)
        writer.field("urn", urn)
    }

    public init(wire object: WireObject) throws {
        self.init(
            urn: try object.string("urn"), name: try object.string("name"), localAuthorityCode: try object.string("localAuthorityCode"),
            localAuthorityName: try object.string("localAuthorityName"), phase: try object.string(ifPresent: "phase"),
            earlyYears: try object.bool("earlyYears"), postcode: try object.string(ifPresent: "postcode"),
            contacts: try object.values("contacts"), channel: try object.value("channel"))
    }
}

extension NoticeRequested: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        try writer.field("child", child)
        writer.field("childSource", childSource)
        try writer.field("incident", incident)
        writer.field("incidentRevision", incidentRevision)
        writer.field("noticeId", noticeId)
        writer.field("resolution", resolution)
        try writer.field("school", school)
    }

    public init(wire object: WireObject) throws {
        self.init(
            noticeId: try object.string("noticeId"), incident: try object.value("incident"),
            incidentRevision: try object.int("incidentRevision"), child: try object.value("child"),
            childSource: try object.value("childSource"), school: try object.value("school"),
            resolution: try object.strings("resolution"))
    }
}

extension NoticeDue: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("escalation", escalation)
        try writer.field("escalationContact", escalationContact)
        writer.field("releaseAt", releaseAt)
        try writer.field("request", request)
        writer.field("rules", rules)
    }

    public init(wire object: WireObject) throws {
        self.init(
            request: try object.value("request"), releaseAt: try object.date("releaseAt"), escalation: try object.bool("escalation"),
            escalationContact: try object.value(ifPresent: "escalationContact"), rules: try object.strings("rules"))
    }
}

extension NoticeEvent: WireCodable {
    public func write(to writer: inout WireWriter) throws {
        writer.field("at", at)
        writer.field("claimant", claimant)
        writer.field("detail", detail)
        writer.field("forceCode", forceCode)
        writer.field("kind", kind)
        writer.field("noticeId", noticeId)
        writer.field("occurrenceNumber", occurrenceNumber)
        writer.field("schoolURN", schoolURN)
        writer.field("supersedes", supersedes)
    }

    public init(wire object: WireObject) throws {
        self.init(
            noticeId: try object.string("noticeId"), kind: try object.value("kind"), at: try object.date("at"),
            forceCode: try object.string("forceCode"), occurrenceNumber: try object.string("occurrenceNumber"),
            schoolURN: try object.string(ifPresent: "schoolURN"), detail: try object.string(ifPresent: "detail"),
            claimant: try object.string(ifPresent: "claimant"), supersedes: try object.string(ifPresent: "supersedes"))
    }
}
