import ArgumentParser
import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
import Spreadsheets
#endif

/// The dispatch service's MASH commands: audit listing, school passwords, telephone tasks, resends.
struct NotificationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notifications",
        abstract: "Notices sent to schools: audit trail, follow-ups, school passwords, telephone tasks.",
        subcommands: [List.self, SetPassword.self, Held.self, Export.self, Tasks.self, TaskDone.self, Resend.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the notices with events on a day (London), with their audit trail; flagged ones need a call.",
            discussion: "Exit status: 0, or 3 when a listed notice is flagged for follow-up (unacknowledged by 10:00, uncertain or failed delivery).")

        @Option(help: "Day as YYYY-MM-DD (default: today at dispatch).")
        var date: String?

        @Flag(help: "Print dispatch's JSON answer.")
        var json = false

        @OptionGroup var dispatch: DispatchOptions

        func run() async throws {
            var query: [String: String] = [:]
            if let date { query["date"] = date }
            let parts = try await dispatch.gather(NotificationList.self, "/v1/notifications", query: query)
            let answer = NotificationList.merged(parts, date: parts.first?.date ?? date ?? "today")
            if json {
                print(String(decoding: try WireFormat.data(answer), as: UTF8.self))
            } else {
                print("\(answer.date): \(answer.notifications.count) notices, \(answer.flagged) flagged for follow-up")
                for notice in answer.notifications {
                    let flag = notice.flagged ? "  FLAGGED: \(notice.flagReason ?? "")" : ""
                    print(
                        "\(notice.noticeId)  force \(notice.forceCode)  occurrence \(notice.occurrenceNumber)  school \(notice.schoolURN ?? "?") \(notice.schoolName ?? "")  [\(notice.channel ?? "-")] \(notice.state)\(flag)"
                    )
                    for event in notice.events {
                        print("    \(Timestamp.format(event.at))  \(event.kind)  \(event.detail ?? "")")
                    }
                }
            }
            if answer.flagged > 0 { throw ExitCode(3) }
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract:
                "Set notice-page passwords: one school's from standard input, or many from a CSV or XLSX file (stored by dispatch as salted PBKDF2 hashes).",
            discussion: """
                One: reads the password from the first line of standard input, so it never appears in the process list or shell history: `printf '%s\\n' "$PW" | encompass notifications set-password --urn 110001`. Use ESM<force> (e.g. ESM43) for the force's Education Safeguarding Manager (holiday escalations), LA<code> (e.g. LA872) for a local authority, EY and 6 digits for an early years setting.
                Many: `--file passwords.csv` (or .xlsx, first sheet) with the columns `urn` (a URN, an EY reference, LA<code> or ESM<force>; also named `reference` or `account`) and `password`. Each row is checked on its own: the good rows are set, each bad one is reported by its row number in the file with the reason. Passwords are never printed. Notice mail held for want of a password goes out once its school's is set.
                Exit status: 0 when every row was set, 1 when some rows were refused, 2 when the file could not be read or dispatch could not be reached.
                """)

        @Option(help: "The school's URN, EY reference, LA<code> or ESM<force>; the password is read from standard input.")
        var urn: String?

        @Option(help: "A CSV or XLSX file of urn,password rows.")
        var file: String?

        @Option(help: "Who is setting it (for the audit).")
        var by: String = ProcessInfo.processInfo.environment["USER"] ?? "cli"

        @OptionGroup var dispatch: DispatchOptions

        func validate() throws {
            guard (urn == nil) != (file == nil) else { throw ValidationError("give either --urn (password on standard input) or --file") }
        }

        func run() async throws {
            if let file { return try await runFile(file) }
            guard let urn else { return }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("no password on standard input")
            }
            let (status, raw) = try await dispatch.client().send(
                "PUT", "/v1/schools/\(urn)/password", json: SchoolPasswordRequest(password: line, setBy: by))
            guard status == 200 else {
                FileHandle.standardError.write(Data("refused (\(status)): \(String(decoding: raw, as: UTF8.self))\n".utf8))
                throw ExitCode(1)
            }
            let answer = try DispatchClient.decode(SchoolPasswordAnswer.self, status: status, raw)
            print("password set for \(answer.account) at \(answer.setAt)")
        }

        /// The columns a passwords file may name its account column by (after the usual header
        /// normalisation: lower case, spaces and hyphens as underscores).
        static let accountColumns = ["urn", "reference", "account", "ey_reference", "urn_or_ey_reference"]

        func runFile(_ path: String) async throws {
            let rows: [SchoolPasswordsRequest.Row]
            var refused: [(row: Int, message: String)] = []
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                let sheet = try SpreadsheetReader.read(data, maximumRows: 20_000)
                guard let accountColumn = Self.accountColumns.first(where: sheet.headers.contains) else {
                    throw SheetError("no account column: name one of \(Self.accountColumns.joined(separator: ", "))")
                }
                guard sheet.headers.contains("password") else { throw SheetError("no password column") }
                var good: [SchoolPasswordsRequest.Row] = []
                for row in sheet.rows {
                    // A row's problem never quotes its cells, so no password reaches the report.
                    if let problem = row.problem {
                        refused.append((row.number, problem))
                        continue
                    }
                    let account = (row.cells[accountColumn] ?? "").trimmingCharacters(in: .whitespaces)
                    let password = row.cells["password"] ?? ""
                    if account.isEmpty {
                        refused.append((row.number, "\(accountColumn): is empty"))
                        continue
                    }
                    if password.isEmpty {
                        refused.append((row.number, "password: is empty"))
                        continue
                    }
                    good.append(SchoolPasswordsRequest.Row(row: row.number, account: account, password: password))
                }
                rows = good
            } catch let error as SheetError {
                FileHandle.standardError.write(Data("\(path): \(error.description)\n".utf8))
                throw ExitCode(2)
            } catch {
                FileHandle.standardError.write(Data("\(path): cannot be read (\(error.localizedDescription))\n".utf8))
                throw ExitCode(2)
            }
            var set: [(row: Int, account: String)] = []
            if !rows.isEmpty {
                let (status, raw) = try await dispatch.client().send(
                    "PUT", "/v1/schools/passwords", json: SchoolPasswordsRequest(rows: rows, setBy: by))
                guard status == 200 || status == 422, let answer = try? WireFormat.decoder().decode(SchoolPasswordsAnswer.self, from: raw) else {
                    FileHandle.standardError.write(Data("refused (\(status)): \(String(decoding: raw, as: UTF8.self))\n".utf8))
                    throw ExitCode(2)
                }
                set += answer.set.map { ($0.row, $0.account) }
                refused += answer.refused.map { ($0.row, "\($0.field): \($0.message)") }
            }
            refused.sort { $0.row < $1.row }
            print("\(path): \(set.count) password\(set.count == 1 ? "" : "s") set, \(refused.count) row\(refused.count == 1 ? "" : "s") refused")
            for item in set.sorted(by: { $0.row < $1.row }) { print("  row \(item.row): \(item.account) set") }
            for item in refused { print("  row \(item.row): REFUSED \(item.message)") }
            if !refused.isEmpty { throw ExitCode(1) }
        }
    }

    struct Held: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List notice mail held because its school (or LA) has no notice password yet; setting the password sends it.",
            discussion: "Exit status: 0 when nothing is held, 3 when something is.")

        @Flag(help: "Print dispatch's JSON answer.")
        var json = false

        @OptionGroup var dispatch: DispatchOptions

        func run() async throws {
            let (status, raw) = try await dispatch.client().send("GET", "/v1/held")
            let answer = try DispatchClient.decode(HeldNoticeListing.self, status: status, raw)
            if json {
                print(String(decoding: raw, as: UTF8.self))
            } else {
                let held = answer.held
                print(
                    "\(held.count) notice\(held.count == 1 ? "" : "s") held for want of a password; accounts without one: \(answer.accountsWithoutPassword.joined(separator: ", "))"
                )
                for item in held {
                    print(
                        "\(item.noticeId)  \(item.account)  \(item.schoolName)  held since \(Timestamp.format(item.heldSince)) (\(item.ageSeconds / 60) min)"
                    )
                }
            }
            if !answer.held.isEmpty { throw ExitCode(3) }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Write the Navigator's audit spreadsheet: each notice released in a date range, its school, contacts, and sent, viewed and acknowledged times.",
            discussion:
                "FILE ending .xlsx or .csv. Values a spreadsheet would run as formulas are neutralised with a leading apostrophe. The MASH console's Notices page offers the same download."
        )

        @Option(help: "First release day, YYYY-MM-DD (London).")
        var from: String

        @Option(help: "Last release day, YYYY-MM-DD (London), inclusive.")
        var to: String

        @Option(help: "Only this local authority (3-digit DfE code).")
        var la: String?

        @Argument(help: "The file to write: .xlsx or .csv.")
        var file: String

        @OptionGroup var dispatch: DispatchOptions

        func run() async throws {
            let format = (file as NSString).pathExtension.lowercased()
            guard ["xlsx", "csv"].contains(format) else { throw ValidationError("\(file): name an .xlsx or .csv file") }
            var query = ["from": from, "to": to, "format": format]
            if let la { query["la"] = la }
            let (status, data, _) = try await dispatch.client().api.send("GET", "/v1/notifications/export", query: query)
            guard status == 200 else {
                FileHandle.standardError.write(Data("refused (\(status)): \(String(decoding: data, as: UTF8.self))\n".utf8))
                throw ExitCode(status == 400 ? 1 : 2)
            }
            do { try data.write(to: URL(fileURLWithPath: file)) } catch {
                FileHandle.standardError.write(Data("cannot write \(file): \(error.localizedDescription)\n".utf8))
                throw ExitCode(2)
            }
            print("\(file): notices released \(from) to \(to)\(la.map { " in LA \($0)" } ?? "") (\(data.count) bytes)")
        }
    }

    struct Tasks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "telephone-tasks", abstract: "List open telephone tasks (settings to call instead of email).")

        @Flag(help: "Include done tasks.")
        var all = false

        @Flag(help: "Print dispatch's JSON answer.")
        var json = false

        @OptionGroup var dispatch: DispatchOptions

        func run() async throws {
            // Each task lives on the instance that took its notice: the instances' lists together.
            let parts = try await dispatch.gather(TelephoneTaskListing.self, "/v1/telephone-tasks", query: all ? ["all": "true"] : [:])
            var seen = Set<String>()
            let answer = TelephoneTaskListing(tasks: parts.flatMap(\.tasks).filter { seen.insert($0.id).inserted })
            if json {
                print(String(decoding: try WireFormat.data(answer), as: UTF8.self))
                return
            }
            print("\(answer.tasks.count) telephone tasks")
            for task in answer.tasks {
                let phones = task.contacts.compactMap { c in c.phone.map { "\(c.role): \($0)" } }
                print(
                    "\(task.id)  \(task.schoolURN) \(task.schoolName)  \(phones.joined(separator: ", "))  \(task.doneAt.map { "done \(Timestamp.format($0))" } ?? "OPEN")"
                )
                for line in task.notice.lines {
                    print("    \(line.label): \(line.value)")
                }
            }
        }
    }

    struct TaskDone: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "task-done", abstract: "Record that a telephone task was done.")

        @Argument(help: "The task id (from telephone-tasks).")
        var id: String

        @Option(help: "Who made the call.")
        var by: String

        @Option(help: "A short note, e.g. whom you spoke to.")
        var note: String?

        @OptionGroup var dispatch: DispatchOptions

        func run() async throws {
            let (status, raw) = try await dispatch.owner("POST", "/v1/telephone-tasks/\(id)/done", json: TelephoneTaskDoneRequest(by: by, note: note))
            guard status == 200 else {
                FileHandle.standardError.write(Data("refused (\(status)): \(String(decoding: raw, as: UTF8.self))\n".utf8))
                throw ExitCode(1)
            }
            print("task \(id) done by \(by)")
        }
    }

    struct Resend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a notice's email again after uncertain or failed delivery (check with the school first).")

        @Argument(help: "The notice id.")
        var noticeId: String

        @Option(help: "Who decided to resend (for the audit).")
        var by: String

        @OptionGroup var dispatch: DispatchOptions

        func run() async throws {
            let (status, raw) = try await dispatch.owner("POST", "/v1/notifications/\(noticeId)/resend", json: ResendRequest(by: by))
            guard status == 202 else {
                FileHandle.standardError.write(Data("refused (\(status)): \(String(decoding: raw, as: UTF8.self))\n".utf8))
                throw ExitCode(1)
            }
            print("notice \(noticeId) queued again")
        }
    }
}

