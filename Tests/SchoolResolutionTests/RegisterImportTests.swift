import EncompassModels
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchoolResolutionService

@Suite("Reading the school register")
struct RegisterImportTests {
    @Test("the DfE GIAS layout: Windows-1252, dd-mm-yyyy, LA names, statuses and phases")
    func giasLayout() throws {
        let text = """
            URN,LA (code),LA (name),EstablishmentNumber,EstablishmentName,TypeOfEstablishment (name),EstablishmentStatus (name),OpenDate,CloseDate,PhaseOfEducation (name),StatutoryLowAge,StatutoryHighAge,Street,Locality,Address3,Town,County (name),Postcode\r
            109778,870,Reading,2011,Caversham Primary School,Community school,Open,,,Primary,5,11,Hemdean Road,Caversham,,Reading,Berkshire,RG4 7RA\r
            110002,870,Reading,3301,St Mary and All Saints Church of England Voluntary Aided Primary School,Voluntary aided school,Closed,,31-10-2018,Primary,3,11,Wensley Road,,,Reading,Berkshire,RG1 6DU\r
            123456,873,Cambridgeshire,1000,"Crèche ""Little Stars"", Histon",Local authority nursery school,Open,01-09-2020,,Nursery,2,5,,,,Cambridge,,CB24 9JE\r
            ,870,Reading,1,No URN School,Community school,Open,,,Primary,5,11,,,,Reading,,RG1 1AA\r

            """
        let data = try #require(text.data(using: .windowsCP1252))
        #expect(String(data: data, encoding: .utf8) == nil) // really not UTF-8
        let file = try RegisterImporter.read(data)
        #expect(file.layout == .gias)
        #expect(file.schools.map(\.urn) == ["109778", "110002", "123456"])
        #expect(file.rejected.map(\.row) == [5])
        #expect(file.notices.first?.contains("Windows-1252") == true)
        let closed = file.schools[1]
        #expect(!closed.isOpen && closed.closeDate == "2018-10-31" && closed.localAuthorityName == "Reading")
        let nursery = file.schools[2]
        #expect(nursery.name == "Crèche \"Little Stars\", Histon")
        #expect(nursery.phase == "Nursery" && nursery.statutoryHighAge == 5 && nursery.openDate == "2020-09-01")
        #expect(file.schools[0].locality == "Caversham" && file.schools[0].town == "Reading")
    }

    @Test("early years settings known by their Ofsted reference (EY and 6 digits) are accepted, resolved, and told per protocol")
    func earlyYearsReferences() throws {
        let text = """
            URN,LA (code),LA (name),EstablishmentName,TypeOfEstablishment (name),EstablishmentStatus (name),OpenDate,CloseDate,PhaseOfEducation (name),StatutoryLowAge,StatutoryHighAge,Street,Locality,Town,Postcode\r
            ey512345,873,Cambridgeshire,Little Acorns Day Nursery,Private nursery,Open,,,Not applicable,0,5,,,Histon,CB24 9LL\r
            EY51234,873,Cambridgeshire,Too Short Nursery,Private nursery,Open,,,Not applicable,0,5,,,Histon,CB24 9LL\r
            XY512345,873,Cambridgeshire,Not A Reference,Private nursery,Open,,,Not applicable,0,5,,,Histon,CB24 9LL\r

            """
        let file = try RegisterImporter.read(Data(text.utf8))
        #expect(file.schools.map(\.urn) == ["EY512345"])
        #expect(file.rejected.map(\.row) == [3, 4])
        let setting = try #require(file.schools.first)
        #expect(setting.isOfstedEarlyYears)
        #expect(SchoolRegisterUpdate(school: setting, contacts: [], source: "t", updatedAt: Date()).validationErrors().isEmpty)
        #expect(!SchoolReference.isValid("EY12345X") && SchoolReference.isValid("110002") && !SchoolReference.isValid("1100"))
        // Resolved by name or reference, it is early years: telephoned in Cambridgeshire.
        let resolver = SchoolResolver(matcher: SchoolMatcher(schools: Fixtures.register + [setting]), protocols: Fixtures.protocols)
        var incident = Fixtures.incident(force: "05")
        incident.incidentAddress.postcode = "CB24 9AA"
        for recorded in [RecordedSchool(urn: "EY512345"), RecordedSchool(name: "Little Acorns Day Nursery")] {
            let outcome = resolver.resolve(
                child: Fixtures.child(age: 3, school: recorded), incident: incident, recorded: recorded, previous: nil, blocked: []
            ) { _ in
                [SchoolContact(role: "manager", name: "A Manager", email: nil, phone: "01223 000111")]
            }
            guard case .notice(let school, _) = outcome else {
                Issue.record("EY setting: \(outcome)")
                continue
            }
            #expect(school.urn == "EY512345" && school.earlyYears && school.channel == .telephone)
        }
    }

