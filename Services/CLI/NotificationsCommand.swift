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
            var answer = try await dispatch.gather("GET", "/v1/notifications", query: query, list: "notifications", id: "noticeId")
            answer["flagged"] = (answer["notifications"] as? [[String: Any]] ?? []).filter { ($0["flagged"] as? Bool) == true }.count
            if json {
                print(String(decoding: try JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys]), as: UTF8.self))
            } else {
                let notices = answer["notifications"] as? [[String: Any]] ?? []
                let flagged = notices.filter { ($0["flagged"] as? Bool) == true }.count
                print("\(answer["date"] as? String ?? date ?? "today"): \(notices.count) notices, \(flagged) flagged for follow-up")
                for notice in notices {
                    let flag = (notice["flagged"] as? Bool) == true ? "  FLAGGED: \(notice["flagReason"] as? String ?? "")" : ""
                    print("\(notice["noticeId"] as? String ?? "?")  force \(notice["forceCode"] as? String ?? "?")  occurrence \(notice["occurrenceNumber"] as? String ?? "?")  school \(notice["schoolURN"] as? String ?? "?") \(notice["schoolName"] as? String ?? "")  [\(notice["channel"] as? String ?? "-")] \(notice["state"] as? String ?? "?")\(flag)")
                    for event in notice["events"] as? [[String: Any]] ?? [] {
                        print("    \(event["at"] as? String ?? "")  \(event["kind"] as? String ?? "")  \(event["detail"] as? String ?? "")")
                    }
                }
            }
            if (answer["notifications"] as? [[String: Any]] ?? []).contains(where: { ($0["flagged"] as? Bool) == true }) { throw ExitCode(3) }
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Set notice-page passwords: one school's from standard input, or many from a CSV or XLSX file (stored by dispatch as salted PBKDF2 hashes).",
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
            let body = try JSONSerialization.data(withJSONObject: ["password": line, "setBy": by])
            let (status, answer, raw) = try await dispatch.client().send("PUT", "/v1/schools/\(urn)/password", body: body)
            guard status == 200 else {
                FileHandle.standardError.write(Data("refused (\(status)): \(String(decoding: raw, as: UTF8.self))\n".utf8))
                throw ExitCode(1)
            }
            print("password set for \(answer["account"] as? String ?? urn) at \(answer["setAt"] as? String ?? "")")
        }

        /// The columns a passwords file may name its account column by (after the usual header
        /// normalisation: lower case, spaces and hyphens as underscores).
        static let accountColumns = ["urn", "reference", "account", "ey_reference", "urn_or_ey_reference"]

        func runFile(_ path: String) async throws {
            let rows: [[String: Any]]
            var refused: [(row: Int, message: String)] = []
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                let sheet = try SpreadsheetReader.read(data, maximumRows: 20_000)
                guard let accountColumn = Self.accountColumns.first(where: sheet.headers.contains) else {
                    throw SheetError("no account column: name one of \(Self.accountColumns.joined(separator: ", "))")
                }
                guard sheet.headers.contains("password") else { throw SheetError("no password column") }
                var good: [[String: Any]] = []
                for row in sheet.rows {
                    // A row's problem never quotes its cells, so no password reaches the report.
                    if let problem = row.problem { refused.append((row.number, problem)); continue }
                    let account = (row.cells[accountColumn] ?? "").trimmingCharacters(in: .whitespaces)
                    let password = row.cells["password"] ?? ""
                    if account.isEmpty { refused.append((row.number, "\(accountColumn): is empty")); continue }
                    if password.isEmpty { refused.append((row.number, "password: is empty")); continue }
                    good.append(["row": row.number, "account": account, "password": password])
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
                let body = try JSONSerialization.data(withJSONObject: ["rows": rows, "setBy": by])
                let (status, answer, raw) = try await dispatch.client().send("PUT", "/v1/schools/passwords", body: body)
                guard status == 200 || status == 422, answer["set"] != nil || answer["refused"] != nil else {
                    FileHandle.standardError.write(Data("refused (\(status)): \(String(decoding: raw, as: UTF8.self))\n".utf8))
                    throw ExitCode(2)
                }
                for item in answer["set"] as? [[String: Any]] ?? [] {
                    set.append((item["row"] as? Int ?? 0, item["account"] as? String ?? ""))
                }
                for item in answer["refused"] as? [[String: Any]] ?? [] {
                    refused.append((item["row"] as? Int ?? 0, "\(item["field"] as? String ?? ""): \(item["message"] as? String ?? "")"))
                }
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
            let (_, answer, raw) = try await dispatch.client().send("GET", "/v1/held")
            let held = answer["held"] as? [[String: Any]] ?? []
            if json {
                print(String(decoding: raw, as: UTF8.self))
            } else {
                print("\(held.count) notice\(held.count == 1 ? "" : "s") held for want of a password; accounts without one: \((answer["accountsWithoutPassword"] as? [String] ?? []).joined(separator: ", "))")
                for item in held {
                    print("\(item["noticeId"] as? String ?? "?")  \(item["account"] as? String ?? "")  \(item["schoolName"] as? String ?? "")  held since \(item["heldSince"] as? String ?? "") (\((item["ageSeconds"] as? Int ?? 0) / 60) min)")
                }
            }
            if !held.isEmpty { throw ExitCode(3) }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the Navigator's audit spreadsheet: each notice released in a date range, its school, contacts, and sent, viewed and acknowledged times.",
            discussion: "FILE ending .xlsx or .csv. Values a spreadsheet would run as formulas are neutralised with a leading apostrophe. The MASH console's Notices page offers the same download.")

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
        static let configuration = CommandConfiguration(commandName: "telephone-tasks", abstract: "List open telephone tasks (settings to call instead of email).")

        @Flag(help: "Include done tasks.")
        var all = false

        @Flag(help: "Print dispatch's JSON answer.")
        var json = false

        @OptionGroup var dispatch: DispatchOptions

        func run() async throws {
            let answer = try await dispatch.gather("GET", "/v1/telephone-tasks", query: all ? ["all": "true"] : [:], list: "tasks", id: "id")
            if json { print(String(decoding: try JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys]), as: UTF8.self)); return }
            let tasks = answer["tasks"] as? [[String: Any]] ?? []
            print("\(tasks.count) telephone tasks")
            for task in tasks {
                let phones = (task["contacts"] as? [[String: Any]] ?? []).compactMap { c in (c["phone"] as? String).map { "\(c["role"] as? String ?? ""): \($0)" } }
                print("\(task["id"] as? String ?? "?")  \(task["schoolURN"] as? String ?? "") \(task["schoolName"] as? String ?? "")  \(phones.joined(separator: ", "))  \(task["doneAt"].map { "done \($0)" } ?? "OPEN")")
                for line in (task["notice"] as? [String: Any])?["lines"] as? [[String: Any]] ?? [] {
                    print("    \(line["label"] as? String ?? ""): \(line["value"] as? String ?? "")")
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
            var object: [String: Any] = ["by": by]
            if let note { object["note"] = note }
            let (status, _, raw) = try await dispatch.owner("POST", "/v1/telephone-tasks/\(id)/done", body: try JSONSerialization.data(withJSONObject: object))
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
            let (status, _, raw) = try await dispatch.owner("POST", "/v1/notifications/\(noticeId)/resend",
                                                                    body: try JSONSerialization.data(withJSONObject: ["by": by]))
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
    @Option(help: "Dispatch's base URL; repeat it (or separate with commas) for every instance of a scaled group (default: $ENCOMPASS_DISPATCH_URLS, else $ENCOMPASS_DISPATCH_URL).")
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

    /// A listing gathered from every instance. Telephone tasks live on the instance that took the
    /// notice; every instance lists every notice (the audit is replicated) but only the one that
    /// took it flags it for follow-up. Items are merged by `id`: of one listed by several
    /// instances, the one with the most events (the owner's, with its flag) is kept.
    func gather(_ method: String, _ path: String, query: [String: String], list: String, id: String) async throws -> [String: Any] {
        var merged: [String: Any] = [:]
        var items: [String: [String: Any]] = [:]
        var order: [String] = []
        for client in try clients() {
            let (status, answer, raw) = try await client.send(method, path, query: query)
            guard status == 200 else {
                FileHandle.standardError.write(Data("\(client.api.client.baseURL) refused (\(status)): \(String(decoding: raw, as: UTF8.self))\n".utf8))
                throw ExitCode(2)
            }
            for (key, value) in answer where key != list && merged[key] == nil { merged[key] = value }
            for item in answer[list] as? [[String: Any]] ?? [] {
                guard let key = item[id] as? String else { continue }
                if let held = items[key] {
                    let events = { (x: [String: Any]) in (x["events"] as? [Any])?.count ?? 0 }
                    if events(item) > events(held) { items[key] = item }
                } else {
                    items[key] = item
                    order.append(key)
                }
            }
        }
        merged[list] = order.compactMap { items[$0] }
        return merged
    }

    /// An action on a record one instance holds: asked of each instance in turn until one
    /// answers other than 404.
    func owner(_ method: String, _ path: String, body: Data?) async throws -> (Int, [String: Any], Data) {
        var last: (Int, [String: Any], Data)?
        for client in try clients() {
            let answer = try await client.send(method, path, body: body)
            if answer.0 != 404 { return answer }
            last = answer
        }
        return last!
    }
}

struct DispatchClient {
    let api: APIClient

    /// Status, JSON object and raw body; exits 2 when dispatch cannot be reached or answers no JSON.
    func send(_ method: String, _ path: String, query: [String: String] = [:], body: Data? = nil) async throws -> (Int, [String: Any], Data) {
        let (status, raw, _) = try await api.send(method, path, query: query, body: body)
        guard let answer = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
            FileHandle.standardError.write(Data("dispatch answered \(status): \(String(decoding: raw, as: UTF8.self))\n".utf8))
            throw ExitCode(2)
        }
        if status == 401 || status == 503 {
            FileHandle.standardError.write(Data("dispatch refused (\(status)): \(answer["error"] as? String ?? "")\n".utf8))
            throw ExitCode(2)
        }
        return (status, answer, raw)
    }
}
