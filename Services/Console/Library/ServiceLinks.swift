import EncompassModels
import Foundation
import ServiceRuntime
import Spreadsheets
import WebSupport

/// What a page got from a service: its answer, or why there is none.
public enum Fetched<Value: Sendable>: Sendable {
    case ok(Value)
    /// The service did not answer (down, wrong URL, timed out).
    case unreachable(String)
    /// It answered, but refused or said something unexpected.
    case refused(String)

    public var value: Value? { if case .ok(let value) = self { value } else { nil } }
}

/// One stage on the overview: the service's counters from /metrics and its open dead letters.
public struct StageStatus: Sendable, Equatable {
    public var service: ServiceName
    /// Records processed, by outcome (`applied`, `duplicate`, `dead_lettered`), since the instance started.
    public var processed: [String: Double] = [:]
    /// Transient failures (retried) since the instance started.
    public var failed: Double = 0
    public var deadLettered: Double = 0
    public var outboxPending: Double = 0
    public var lag: [LagLine] = []

    public struct LagLine: Sendable, Equatable {
        public var group: String
        public var topic: String
        public var messages: Double
        public var seconds: Double
    }

    public init(service: ServiceName) { self.service = service }

    public var processedTotal: Double { processed.values.reduce(0, +) }

    /// Lag summed per consumer group and topic (over partitions); seconds is the largest.
    public var lagByGroup: [LagLine] {
        var merged: [String: LagLine] = [:]
        for line in lag {
            let key = line.group + "\u{0}" + line.topic
            var entry = merged[key] ?? LagLine(group: line.group, topic: line.topic, messages: 0, seconds: 0)
            entry.messages += line.messages
            entry.seconds = max(entry.seconds, line.seconds)
            merged[key] = entry
        }
        return merged.values.sorted { ($0.group, $0.topic) < ($1.group, $1.topic) }
    }

    /// Reads a service's Prometheus text (the metrics `ServiceMetrics` writes).
    public static func parse(_ service: ServiceName, metrics text: String) -> StageStatus {
        var status = StageStatus(service: service)
        var lagMessages: [String: (group: String, topic: String, value: Double)] = [:]
        var lagSeconds: [String: Double] = [:]
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#"), let metric = PrometheusLine(line) else { continue }
            switch metric.name {
            case "encompass_messages_processed_total":
                status.processed[metric.labels["outcome"] ?? "?", default: 0] += metric.value
            case "encompass_messages_failed_total": status.failed += metric.value
            case "encompass_dead_letters_total": status.deadLettered += metric.value
            case "encompass_outbox_pending": status.outboxPending += metric.value
            case "kafka_consumergroup_group_lag":
                let key = [metric.labels["group"] ?? "", metric.labels["topic"] ?? "", metric.labels["partition"] ?? ""].joined(separator: "\u{0}")
                lagMessages[key] = (metric.labels["group"] ?? "", metric.labels["topic"] ?? "", metric.value)
            case "kafka_consumergroup_group_lag_seconds":
                let key = [metric.labels["group"] ?? "", metric.labels["topic"] ?? "", metric.labels["partition"] ?? ""].joined(separator: "\u{0}")
                lagSeconds[key] = metric.value
            default: break
            }
        }
        status.lag = lagMessages.map { key, value in
            LagLine(group: value.group, topic: value.topic, messages: value.value, seconds: lagSeconds[key] ?? 0)
        }.sorted { ($0.group, $0.topic) < ($1.group, $1.topic) }
        return status
    }
}

/// One sample line of the Prometheus text format: `name{label="value",…} 12.5`.
struct PrometheusLine {
    var name: String
    var labels: [String: String] = [:]
    var value: Double