    @Test("the shipped 2018 layout: status codes, phase flags, linked URNs")
    func layout2018() throws {
        let school = try #require(Fixtures.sharedList.first { $0.urn == "110002" })
        #expect(school.status == "Closed" && school.closeDate == "2018-10-31" && school.linkedURN == "146275")
        #expect(school.localAuthorityName == "Reading" && school.phase == "Primary")
        let bundled = try #require(RegisterImporter.bundledListURL)
        let shipped = try RegisterImporter.read(Data(contentsOf: bundled))
        #expect(shipped.schools == Fixtures.sharedList)
        #expect(shipped.layout == .schools2018)
    }

    @Test("files that are not a register are refused with a reason")
    func badFiles() {
        #expect(throws: RegisterFileError.self) { try RegisterImporter.read(Data()) }
        #expect(throws: RegisterFileError.self) { try RegisterImporter.read(Data("name,town\nA,B\n".utf8)) }
        #expect(throws: RegisterFileError.self) { try RegisterImporter.read(Data("URN,Name,Local Authority\n1,\"open".utf8)) }
        #expect(throws: RegisterFileError.self) { try RegisterImporter.read(Data("URN,LA (code),EstablishmentName\n1,2,3\n".utf8)) }
    }
}

@Suite("Contacts sheets")
struct ContactsSheetTests {
    @Test("each school gets its rows; bad rows are named; a sheet without the needed columns is refused")
    func contactsSheet() throws {
        let csv = """
            urn,role,name,email,phone
            109778,dsl,J Smith,dsl@caversham.example,0118 901 2345
            109778,deputy-dsl,A Patel,deputy@caversham.example,
            109779,office,,,'+44 118 000 0000
            109779,dsl,,not-an-email,
            abc,dsl,,x@y.example,
            """
        let sheet = try RegisterDesk.contactsSheet(Data(csv.utf8))
        #expect(sheet.byURN["109778"]?.map(\.role) == ["dsl", "deputy-dsl"])
        #expect(sheet.byURN["109779"]?.first?.phone == "+44 118 000 0000") // the neutralising apostrophe is dropped
        #expect(sheet.rejected.map(\.row) == [5, 6])
        #expect(throws: (any Error).self) { try RegisterDesk.contactsSheet(Data("urn,email\n1,a@b.c\n".utf8)) }
        #expect(throws: (any Error).self) { try RegisterDesk.contactsSheet(Data("urn,role,name\n1,dsl,x\n".utf8)) }
        #expect(RegisterDesk.problems([SchoolContact(role: "dsl", email: "a@b")]).count == 1)
        #expect(RegisterDesk.problems([SchoolContact(role: "dsl", phone: "12")]).count == 1)
        #expect(RegisterDesk.problems([SchoolContact(role: "dsl", email: "dsl@school.example")]).isEmpty)
    }
}

@Suite("Register imports against the held register")
struct RegisterDeskTests {
    @Test("only new or changed schools are published; contacts and known links are kept")
    func importPublishesChanges() throws {
        let contacts = [SchoolContact(role: "dsl", email: "dsl@stmary.example")]
        let store = try Fixtures.store(contacts: ["110002": contacts])
        let gias = """
            URN,LA (code),LA (name),EstablishmentName,EstablishmentStatus (name),CloseDate,PhaseOfEducation (name),StatutoryLowAge,StatutoryHighAge,Town,Postcode
            110002,870,Reading,St Mary and All Saints Church of England Voluntary Aided Primary School,Closed,31-10-2018,Primary,3,11,Reading,RG1 6DU
            """
        let file = try RegisterImporter.read(Data(gias.utf8))
        let answer = try store.pool.write { db in
            try RegisterDesk.importRegister(file, name: "g.csv", db: db, outbox: Outbox(db: db, producer: "test"), now: Fixtures.incidentDate)
        }
        #expect(answer.published == 1)
        let message = try #require(try store.pool.read { try OutboxMessage.filter(Column("topic") == Topics.schoolRegister.name).fetchOne($0) })
        let update = try WireFormat.decode(SchoolRegisterUpdate.self, from: Array(message.value))
        #expect(update.key == "110002")
        #expect(update.payload.school.linkedURN == "146275") // kept from the 2018 list
        #expect(update.payload.contacts == contacts)
        #expect(update.payload.school.type == nil && update.payload.source == "import:g.csv")
        // Applied, the same file again changes nothing.
        try store.pool.write { db in try SchoolStore.apply(update.payload, db: db) }
        let again = try store.pool.write { db in
            try RegisterDesk.importRegister(file, name: "g.csv", db: db, outbox: Outbox(db: db, producer: "test"), now: Fixtures.incidentDate)
        }
        #expect(again.published == 0 && again.unchanged == 1)
    }
}
