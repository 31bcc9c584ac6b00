import ArgumentParser
import ConsoleService
import EncompassModels
import Foundation
import SchoolResolutionService
import ServiceRuntime
import WebSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `encompass schools …`: the school register, its contacts and the requests to Children's
/// Social Care, through school resolution's HTTP API.
struct SchoolsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schools",
        abstract: "School register, safeguarding contacts and requests to Children's Social Care (school resolution).",
        subcommands: [SchoolsImport.self, SchoolsContacts.self, SchoolsLAContacts.self, SchoolsRequests.self]
    )
}

/// Where school resolution is and how to sign in.
struct SchoolsOptions: ParsableArguments {
    @Option(
        help:
            "School resolution's base URL; repeat it (or separate with commas) for every instance of a scaled group (default: $ENCOMPASS_SCHOOL_RESOLUTION_URLS, else $ENCOMPASS_SCHOOL_RESOLUTION_URL). Held answers and open requests are gathered from every instance, and a returned sheet goes to every instance; the register and contacts use the first."
    )
    var url: [String] = ServiceClient.instanceBaseURLs(.schoolResolution)

    @Option(help: "API token (default: $ENCOMPASS_API_TOKEN).")
    var token: String?

    /// The first instance: for the register and contacts, which every instance holds.
    func client() throws -> SchoolsClient { try clients()[0] }

    func clients() throws -> [SchoolsClient] {
        let urls = ServiceClient.splitURLs(url)
        guard !urls.isEmpty else { throw ValidationError("--url is empty: give school resolution's base URL") }
        let token = try APIClient.token(token)
        return urls.map { SchoolsClient(api: APIClient(service: .schoolResolution, baseURL: $0, token: token, timeout: 300)) }
    }
}

extension SchoolsOptions {
    /// The console's links to every listed instance: the CSC sheet's export and import, which
    /// gather from and deliver to every instance.
    func links() throws -> ServiceLinks {
        let urls = ServiceClient.splitURLs(url)
        guard let first = urls.first else { throw ValidationError("--url is empty: give school resolution's base URL") }
        return ServiceLinks(urls: [.schoolResolution: first], instances: [.schoolResolution: urls], token: try APIClient.token(token), timeout: 300)
    }