    init?(_ line: String) {
        let chars = Array(line)
        var i = 0
        var name = ""
        while i < chars.count, chars[i] != "{", chars[i] != " " {
            name.append(chars[i])
            i += 1
        }
        guard !name.isEmpty else { return nil }
        self.name = name
        if i < chars.count, chars[i] == "{" {
            i += 1
            while i < chars.count, chars[i] != "}" {
                var key = ""
                while i < chars.count, chars[i] != "=" {
                    if chars[i] != "," && chars[i] != " " { key.append(chars[i]) }
                    i += 1
                }
                i += 1 // =
                guard i < chars.count, chars[i] == "\"" else { return nil }
                i += 1
                var value = ""
                while i < chars.count, chars[i] != "\"" {
                    if chars[i] == "\\", i + 1 < chars.count {
                        i += 1
                        value.append(chars[i] == "n" ? "\n" : chars[i])
                    } else {
                        value.append(chars[i])
                    }
                    i += 1
                }
                i += 1 // closing quote
                labels[key] = value
                while i < chars.count, chars[i] == "," || chars[i] == " " { i += 1 }
            }
            i += 1 // }
        }
        let rest = String(chars[min(i, chars.count)...]).trimmingCharacters(in: .whitespaces)
        guard let valueText = rest.split(separator: " ").first, let value = Double(valueText) else { return nil }
        self.value = value
    }
}

/// One open request to Children's Social Care, as school resolution lists it (column → value).
public struct CSCRequest: Sendable, Equatable {
    public var fields: [String: String]
    public var requestId: String { fields["request_id"] ?? "" }
    public var lpa: String { fields["lpa"] ?? "" }
}

/// A spreadsheet of the open requests of every school resolution instance.
public struct CSCSheet: Sendable {
    public var data: Data
    public var contentType: String
    public var fileName: String
    public var requests: Int
}

/// The console's calls to the five services (bearer `ENCOMPASS_API_TOKEN`).
public struct ServiceLinks: Sendable {
    public var urls: [ServiceName: String]
    /// Every instance of a scaled service (empty: the one of `urls`).
    public var instances: [ServiceName: [String]]
    public var token: String?
    public var timeout: TimeInterval
    /// Only these forces' items are listed and acted on (`ConsoleService.Settings.forces`); nil: all.
    public var forces: Set<String>?

    public init(
        urls: [ServiceName: String], instances: [ServiceName: [String]] = [:], token: String?, timeout: TimeInterval = 5,
        forces: Set<String>? = nil
    ) {
        self.urls = urls
        self.instances = instances
        self.token = token
        self.timeout = timeout
        self.forces = forces
    }

    public init(settings: ConsoleService.Settings) {
        self.init(
            urls: settings.serviceURLs, instances: settings.serviceInstances, token: settings.apiToken, timeout: settings.serviceTimeout,
            forces: settings.forces)
    }

    /// An item of force `code` is this console's.
    func mine(_ code: String) -> Bool { forces?.contains(code) ?? true }

    /// The `force` query parameter that narrows a service's listing to this console's forces.
    var forceQuery: [String: String] { forces.map { ["force": $0.sorted().joined(separator: ",")] } ?? [:] }

    func notMine(_ what: String) -> String {
        "\(what) is not one of force \((forces ?? []).sorted().joined(separator: ", "))'s; this console serves only that force's items"
    }

    func instanceURLs(_ service: ServiceName) -> [String] {
        let listed = instances[service] ?? []
        return listed.isEmpty ? [urls[service] ?? "http://127.0.0.1:\(service.defaultHTTPPort)"] : listed
    }

    func client(_ service: ServiceName, baseURL: String? = nil) -> ServiceClient {
        ServiceClient(
            service: service, baseURL: baseURL ?? urls[service] ?? "http://127.0.0.1:\(service.defaultHTTPPort)", token: token ?? "", timeout: timeout
        )
    }