/// Where dispatch is and how to sign in.
struct DispatchOptions: ParsableArguments {
    @Option(
        help:
            "Dispatch's base URL; repeat it (or separate with commas) for every instance of a scaled group (default: $ENCOMPASS_DISPATCH_URLS, else $ENCOMPASS_DISPATCH_URL)."
    )
    var url: [String] = ServiceClient.instanceBaseURLs(.dispatch)

    @Option(help: "API token (default: $ENCOMPASS_API_TOKEN).")
    var token: String?

    /// The first instance: for state every instance holds (school passwords are replicated).
    func client() throws -> DispatchClient { try clients()[0] }

    func clients() throws -> [DispatchClient] {
        let urls = ServiceClient.splitURLs(url)
        guard !urls.isEmpty else { throw ValidationError("--url is empty: give dispatch's base URL") }
        let token = try APIClient.token(token)
        return urls.map { DispatchClient(api: APIClient(service: .dispatch, baseURL: $0, token: token)) }
    }

    /// A listing of every instance, each decoded as `Answer`; exits 2 when one refuses.
    func gather<Answer: Decodable>(_ type: Answer.Type, _ path: String, query: [String: String]) async throws -> [Answer] {
        var parts: [Answer] = []
        for client in try clients() {
            let (status, raw) = try await client.send("GET", path, query: query)
            guard status == 200 else {
                FileHandle.standardError.write(
                    Data("\(client.api.client.baseURL) refused (\(status)): \(String(decoding: raw, as: UTF8.self))\n".utf8))
                throw ExitCode(2)
            }
            parts.append(try DispatchClient.decode(Answer.self, status: status, raw))
        }
        return parts
    }