    /// A fetched value, or the reason printed and exit 2.
    static func value<T>(_ fetched: Fetched<T>, what: String) throws -> T {
        switch fetched {
        case .ok(let value): return value
        case .unreachable(let why), .refused(let why):
            FileHandle.standardError.write(Data("\(what) failed: \(why)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct SchoolsClient {
    let api: APIClient

    /// Exits with 2 when the service cannot be reached.
    func call(_ method: String, _ path: String, query: [String: String] = [:], body: Data? = nil) async throws -> (
        status: Int, data: Data, response: HTTPURLResponse?
    ) {
        try await api.send(method, path, query: query, body: body, contentType: "application/octet-stream")
    }

    /// Prints the service's error and exits 2 when the answer is not a success.
    static func check(_ status: Int, _ data: Data, what: String) throws {
        guard (200..<300).contains(status) else {
            FileHandle.standardError.write(Data("\(what) refused (\(status)): \(APIClient.refusal(data))\n".utf8))
            throw ExitCode(2)
        }
    }

    /// The answer as `Answer`; exits 2, saying what came instead, when it is not one.
    static func decode<Answer: Decodable>(_ type: Answer.Type, _ data: Data, what: String) throws -> Answer {
        do { return try WireFormat.decoder().decode(Answer.self, from: data) } catch {
            FileHandle.standardError.write(Data("\(what): school resolution answered with an unexpected body (\(WireFormat.describe(error)))\n".utf8))
            throw ExitCode(2)
        }
    }

    /// Sends a sheet to an import endpoint. Its answer, also when some rows were rejected (422
    /// with the answer); exits 2 when the whole file was refused.
    func importSheet<Answer: Decodable>(_ file: String, to path: String, as type: Answer.Type) async throws -> (name: String, answer: Answer) {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        let name = (file as NSString).lastPathComponent
        let (status, body, _) = try await call("POST", path, query: ["name": name], body: data)
        if status != 422 || (try? WireFormat.decoder().decode(Answer.self, from: body)) == nil { try Self.check(status, body, what: name) }
        return (name, try Self.decode(Answer.self, body, what: name))
    }

    /// Prints each rejected row; exits 1 when there is one (or `otherProblem`).
    static func reportRejected(_ rows: [RejectedRow], otherProblem: Bool = false) throws {
        for row in rows { print("row \(row.row): \(row.reason)") }
        if !rows.isEmpty || otherProblem { throw ExitCode(1) }
    }
}

struct SchoolsImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import the school register: the DfE GIAS download (edubasealldataYYYYMMDD.csv) or a file in the 2018 list's layout.",
        discussion:
            "New and changed schools are published to every instance; contacts are kept. Exit 1 when rows were skipped, 2 when the file was refused."
    )

    @Argument(help: "The register CSV.")
    var file: String

    @OptionGroup var service: SchoolsOptions

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        let name = (file as NSString).lastPathComponent
        let (status, body, _) = try await service.client().call("POST", "/v1/register/import", query: ["name": name], body: data)
        try SchoolsClient.check(status, body, what: name)
        let answer = try SchoolsClient.decode(RegisterDesk.ImportAnswer.self, body, what: name)
        print("\(name) (\(answer.layout)): \(answer.schools) schools, \(answer.published) new or changed, \(answer.unchanged) unchanged")
        for notice in answer.notices { print("note: \(notice)") }
        for row in answer.rejectedRows { print("row \(row.row): \(row.reason)") }
        if !answer.rejectedRows.isEmpty { throw ExitCode(1) }
    }
}

struct SchoolsContacts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts",
        abstract: "Safeguarding contacts of schools (kept by the MASH).",
        subcommands: [ShowContacts.self, SetContacts.self, ImportContacts.self]
    )

    struct ShowContacts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a school and its contacts.")
        @Argument(help: "The school's URN.") var urn: String
        @OptionGroup var service: SchoolsOptions

        func run() async throws {
            let (status, body, _) = try await service.client().call("GET", "/v1/schools/\(urn)")
            try SchoolsClient.check(status, body, what: "URN \(urn)")
            print(String(decoding: body, as: UTF8.self))
        }
    }

    struct SetContacts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Replace a school's contacts.",
            discussion:
                "Each --contact is 'role=dsl;name=J Smith;email=dsl@school.example;phone=0118 000 0000' (role and an email or phone required). No --contact clears the list."
        )
        @Argument(help: "The school's URN.") var urn: String
        @Option(name: .customLong("contact"), help: "A contact: role=…;name=…;email=…;phone=… (repeat for several).") var contacts: [String] = []
        @Option(help: "Who made the change (for the audit).") var by: String?
        @OptionGroup var service: SchoolsOptions

        func run() async throws {
            var list: [SchoolContact] = []
            for text in contacts {
                var contact: [String: String] = [:]
                for part in text.split(separator: ";") {
                    let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard pair.count == 2, ["role", "name", "email", "phone"].contains(pair[0]) else {
                        throw ValidationError("--contact '\(text)': use role=…;name=…;email=…;phone=…")
                    }
                    contact[pair[0]] = pair[1]
                }
                guard let role = contact["role"] else { throw ValidationError("--contact '\(text)' needs role=…") }
                list.append(SchoolContact(role: role, name: contact["name"], email: contact["email"], phone: contact["phone"]))
            }
            let body = try WireFormat.data(ContactsRequest(contacts: list, updatedBy: by))
            let (status, answer, _) = try await service.client().call("PUT", "/v1/schools/\(urn)/contacts", body: body)
            if status == 422, let refusal = try? WireFormat.decoder().decode(APIFieldErrors.self, from: answer) {
                for error in refusal.errors { print(error.description) }
                throw ExitCode(1)
            }
            try SchoolsClient.check(status, answer, what: "URN \(urn)")
            print("URN \(urn): \(list.count) contact(s) set; every instance applies them from the register topic")
        }
    }

    struct ImportContacts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Import contacts from a CSV or XLSX (columns urn, role, name, email, phone); each school listed gets exactly its rows."
        )
        @Argument(help: "The contacts sheet.") var file: String
        @OptionGroup var service: SchoolsOptions

        func run() async throws {
            let (name, answer) = try await service.client().importSheet(file, to: "/v1/contacts/import", as: ContactsImportAnswer.self)
            print("\(name): contacts set for \(answer.schools) school(s)")
            if !answer.unknownURNs.isEmpty { print("not in the register: \(answer.unknownURNs.joined(separator: ", "))") }
            try SchoolsClient.reportRejected(answer.rejectedRows, otherProblem: !answer.unknownURNs.isEmpty)
        }
    }
}

