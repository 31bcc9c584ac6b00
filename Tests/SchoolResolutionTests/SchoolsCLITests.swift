import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import SchoolResolutionService

/// `encompass schools contacts …` and `encompass schools la-contacts …`: the built CLI against a
/// running school resolution service, its effect read back from the service's store.
@Suite("The schools CLI: contacts and local authorities' contacts", .serialized)
struct SchoolsCLITests {
    static let token = "t0ken-schools-cli"

    func contacts(_ schools: RunningSchools, _ urn: String) async throws -> [String] {
        try await schools.host.store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT coalesce(email, phone) FROM schoolContact WHERE urn = ? ORDER BY position", arguments: [urn])
        }
    }

    @Test(
        "contacts set: a school's contacts replaced; a --contact without a role or with an unknown field, a bad email and an unknown URN refused, saying why"
    )
    func setContacts() async throws {
        let kafka = try TestKafka()
        let schools = try await RunningSchools(kafka, token: Self.token)
        let cli = ["--url", schools.base, "--token", Self.token]
        let set = try await runExecutable(
            "encompass",
            [
                "schools", "contacts", "set", "109778", "--contact", "role=dsl;name=J Smith;email=dsl@caversham.example",
                "--contact", "role=deputy;phone=0118 000 0000", "--by", "mash.officer",
            ] + cli)
        #expect(set.status == 0 && set.output.contains("URN 109778: 2 contact(s) set"), "\(set.output)")
        try await eventually("the contacts applied from the register topic") {
            try await contacts(schools, "109778") == ["dsl@caversham.example", "0118 000 0000"]
        }
        let shown = try await runExecutable("encompass", ["schools", "contacts", "show", "109778"] + cli)
        #expect(shown.status == 0 && shown.output.contains("dsl@caversham.example"), "\(shown.output)")

        let noRole = try await runExecutable(
            "encompass", ["schools", "contacts", "set", "109778", "--contact", "name=X;email=x@school.example"] + cli)
        #expect(noRole.status != 0 && noRole.output.contains("needs role="), "\(noRole.output)")
        let unknownField = try await runExecutable(
            "encompass", ["schools", "contacts", "set", "109778", "--contact", "role=dsl;mail=x@school.example"] + cli)
        #expect(unknownField.status != 0 && unknownField.output.contains("use role=…;name=…;email=…;phone=…"), "\(unknownField.output)")
        let badEmail = try await runExecutable(
            "encompass", ["schools", "contacts", "set", "109778", "--contact", "role=dsl;email=not-an-email"] + cli)
        #expect(badEmail.status == 1 && badEmail.output.contains("email"), "\(badEmail.output)")
        let unknownURN = try await runExecutable(
            "encompass", ["schools", "contacts", "set", "999999", "--contact", "role=dsl;email=a@b.example"] + cli)
        #expect(unknownURN.status == 2 && unknownURN.output.contains("not in the register"), "\(unknownURN.output)")
        let wrongToken = try await runExecutable(
            "encompass",
            ["schools", "contacts", "set", "109778", "--url", schools.base, "--token", "wrong", "--contact", "role=dsl;email=a@b.example"])
        #expect(wrongToken.status == 2 && wrongToken.output.contains("401"), "\(wrongToken.output)")
        // None of the refused ones changed anything.
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await contacts(schools, "109778") == ["dsl@caversham.example", "0118 000 0000"])
        try await schools.stop()
    }

    @Test(
        "contacts import: each school listed gets its rows; URNs not in the register and bad rows are named (exit 1); a sheet without the columns is refused (exit 2)"
    )
    func importContacts() async throws {
        let kafka = try TestKafka()
        let schools = try await RunningSchools(kafka, token: Self.token)
        let cli = ["--url", schools.base, "--token", Self.token]
        let directory = TestPaths.temporaryDirectory("schools-cli-contacts")
        let good = directory + "/contacts.csv"
        try Data(
            """
            urn,role,name,email,phone
            109776,dsl,A Head,head@alfred.example,
            109776,deputy,B Deputy,,0118 111 1111
            109778,dsl,C Lead,lead@caversham.example,

            """.utf8
        ).write(to: URL(fileURLWithPath: good))
        let imported = try await runExecutable("encompass", ["schools", "contacts", "import", good] + cli)
        #expect(imported.status == 0 && imported.output.contains("contacts.csv: contacts set for 2 school(s)"), "\(imported.output)")
        try await eventually("both schools' contacts applied") {
            let (first, second) = (try await contacts(schools, "109776"), try await contacts(schools, "109778"))
            return first == ["head@alfred.example", "0118 111 1111"] && second == ["lead@caversham.example"]
        }

        let mixed = directory + "/mixed.csv"
        try Data(
            """
            urn,role,name,email,phone
            109776,dsl,D New,new@alfred.example,
            999999,dsl,Nobody,nobody@nowhere.example,
            abc,dsl,Short,short@x.example,

            """.utf8
        ).write(to: URL(fileURLWithPath: mixed))
        let partly = try await runExecutable("encompass", ["schools", "contacts", "import", mixed] + cli)
        #expect(partly.status == 1, "\(partly.output)")
        #expect(partly.output.contains("contacts set for 1 school(s)") && partly.output.contains("not in the register: 999999"), "\(partly.output)")
        #expect(partly.output.contains("row 4: urn is missing or not a URN"), "\(partly.output)")
        try await eventually("109776's contacts replaced by its one row") { try await contacts(schools, "109776") == ["new@alfred.example"] }

        let wrong = directory + "/wrong.csv"
        try Data("school,who\n109776,someone\n".utf8).write(to: URL(fileURLWithPath: wrong))
        let refused = try await runExecutable("encompass", ["schools", "contacts", "import", wrong] + cli)
        #expect(refused.status == 2 && refused.output.contains("missing column(s)"), "\(refused.output)")
        let missing = try await runExecutable("encompass", ["schools", "contacts", "import", directory + "/absent.csv"] + cli)
        #expect(missing.status != 0 && missing.output.contains("cannot read"), "\(missing.output)")
        #expect(try await contacts(schools, "109778") == ["lead@caversham.example"])
        try await schools.stop()
    }

    @Test(
        "la-contacts import and list: an LA's contacts set, bad rows named (exit 1) and kept as dead letters; listed by LA, or as the service's JSON")
    func laContacts() async throws {
        let kafka = try TestKafka()
        let schools = try await RunningSchools(kafka, token: Self.token)
        let cli = ["--url", schools.base, "--token", Self.token]
        let empty = try await runExecutable("encompass", ["schools", "la-contacts", "list"] + cli)
        #expect(empty.status == 0 && empty.output.contains("no local authority contacts held"), "\(empty.output)")

        let sheet = TestPaths.temporaryDirectory("schools-cli-la") + "/la-contacts.csv"
        try Data(
            """
            la_code,role,name,email,phone
            873,encompass,Cambridgeshire Operation Encompass,encompass@cambridgeshire.example,
            873,education-otherwise,Cambridgeshire EHE team,ehe@cambridgeshire.example,01223 000 000
            850,headteacher,Someone,someone@hants.example,
            8500,encompass,Typo,typo@hants.example,

            """.utf8
        ).write(to: URL(fileURLWithPath: sheet))
        let imported = try await runExecutable("encompass", ["schools", "la-contacts", "import", sheet] + cli)
        #expect(imported.status == 1, "\(imported.output)")
        #expect(imported.output.contains("la-contacts.csv: contacts set for 1 local authorit(ies)"), "\(imported.output)")
        #expect(imported.output.contains("row 4: ") && imported.output.contains("row 5: "), "\(imported.output)")
        #expect(try await schools.host.store.pool.read { try DeadLetter.filter(Column("errorClass") == "la-contacts.row").fetchCount($0) } == 2)

        var listed = (status: Int32(0), output: "")
        try await eventually("the LA's contacts listed") {
            listed = try await runExecutable("encompass", ["schools", "la-contacts", "list"] + cli)
            return listed.output.contains("LA 873")
        }
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("  encompass: Cambridgeshire Operation Encompass, encompass@cambridgeshire.example"), "\(listed.output)")
        #expect(
            listed.output.contains("  education-otherwise: Cambridgeshire EHE team, ehe@cambridgeshire.example, 01223 000 000"), "\(listed.output)")
        #expect(!listed.output.contains("850") && !listed.output.contains("8500"), "\(listed.output)")
        let json = try await runExecutable("encompass", ["schools", "la-contacts", "list", "--json"] + cli)
        let list = try WireFormat.decoder().decode(LAContactsList.self, from: Data(json.output.utf8))
        #expect(list.localAuthorities.map(\.laCode) == ["873"] && list.localAuthorities.first?.contacts.count == 2)

        let unreadable = TestPaths.temporaryDirectory("schools-cli-la") + "/la.csv"
        try Data("code,who\n873,x\n".utf8).write(to: URL(fileURLWithPath: unreadable))
        let refused = try await runExecutable("encompass", ["schools", "la-contacts", "import", unreadable] + cli)
        #expect(refused.status == 2 && refused.output.contains("missing column(s)"), "\(refused.output)")
        let wrongToken = try await runExecutable("encompass", ["schools", "la-contacts", "list", "--url", schools.base, "--token", "wrong"])
        #expect(wrongToken.status == 2 && wrongToken.output.contains("401"), "\(wrongToken.output)")
        try await schools.stop()
    }
}
