import EncompassModels
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import ServiceRuntime
import Spreadsheets

/// School resolution's MASH API (bearer `ENCOMPASS_API_TOKEN`):
///
/// - `POST /v1/register/import?name=FILE` — a register file (GIAS CSV or the 2018 list's layout)
/// - `GET /v1/schools/{urn}` — one school and its contacts
/// - `PUT /v1/schools/{urn}/contacts` — `{"contacts": [{"role","name","email","phone"}], "updatedBy": "…"}`
/// - `POST /v1/contacts/import?name=FILE` — a contacts sheet (urn, role, name, email, phone)
/// - `POST /v1/la-contacts/import?name=FILE` — local authorities' contacts (la_code, role, name, email, phone)
/// - `GET /v1/la-contacts` — every local authority's contacts
/// - `GET /v1/requests?lpa=NAME[&force=CODES]` — open requests to Children's Social Care (JSON)
/// - `GET /v1/requests/export?lpa=NAME&format=xlsx|csv|json[&force=CODES]` — the same as a spreadsheet
///   (`json`: `{"header": […], "rows": [[…]]}`, raw cells, for a caller that writes one sheet
///   from every instance's rows); the requests are marked exported
/// - `POST /v1/requests/import?name=FILE[&only=held | &unheld=ROWS][&force=CODES]` — the spreadsheet CSC returns
///   (`force`: rows of other forces' requests are rejected);
///   `only=held`: apply only the rows whose request this instance holds (the others answered
///   `not-held`, nothing written); `unheld=2,5`: only those rows, which no instance holds
///   (rejected and dead-lettered here)
/// - `GET /v1/requests/held` — CSC answers held for a MASH officer (the school conflicts with the child's age)
/// - `POST /v1/requests/{id}/accept|decline` — `{"reviewer": "…", "note": "…"}`: the officer's decision
/// - `GET /v1/children/{childId}/school` — the school held for a child and its blocks
/// `PUT /v1/schools/{urn}/contacts`: the school's whole list of contacts.
public struct ContactsRequest: Codable, Sendable, Equatable {
    public var contacts: [SchoolContact]
    public var updatedBy: String?

    public init(contacts: [SchoolContact], updatedBy: String?) {
        self.contacts = contacts
        self.updatedBy = updatedBy
    }
}

/// A row of an imported sheet that was set aside, and why (kept as a dead letter).
public struct RejectedRow: Codable, Sendable, Equatable {
    public var row: Int
    public var reason: String
}

/// The answer to `POST /v1/contacts/import`: schools whose contacts were set, URNs not in the
/// register, rows rejected.
public struct ContactsImportAnswer: Codable, Sendable, Equatable {
    public var file: String
    public var schools: Int
    public var unknownURNs: [String]
    public var rejectedRows: [RejectedRow]
}

/// The answer to `POST /v1/la-contacts/import`.
public struct LAContactsImportAnswer: Codable, Sendable, Equatable {
    public var file: String
    public var localAuthorities: Int
    public var rejectedRows: [RejectedRow]
}

struct SchoolsAPI: Sendable {
    let flow: SchoolFlow
    let environment: ServiceEnvironment

    static let maximumBody = 128 * 1024 * 1024

    func register(on router: Router<BasicRequestContext>) {
        let api = router.guarded(by: environment.configuration.apiAuth)
        api.post("v1/register/import") { request, _ in try await importRegister(request) }
        api.get("v1/schools/:urn") { _, context in try await school(context.parameters.get("urn") ?? "") }
        api.put("v1/schools/:urn/contacts") { request, context in try await setContacts(request, urn: context.parameters.get("urn") ?? "") }
        api.post("v1/contacts/import") { request, _ in try await importContacts(request) }
        api.post("v1/la-contacts/import") { request, _ in try await importLAContacts(request) }
        api.get("v1/la-contacts") { _, _ in try await listLAContacts() }
        api.get("v1/requests") { request, _ in try await listRequests(request) }
        api.get("v1/requests/export") { request, _ in try await exportRequests(request) }
        api.post("v1/requests/import") { request, _ in try await importRequests(request) }
        api.get("v1/requests/held") { _, _ in try await heldAnswers() }
        api.post("v1/requests/:id/:verdict") { request, context in
            try await decideHeld(request, id: context.parameters.get("id") ?? "", verdict: context.parameters.get("verdict") ?? "")
        }
        api.get("v1/children/:childId/school") { _, context in try await childSchool(context.parameters.get("childId") ?? "") }
    }