struct SchoolsLAContacts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "la-contacts",
        abstract:
            "Local authorities' contacts: the Operation Encompass contact (role encompass), who takes the notice for a school of that LA when none is held for the school, and the contact for children not on a school roll (role education-otherwise).",
        subcommands: [Import.self, List.self]
    )

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Import a CSV or XLSX (columns la_code, role, name, email, phone); each local authority listed gets exactly its rows.",
            discussion: "Exit 1 when rows were rejected (each is kept as a dead letter), 2 when the file was refused."
        )
        @Argument(help: "The sheet.") var file: String
        @OptionGroup var service: SchoolsOptions

        func run() async throws {
            let (name, answer) = try await service.client().importSheet(file, to: "/v1/la-contacts/import", as: LAContactsImportAnswer.self)
            print("\(name): contacts set for \(answer.localAuthorities) local authorit(ies); every instance applies them from the register topic")
            try SchoolsClient.reportRejected(answer.rejectedRows)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every local authority's contacts.")
        @Flag(help: "Print the service's JSON.") var json = false
        @OptionGroup var service: SchoolsOptions

        func run() async throws {
            let (status, body, _) = try await service.client().call("GET", "/v1/la-contacts")
            try SchoolsClient.check(status, body, what: "LA contacts")
            if json {
                print(String(decoding: body, as: UTF8.self))
                return
            }
            let list = try SchoolsClient.decode(LAContactsList.self, body, what: "LA contacts").localAuthorities
            if list.isEmpty { print("no local authority contacts held: import them with encompass schools la-contacts import FILE") }
            for entry in list {
                print("LA \(entry.laCode) \(entry.localAuthority ?? "")")
                for contact in entry.contacts {
                    let fields = [contact.name, contact.email, contact.phone].compactMap { $0 }
                    print("  \(contact.role): \(fields.joined(separator: ", "))")
                }
            }
        }
    }
}