    /// Calls a service (one instance: `baseURL`, else the configured URL); an unreachable service
    /// and a non-2xx answer become `Fetched` cases.
    func fetch(
        _ service: ServiceName, _ method: String, _ path: String, query: [String: String] = [:], json: (any Encodable)? = nil,
        raw: Data? = nil, contentType: String = "application/json", baseURL: String? = nil
    ) async -> Fetched<(status: Int, body: Data)> {
        guard token != nil || path == "/metrics" else {
            return .refused("the console has no API token: set ENCOMPASS_API_TOKEN to the services' token")
        }
        let at = baseURL ?? urls[service] ?? "?"
        do {
            let answer = try await client(service, baseURL: baseURL).call(method, path, query: query, json: json, raw: raw, contentType: contentType)
            guard (200..<300).contains(answer.status) else { return .refused(ServiceClient.refusal(service, answer.status, answer.body)) }
            return .ok(answer)
        } catch {
            return .unreachable("\(service.rawValue) is unreachable at \(at): \(Self.reason(error))")
        }
    }

    /// A listing gathered from every instance of a service, each answer decoded by `items`: the
    /// whole list, or the first instance's failure (a view that leaves an instance out says so
    /// instead of showing part of the picture as all of it).
    func gather<T: Sendable>(
        _ service: ServiceName, _ path: String, query: [String: String] = [:],
        items: @Sendable (Data) -> [T]?
    ) async -> Fetched<[T]> {
        await gatherEach(service, path, query: query) { body, _ in items(body) }
    }

    /// `gather`, telling `items` which instance answered: its place in the list counted from 1,
    /// nil when the service has one instance (as `DeadLetterAddress` writes it).
    func gatherEach<T: Sendable>(
        _ service: ServiceName, _ path: String, query: [String: String] = [:],
        items: @Sendable (Data, Int?) -> [T]?
    ) async -> Fetched<[T]> {
        var all: [T] = []
        let urls = instanceURLs(service)
        for (index, url) in urls.enumerated() {
            switch await fetch(service, "GET", path, query: query, baseURL: url) {
            case .ok(let answer):
                guard let list = items(answer.body, urls.count > 1 ? index + 1 : nil) else {
                    return .refused("\(service.rawValue) at \(url) answered \(path) with an unexpected body")
                }
                all += list
            case .unreachable(let why): return .unreachable(why)
            case .refused(let why): return .refused(why)
            }
        }
        return .ok(all)
    }

    /// An action on a record one instance holds: each instance in turn until one answers other than 404.
    func fetchOwner(_ service: ServiceName, _ method: String, _ path: String, json: (any Encodable)?) async -> Fetched<(status: Int, body: Data)> {
        var last: Fetched<(status: Int, body: Data)> = .refused("\(service.rawValue): no instance configured")
        for url in instanceURLs(service) {
            guard token != nil else { return await fetch(service, method, path, json: json, baseURL: url) }
            do {
                let answer = try await client(service, baseURL: url).call(method, path, json: json)
                if answer.status == 404 {
                    last = .refused(ServiceClient.refusal(service, answer.status, answer.body))
                    continue
                }
                guard (200..<300).contains(answer.status) else { return .refused(ServiceClient.refusal(service, answer.status, answer.body)) }
                return .ok(answer)
            } catch {
                return .unreachable("\(service.rawValue) is unreachable at \(url): \(Self.reason(error))")
            }
        }
        return last
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? ServiceCallError {
            // "… could not be reached: WHY; is it running? …" → WHY
            let text = error.description
            if let start = text.range(of: "could not be reached: "), let end = text.range(of: "; is it running?") {
                return String(text[start.upperBound..<end.lowerBound])
            }
            return text
        }
        return "\(error)"
    }

    func decode<T: Decodable & Sendable>(_ type: T.Type, _ service: ServiceName, _ path: String, query: [String: String] = [:]) async -> Fetched<T> {
        switch await fetch(service, "GET", path, query: query) {
        case .ok(let answer):
            do { return .ok(try WireFormat.decoder().decode(T.self, from: answer.body)) } catch {
                return .refused("\(service.rawValue) answered with an unexpected body: \(WireFormat.describe(error))")
            }
        case .unreachable(let why): return .unreachable(why)
        case .refused(let why): return .refused(why)
        }
    }