    func body(_ request: Request) async -> Data? {
        guard let buffer = try? await request.body.collect(upTo: Self.maximumBody) else { return nil }
        return Data(buffer.readableBytesView)
    }

    /// JSON with the wire format's ISO 8601 dates.
    static func wire(_ status: HTTPResponse.Status, _ object: some Encodable) -> Response {
        let data = (try? WireFormat.data(object)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static let tooLarge = HTTPEndpoint.json(.contentTooLarge, APIError("body larger than \(maximumBody) bytes"))

    /// Keeps a refused file as a dead letter and answers 422.
    func refuse(_ data: Data, origin: String, name: String, errorClass: String, problem: String) async throws -> Response {
        let now = environment.clock.now()
        try await environment.write { db, outbox in
            try DeadLetterWriter.writeRejectedInput(
                db: db, service: .schoolResolution,
                origin: "\(origin):\(name):\(StableHash.hex128(String(decoding: data, as: UTF8.self)).prefix(12))",
                place: 0, key: name, value: Array(data), errorClass: errorClass, message: problem, now: now, outbox: outbox)
        }
        return HTTPEndpoint.json(.unprocessableContent, ["file": name, "error": problem])
    }

    func importRegister(_ request: Request) async throws -> Response {
        guard let data = await body(request) else { return Self.tooLarge }
        let name = request.uri.queryParameters.get("name") ?? "upload.csv"
        let file: RegisterFile
        do {
            file = try RegisterImporter.read(data)
        } catch {
            return try await refuse(data, origin: "register-import", name: name, errorClass: "register.unreadable", problem: error.description)
        }
        let now = environment.clock.now()
        let answer = try await environment.write { db, outbox in
            try RegisterDesk.importRegister(file, name: name, db: db, outbox: outbox, now: now)
        }
        environment.logger.info(
            "register import", metadata: ["file": .string(name), "published": "\(answer.published)", "unchanged": "\(answer.unchanged)"])
        return HTTPEndpoint.json(.accepted, answer)
    }

    struct SchoolAnswer: Codable {
        var school: RegisteredSchool
        var contacts: [SchoolContact]
        var source: String
        var updatedAt: String
    }

    func school(_ urn: String) async throws -> Response {
        let found = try await environment.store.pool.read { db -> SchoolAnswer? in
            guard let row = try SchoolRow.fetchOne(db, key: urn) else { return nil }
            return SchoolAnswer(
                school: row.school, contacts: try SchoolStore.contacts(db, urn: urn), source: row.source, updatedAt: Timestamp.format(row.updatedAt))
        }
        guard let found else { return HTTPEndpoint.json(.notFound, APIError("URN \(urn) is not in the register")) }
        return HTTPEndpoint.json(.ok, found)
    }

    func setContacts(_ request: Request, urn: String) async throws -> Response {
        guard let data = await body(request) else { return Self.tooLarge }
        let parsed: ContactsRequest
        do {
            parsed = try JSONDecoder().decode(ContactsRequest.self, from: data)
        } catch {
            return HTTPEndpoint.json(
                .badRequest,
                APIError("body must be {\"contacts\": [{\"role\", \"name\", \"email\", \"phone\"}], \"updatedBy\"}: \(WireFormat.describe(error))"))
        }
        let contacts = parsed.contacts.map(Self.trimmed)
        let problems = RegisterDesk.problems(contacts)
        let now = environment.clock.now()
        guard problems.isEmpty else {
            try await environment.write { db, outbox in
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .schoolResolution, origin: "http:/v1/schools/\(urn)/contacts",
                    place: Int64(now.timeIntervalSince1970 * 1_000_000), key: urn, value: Array(data),
                    errorClass: "contacts.validation", message: problems.map(\.description).joined(separator: "; "), now: now, outbox: outbox)
            }
            return HTTPEndpoint.json(.unprocessableContent, APIFieldErrors(problems))
        }
        let known = try await environment.write { db, outbox in
            try RegisterDesk.setContacts(
                urn: urn, contacts: contacts, by: parsed.updatedBy, source: "contacts:http", db: db, outbox: outbox, now: now)
        }
        guard known else { return HTTPEndpoint.json(.notFound, APIError("URN \(urn) is not in the register; import the register first")) }
        return HTTPEndpoint.json(.accepted, ["urn": urn, "contacts": "\(contacts.count)"])
    }

    static func trimmed(_ c: SchoolContact) -> SchoolContact {
        func t(_ s: String?) -> String? { s?.trimmingCharacters(in: .whitespaces).nilIfEmpty }
        return SchoolContact(role: c.role.trimmingCharacters(in: .whitespaces), name: t(c.name), email: t(c.email), phone: t(c.phone))
    }

    func importContacts(_ request: Request) async throws -> Response {
        guard let data = await body(request) else { return Self.tooLarge }
        let name = request.uri.queryParameters.get("name") ?? "contacts.csv"
        let sheet: (byURN: [String: [SchoolContact]], rejected: [(row: Int, reason: String)])
        do {
            sheet = try RegisterDesk.contactsSheet(data)
        } catch {
            return try await refuse(data, origin: "contacts-import", name: name, errorClass: "contacts.unreadable", problem: "\(error)")
        }
        let now = environment.clock.now()
        let origin = "contacts-import:\(name):\(StableHash.hex128(String(decoding: data, as: UTF8.self)).prefix(12))"
        let answer = try await environment.write { db, outbox -> ContactsImportAnswer in
            var unknown: [String] = []
            var done = 0
            for (urn, contacts) in sheet.byURN.sorted(by: { $0.key < $1.key }) {
                if try RegisterDesk.setContacts(urn: urn, contacts: contacts, by: nil, source: "contacts:\(name)", db: db, outbox: outbox, now: now) {
                    done += 1
                } else {
                    unknown.append(urn)
                }
            }
            for bad in sheet.rejected {
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .schoolResolution, origin: origin, place: Int64(bad.row), key: nil,
                    value: Array("row \(bad.row)".utf8), errorClass: "contacts.row",
                    message: "row \(bad.row): \(bad.reason)", now: now, outbox: outbox)
            }
            return ContactsImportAnswer(
                file: name, schools: done, unknownURNs: unknown, rejectedRows: sheet.rejected.map { .init(row: $0.row, reason: $0.reason) })
        }
        return HTTPEndpoint.json(answer.rejectedRows.isEmpty && answer.unknownURNs.isEmpty ? .accepted : .unprocessableContent, answer)
    }