    /// An action on a record one instance holds: asked of each instance in turn until one
    /// answers other than 404.
    func owner(_ method: String, _ path: String, json body: some Encodable) async throws -> (Int, Data) {
        var last: (Int, Data)?
        for client in try clients() {
            let answer = try await client.send(method, path, json: body)
            if answer.0 != 404 { return answer }
            last = answer
        }
        return last!
    }
}

struct DispatchClient {
    let api: APIClient

    /// Status and raw body; exits 2 when dispatch cannot be reached or refuses the token.
    func send(_ method: String, _ path: String, query: [String: String] = [:], json body: (any Encodable)? = nil) async throws -> (Int, Data) {
        let (status, raw, _) = try await api.send(method, path, query: query, body: try body.map { try WireFormat.data($0) })
        if status == 401 || status == 503 {
            let message = (try? WireFormat.decoder().decode(APIError.self, from: raw))?.error ?? String(decoding: raw, as: UTF8.self)
            FileHandle.standardError.write(Data("dispatch refused (\(status)): \(message)\n".utf8))
            throw ExitCode(2)
        }
        return (status, raw)
    }

    /// A 2xx answer as `Answer`; exits 2, saying what came instead, when it is not one.
    static func decode<Answer: Decodable>(_ type: Answer.Type, status: Int, _ raw: Data) throws -> Answer {
        do { return try WireFormat.decoder().decode(Answer.self, from: raw) } catch {
            FileHandle.standardError.write(
                Data(
                    "dispatch answered \(status) with an unexpected body (\(WireFormat.describe(error))): \(String(decoding: raw.prefix(500), as: UTF8.self))\n"
                        .utf8))
            throw ExitCode(2)
        }
    }
}