    // MARK: overview

    public struct StageReport: Sendable {
        public var status: Fetched<StageStatus>
        public var deadLetters: Fetched<[DeadLetterView]>
    }

    public func stage(_ service: ServiceName) async -> StageReport {
        async let metrics = fetch(service, "GET", "/metrics")
        // Ids are per instance: each is shown as `encompass dlq` names it (N:ID for instance N);
        // copies of one record that two instances dead-lettered are one entry naming both.
        async let copies = gatherEach(service, "/v1/dead-letters", query: ["status": "open", "limit": "1000"]) { body, instance in
            (try? WireFormat.decoder().decode([DeadLetterView].self, from: body))?.map { letter in
                var letter = letter
                letter.address = DeadLetterAddress(service: service, instance: instance, id: letter.id).description
                return letter
            }
        }
        let status: Fetched<StageStatus> =
            switch await metrics {
            case .ok(let answer): .ok(StageStatus.parse(service, metrics: String(decoding: answer.body, as: UTF8.self)))
            case .unreachable(let why): .unreachable(why)
            case .refused(let why): .refused(why)
            }
        let letters: Fetched<[DeadLetterView]> =
            switch await copies {
            case .ok(let views): .ok(DeadLetterRecords.merge(views))
            case .unreachable(let why): .unreachable(why)
            case .refused(let why): .refused(why)
            }
        return StageReport(status: status, deadLetters: letters)
    }

    public func overview() async -> [ServiceName: StageReport] {
        await withTaskGroup(of: (ServiceName, StageReport).self) { group in
            for service in ServiceName.allCases { group.addTask { (service, await stage(service)) } }
            var reports: [ServiceName: StageReport] = [:]
            for await (service, report) in group { reports[service] = report }
            return reports
        }
    }

    // MARK: review

    public func pendingProposals() async -> Fetched<[ReviewProposalState]> {
        switch await decode(ReviewListing.self, .childResearch, "/v1/review", query: ["status": "pending"]) {
        case .ok(let list): .ok(list.proposals.filter { mine($0.forceCode) })
        case .unreachable(let why): .unreachable(why)
        case .refused(let why): .refused(why)
        }
    }

    /// How often officers confirmed proposals, by score band (any child research instance answers for all).
    public func calibration() async -> Fetched<ReviewCalibration> {
        await decode(ReviewCalibration.self, .childResearch, "/v1/review/calibration")
    }

