import ArgumentParser
import ConsoleService
import EncompassDemo
import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import IntakeService
import Logging
import SchedulingService
import ServiceRuntime
import UnixSignals
import WebSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `encompass demo`: the whole pipeline on one machine, on a simulated clock.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract:
            "Run a day of a force (Thames Valley; Cambridgeshire and Peterborough with --force 05; both with --force 43,05) through the pipeline on the embedded broker, to the next school morning's notices.",
        discussion: """
            Starts the embedded broker and the five services as separate processes, generates a \
            synthetic world (real schools, families, years of history, a day of incidents in which \
            officers left children and schools out), feeds it in, plays the MASH reviewer and \
            Children's Social Care, moves the simulated clock to the next school morning, and prints \
            what happened against the officer-recorded-only baseline. Mail is written as .eml files \
            (no SMTP relay). Ctrl-C stops every process gracefully. With --force 05 the world is \
            Cambridgeshire and Peterborough's (LAs 873 and 874, early years settings telephoned), fed \
            as the DA desk's spreadsheet through `encompass ingest`, under that force's protocol. \
            --force 43,05 runs both forces' days through one deployment, each under its own protocol. \
            The world puts 2% of school places across the border (--out-of-area-share), has early \
            years settings, a late report made the next school morning inside the release window, a \
            child who moved school in the term (the school it left answers "no longer attends" on its \
            notice page; the notice is redirected through CSC) and a child on no school roll (its home \
            LA is telephoned); the summary checks every route (notices, sent, to the child's own school).
            """
    )

    @Option(help: "Random seed of the world.")
    var seed: UInt64 = 2026
    @Option(help: "The force: 43 Thames Valley, 05 Cambridgeshire and Peterborough, or both (43,05) through one deployment.")
    var force: String = "43"
    @Option(help: "Households in the world.")
    var families: Int = 1_500
    @Option(help: "New incidents on the day.")
    var incidents: Int = 120
    @Option(help: "Share of school places across the border, outside the force's local authorities (default 0.02); 0 keeps the world in area.")
    var outOfAreaShare: Double = 0.02
    @Option(help: "The day of the incidents (YYYY-MM-DD); default: the last weekday before today.")
    var day: String?
    @Option(help: "Folder for logs, stores, mail and the world.")
    var dir: String = "var/demo"
    @Flag(help: "Stop when the summary is printed instead of waiting for Ctrl-C.")
    var exit = false
    @Option(help: "Intake's HTTP port; the other services follow it (8081…8085 by default).")
    var basePort: Int = 8081
    @Option(help: "Instances of each service (each in the service's consumer group; instance i listens 100 × (i − 1) above the default port).")
    var instances: Int = 1

    func run() async throws {
        let date: CalendarDate
        if let day {
            guard let parsed = CalendarDate(iso: day) else { throw ValidationError("--day '\(day)' is not a date (YYYY-MM-DD)") }
            date = parsed
        } else {
            var candidate = CalendarDate(Date()).adding(days: -1)
            while candidate.isoWeekday > 5 { candidate = candidate.adding(days: -1) }
            date = candidate
        }
        guard (1...6).contains(instances) else { throw ValidationError("--instances must be from 1 to 6") }
        let codes = force.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let forces = codes.compactMap(DemoForce.code)
        guard !codes.isEmpty, forces.count == codes.count, Set(codes).count == codes.count else {
            throw ValidationError(
                "--force '\(force)' is not a demo force; use \(DemoForce.all.map { "\($0.code) (\($0.name))" }.joined(separator: " or ")), or both separated by a comma"
            )
        }
        guard (0...0.5).contains(outOfAreaShare) else { throw ValidationError("--out-of-area-share must be from 0 to 0.5") }
        let run = DemoRun(
            directory: dir, date: date, seed: seed, families: families, incidents: incidents, instances: instances, basePort: basePort,
            forces: forces, outOfAreaShare: outOfAreaShare)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let work = Task { try await run.execute() }
        let watcher = Task {
            for await _ in signals {
                say("\nstopping (Ctrl-C): services first (finish work, commit offsets, drain outboxes), then the broker…")
                work.cancel()
                return
            }
        }
        var failure: (any Error)?
        do {
            try await work.value
            if !exit {
                say("running until Ctrl-C")
                while !work.isCancelled, !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    if watcher.isCancelled { break }
                    if let name = await run.pipeline.exited() {
                        say("\(name) stopped unexpectedly; see its log in \(dir)/")
                        break
                    }
                    if await watcherDone(watcher) { break }
                }
            }
        } catch is CancellationError {
        } catch {
            failure = error
        }
        watcher.cancel()
        await run.pipeline.stopAll(report: { say("  \($0)") })
        say("stopped. logs, stores and mail are in \(dir)/")
        if let failure {
            FileHandle.standardError.write(Data("demo failed: \(failure)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func watcherDone(_ watcher: Task<Void, Never>) async -> Bool {
        // The watcher returns only after a signal.
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await watcher.value
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(50))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// One run of the demo.
final class DemoRun: Sendable {
    let directory: String
    let date: CalendarDate
    let seed: UInt64
    let families: Int
    let incidents: Int
    /// The forces whose days run through this one deployment, each under its own protocol.
    let forces: [DemoForce]
    let outOfAreaShare: Double
    let pipeline: LocalPipeline
    let schoolPassword = "demo-school-" + String(MessageID.fresh().prefix(8))

    init(
        directory: String, date: CalendarDate, seed: UInt64, families: Int, incidents: Int, instances: Int, basePort: Int,
        forces: [DemoForce] = [.thamesValley],
        outOfAreaShare: Double = 0.02
    ) {
        self.forces = forces
        self.directory = directory
        self.outOfAreaShare = outOfAreaShare
        self.date = date
        self.seed = seed
        self.families = families
        self.incidents = incidents
        self.pipeline = LocalPipeline(
            .init(
                binDirectory: binDirectory(), directory: directory,
                instances: Dictionary(uniqueKeysWithValues: ServiceName.allCases.map { ($0, instances) }),
                basePort: basePort))
    }

    var mailDirectory: String { pipeline.mailDirectory }
    var apiToken: String { pipeline.options.apiToken }

    func client(_ service: ServiceName) -> ServiceClient { pipeline.client(service) }

    func setClock(_ simulated: Date, rate: Double) async throws { try await pipeline.setClock(simulated, rate: rate) }

    func execute() async throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: mailDirectory, withIntermediateDirectories: true)
        let started = ContinuousClock.now

        // 1. The world.
        let schoolList = try SchoolList.read(path: SchoolList.shippedFile)
        let world = World.merged(
            forces.map { force in
                WorldGenerator.generate(
                    WorldSettings(seed: seed, families: families, dayIncidents: incidents, day: date, force: force, outOfAreaShare: outOfAreaShare),
                    schools: schoolList)
            })
        try WorldFiles.write(world, to: "\(directory)/world")
        say("world (seed \(seed)): \(world.history.count) past incidents, \(world.day.count) incidents on \(date), \(world.schools.count) schools")

        // 2. Broker and services, on a simulated clock stopped at the end of the day.
        try await pipeline.start(clock: date.at(hour: 23, minute: 30), rate: 0)
        say(
            "broker, five services and the console up: " + ServiceName.allCases.map { "\($0.rawValue) :\(pipeline.port($0))" }.joined(separator: ", ")
                + ", console :\(pipeline.consolePort)")

        // 3. Reference data: early years settings the school list lacks join the register, then
        // schools' safeguarding contacts, then the history.
        if let settings = FileManager.default.contents(atPath: "\(directory)/world/early-years.csv") {
            let (status, body) = try await client(.schoolResolution).call(
                "POST", "/v1/register/import", query: ["name": "early-years.csv"], raw: settings, contentType: "text/csv")
            guard (200..<300).contains(status) else { throw ServiceCallError(description: ServiceClient.refusal(.schoolResolution, status, body)) }
            try await pipeline.quiet()
        }
        let contacts = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/world/contacts.csv"))
        let (contactStatus, contactBody) = try await client(.schoolResolution).call(
            "POST", "/v1/contacts/import", query: ["name": "contacts.csv"], raw: contacts, contentType: "text/csv")
        guard (200..<300).contains(contactStatus) else {
            throw ServiceCallError(description: ServiceClient.refusal(.schoolResolution, contactStatus, contactBody))
        }
        // One neighbouring authority's Operation Encompass contact (Cambridgeshire's), and none
        // for the others: out-of-area notices show both routes (the LA's contact, a telephone task).
        let laContacts =
            "la_code,role,name,email,phone\n873,encompass,Cambridgeshire Operation Encompass,encompass@cambridgeshire.example.gov.uk,01223 000000\n"
        let (laStatus, laBody) = try await client(.schoolResolution).call(
            "POST", "/v1/la-contacts/import", query: ["name": "la-contacts.csv"],
            raw: Data(laContacts.utf8), contentType: "text/csv")
        guard (200..<300).contains(laStatus) else { throw ServiceCallError(description: ServiceClient.refusal(.schoolResolution, laStatus, laBody)) }
        // A MASH gives its force's Education Safeguarding Manager (`ESM<force>`, escalations) a
        // notice password when it enrols them, and each school one before its first notice goes
        // (below: the schools with a notice waiting, and the late report's). Every school of the
        // register at once would cost the demo minutes of PBKDF2.
        try await pipeline.setSchoolPasswords(forces.map { NoticeAccount.educationSafeguardingManager(forceCode: $0.code) }, password: schoolPassword)
        let historyLines = try String(contentsOfFile: "\(directory)/world/history.jsonl", encoding: .utf8).split(separator: "\n")
        var historyAccepted = 0
        for start in stride(from: 0, to: historyLines.count, by: 1_000) {
            let chunk = historyLines[start..<min(start + 1_000, historyLines.count)].joined(separator: "\n")
            let (status, body) = try await client(.intake).call(
                "POST", "/v1/history", query: ["name": "history.jsonl", "first": String(start + 1)],
                raw: Data(chunk.utf8), contentType: "application/x-ndjson")
            guard (200..<300).contains(status) else { throw ServiceCallError(description: ServiceClient.refusal(.intake, status, body)) }
            historyAccepted += try WireFormat.decoder().decode(HistoryAnswer.self, from: body).accepted
        }
        if historyAccepted < historyLines.count {
            say("history: \(historyLines.count - historyAccepted) records refused by intake (see encompass dlq list --service intake)")
        }
        let expectedHistory = historyAccepted
        try await progress("child research indexes the history") { figures in
            figures.processed(.childResearch, topic: Topics.history.name) >= Double(expectedHistory)
        }
        // Research scores with the person-matching model learned for the day from the earlier
        // days' records: every instance learns it from the whole history before the day's
        // incidents arrive, so research uses it from the first incident (0 behind: current).
        let researchInstances = pipeline.instances(of: .childResearch).count
        try await progress("child research learns its match model from the history") { figures in
            let instances = figures.metrics[.childResearch] ?? []
            return instances.count == researchInstances
                && instances.allSatisfy { text in
                    text.split(separator: "\n").contains { line in
                        line.hasPrefix("encompass_research_match_model_behind_people") && line.split(separator: " ").last.flatMap { Double($0) } == 0
                    }
                }
        }

        // 4. The day's incidents, as the DA desk sends them: Thames Valley's through the API,
        // Cambridgeshire's as the desk's daily spreadsheet through `encompass ingest`.
        // The occurrence numbers of the incidents intake accepted (one per incident).
        var acceptedItems: [String] = []
        var setAside: [(String, String, String)] = []
        for force in forces {
            let day = world.day.filter { $0.forceCode == force.code }
            if force.feedsSpreadsheet {
                let sheet = "\(directory)/world/\(force.deskSpreadsheetName(date))"
                try WorldFiles.deskSpreadsheet(day).write(toFile: sheet, atomically: true, encoding: .utf8)
                let answer = try ingestSpreadsheet(sheet)
                acceptedItems += answer.accepted
                setAside += DemoJudge.childRows(csv: try String(contentsOfFile: sheet, encoding: .utf8), rows: answer.rejectedRows)
            } else {
                let encoder = WireFormat.encoder()
                let (dayStatus, dayBody) = try await client(.intake).call("POST", "/v1/incidents", raw: try encoder.encode(day))
                guard (200..<300).contains(dayStatus) else { throw ServiceCallError(description: ServiceClient.refusal(.intake, dayStatus, dayBody)) }
                acceptedItems += try WireFormat.decoder().decode(IncidentSubmissionAnswer.self, from: dayBody).accepted.compactMap(\.occurrenceNumber)
            }
        }
        let dayAccepted = acceptedItems.count
        var acceptedOccurrences = Set(acceptedItems)
        if dayAccepted < world.day.count {
            say("intake refused \(world.day.count - dayAccepted) of the day's incidents (see encompass dlq list --service intake)")
        }
        try await progress("the day's incidents go through research and school resolution") { figures in
            figures.processed(.childResearch, topic: Topics.incidents.name) >= Double(dayAccepted)
        }
        try await pipeline.quiet()

        // 5. The MASH reviewer checks every proposed child (none is confirmed automatically under
        // the shipped protocol). The queue is listed 500 at a time: the reviewer decides, waits
        // for the decisions to apply, and lists again until nothing new waits.
        let judge = DemoJudge(truth: world.truth)
        func reviewer(_ forceCode: String) -> String { DemoForce.code(forceCode)?.reviewer ?? "MASH demo reviewer" }
        var confirmed = 0, rejected = 0
        var decided = Set<String>()
        while true {
            let pending = try await client(.childResearch).decode(ReviewListing.self, "GET", "/v1/review", query: ["status": "pending"]).proposals
                .filter { !decided.contains($0.proposalId) }
            if pending.isEmpty { break }
            for proposal in pending {
                let verdict = judge.review(occurrence: proposal.occurrenceNumber, child: proposal.child)
                let (status, body) = try await client(.childResearch).call(
                    "POST", "/v1/review/\(proposal.proposalId)/\(verdict.rawValue)",
                    json: ReviewDecisionRequest(reviewer: reviewer(proposal.forceCode), note: "checked against records"))
                guard (200..<300).contains(status) || status == 409 else {
                    throw ServiceCallError(description: ServiceClient.refusal(.childResearch, status, body))
                }
                decided.insert(proposal.proposalId)
                if verdict == .confirm { confirmed += 1 } else { rejected += 1 }
            }
            try await pipeline.quiet()
        }
        say("\(forces.map(\.reviewer).joined(separator: ", ")): \(decided.count) proposed children, \(confirmed) confirmed, \(rejected) rejected")

        // 6. Children's Social Care answers the school requests. Each school-resolution
        // instance holds the requests of its own children: the MASH exports one sheet of every
        // instance's requests and returns the answered sheet to every instance, each applying
        // the rows it holds (as `encompass schools requests export/import` and the console do).
        let schoolURLs = pipeline.instances(of: .schoolResolution).map { pipeline.client(.schoolResolution, instance: $0).baseURL }
        let cscLinks = ServiceLinks(
            urls: [.schoolResolution: schoolURLs[0]], instances: [.schoolResolution: schoolURLs],
            token: pipeline.client(.schoolResolution).token, timeout: 120)
        func fetched<T>(_ value: Fetched<T>) throws -> T {
            switch value {
            case .ok(let value): return value
            case .unreachable(let why), .refused(let why): throw ServiceCallError(description: why)
            }
        }
        let sheet = try fetched(await cscLinks.exportRequests(lpa: "all", format: "csv"))
        let exported = String(decoding: sheet.data, as: UTF8.self)
        try exported.write(toFile: "\(directory)/csc-requests.csv", atomically: true, encoding: .utf8)
        let cscAnswer = judge.answerRequests(csv: exported)
        try cscAnswer.sheet.write(toFile: "\(directory)/csc-returned.csv", atomically: true, encoding: .utf8)
        let requested = cscAnswer.answered + cscAnswer.unknown
        let answered = cscAnswer.answered
        if requested > 0 {
            _ = try fetched(await cscLinks.importReturned(Data(cscAnswer.sheet.utf8), name: "csc-returned.csv"))
        }
        let answer = (answered: answered, unknown: requested - answered)
        say("Children's Social Care: \(requested) school requests, \(answered) answered")
        try await pipeline.quiet()

        // 6b. The MASH officer decides the CSC answers held for an age conflict.
        var held: [HeldAnswer] = []
        var acceptedHeld = 0
        for instance in pipeline.instances(of: .schoolResolution) {
            let school = pipeline.client(.schoolResolution, instance: instance)
            for item in try await school.decode(HeldAnswers.self, "GET", "/v1/requests/held").held {
                held.append(item)
                let accept = judge.decideHeld(item)
                let (status, body) = try await school.call(
                    "POST", "/v1/requests/\(item.requestId)/\(accept ? "accept" : "decline")",
                    json: HeldDecision(reviewer: reviewer(item.forceCode), note: "checked with CSC"))
                guard (200..<300).contains(status) else {
                    throw ServiceCallError(description: ServiceClient.refusal(.schoolResolution, status, body))
                }
                if accept { acceptedHeld += 1 }
            }
        }
        if !held.isEmpty {
            say("MASH officer: \(held.count) CSC answers held for an age conflict, \(acceptedHeld) accepted")
            try await pipeline.quiet()
        }

        // 7. The MASH gives each school (or LA, for an escalation) with a notice waiting its
        // notice password (dispatch holds mail to one without); then the next school morning:
        // move the clock to just before the first release.
        let pending = try await pendingNoticeAccounts()
        try await pipeline.setSchoolPasswords(Array(Set(pending.map(\.account))), password: schoolPassword)
        let pendingNotices = pending.map(\.release)
        guard let first = pendingNotices.min() else {
            throw ServiceCallError(description: "scheduling holds no pending notice; see \(directory)/*.log")
        }
        try await setClock(first.addingTimeInterval(-5), rate: 1)
        say("clock → \(londonTime(first.addingTimeInterval(-5))) (London): \(pendingNotices.count) notices wait for release")
        try await progress("notices are released and sent") { figures in
            figures.processed(.dispatch, topic: Topics.noticesDue.name) >= Double(pendingNotices.filter { $0 <= first }.count)
        }
        try await pipeline.quiet()
        // 7a. A late report: an incident of the evening before, reported 40 minutes after the
        // morning's release, inside the protocol's release window: its notices go out at once.
        // Only on a school morning (not when the first release is a holiday escalation).
        var lateReported: Date?
        var leftOut = Set<String>()
        let morning = world.morning.filter { incident in forces.contains { $0.code == incident.forceCode } }
        if !morning.isEmpty, (8..<14).contains(CalendarDate.london.component(.hour, from: first)) {
            let reported = first.addingTimeInterval(40 * 60)
            try await setClock(reported, rate: 1)
            try await Task.sleep(for: .seconds(3)) // every service reads the moved clock before the report arrives
            let late = morning.map { incident in
                var incident = incident
                incident.reportedAt = reported.addingTimeInterval(-60)
                return incident
            }
            try await pipeline.setSchoolPasswords(Array(Set(late.flatMap(\.children).compactMap { $0.school?.urn })), password: schoolPassword)
            let before = await pipeline.figures().processed(.dispatch, topic: Topics.noticesDue.name)
            let (status, body) = try await client(.intake).call("POST", "/v1/incidents", raw: try WireFormat.encoder().encode(late))
            guard (200..<300).contains(status) else { throw ServiceCallError(description: ServiceClient.refusal(.intake, status, body)) }
            let accepted = try WireFormat.decoder().decode(IncidentSubmissionAnswer.self, from: body).accepted
            acceptedOccurrences.formUnion(accepted.compactMap(\.occurrenceNumber))
            let expected = late.flatMap(\.children).filter { $0.school != nil }.count
            say(
                "late report: \(late.count) incident reported at \(londonTime(reported.addingTimeInterval(-60))) (London), inside the release window, \(expected) children with a school"
            )
            try await progress("the late report's notices go out at once", timeout: .seconds(120)) { figures in
                figures.processed(.dispatch, topic: Topics.noticesDue.name) >= before + Double(expected)
            }
            try await pipeline.quiet()
            lateReported = reported.addingTimeInterval(-60)
        } else {
            leftOut = Set(morning.map(\.occurrenceNumber))
        }
        // 7c. A school sent a notice about a child no longer on its roll says so, as its DSL
        // would: opens the notice email's link, signs in, and presses "This pupil no longer
        // attends". School resolution cancels the child's pending notices to that school and asks
        // Children's Social Care for the child's school now; the MASH sends CSC the request, CSC
        // answers, and the notice is redirected to that school (at once: inside the release
        // window), after the MASH gives the new school its password (dispatch holds the mail
        // until then and lists the account).
        var noLongerAttends = 0
        let moved = world.truth.filter { !leftOut.contains($0.occurrenceNumber) }
            .flatMap { day in day.children.filter { $0.leftSchoolURN != nil } }
        if !moved.isEmpty {
            let dsl = SchoolDSL(name: "Designated Safeguarding Lead (demo)", password: schoolPassword)
            let (_, released) = try await readNotices()
            for child in moved {
                // Dispatch mails a notice a moment after it has consumed it (on a busy machine,
                // seconds after the pipeline looks quiet): wait for every mail released to the
                // school the child left before its DSL reads them.
                let address = "dsl.\(child.leftSchoolURN ?? "")@"
                let expected = released.filter {
                    $0.request.school.urn == child.leftSchoolURN && !$0.escalation && $0.request.school.channel != .telephone
                }.count
                try? await pipeline.waitFor("the mail to \(address)", timeout: .seconds(120)) {
                    ((try? self.mails()) ?? []).filter { $0.1.contains(address) }.count >= expected
                }
                for (_, text) in try mails() where text.contains(address) {
                    guard let link = SchoolDSL.link(inMail: text) else { continue }
                    let page = try await dsl.signIn(link)
                    guard page.page.contains(htmlEscape("\(child.givenName) \(child.familyName)")) else { continue }
                    try await dsl.noLongerAttends(link, cookie: page.cookie, csrf: page.csrf)
                    noLongerAttends += 1
                }
            }
        }
        if noLongerAttends > 0 {
            say("school's DSL: \(noLongerAttends) notice answered \"This pupil no longer attends\" on its notice page")
            try await pipeline.quiet()
            let redirectSheet = String(decoding: try fetched(await cscLinks.exportRequests(lpa: "all", format: "csv")).data, as: UTF8.self)
            let redirectAnswer = judge.answerRequests(csv: redirectSheet)
            try redirectAnswer.sheet.write(toFile: "\(directory)/csc-returned-redirects.csv", atomically: true, encoding: .utf8)
            if redirectAnswer.answered > 0 {
                _ = try fetched(await cscLinks.importReturned(Data(redirectAnswer.sheet.utf8), name: "csc-returned-redirects.csv"))
            }
            say(
                "Children's Social Care: \(redirectAnswer.answered + redirectAnswer.unknown) open school requests after the redirect, \(redirectAnswer.answered) answered"
            )
            try await pipeline.quiet()
            try await Task.sleep(for: .seconds(2)) // scheduling's release loop and dispatch's intake
            try await pipeline.quiet()
            let held = try await heldAccounts()
            try await pipeline.setSchoolPasswords(held, password: schoolPassword)
            if !held.isEmpty { say("MASH: notice passwords given to \(held.joined(separator: ", ")) (dispatch held their mail)") }
            try await Task.sleep(for: .seconds(2))
            try await pipeline.quiet()
        }
        // 7b. The MASH telephones the settings whose notices are telephone tasks (early years
        // settings under Cambridgeshire's protocol, schools without an email contact).
        let telephoned = try await makeTelephoneCalls()
        if telephoned > 0 { say("MASH: \(telephoned) telephone tasks called and marked done") }
        // 8. 10:00: notices not acknowledged are flagged for follow-up.
        let tenOClock = CalendarDate(first).at(hour: 10, minute: 0).addingTimeInterval(5)
        try await setClock(tenOClock, rate: 1)
        try await Task.sleep(for: .seconds(3))
        try await pipeline.quiet()

        // 9. The scorecard (without the late report when it was not fed).
        let (notices, released) = try await readNotices()
        let scoring = leftOut.isEmpty ? judge : DemoJudge(truth: world.truth.filter { !leftOut.contains($0.occurrenceNumber) })
        let card = scoring.score(notices)
        let routes = scoring.checkRoutes(notices)
        let fieldProblems = try noticeFieldProblems()
        let mailProblems = scoring.personalDataInMail(try mails())
        let proposals = try await client(.childResearch).decode(ReviewListing.self, "GET", "/v1/review", query: ["status": "all"]).proposals
        var openRows: [[String: String]] = [], stillHeld: [HeldAnswer] = []
        for instance in pipeline.instances(of: .schoolResolution) {
            let school = pipeline.client(.schoolResolution, instance: instance)
            let (openStatus, openBody) = try await school.call("GET", "/v1/requests", query: ["lpa": "all"])
            guard (200..<300).contains(openStatus) else {
                throw ServiceCallError(description: ServiceClient.refusal(.schoolResolution, openStatus, openBody))
            }
            openRows += try WireFormat.decoder().decode(CSCOpenRequests.self, from: openBody).requests
            stillHeld += try await school.decode(HeldAnswers.self, "GET", "/v1/requests/held").held
        }
        let missed = scoring.missed(
            notices,
            trail: DemoJudge.Trail(
                accepted: acceptedOccurrences, proposed: proposals.map { ($0.occurrenceNumber, $0.child) },
                openRequests: openRows.map {
                    (
                        $0["occurrence_number"] ?? "", $0["child_given_name"] ?? "", $0["child_family_name"] ?? "",
                        $0["child_date_of_birth"].flatMap { $0.isEmpty ? nil : $0 }
                    )
                },
                held: stillHeld, setAside: setAside))
        let untidy = world.untidiness.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        let sentMail = (try? FileManager.default.contentsOfDirectory(atPath: mailDirectory).filter { $0.hasSuffix(".eml") }.count) ?? 0
        let deadLetters = try await deadLetterCounts()
        let elapsed = ContinuousClock.now - started
        say(
            """

            ══ Encompass demo: \(date), \(forces.map(\.name).joined(separator: " and ")) ══ (\(Int(elapsed.components.seconds)) s)
            incidents:            \(world.day.count) (\(world.day.filter { $0.children.isEmpty }.count) with no child recorded)
            children present:     \(card.childrenPresent), \(card.childrenWithSchool) at a school
              recorded by officers \(card.recordedByOfficers); found by research and confirmed \(card.foundByResearch) (reviewer: \(confirmed) confirmed, \(rejected) rejected)
            schools:              \(answer.answered + answer.unknown) requested from Children's Social Care, \(answer.answered) answered
            notices:              \(card.notices) scheduled, \(card.noticesSent) sent (\(sentMail) mails in \(mailDirectory)/; \(telephoned) by telephone\(card.escalations > 0 ? "; \(card.escalations) escalated to the Education Safeguarding Manager" : ""))
              first release       \(londonTime(first)) London time
            \(releaseLines(notices))
              fields on notices   \(fieldProblems.isEmpty ? "every notice shows exactly the fields its force's protocol allows (\(forces.map(\.code).joined(separator: ", ")))" : "\(fieldProblems.count) notices break the protocol's fields")\(fieldProblems.map { "\n            FIELDS \($0)" }.joined())
              emails              \(mailProblems.isEmpty ? "no personal data in any email (only the link)" : "\(mailProblems.count) emails carry personal data")\(mailProblems.map { "\n            MAIL \($0)" }.joined())
            correct notices:      \(card.correctNotices) of \(card.childrenWithSchool) children at a school = \(percent(card.shareCorrect))
              of the children records could show (recorded by the officer or in an earlier record): \(card.correctFindable) of \(card.findable) = \(percent(card.shareFindable))
              officer-recorded-only baseline: \(card.baselineCorrect) = \(percent(card.shareBaseline))
              notices to a wrong school or for a child not present: \(card.wrongNotices)\(card.wrong.map { "\n            WRONG \($0)" }.joined())
              the same child notified twice to one school: \(card.duplicates.count)\(card.duplicates.map { "\n            TWICE \($0)" }.joined())
              to a school the child had left, which every record still named (not counted as wrong above): \(card.toSchoolLeft.count)\(card.toSchoolLeft.map { "\n            LEFT \($0)" }.joined())
              no longer attends:  \(noLongerAttends) answered by the school, \(routes[.redirected]?.notices ?? 0) redirected, \(routes[.redirected]?.correct ?? 0) reached the new school
              on no school roll:  \(card.notOnRoll) children (home educated), \(card.notOnRollNotified) notified to their home local authority
              missed children by cause: \(missed.isEmpty ? "none" : missed.map { "\($0.children) \($0.cause)" }.joined(separator: "; "))
            reviewer decisions:   \(proposals.count) proposed children for \(world.day.count) incidents = \(String(format: "%.2f", Double(proposals.count) / Double(max(1, world.day.count)))) per incident; \(held.count) CSC answers held for a MASH officer
            statutory duty:       \(Self.dutySummary(day: world.day, released: released))
            \(Self.routeLines(routes, released: released, lateReported: lateReported))
            untidy records:       \(untidy.isEmpty ? "none" : untidy)
            dead letters:         \(deadLetters)

            where to look:
              MASH console         \(pipeline.consoleURL)/  (staff \(pipeline.options.consoleUser), password \(pipeline.options.consolePassword))
              mail folder          \(mailDirectory)/  (each mail links to its notice page; school password: \(schoolPassword))
              notices              encompass notifications list --date \(CalendarDate(first)) (ENCOMPASS_API_TOKEN=\(apiToken)\(pipeline.instances(of: .dispatch).count > 1 ? " ENCOMPASS_DISPATCH_URLS=\(pipeline.instanceURLs(.dispatch))" : ""))\(forces.filter(\.feedsSpreadsheet).map { "\n  DA desk spreadsheet  \(directory)/world/\($0.deskSpreadsheetName(date)) (fed with encompass ingest)\n  Navigator's audit    encompass notifications export --from \(date) --to \(CalendarDate(first)) navigator-audit.xlsx (incident, school, DSL per notice)" }.joined())
              dead letters         encompass dlq list
              services             \(ServiceName.allCases.map { pipeline.url($0) }.joined(separator: " "))  (/healthz /readyz /metrics)
              logs and stores      \(directory)/
            """)
    }

    /// Sends the DA desk's spreadsheet with `encompass ingest` (this executable), as the desk
    /// does; returns intake's accepted items and the numbers of the rows it rejected (not fatal).
    func ingestSpreadsheet(_ file: String) throws -> (accepted: [String], rejectedRows: [Int]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(binDirectory())/encompass")
        process.arguments = ["ingest", file, "--url", pipeline.url(.intake), "--token", pipeline.options.intakeToken, "--json"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus != 2, let answer = try? WireFormat.decoder().decode(SpreadsheetAnswer.self, from: data) else {
            throw ServiceCallError(
                description:
                    "encompass ingest \(file) failed (exit \(process.terminationStatus)): \(String(decoding: data.prefix(2_000), as: UTF8.self))")
        }
        let accepted = answer.accepted
        say(
            "encompass ingest \((file as NSString).lastPathComponent): \(answer.rows) rows, \(accepted.count) incidents accepted, \(answer.rejectedRowCount) rows rejected"
                + "\(accepted.contains { $0.warnings != nil } ? "; some adults' fields set aside (encompass dlq list --service intake)" : "")")
        return (accepted.map(\.occurrenceNumber), answer.rejectedRows.map(\.row))
    }

    /// The accounts dispatch holds notice mail for (no notice password yet), on every instance.
    func heldAccounts() async throws -> [String] {
        var accounts = Set<String>()
        for instance in pipeline.instances(of: .dispatch) {
            accounts.formUnion(
                try await pipeline.client(.dispatch, instance: instance).decode(HeldNoticeListing.self, "GET", "/v1/held").accountsWithoutPassword)
        }
        return accounts.sorted()
    }

    /// The MASH officer's calls: every open telephone task on every dispatch instance, marked done.
    func makeTelephoneCalls() async throws -> Int {
        var done = 0
        for instance in pipeline.instances(of: .dispatch) {
            let dispatch = pipeline.client(.dispatch, instance: instance)
            for task in try await dispatch.decode(TelephoneTaskListing.self, "GET", "/v1/telephone-tasks").tasks {
                let (status, body) = try await dispatch.call(
                    "POST", "/v1/telephone-tasks/\(task.id)/done",
                    json: TelephoneTaskDoneRequest(by: "MASH officer (demo)", note: "spoke to the setting's safeguarding lead"))
                guard (200..<300).contains(status) else { throw ServiceCallError(description: ServiceClient.refusal(.dispatch, status, body)) }
                done += 1
            }
        }
        if done > 0 { try await pipeline.quiet() }
        return done
    }

    /// Each notice's rendered fields (dispatch's store, read-only) against the fields its
    /// force's protocol allows: exactly those, in the protocol's order; one line per notice that differs.
    func noticeFieldProblems() throws -> [String] {
        struct Fields: Decodable { var fields: [String] }
        struct Content: Decodable {
            struct Line: Decodable { var field: String }
            var lines: [Line]
        }
        let protocols = try ForceProtocols.load()
        var problems: [String] = []
        for instance in pipeline.instances(of: .dispatch) {
            let path = "\(directory)/\(ServiceName.dispatch.rawValue)-\(instance)/dispatch.sqlite"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            var configuration = Configuration()
            configuration.readonly = true
            let store = try DatabaseQueue(path: path, configuration: configuration)
            let rows = try store.read { db in try Row.fetchAll(db, sql: "SELECT noticeId, forceCode, content FROM notice") }
            for row in rows {
                let noticeId: String = row["noticeId"], forceCode: String = row["forceCode"], content: Data = row["content"]
                guard !content.isEmpty else { continue }
                guard let allowed = try protocols[forceCode]?.section("dispatch", as: Fields.self).fields else {
                    problems.append("\(noticeId): force \(forceCode) has no dispatch protocol")
                    continue
                }
                let shown = (try JSONDecoder().decode(Content.self, from: content)).lines.map(\.field)
                if shown != allowed {
                    problems.append(
                        "\(noticeId) (force \(forceCode)): shows \(shown.joined(separator: ", ")); the protocol allows \(allowed.joined(separator: ", "))"
                    )
                }
            }
        }
        return problems
    }

    /// Every mail written (name, text).
    func mails() throws -> [(String, String)] {
        try FileManager.default.contentsOfDirectory(atPath: mailDirectory).filter { $0.hasSuffix(".eml") }.sorted().map { name in
            (name, try String(contentsOfFile: "\(mailDirectory)/\(name)", encoding: .utf8))
        }
    }

    /// The releases of each force, a line each.
    func releaseLines(_ notices: [DemoJudge.Notice]) -> String {
        forces.map { force in "  released (\(force.code))       \(releases(notices.filter { $0.forceCode == force.code }))" }.joined(separator: "\n")
    }

    /// How many notices went at each release time (London), schools' notices and escalations apart.
    func releases(_ notices: [DemoJudge.Notice]) -> String {
        // Grouped by the second shown: notices released within one second are one release.
        let counts = Dictionary(
            grouping: notices.compactMap { notice in notice.releaseAt.map { ($0, notice.escalation) } }, by: { "\(londonTime($0.0))|\($0.1)" })
        return counts.values.map { group in (group[0].0, group[0].1, group.count) }.sorted { ($0.0, $0.1 ? 0 : 1) < ($1.0, $1.1 ? 0 : 1) }
            .map { "\(londonTime($0.0)): \($0.2) \($0.1 ? "escalated to the Education Safeguarding Manager" : "to schools")" }.joined(separator: "; ")
    }

    func percent(_ share: Double) -> String { String(format: "%.0f%%", share * 100) }

    func londonTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "Europe/London")
        formatter.dateFormat = "EEE d MMM yyyy HH:mm:ss"
        formatter.locale = Locale(identifier: "en_GB")
        return formatter.string(from: date)
    }

    /// Every pending notice's release time and the account whose password opens it (the
    /// school, or the force's `ESM<force>` for an escalation).
    func pendingNoticeAccounts() async throws -> [(release: Date, account: String)] {
        // Every instance's pending notices, each notice once (instances keep standby copies).
        var releases: [String: (release: Date, account: String)] = [:]
        for instance in pipeline.instances(of: .scheduling) {
            let (status, data) = try await pipeline.client(.scheduling, instance: instance).call("GET", "/v1/pending")
            guard (200..<300).contains(status) else { throw ServiceCallError(description: ServiceClient.refusal(.scheduling, status, data)) }
            for item in try WireFormat.decoder().decode(PendingList.self, from: data).notices {
                guard let release = Timestamp.parse(item.releaseAt) else { continue }
                releases[item.noticeId] = (
                    release, item.escalate ? NoticeAccount.educationSafeguardingManager(forceCode: item.forceCode) : item.schoolURN
                )
            }
        }
        return Array(releases.values)
    }

    /// The notices the pipeline produced, read from `encompass.notices.due`, with dispatch's sent state.
    /// The notices released (as scheduling released them) and, for the judge, each with whether it was sent.
    func readNotices() async throws -> ([DemoJudge.Notice], [NoticeDue]) {
        let bootstrap = try String(contentsOfFile: "\(directory)/broker.bootstrap", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var logger = Logger(label: "encompass.demo")
        logger.logLevel = .critical
        let client = KafkaClientConfiguration(bootstrapServers: bootstrap, clientId: "encompass-demo")
        let rows = try await LagReport.collect(
            client: client, groups: [("encompass-demo-\(MessageID.fresh())", [Topics.noticesDue.name])], logger: logger)
        let total = rows.reduce(0) { $0 + Int($1.endOffset) }
        guard total > 0 else { return ([], []) }
        // Read by assignment, not as a new consumer group: no wait for a group to form.
        var due: [String: NoticeDue] = [:]
        for record in try await KafkaAdmin.readFromStart(
            client: client, topic: Topics.noticesDue.name, count: total, logger: logger, timeout: .seconds(30))
        {
            if let envelope = try? WireFormat.decode(NoticeDue.self, from: record.value) { due[envelope.payload.noticeId] = envelope.payload }
        }
        struct Listed: Decodable {
            var noticeId: String
            var state: String
            var sentAt: Date?
        }
        struct Listing: Decodable { var notifications: [Listed] }
        var sent = Set<String>()
        for day in Set(due.values.map { CalendarDate($0.releaseAt).description }) {
            for instance in pipeline.instances(of: .dispatch) {
                let listing = try await pipeline.client(.dispatch, instance: instance).decode(
                    Listing.self, "GET", "/v1/notifications", query: ["date": day])
                for item in listing.notifications where item.sentAt != nil { sent.insert(item.noticeId) }
            }
        }
        return (
            due.values.map { notice in
                DemoJudge.Notice(
                    occurrenceNumber: notice.request.incident.occurrenceNumber, child: notice.request.child,
                    childSource: notice.request.childSource, schoolURN: notice.request.school.urn, sent: sent.contains(notice.noticeId),
                    escalation: notice.escalation, releaseAt: notice.releaseAt, forceCode: notice.request.incident.forceCode,
                    route: Self.route(notice))
            }, Array(due.values)
        )
    }

    /// What the day held of the statutory duty's cases: reports after the day of the
    /// incident, early years settings, out-of-area schools and how they were reached, children on
    /// no school roll, schools' "no longer attends" answers redirected.
    static func dutySummary(day: [Incident], released: [NoticeDue]) -> String {
        func londonDay(_ date: Date) -> CalendarDate { CalendarDate(date) }
        let late = day.filter { londonDay($0.reportedAt) > londonDay($0.occurredAt) }
        let lateNotices = released.filter { londonDay($0.request.incident.reportedAt) > londonDay($0.request.incident.occurredAt) }
        let earlyYears = released.filter { $0.request.school.earlyYears }
        let outOfArea = released.filter { $0.request.resolution.contains { $0.contains("outside force") } }
        let throughLA = outOfArea.filter { $0.request.resolution.contains { $0.contains("no contacts held for the school: notified through") } }
        let unrouted = outOfArea.filter { $0.request.school.channel == .telephone && $0.request.school.contacts.isEmpty }
        let notOnRoll = released.filter { $0.request.school.urn.hasPrefix("LA") && !$0.escalation }
        let redirected = released.filter { $0.noticeId.split(separator: "-").last?.hasPrefix("r") == true }
        return "\(late.count) late reports (reported after the day; \(lateNotices.count) notices), "
            + "\(earlyYears.count) notices to early years settings, "
            + "\(outOfArea.count) to out-of-area schools (\(throughLA.count) through the LA's Operation Encompass contact, \(unrouted.count) telephone tasks), "
            + "\(notOnRoll.count) children on no school roll (to the home LA), "
            + "\(redirected.count) notices redirected after a \"no longer attends\""
    }

    /// How a released notice reaches its setting, as school resolution routed it.
    static func route(_ due: NoticeDue) -> DemoJudge.Route {
        let request = due.request
        if due.escalation { return .escalation }
        if request.school.urn.hasPrefix("LA") { return .notOnRoll }
        if due.noticeId.split(separator: "-").last?.hasPrefix("r") == true { return .redirected }
        if request.resolution.contains(where: { $0.contains("outside force") }) {
            if request.resolution.contains(where: { $0.contains("no contacts held for the school: notified through") }) { return .outOfAreaAuthority }
            if request.resolution.contains(where: { $0.contains(ResolvedSchool.unroutedOutOfArea) }) { return .outOfAreaTelephone }
            return .outOfAreaSchool
        }
        return request.school.earlyYears ? .earlyYears : .school
    }

    /// One line per route (notices, sent, to the child's real school), then the late report's
    /// release; `UNSENT` lines for any notice of a route not sent.
    static func routeLines(_ routes: [DemoJudge.Route: DemoJudge.RouteCheck], released: [NoticeDue], lateReported: Date?) -> String {
        var lines: [String] = []
        for route in DemoJudge.Route.allCases {
            let check = routes[route] ?? DemoJudge.RouteCheck()
            var channels = ""
            if route == .earlyYears {
                let phoned = released.filter { route == Self.route($0) && $0.request.school.channel == .telephone }.count
                channels = " (\(check.notices - phoned) by email, \(phoned) by telephone)"
            }
            let label = "  " + route.rawValue
            lines.append(
                label.padding(toLength: max(label.count + 1, 38), withPad: " ", startingAt: 0)
                    + "\(check.notices) notices\(channels), \(check.sent) sent, \(check.correct) to the child's own school"
                    + check.unsent.map { "\n            UNSENT \($0)" }.joined())
        }
        let lateLabel = "  late report in the release window".padding(toLength: 38, withPad: " ", startingAt: 0)
        if let lateReported {
            let late = released.filter { $0.request.incident.reportedAt == lateReported && !$0.escalation }
            let waited = late.filter { $0.releaseAt.timeIntervalSince(lateReported) > 15 * 60 }
            lines.append(
                lateLabel + "reported \(DemoRun.londonClock(lateReported)): \(late.count) notices released at once"
                    + (late.isEmpty
                        ? ""
                        : " (\(late.map { DemoRun.londonClock($0.releaseAt) }.min() ?? "")…\(late.map { DemoRun.londonClock($0.releaseAt) }.max() ?? ""))")
                    + (waited.isEmpty ? "" : "; \(waited.count) WAITED for a later release"))
        } else {
            lines.append(lateLabel + "none (the first release was not a school morning)")
        }
        return lines.joined(separator: "\n")
    }

    static func londonClock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "Europe/London")
        formatter.dateFormat = "HH:mm:ss"
        formatter.locale = Locale(identifier: "en_GB")
        return formatter.string(from: date)
    }

    func deadLetterCounts() async throws -> String {
        var parts: [String] = []
        for service in ServiceName.allCases {
            var count = 0
            for instance in pipeline.instances(of: service) {
                count += try await pipeline.operationsClient(service, instance: instance)
                    .decode([DeadLetterView].self, "GET", "/v1/dead-letters", query: ["status": "all", "limit": "10000"]).count
            }
            if count > 0 { parts.append("\(service.rawValue) \(count)") }
        }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    // MARK: waiting, with a progress line

    func progress(_ what: String, timeout: Duration = .seconds(600), until done: @escaping (PipelineFigures) -> Bool) async throws {
        say("… \(what)")
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            let figures = await pipeline.figures()
            let line = figures.line
            if line != last {
                FileHandle.standardOutput.write(Data("\r  \(line)\u{1B}[K".utf8))
                last = line
            }
            if done(figures) {
                FileHandle.standardOutput.write(Data("\n".utf8))
                return
            }
            if let name = await pipeline.exited() { throw ServiceCallError(description: "\(name) stopped; see its log in \(directory)/") }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw ServiceCallError(description: "timed out waiting for \(what); see \(directory)/*.log")
    }
}