    func importLAContacts(_ request: Request) async throws -> Response {
        guard let data = await body(request) else { return Self.tooLarge }
        let name = request.uri.queryParameters.get("name") ?? "la-contacts.csv"
        let sheet: (byLA: [String: [SchoolContact]], rejected: [(row: Int, reason: String)])
        do {
            sheet = try RegisterDesk.laContactsSheet(data)
        } catch {
            return try await refuse(data, origin: "la-contacts-import", name: name, errorClass: "la-contacts.unreadable", problem: "\(error)")
        }
        let now = environment.clock.now()
        let origin = "la-contacts-import:\(name):\(StableHash.hex128(String(decoding: data, as: UTF8.self)).prefix(12))"
        let answer = try await environment.write { db, outbox -> LAContactsImportAnswer in
            for (code, contacts) in sheet.byLA.sorted(by: { $0.key < $1.key }) {
                try RegisterDesk.setLAContacts(laCode: code, contacts: contacts, source: "la-contacts:\(name)", outbox: outbox, now: now)
            }
            for bad in sheet.rejected {
                try DeadLetterWriter.writeRejectedInput(
                    db: db, service: .schoolResolution, origin: origin, place: Int64(bad.row), key: nil,
                    value: Array("row \(bad.row)".utf8), errorClass: "la-contacts.row",
                    message: "row \(bad.row): \(bad.reason)", now: now, outbox: outbox)
            }
            return LAContactsImportAnswer(
                file: name, localAuthorities: sheet.byLA.count, rejectedRows: sheet.rejected.map { .init(row: $0.row, reason: $0.reason) })
        }
        return HTTPEndpoint.json(answer.rejectedRows.isEmpty ? .accepted : .unprocessableContent, answer)
    }