    /// Confirms or rejects a proposal in the staff member's name.
    public func decide(proposal: String, confirm: Bool, reviewer: String, note: String?) async -> Fetched<Int> {
        if forces != nil {
            // Only a proposal this console lists may be decided here.
            switch await pendingProposals() {
            case .ok(let listed) where !listed.contains(where: { $0.proposalId == proposal }): return .refused(notMine("proposal \(proposal)"))
            case .unreachable(let why): return .unreachable(why)
            case .refused(let why): return .refused(why)
            case .ok: break
            }
        }
        let body = ReviewDecisionRequest(reviewer: reviewer, note: note.flatMap { $0.isEmpty ? nil : $0 })
        let path = "/v1/review/\(Self.pathSegment(proposal))/\(confirm ? "confirm" : "reject")"
        switch await fetch(.childResearch, "POST", path, json: body) {
        case .ok(let answer): return .ok(answer.status)
        case .unreachable(let why): return .unreachable(why)
        case .refused(let why): return .refused(why)
        }
    }

    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? ""
    }

    // MARK: CSC requests

    /// CSC answers held for a MASH officer (school conflicts with the recorded age).
    public func heldAnswers() async -> Fetched<[HeldAnswer]> {
        // Each instance holds the answers of the children it owns.
        switch await gather(
            .schoolResolution, "/v1/requests/held", items: { body in (try? WireFormat.decoder().decode(HeldAnswers.self, from: body))?.held })
        {
        case .ok(let held): return .ok(held.filter { mine($0.forceCode) })
        case .unreachable(let why): return .unreachable(why)
        case .refused(let why): return .refused(why)
        }
    }

    /// A MASH officer's decision on a held CSC answer (`accept` or `decline`).
    public func decideHeld(request: String, accept: Bool, reviewer: String, note: String?) async -> Fetched<Int> {
        if forces != nil {
            switch await heldAnswers() {
            case .ok(let listed) where !listed.contains(where: { $0.requestId == request }): return .refused(notMine("held answer \(request)"))
            case .unreachable(let why): return .unreachable(why)
            case .refused(let why): return .refused(why)
            case .ok: break
            }
        }
        let body = HeldDecision(reviewer: reviewer, note: note.flatMap { $0.isEmpty ? nil : $0 })
        switch await fetchOwner(.schoolResolution, "POST", "/v1/requests/\(Self.pathSegment(request))/\(accept ? "accept" : "decline")", json: body) {
        case .ok(let answer): return .ok(answer.status)
        case .unreachable(let why): return .unreachable(why)
        case .refused(let why): return .refused(why)
        }
    }

    public func openRequests() async -> Fetched<[CSCRequest]> {
        // Each instance holds the requests of the children it owns.
        await gather(.schoolResolution, "/v1/requests", query: ["lpa": "all"].merging(forceQuery) { a, _ in a }) { body in
            (try? WireFormat.decoder().decode(CSCOpenRequests.self, from: body))?.requests.map(CSCRequest.init(fields:))
        }
    }

    /// One sheet of the open requests of every school resolution instance (each holds the
    /// requests of the children it owns), written here with the service's writer and its formula
    /// guard; each instance marks its requests exported. The file is named by `day`, or when it
    /// is nil by the day of the instances' service clock (the latest any instance reports).
    public func exportRequests(lpa: String, format: String, day: CalendarDate? = nil) async -> Fetched<CSCSheet> {
        let query = ["lpa": lpa, "format": "json"].merging(forceQuery) { a, _ in a }
        let gathered = await gather(.schoolResolution, "/v1/requests/export", query: query) { body in
            (try? WireFormat.decoder().decode(CSCRequestRows.self, from: body)).map { [$0] }
        }
        let parts: [CSCRequestRows]
        switch gathered {
        case .ok(let list): parts = list
        case .unreachable(let why): return .unreachable(why)
        case .refused(let why): return .refused(why)
        }
        let header: [String], rows: [[String]], serviceDay: CalendarDate?
        switch CSCRequestRows.merge(parts) {
        case .success(let merged): (header, rows, serviceDay) = (merged.header, merged.rows, merged.day)
        case .failure(let problem): return .refused(problem.description)
        }
        let safe = String(lpa.map { $0.isLetter || $0.isNumber ? $0 : "-" })
        let data: Data
        let type: String
        if format == "csv" {
            data = SheetWriter.csv(header: header, rows: rows)
            type = "text/csv; charset=utf-8"
        } else {
            do { data = try SheetWriter.xlsx(sheetName: "Requests \(lpa)", header: header, rows: rows) } catch {
                return .refused("the requests sheet could not be written: \(error.description)")
            }
            type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }
        return .ok(
            CSCSheet(
                data: data, contentType: type, fileName: "csc-requests-\(safe)-\(day ?? serviceDay ?? CalendarDate(Date())).\(format)",
                requests: rows.count))
    }

    /// Applies a sheet CSC returned. One instance applies every row. A scaled group's instances
    /// each apply the rows whose request they hold (`only=held`), in list order; the rows no
    /// instance holds are then given to the first instance (`unheld=ROWS`), which rejects them
    /// and keeps them as dead letters. Each row is answered once.
    public func importReturned(_ data: Data, name: String) async -> Fetched<CSCImportAnswer> {
        let urls = instanceURLs(.schoolResolution)
        guard urls.count > 1 else { return await postReturned(data, name: name, query: [:], baseURL: urls[0]) }
        var answers: [CSCImportAnswer] = []
        for (index, url) in urls.enumerated() {
            switch await postReturned(data, name: name, query: ["only": "held"], baseURL: url) {
            case .ok(let answer): answers.append(answer)
            case .unreachable(let why), .refused(let why):
                let applied =
                    index == 0
                    ? ""
                    : "; the rows held by \(urls[..<index].joined(separator: ", ")) were applied: import the sheet again when every instance answers (applied rows then answer unchanged)"
                return .refused(why + applied)
            }
        }
        let unheld = CSCImportAnswer.unheldRows(answers)
        var rejections: Fetched<CSCImportAnswer>?
        if !unheld.isEmpty {
            rejections = await postReturned(data, name: name, query: ["unheld": unheld.map(String.init).joined(separator: ",")], baseURL: urls[0])
        }
        return .ok(CSCImportAnswer.combine(answers, unheld: unheld, rejections: rejections))
    }

    func postReturned(_ data: Data, name: String, query: [String: String], baseURL: String) async -> Fetched<CSCImportAnswer> {
        let type = name.lowercased().hasSuffix(".csv") ? "text/csv" : "application/octet-stream"
        do {
            let answer = try await client(.schoolResolution, baseURL: baseURL)
                .call(
                    "POST", "/v1/requests/import", query: query.merging(["name": name]) { a, _ in a }.merging(forceQuery) { a, _ in a },
                    raw: data, contentType: type)
            // 422 with answers: every row rejected; still an answer to show.
            if let decoded = try? WireFormat.decoder().decode(CSCImportAnswer.self, from: answer.body),
                (200..<300).contains(answer.status) || answer.status == 422
            {
                return .ok(decoded)
            }
            return .refused(ServiceClient.refusal(.schoolResolution, answer.status, answer.body))
        } catch {
            return .unreachable("school-resolution is unreachable at \(baseURL): \(Self.reason(error))")
        }
    }

    // MARK: notices

    public func notices(on day: CalendarDate) async -> Fetched<NotificationList> {
        // Every dispatch instance lists every notice (the audit is replicated), but only the one
        // that took a notice flags it for follow-up: merged by notice id, flagged if any says so.
        let gathered = await gather(.dispatch, "/v1/notifications", query: ["date": day.description]) { body in
            (try? WireFormat.decoder().decode(NotificationList.self, from: body)).map { [$0] }
        }
        switch gathered {
        case .ok(let lists):
            var merged = NotificationList.merged(lists, date: day.description)
            merged.notifications = merged.notifications.filter { mine($0.forceCode) }
            merged.flagged = merged.notifications.filter(\.flagged).count
            return .ok(merged)
        case .unreachable(let why): return .unreachable(why)
        case .refused(let why): return .refused(why)
        }
    }

    public func heldNotices() async -> Fetched<HeldNoticeListing> {
        await decode(HeldNoticeListing.self, .dispatch, "/v1/held")
    }

    public func calendars() async -> Fetched<SchedulingReadiness> {
        await decode(SchedulingReadiness.self, .scheduling, "/v1/readiness")
    }

    /// The local authorities' contacts school resolution holds (`GET /v1/la-contacts`; every
    /// instance holds them all).
    public func laContacts() async -> Fetched<LAContactsList> {
        await decode(LAContactsList.self, .schoolResolution, "/v1/la-contacts")
    }

    /// The Navigator's audit spreadsheet from dispatch (`GET /v1/notifications/export`).
    public func exportNotices(from: String, to: String, la: String?, format: String) async -> Fetched<CSCSheet> {
        var query = ["from": from, "to": to, "format": format]
        if let la { query["la"] = la }
        switch await fetch(.dispatch, "GET", "/v1/notifications/export", query: query) {
        case .ok(let answer):
            let type = format == "csv" ? "text/csv; charset=utf-8" : "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            let name = "encompass-notices-\(from)-to-\(to)\(la.map { "-la\($0)" } ?? "").\(format)"
            return .ok(CSCSheet(data: answer.body, contentType: type, fileName: name, requests: CSCSheet.count(answer.body, format: format)))
        case .unreachable(let why): return .unreachable(why)
        case .refused(let why): return .refused(why)
        }
    }
}