struct SchoolsRequests: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests",
        abstract: "Requests to Children's Social Care for children without a verified school.",
        subcommands: [Export.self, Import.self, Held.self, Accept.self, Decline.self]
    )

    struct Held: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "CSC answers held for a MASH officer: the school CSC named conflicts with the child's recorded age.",
            discussion: "Accept one (the notice goes to that school, the age conflict recorded) or decline it (the request goes back to CSC)."
        )
        @OptionGroup var service: SchoolsOptions

        func run() async throws {
            // Each instance holds the answers of the children it owns: gathered from all of them.
            var held: [HeldAnswer] = []
            var seen = Set<String>()
            for client in try service.clients() {
                let (status, body, _) = try await client.call("GET", "/v1/requests/held")
                try SchoolsClient.check(status, body, what: "held answers at \(client.api.client.baseURL)")
                held += try WireFormat.decoder().decode(HeldAnswers.self, from: body).held.filter { seen.insert($0.requestId).inserted }
            }
            for item in held {
                let school = [item.school?.urn, item.school?.name].compactMap { $0 }.joined(separator: " ")
                print(
                    "\(item.requestId)  \(item.occurrenceNumber)  \(item.childName) (\(item.dateOfBirth ?? "date of birth unknown"))  → \(school)\n    \(item.reason)"
                )
            }
            print("\(held.count) answer(s) held for a MASH officer")
        }
    }

    /// `accept` and `decline` of a held answer.
    struct Decision: ParsableArguments {
        @Argument(help: "The request id (encompass schools requests held).") var id: String
        @Option(help: "Who decides (recorded).") var by: String
        @Option(help: "Why (recorded).") var note: String?
        @OptionGroup var service: SchoolsOptions

        func send(_ verdict: CSCRequests.ReviewVerdict) async throws {
            let payload = try JSONEncoder().encode(HeldDecision(reviewer: by, note: note))
            // The instance that holds the request answers; the others answer 404.
            var (status, body) = (404, Data())
            for client in try service.clients() where status == 404 {
                (status, body, _) = try await client.call("POST", "/v1/requests/\(id)/\(verdict.rawValue)", body: payload)
            }
            try SchoolsClient.check(status, body, what: verdict.rawValue)
            let answer = try JSONDecoder().decode(CSCRequests.ReviewAnswer.self, from: body)
            print("\(answer.requestId): \(answer.outcome)\(answer.urn.map { " URN \($0)" } ?? "") — \(answer.reasons.joined(separator: "; "))")
        }
    }

    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accept a held CSC answer: notify the school CSC named, the age conflict recorded.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.send(.accept) }
    }

    struct Decline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decline a held CSC answer: the request goes back to Children's Social Care.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.send(.decline) }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the open requests of a local policing area as XLSX and CSV.",
            discussion:
                "CSC fills in school_urn and/or school_name and returns the file (encompass schools requests import). Cells that a spreadsheet would run as formulas are prefixed with an apostrophe."
        )
        @Option(help: "Local policing area (the incident's), or 'all'.") var lpa: String
        @Option(help: "Folder to write into.") var out: String = "."
        @OptionGroup var service: SchoolsOptions

        func run() async throws {
            let links = try service.links()
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            } else if !isDirectory.boolValue {
                throw ValidationError("--out \(out) is not a folder")
            }
            var count = 0
            // Each format is gathered from every instance (each marks its requests exported).
            for format in ["xlsx", "csv"] {
                let sheet = try SchoolsOptions.value(await links.exportRequests(lpa: lpa, format: format), what: "export")
                count = sheet.requests
                let path = (out as NSString).appendingPathComponent(sheet.fileName)
                try sheet.data.write(to: URL(fileURLWithPath: path))
                print(path)
            }
            print("\(count) open request(s) for \(lpa)")
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import the spreadsheet Children's Social Care returned (XLSX or CSV with request_id and school_urn and/or school_name).",
            discussion:
                "Each school is verified like an officer's; verified children flow on to scheduling. Every instance applies the rows whose request it holds; a row no instance holds is rejected. Exit 1 when rows were rejected (kept as dead letters), 2 when the file was refused."
        )
        @Argument(help: "The returned spreadsheet.") var file: String
        @OptionGroup var service: SchoolsOptions

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            let name = (file as NSString).lastPathComponent
            let answer = try SchoolsOptions.value(await service.links().importReturned(data, name: name), what: name)
            var rejected = 0
            for row in answer.answers {
                if row.outcome == "rejected" { rejected += 1 }
                print(
                    "row \(row.row) \(row.requestId ?? ""): \(row.outcome)\(row.urn.map { " URN \($0)" } ?? "") — \(row.reasons.joined(separator: "; "))"
                )
            }
            print("\(name): \(answer.answers.count) row(s), \(rejected) rejected")
            if rejected > 0 { throw ExitCode(1) }
        }
    }
}