    func listLAContacts() async throws -> Response {
        let list = try await environment.store.pool.read { db -> LAContactsList in
            let rows = try LAContactRow.order(Column("laCode"), Column("position")).fetchAll(db)
            let names = [String: String](
                try Row.fetchAll(db, sql: "SELECT localAuthorityCode, max(localAuthorityName) FROM school GROUP BY localAuthorityCode")
                    .map { ($0[0] as String, $0[1] as String) }, uniquingKeysWith: { a, _ in a })
            let grouped = Dictionary(grouping: rows, by: \.laCode)
            return LAContactsList(
                localAuthorities: grouped.keys.sorted().map { code in
                    LAContactsList.Entry(
                        laCode: code, localAuthority: names[code], contacts: grouped[code]!.map(\.contact),
                        updatedAt: grouped[code]!.map(\.updatedAt).max()!, source: grouped[code]!.max { $0.updatedAt < $1.updatedAt }?.source)
                })
        }
        return Self.wire(.ok, list)
    }

    func lpa(_ request: Request) -> String? {
        request.uri.queryParameters.get("lpa")?.trimmingCharacters(in: .whitespaces).nilIfEmpty
    }

    /// `?force=05` or `?force=43,05`: only those forces' requests (a force's own console); nil: all.
    func forces(_ request: Request) -> Set<String>? {
        request.uri.queryParameters.get("force").map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
    }

    func listRequests(_ request: Request) async throws -> Response {
        let lpa = lpa(request) ?? "all"
        let forces = forces(request)
        let rows = try await environment.store.pool.read { db in try CSCRequests.open(db, lpa: lpa) }.filter {
            forces?.contains($0.forceCode) ?? true
        }
        let header = CSCRequests.header
        let list = CSCRequests.rows(rows).map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
        return HTTPEndpoint.json(.ok, CSCOpenRequests(requests: list))
    }