extension CSCRequestRows {
    struct MergeError: Error, CustomStringConvertible { let description: String }

    /// Every instance's rows as one list, by incident date, occurrence and request id (the
    /// order of one instance's export is the order its requests were made, which instances
    /// cannot agree on). Instances that answer with different columns are refused: they run
    /// different versions.
    static func merge(_ parts: [CSCRequestRows]) -> Result<CSCRequestRows, MergeError> {
        let header = parts.first?.header ?? []
        for part in parts where part.header != header {
            return .failure(
                MergeError(
                    description:
                        "a school resolution instance exports other columns (\(part.header.joined(separator: ","))): run the same version on every instance"
                ))
        }
        let keys = ["incident_date", "occurrence_number", "request_id"].compactMap { header.firstIndex(of: $0) }
        var seen = Set<String>()
        let id = header.firstIndex(of: "request_id") ?? 0
        let rows = parts.flatMap(\.rows).filter { $0.count == header.count && seen.insert($0[id]).inserted }
            .sorted { a, b in keys.map { a[$0] }.lexicographicallyPrecedes(keys.map { b[$0] }) }
        return .success(CSCRequestRows(header: header, rows: rows, day: parts.compactMap(\.day).max()))
    }
}

extension CSCImportAnswer {
    /// Row numbers that every instance answered `not-held`.
    static func unheldRows(_ answers: [CSCImportAnswer]) -> [Int] {
        var held = Set<Int>()
        var all = Set<Int>()
        for answer in answers {
            for row in answer.answers {
                all.insert(row.row)
                if row.outcome != "not-held" { held.insert(row.row) }
            }
        }
        return all.subtracting(held).sorted()
    }

