import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime

@testable import SchoolResolutionService

/// The shared 2018 list (../shared/data/schools), read once.
enum Fixtures {
    static let sharedList: [RegisteredSchool] = {
        let path = "\(TestPaths.shared)/data/schools/schools_2018_tvp_cambs.csv"
        guard let data = FileManager.default.contents(atPath: path), let file = try? RegisterImporter.read(data) else { return [] }
        return file.schools
    }()

    /// Settings-free early years settings and a school outside both forces, for the protocol cases.
    static let extra: [RegisteredSchool] = [
        RegisteredSchool(
            urn: "900001", name: "Histon Early Years Centre", localAuthorityCode: "873", localAuthorityName: "Cambridgeshire",
            status: "Open", phase: "Nursery", type: "Local authority nursery school", statutoryLowAge: 2, statutoryHighAge: 5,
            town: "Cambridge", postcode: "CB24 9JE"),
        RegisteredSchool(
            urn: "900002", name: "Katesgrove Nursery School", localAuthorityCode: "870", localAuthorityName: "Reading",
            status: "Open", phase: "Nursery", type: "Local authority nursery school", statutoryLowAge: 2, statutoryHighAge: 5,
            town: "Reading", postcode: "RG1 2NX"),
        RegisteredSchool(
            urn: "900003", name: "Farnborough Grange Nursery and Infant Community School", localAuthorityCode: "850",
            localAuthorityName: "Hampshire", status: "Open", phase: "Primary", type: "Community school",
            statutoryLowAge: 3, statutoryHighAge: 7, town: "Farnborough", postcode: "GU14 8AT"),
        RegisteredSchool(
            urn: "900004", name: "Bedford Free School", localAuthorityCode: "822", localAuthorityName: "Bedford",
            status: "Open", phase: "Secondary", type: "Free schools", statutoryLowAge: 11, statutoryHighAge: 18,
            town: "Bedford", postcode: "MK40 1HT"),
    ]

    static let register = sharedList + extra

    static let protocols: [String: SchoolsProtocol] = {
        (try? SchoolsProtocol.loadAll(ForceProtocols.load())) ?? [:]
    }()

    static let matcher = SchoolMatcher(schools: register)

    static let incidentDate = Timestamp.parse("2026-11-20T21:15:00Z")!

    static func incident(force: String = "43", occurrence: String = "43260001234", lpa: String? = "Reading") -> Incident {
        Incident(
            occurrenceNumber: occurrence, forceCode: force, occurredAt: incidentDate, reportedAt: incidentDate,
            incidentAddress: PostalAddress(lines: ["12 Oxford Road"], town: "Reading", postcode: "RG1 7LL"),
            localPolicingArea: lpa, riskLevel: .medium, crime: true)
    }

    static func child(id: String = "c-1", age: Int? = 8, dob: String? = nil, school: RecordedSchool?) -> IdentifiedChild {
        IdentifiedChild(
            childId: id, givenName: "Amelia", familyName: "Hughes", dateOfBirth: dob, ageYears: age,
            homeAddress: PostalAddress(lines: ["12 Oxford Road"], town: "Reading", postcode: "RG1 7LL"),
            recordedSchool: school)
    }

    static func message(force: String = "43", occurrence: String = "43260001234", lpa: String? = "Reading", child: IdentifiedChild, revision: Int = 1)
        -> ChildIdentified
    {
        ChildIdentified(
            incident: incident(force: force, occurrence: occurrence, lpa: lpa), incidentRevision: revision, child: child, source: .officer)
    }

    /// A store with the service's tables and the given register.
    static func store(register: [RegisteredSchool] = Fixtures.register, contacts: [String: [SchoolContact]] = [:]) throws -> ServiceStore {
        let store = try ServiceStore(
            path: TestPaths.temporaryDirectory("schools") + "/s.sqlite",
            migrations: SchoolStore.migrations(seed: false))
        try store.pool.write { db in
            for school in register {
                try SchoolStore.apply(
                    SchoolRegisterUpdate(school: school, contacts: contacts[school.urn] ?? [], source: "test", updatedAt: incidentDate), db: db)
            }
        }
        return store
    }
}