    func exportRequests(_ request: Request) async throws -> Response {
        guard let lpa = lpa(request) else {
            return HTTPEndpoint.json(.badRequest, APIError("lpa is required: ?lpa=NAME (the incident's local policing area, or all)"))
        }
        let format = request.uri.queryParameters.get("format")?.lowercased() ?? "xlsx"
        guard ["xlsx", "csv", "json"].contains(format) else { return HTTPEndpoint.json(.badRequest, APIError("format must be xlsx, csv or json")) }
        let now = environment.clock.now()
        let forces = forces(request)
        let requests = try await environment.write { db, _ in
            let rows = try CSCRequests.open(db, lpa: lpa).filter { forces?.contains($0.forceCode) ?? true }
            try CSCRequests.markExported(db, ids: rows.map(\.requestId), now: now)
            return rows
        }
        let rows = CSCRequests.rows(requests)
        let data: Data
        let type: String
        if format == "json" {
            environment.logger.info("requests exported", metadata: ["lpa": .string(lpa), "requests": "\(rows.count)", "format": "json"])
            return HTTPEndpoint.json(.ok, CSCRequestRows(header: CSCRequests.header, rows: rows, day: CalendarDate(now)))
        } else if format == "csv" {
            data = SheetWriter.csv(header: CSCRequests.header, rows: rows)
            type = "text/csv; charset=utf-8"
        } else {
            do {
                data = try SheetWriter.xlsx(sheetName: "Requests \(lpa)", header: CSCRequests.header, rows: rows)
            } catch {
                return HTTPEndpoint.json(.internalServerError, APIError(error.description))
            }
            type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }
        environment.logger.info("requests exported", metadata: ["lpa": .string(lpa), "requests": "\(rows.count)", "format": .string(format)])
        return Response(
            status: .ok, headers: [.contentType: type, .init("X-Encompass-Requests")!: "\(rows.count)"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func importRequests(_ request: Request) async throws -> Response {
        guard let data = await body(request) else { return Self.tooLarge }
        let name = request.uri.queryParameters.get("name") ?? "returned"
        var scope = CSCRequests.ImportScope.all
        if let only = request.uri.queryParameters.get("only") {
            guard only == "held" else {
                return HTTPEndpoint.json(.badRequest, APIError("only must be held (apply only the rows whose request this instance holds)"))
            }
            scope = .held
        }
        if let listed = request.uri.queryParameters.get("unheld") {
            let numbers = listed.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard scope == .all, !numbers.isEmpty, numbers.allSatisfy({ $0 != nil }) else {
                return HTTPEndpoint.json(.badRequest, APIError("unheld must list row numbers (unheld=2,5), without only=held"))
            }
            scope = .unheld(Set(numbers.compactMap { $0 }))
        }
        let now = environment.clock.now()
        let flow = self.flow
        let rows = scope
        let only = forces(request)
        do {
            let answer = try await environment.write { db, outbox in
                try CSCRequests.importReturned(data, name: name, flow: flow, db: db, outbox: outbox, now: now, scope: rows, forces: only)
            }
            let status: HTTPResponse.Status = answer.rejected > 0 && answer.rejected == answer.answers.count ? .unprocessableContent : .accepted
            return HTTPEndpoint.json(status, answer)
        } catch let error as SheetError {
            return try await refuse(data, origin: "requests-import", name: name, errorClass: "requests.unreadable", problem: error.description)
        }
    }

    func heldAnswers() async throws -> Response {
        let rows = try await environment.store.pool.read { db in try CSCRequests.held(db) }
        return Self.wire(.ok, HeldAnswers(held: rows.map(HeldAnswer.init)))
    }

    func decideHeld(_ request: Request, id: String, verdict: String) async throws -> Response {
        guard let verdict = CSCRequests.ReviewVerdict(rawValue: verdict) else {
            return HTTPEndpoint.json(.notFound, APIError("POST /v1/requests/{id}/accept or /decline"))
        }
        guard let data = await body(request) else { return Self.tooLarge }
        let decision: HeldDecision
        do {
            decision = try JSONDecoder().decode(HeldDecision.self, from: data)
        } catch {
            return HTTPEndpoint.json(.badRequest, APIError("body must be {\"reviewer\": \"NAME\", \"note\": \"…\"}: \(WireFormat.describe(error))"))
        }
        guard let reviewer = decision.reviewer.trimmingCharacters(in: .whitespaces).nilIfEmpty else {
            return HTTPEndpoint.json(.unprocessableContent, APIError("reviewer is required: who decided"))
        }
        let now = environment.clock.now()
        let flow = self.flow
        let answer = try await environment.write { db, outbox in
            try CSCRequests.decide(id, verdict: verdict, reviewer: reviewer, note: decision.note, flow: flow, db: db, outbox: outbox, now: now)
        }
        guard let answer else {
            return HTTPEndpoint.json(.notFound, APIError("no answer held for review under request \(id); list them with GET /v1/requests/held"))
        }
        environment.logger.info(
            "held CSC answer decided", metadata: ["request": .string(id), "verdict": .string(verdict.rawValue), "outcome": .string(answer.outcome)])
        return Self.wire(answer.outcome == "rejected" ? .unprocessableContent : .ok, answer)
    }

    struct ChildAnswer: Codable {
        var childId: String
        var school: ChildSchoolRow?
        var blocked: [ChildSchoolBlockRow]
    }

    func childSchool(_ childId: String) async throws -> Response {
        let answer = try await environment.store.pool.read { db in
            ChildAnswer(
                childId: childId, school: try ChildSchoolRow.fetchOne(db, key: childId),
                blocked: try ChildSchoolBlockRow.filter(Column("childId") == childId).fetchAll(db))
        }
        return Self.wire(.ok, answer)
    }
}