    /// One answer per row from every instance's `only=held` answer: the answer of the instance
    /// that held the row's request (the first, should two), else the rejection of a row no
    /// instance holds (`rejections`: the `unheld=` answer; nil or failed: the row is still
    /// answered rejected, saying its dead letter could not be kept).
    static func combine(_ answers: [CSCImportAnswer], unheld: [Int], rejections: Fetched<CSCImportAnswer>?) -> CSCImportAnswer {
        var byRow: [Int: Row] = [:]
        for answer in answers {
            for row in answer.answers where row.outcome != "not-held" && byRow[row.row] == nil { byRow[row.row] = row }
        }
        let rejected = rejections?.value.map { Dictionary($0.answers.map { ($0.row, $0) }) { a, _ in a } } ?? [:]
        let failure: String? =
            switch rejections {
            case .unreachable(let why), .refused(let why): why
            default: nil
            }
        for number in unheld {
            let requestId = answers.lazy.compactMap { $0.answers.first { $0.row == number }?.requestId }.first
            byRow[number] =
                rejected[number]
                ?? Row(
                    outcome: "rejected", row: number, requestId: requestId,
                    reasons: [
                        "request \(requestId ?? "(none)") is held by no school resolution instance"
                            + (failure.map { "; it could not be kept as a dead letter: \($0)" } ?? "")
                    ])
        }
        let first = answers.first
        return CSCImportAnswer(
            file: first?.file ?? "", rows: first?.rows ?? 0, answers: byRow.values.sorted { $0.row < $1.row },
            notices: first?.notices ?? [], error: nil)
    }
}

extension CSCSheet {
    /// Data rows of an exported CSV (header excluded); -1 for XLSX (not counted here).
    static func count(_ data: Data, format: String) -> Int {
        guard format == "csv" else { return -1 }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
        return max(0, lines.count - 1)
    }
}
