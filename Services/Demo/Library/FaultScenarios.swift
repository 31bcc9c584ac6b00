import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging
import ServiceRuntime
import WebSupport

/// Fault scenarios against the pipeline as processes. Each returns what it observed; a test
/// or `encompass faults` decides from that. docs/FAULTS.md describes them.
public enum FaultScenarios {
    public struct KillRestartReport: Codable, Sendable, Equatable {
        public var incidents: Int
        /// Distinct notices on `encompass.notices.due` (one per child expected).
        public var notices: Int
        /// Notices released under more than one message id (a second release not dropped).
        public var noticesWithSeveralIds: Int
        public var occurrencesCovered: Int
        public var mails: Int
        /// Mails that mention a child's name (the email must carry no personal data).
        public var mailsWithPersonalData: Int
        public var killed: [String]

        public var passed: Bool {
            notices == incidents && noticesWithSeveralIds == 0 && occurrencesCovered == incidents && mails == incidents && mailsWithPersonalData == 0
        }
    }

    /// What the checks at the end of a run found; the same for every scenario.
    public struct Outcome: Codable, Sendable, Equatable {
        public var incidents: Int
        /// Distinct notices on `encompass.notices.due` (one per child expected).
        public var notices: Int
        /// Notices released under more than one message id (a second release not dropped).
        public var noticesWithSeveralIds: Int
        public var occurrencesCovered: Int
        /// Incidents (one child each) with more than one notice: the child was given a second id
        /// when its incident was processed again (a redelivery), so the school would hear twice.
        public var occurrencesWithSeveralNotices: Int
        /// Notices mailed (one `<message id>.eml` each).
        public var mails: Int
        /// Second and later copies of a notice's mail (`<message id>.2.eml`…): notices sent twice.
        public var duplicateMails: Int
        /// Mails that mention a child's name (the email must carry no personal data).
        public var mailsWithPersonalData: Int
        /// Dead letters held by the services, with their error classes.
        public var deadLetters: Int
        public var deadLetterClasses: [String]
        /// Notices dispatch found in `sending` after a kill (docs/DISPATCH.md, the at-most-once
        /// window), flagged `uncertain`; of those, the ones whose mail had not been written,
        /// which the scenario resent as MASH would after checking with the school.
        public var uncertain: Int
        public var uncertainResent: Int

        public var passed: Bool {
            notices == incidents && noticesWithSeveralIds == 0 && occurrencesCovered == incidents && occurrencesWithSeveralNotices == 0
                && mails == incidents && duplicateMails == 0 && mailsWithPersonalData == 0 && deadLetters == 0
        }

        public var line: String {
            """
            incidents \(incidents) · notices \(notices) (released under several ids: \(noticesWithSeveralIds)) · occurrences covered \(occurrencesCovered) \
            (with several notices: \(occurrencesWithSeveralNotices)) · \
            mails \(mails) (sent twice: \(duplicateMails), with personal data: \(mailsWithPersonalData)) · dead letters \(deadLetters)\
            \(deadLetterClasses.isEmpty ? "" : " \(deadLetterClasses)") · uncertain after a kill \(uncertain) (resent by MASH: \(uncertainResent))
            """
        }
    }

    // MARK: kill and restart (fixed points)

    /// Two instances of every service (from `pipeline`'s options); incidents fed in batches;
    /// after the third batch one instance of each service is SIGKILLed, after the fifth they are
    /// started again; then the next morning comes. Every child must get exactly one notice and
    /// one mail.
    public static func killAndRestart(_ pipeline: LocalPipeline, incidents count: Int, report progress: @Sendable (String) -> Void) async throws
        -> KillRestartReport
    {
        let incidents = try await prepare(pipeline, count: count, seed: 11)
        let victims = ServiceName.allCases.map { LocalPipeline.Instance(service: $0, number: $0 == .intake ? 2 : 1) }
        try await feed(pipeline, incidents) { batch, _ in
            if batch == 3 {
                for victim in victims { await pipeline.signal(victim, SIGKILL) }
                progress("SIGKILL: \(victims.map(\.name).joined(separator: ", "))")
            }
            if batch == 5 {
                for victim in victims { try await pipeline.restart(victim) }
                progress("restarted them on their own stores")
            }
        }
        try await waitForScheduled(pipeline, count: incidents.count, incidents: incidents)
        try await morning(pipeline, progress: progress)
        try await waitForMails(pipeline, count: incidents.count)
        let outcome = try await check(pipeline, incidents)
        return KillRestartReport(
            incidents: outcome.incidents, notices: outcome.notices, noticesWithSeveralIds: outcome.noticesWithSeveralIds,
            occurrencesCovered: outcome.occurrencesCovered, mails: outcome.mails + outcome.duplicateMails,
            mailsWithPersonalData: outcome.mailsWithPersonalData, killed: victims.map(\.name))
    }

    // MARK: scale 1 -> 3 -> 2 and a SIGKILL

    /// Who owns the pending notices at one step of `rebalance`, as the live scheduling instances
    /// say (`GET /v1/pending`: every instance lists every pending notice, its partition and
    /// whether this instance owns that partition now).
    public struct OwnershipStep: Codable, Sendable, Equatable {
        public var step: String
        /// The live scheduling instances.
        public var instances: [String]
        /// Pending notices listed by the live instances (their union) and by each.
        public var pending: Int
        public var listedBy: [String: Int]
        /// Notices no live instance owns, and notices more than one claims, when the step settled.
        public var unowned: Int
        public var ownedTwice: Int
        /// Seconds until every pending notice had exactly one owner (the group's rebalance).
        public var settledAfter: Double
        /// Open CSC requests listed by the live school resolution instances (their union), and
        /// how many each lists; requests listed by more than one.
        public var cscRequests: Int = 0
        /// The open CSC requests there should be at this step.
        public var cscExpected: Int = 0
        public var cscHeldBy: [String: Int] = [:]
        public var cscListedTwice: Int = 0
    }

    public struct RebalanceReport: Codable, Sendable, Equatable {
        public var steps: [OwnershipStep]
        public var outcome: Outcome
        /// Children whose recorded school matches nothing: each waits for Children's Social Care.
        public var cscChildren: Int
        /// Open CSC requests the SIGKILLed school resolution instance held when it was killed
        /// and its store deleted.
        public var cscLostWithInstance: Int
        /// Requests answered by the returned sheet (a notice each), over the live instances.
        public var cscAnswered: Int
        public var passed: Bool {
            outcome.passed && !steps.isEmpty && cscLostWithInstance > 0 && cscAnswered == cscChildren
                && steps.allSatisfy { step in
                    step.unowned == 0 && step.ownedTwice == 0 && step.listedBy.values.allSatisfy { $0 == step.pending }
                        && step.cscRequests == step.cscExpected && step.cscListedTwice == 0
                }
        }
    }

    /// Three instances of every service configured, one started. Incidents fed in batches; after
    /// the second every service scales to 3, after the fourth back to 2 (instance 3 stopped
    /// gracefully), after the sixth instance 2 of every service is SIGKILLed and left down, and
    /// school resolution's instance 2 loses its store. The first `cscChildren` children's
    /// recorded school matches nothing, so each waits for Children's Social Care on the
    /// instance owning the child (`encompass.school-resolution.changelog`). After each change
    /// the run waits until every pending notice has exactly one live owner and is listed by
    /// every live scheduling instance, and every open CSC request is listed by exactly one live
    /// school resolution instance. Once the rest is scheduled, CSC's returned sheet (each
    /// child's real school) goes to every live instance, each answering the rows it holds; then
    /// the morning comes and every child must get exactly one notice and one mail.
    public static func rebalance(
        _ pipeline: LocalPipeline, incidents count: Int, cscChildren: Int = 12,
        report progress: @Sendable (String) -> Void
    ) async throws -> RebalanceReport {
        var incidents = try await prepare(pipeline, count: count, seed: 13, upTo: 1)
        let csc = min(cscChildren, incidents.count)
        var realSchool: [String: String] = [:]
        for index in 0..<csc {
            realSchool[incidents[index].occurrenceNumber] = incidents[index].children[0].school?.urn
            incidents[index].children[0].school = RecordedSchool(name: "Quxworth Zyzzyva Academy")
        }
        var steps: [OwnershipStep] = []
        var lostWithInstance = 0
        steps.append(try await settleOwnership(pipeline, step: "1 instance", csc: 0, progress: progress))
        try await feed(pipeline, incidents) { batch, _ in
            switch batch {
            case 2:
                for service in ServiceName.allCases { try await pipeline.scale(service, to: 3) }
                progress("scaled every service 1 -> 3")
                steps.append(try await settleOwnership(pipeline, step: "scaled 1 -> 3", csc: csc, progress: progress))
            case 4:
                for service in ServiceName.allCases { try await pipeline.scale(service, to: 2) }
                progress("scaled every service 3 -> 2 (instance 3 stopped)")
                steps.append(try await settleOwnership(pipeline, step: "scaled 3 -> 2", csc: csc, progress: progress))
            case 6:
                lostWithInstance = try await openRequests(pipeline, instance: 2).count
                for service in ServiceName.allCases { await pipeline.signal(.init(service: service, number: 2), SIGKILL) }
                let lost = LocalPipeline.Instance(service: .schoolResolution, number: 2)
                let folder = "\(pipeline.options.directory)/\(lost.name)"
                for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
                where file.hasPrefix("\(ServiceName.schoolResolution.rawValue).sqlite") {
                    try FileManager.default.removeItem(atPath: "\(folder)/\(file)")
                }
                progress(
                    "SIGKILL: instance 2 of every service, left down; \(lost.name)'s store deleted with its \(lostWithInstance) open CSC requests")
                steps.append(try await settleOwnership(pipeline, step: "SIGKILL of instance 2", csc: csc, progress: progress))
            default: break
            }
        }
        try await waitForScheduled(pipeline, count: incidents.count - csc)
        steps.append(try await settleOwnership(pipeline, step: "all scheduled", csc: csc, progress: progress))
        let answered = try await answerCSC(pipeline, realSchool: realSchool)
        progress("CSC's returned sheet: \(answered) requests answered by the live school resolution instances")
        try await waitForScheduled(pipeline, count: incidents.count, incidents: incidents)
        try await morning(pipeline, progress: progress)
        try await waitForMails(pipeline, count: incidents.count)
        return RebalanceReport(
            steps: steps, outcome: try await check(pipeline, incidents), cscChildren: csc,
            cscLostWithInstance: lostWithInstance, cscAnswered: answered)
    }

    /// The open CSC requests one school resolution instance holds (`GET /v1/requests`).
    static func openRequests(_ pipeline: LocalPipeline, instance number: Int) async throws -> [[String: String]] {
        let (status, body) = try await pipeline.operationsClient(.schoolResolution, instance: number).call(
            "GET", "/v1/requests", query: ["lpa": "all"])
        guard status == 200 else {
            throw PipelineError("school-resolution-\(number) requests: \(status) \(String(decoding: body.prefix(300), as: UTF8.self))")
        }
        return try WireFormat.decoder().decode(CSCOpenRequests.self, from: body).requests
    }

    /// CSC's returned sheet, every open request with the child's real school, given to every
    /// live school resolution instance (`only=held`: each answers the rows it holds). Returns
    /// how many rows were answered with a notice, over all instances.
    static func answerCSC(_ pipeline: LocalPipeline, realSchool: [String: String]) async throws -> Int {
        let live = await liveInstances(pipeline, .schoolResolution)
        var rows: [String] = []
        for number in live {
            for request in try await openRequests(pipeline, instance: number) {
                guard let id = request["request_id"], let urn = request["occurrence_number"].flatMap({ realSchool[$0] }) else { continue }
                rows.append("\(id),\(urn)")
            }
        }
        let sheet = "request_id,school_urn\r\n" + rows.sorted().joined(separator: "\r\n") + "\r\n"
        var answered = 0
        for number in live {
            let (status, body) = try await pipeline.operationsClient(.schoolResolution, instance: number)
                .call("POST", "/v1/requests/import", query: ["name": "returned.csv", "only": "held"], raw: Data(sheet.utf8), contentType: "text/csv")
            guard (200..<300).contains(status) else {
                throw PipelineError("school-resolution-\(number) import: \(status) \(String(decoding: body.prefix(300), as: UTF8.self))")
            }
            answered += try WireFormat.decoder().decode(CSCImportAnswer.self, from: body).answers.filter { $0.outcome == "notice" }.count
        }
        return answered
    }

    static func liveInstances(_ pipeline: LocalPipeline, _ service: ServiceName) async -> [Int] {
        var live: [Int] = []
        for number in pipeline.instances(of: service) where !(await pipeline.isDown(.init(service: service, number: number))) { live.append(number) }
        return live
    }

    /// Waits (up to 3 minutes) until every pending notice has exactly one owner among the live
    /// scheduling instances and every live instance lists all of them.
    static func settleOwnership(_ pipeline: LocalPipeline, step: String, csc: Int, progress: @Sendable (String) -> Void) async throws -> OwnershipStep
    {
        let started = ContinuousClock.now
        var last: OwnershipStep?
        while ContinuousClock.now - started < .seconds(180) {
            var live: [String] = []
            var owners: [String: Int] = [:]
            var listedBy: [String: Int] = [:]
            for number in pipeline.instances(of: .scheduling) where !(await pipeline.isDown(.init(service: .scheduling, number: number))) {
                let name = "scheduling-\(number)"
                live.append(name)
                guard let (status, body) = try? await pipeline.operationsClient(.scheduling, instance: number).call("GET", "/v1/pending"),
                    status == 200
                else {
                    listedBy[name] = -1
                    continue
                }
                let notices = (try? WireFormat.decoder().decode(PendingList.self, from: body))?.notices ?? []
                listedBy[name] = notices.count
                for notice in notices { owners[notice.noticeId, default: 0] += notice.ownedHere ? 1 : 0 }
            }
            var requests: [String: Int] = [:]
            var heldBy: [String: Int] = [:]
            for number in await liveInstances(pipeline, .schoolResolution) {
                guard let held = try? await openRequests(pipeline, instance: number) else {
                    heldBy["school-resolution-\(number)"] = -1
                    continue
                }
                heldBy["school-resolution-\(number)"] = held.count
                for request in held { if let id = request["request_id"] { requests[id, default: 0] += 1 } }
            }
            let current = OwnershipStep(
                step: step, instances: live, pending: owners.count, listedBy: listedBy,
                unowned: owners.values.filter { $0 == 0 }.count, ownedTwice: owners.values.filter { $0 > 1 }.count,
                settledAfter: (ContinuousClock.now - started).seconds, cscRequests: requests.count, cscExpected: csc, cscHeldBy: heldBy,
                cscListedTwice: requests.values.filter { $0 > 1 }.count)
            last = current
            if current.unowned == 0, current.ownedTwice == 0, listedBy.values.allSatisfy({ $0 == owners.count }),
                current.cscRequests == csc, current.cscListedTwice == 0, heldBy.values.allSatisfy({ $0 >= 0 })
            {
                progress(
                    "\(step): \(current.pending) pending notices, each owned by exactly one of \(live.joined(separator: ", ")); \(current.cscRequests) open CSC requests, each on one of \(heldBy.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")) (after \(String(format: "%.1f", current.settledAfter)) s)"
                )
                return current
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        progress("\(step): ownership did not settle: \(String(describing: last))")
        return last!
    }

    // MARK: SIGKILL at random points

    public struct Kill: Codable, Sendable, Equatable {
        public var instance: String
        /// `feeding` (while incidents arrive and flow through research, schools, scheduling) or
        /// `morning` (while scheduling releases and dispatch sends).
        public var phase: String
        /// Feeding: the batch after which the kill comes; morning: the share of mails written.
        public var at: Double
        /// Feeding: batches until the restart; morning: seconds until the restart.
        public var downFor: Double
    }

    public struct RandomKillsReport: Codable, Sendable, Equatable {
        public var seed: UInt64
        public var kills: [Kill]
        public var outcome: Outcome
        public var seconds: Double
        public var passed: Bool { outcome.passed && kills.count >= ServiceName.allCases.count }
    }

    /// The kill plan for a seed: every instance-holding service is SIGKILLed once while the
    /// incidents flow and once during the morning send, at random points, then restarted after a
    /// random time; `extra` more kills land on random instances.
    public static func killPlan(seed: UInt64, batches: Int, instances: [ServiceName: Int], extra: Int = 0) -> [Kill] {
        var random = SeededRandom(seed: seed)
        var plan: [Kill] = []
        func instance(_ service: ServiceName) -> String {
            "\(service.rawValue)-\(Int.random(in: 1...max(1, instances[service] ?? 1), using: &random))"
        }
        func feeding(_ service: ServiceName) -> Kill {
            Kill(
                instance: instance(service), phase: "feeding", at: Double(Int.random(in: 1...max(1, batches - 1), using: &random)),
                downFor: Double(Int.random(in: 1...3, using: &random)))
        }
        func morning(_ service: ServiceName) -> Kill {
            Kill(
                instance: instance(service), phase: "morning", at: (Double.random(in: 0.05..<0.9, using: &random) * 100).rounded() / 100,
                downFor: (Double.random(in: 0.5..<4, using: &random) * 10).rounded() / 10)
        }
        for service in ServiceName.allCases {
            plan.append(feeding(service))
            plan.append(morning(service))
        }
        for _ in 0..<extra {
            let service = random.pick(ServiceName.allCases)
            plan.append(random.chance(0.5) ? feeding(service) : morning(service))
        }
        return plan
    }

    /// Incidents fed in batches of 50 while the kill plan SIGKILLs instances (each restarted on
    /// its own store after its down time); then the morning, with more kills while scheduling
    /// releases and dispatch sends. A notice that reaches both dispatch instances (a partition
    /// moved before the commit) is sent by the first claim's (docs/DISPATCH.md); a kill between
    /// an attempt mark and the relay's answer leaves the mail `uncertain`, and MASH resends it
    /// after checking with the school (the mail folder).
    /// Every child must get exactly one notice and one mail.
    public static func randomKills(
        _ pipeline: LocalPipeline, incidents count: Int, seed: UInt64, extraKills: Int = 0,
        report progress: @escaping @Sendable (String) -> Void
    ) async throws -> RandomKillsReport {
        let began = ContinuousClock.now
        let batches = (count + batchSize - 1) / batchSize
        let plan = killPlan(seed: seed, batches: batches, instances: pipeline.options.instances, extra: extraKills)
        progress("seed \(seed): kill plan \(plan.map { "\($0.instance)@\($0.phase) \($0.at)" }.joined(separator: ", "))")
        let incidents = try await prepare(pipeline, count: count, seed: seed)
        func instance(_ name: String) -> LocalPipeline.Instance {
            let service = ServiceName.allCases.first { name.hasPrefix($0.rawValue + "-") }!
            return LocalPipeline.Instance(service: service, number: Int(name.dropFirst(service.rawValue.count + 1)) ?? 1)
        }
        // Feeding: kill after batch `at`, restart after batch `at + downFor` (or at the end of feeding).
        var down: [LocalPipeline.Instance: Int] = [:]
        try await feed(pipeline, incidents) { batch, _ in
            for (victim, until) in down where until <= batch {
                try await pipeline.restart(victim)
                down[victim] = nil
                progress("batch \(batch): restarted \(victim.name)")
            }
            for kill in plan where kill.phase == "feeding" && Int(kill.at) == batch {
                let victim = instance(kill.instance)
                guard down[victim] == nil else { continue }
                await pipeline.signal(victim, SIGKILL)
                down[victim] = batch + Int(kill.downFor)
                progress("batch \(batch): SIGKILL \(victim.name)")
            }
        }
        for victim in down.keys {
            try await pipeline.restart(victim)
            progress("end of feeding: restarted \(victim.name)")
        }
        try await waitForScheduled(pipeline, count: incidents.count, incidents: incidents)
        progress("every notice scheduled")

        // Morning: kill when the share `at` of the mails is written, restart `downFor` seconds later.
        try await morning(pipeline, progress: progress)
        let mornings = plan.filter { $0.phase == "morning" }.sorted { $0.at < $1.at }
        var restarts: [Task<Void, any Error>] = []
        for kill in mornings {
            let target = Int(kill.at * Double(incidents.count))
            let reached = try await waitForMails(pipeline, count: target, giveUpWhenQuiet: true)
            let victim = instance(kill.instance)
            await pipeline.signal(victim, SIGKILL)
            progress("\(reached) mails: SIGKILL \(victim.name)")
            restarts.append(
                Task {
                    try await Task.sleep(for: .milliseconds(Int(kill.downFor * 1000)))
                    try await pipeline.restart(victim)
                    progress("restarted \(victim.name)")
                })
        }
        for restart in restarts { try await restart.value }
        try await waitForMails(pipeline, count: incidents.count)
        let resent = try await resendUncertain(pipeline, progress: progress)
        if resent.resent > 0 { try await waitForMails(pipeline, count: incidents.count) }
        var outcome = try await check(pipeline, incidents)
        outcome.uncertain = resent.uncertain
        outcome.uncertainResent = resent.resent
        return RandomKillsReport(seed: seed, kills: plan, outcome: outcome, seconds: (ContinuousClock.now - began).seconds)
    }

    // MARK: broker faults

    public struct Injection: Codable, Sendable, Equatable {
        public var what: String
        /// When: the batch of incidents, or `morning`.
        public var when: String
        /// Request errors pushed (over all brokers) and served by the time of the checks.
        public var pushed: Int?
        public var served: Int?
    }

    public struct BrokerFaultsReport: Codable, Sendable, Equatable {
        public var brokers: Int
        public var injections: [Injection]
        public var outcome: Outcome
        public var seconds: Double
        /// Every check holds and every pushed error stack was hit at least once.
        public var passed: Bool { outcome.passed && injections.allSatisfy { ($0.pushed ?? 0) == 0 || ($0.served ?? 0) > 0 } }
    }

    /// The pipeline on a cluster of `pipeline.options.brokers` (3) mock brokers with the fault
    /// control port. While incidents are fed and flow: retriable errors pushed for Produce,
    /// Fetch, OffsetCommit, Heartbeat (which makes members rejoin) and JoinGroup; broker 2 down
    /// for at least `downSeconds` (its partitions and any group it coordinates stall) and up
    /// again; every partition's leadership moved to broker 3. In the morning, while scheduling
    /// releases and dispatch sends: Produce errors again, broker 3 (now every partition's
    /// leader) down and up, slow answers from broker 1. Then the usual checks.
    public static func brokerFaults(
        _ pipeline: LocalPipeline, incidents count: Int, downSeconds: Double = 10,
        report progress: @escaping @Sendable (String) -> Void
    ) async throws -> BrokerFaultsReport {
        let began = ContinuousClock.now
        guard pipeline.options.brokerControl, pipeline.options.brokers >= 3 else {
            throw PipelineError("the broker scenario needs 3 brokers and the control port (LocalPipeline.Options brokers: 3, brokerControl: true)")
        }
        let incidents = try await prepare(pipeline, count: count, seed: 23)
        let batches = (incidents.count + batchSize - 1) / batchSize
        var injections: [Injection] = []
        var stacks: [(index: Int, api: String, brokers: [Int], each: Int)] = []
        func push(_ api: String, _ errors: String, when: String, broker: Int? = nil) async throws {
            let answer = try await pipeline.broker("errors \(api) \(errors)" + (broker.map { " broker=\($0)" } ?? ""))
            let each = Int(answer.split(separator: " ").dropFirst().first ?? "") ?? 0
            let brokers = broker.map { [$0] } ?? Array(1...pipeline.options.brokers)
            injections.append(
                Injection(
                    what: "\(api) errors \(errors) on \(broker.map { "broker \($0)" } ?? "every broker")", when: when,
                    pushed: each * brokers.count, served: nil))
            stacks.append((injections.count - 1, api, brokers, each))
            progress("\(when): \(api) errors \(errors)")
        }
        func note(_ what: String, when: String) {
            injections.append(Injection(what: what, when: when))
            progress("\(when): \(what)")
        }
        func point(_ share: Double) -> Int { max(1, Int(Double(batches) * share)) }
        var downSince: ContinuousClock.Instant?
        try await feed(pipeline, incidents) { batch, _ in
            let when = "batch \(batch)"
            if batch == point(0.1) {
                try await push("produce", "NOT_LEADER_OR_FOLLOWER*10,REQUEST_TIMED_OUT*5,NOT_ENOUGH_REPLICAS*5", when: when)
            }
            if batch == point(0.2) {
                try await push("fetch", "NOT_LEADER_OR_FOLLOWER*10,REQUEST_TIMED_OUT*5", when: when)
            }
            if batch == point(0.3) {
                try await push(
                    "offset-commit", "REBALANCE_IN_PROGRESS*4,COORDINATOR_NOT_AVAILABLE*4,NOT_COORDINATOR*4,REQUEST_TIMED_OUT*4", when: when)
            }
            if batch == point(0.4) {
                try await push("join-group", "COORDINATOR_LOAD_IN_PROGRESS*2,COORDINATOR_NOT_AVAILABLE*2", when: when)
                try await push("heartbeat", "REBALANCE_IN_PROGRESS*3", when: when)
            }
            if batch == point(0.5) {
                try await pipeline.broker("down 2")
                downSince = .now
                note("broker 2 down (its partitions have no leader meanwhile)", when: when)
            }
            if batch == point(0.7) || (batch == batches && downSince != nil) {
                if let since = downSince {
                    let left = downSeconds - (ContinuousClock.now - since).seconds
                    if left > 0 { try await Task.sleep(for: .milliseconds(Int(left * 1000))) }
                    try await pipeline.broker("up 2")
                    note("broker 2 up after \(String(format: "%.1f", (ContinuousClock.now - since).seconds)) s", when: "batch \(batch)")
                    downSince = nil
                }
            }
            if batch == point(0.8) {
                let answer = try await pipeline.broker("leader * * 3")
                note("leadership of every partition moved to broker 3 (\(answer))", when: when)
            }
        }
        try await waitForScheduled(pipeline, count: incidents.count, incidents: incidents)
        progress("every notice scheduled")

        try await morning(pipeline, progress: progress)
        try await waitForMails(pipeline, count: incidents.count / 10, giveUpWhenQuiet: true)
        // Broker 3 leads every partition now: the morning's produce requests all go there.
        try await push("produce", "NOT_LEADER_OR_FOLLOWER*10,REQUEST_TIMED_OUT*5", when: "morning", broker: 3)
        try await pipeline.broker("rtt 1 300")
        note("broker 1 answers 300 ms late", when: "morning")
        try await waitForMails(pipeline, count: incidents.count / 3, giveUpWhenQuiet: true)
        try await pipeline.broker("down 3")
        let since = ContinuousClock.now
        note("broker 3 (every partition's leader) down", when: "morning")
        try await Task.sleep(for: .milliseconds(Int(downSeconds * 1000)))
        try await pipeline.broker("up 3")
        try await pipeline.broker("rtt 1 0")
        note("broker 3 up after \(String(format: "%.1f", (ContinuousClock.now - since).seconds)) s; broker 1 prompt again", when: "morning")
        try await waitForMails(pipeline, count: incidents.count)
        // Each broker serves its stack in order: what is left belongs to the latest pushes.
        for index in stacks.indices { injections[stacks[index].index].served = 0 }
        for api in Set(stacks.map(\.api)) {
            for broker in 1...pipeline.options.brokers {
                var left = Int(try await pipeline.broker("remaining \(api) broker=\(broker)").split(separator: " ").dropFirst().first ?? "") ?? 0
                for stack in stacks.reversed() where stack.api == api && stack.brokers.contains(broker) {
                    let unserved = min(stack.each, left)
                    left -= unserved
                    injections[stack.index].served! += stack.each - unserved
                }
            }
        }
        let outcome = try await check(pipeline, incidents)
        return BrokerFaultsReport(
            brokers: pipeline.options.brokers, injections: injections, outcome: outcome,
            seconds: (ContinuousClock.now - began).seconds)
    }

    // MARK: the parts

    // MARK: poison records

    /// A dead letter as a service lists it.
    public struct DeadLetterSeen: Codable, Sendable, Equatable {
        public var service: String
        /// The instance whose store holds it (`intake-2`).
        public var instance: String
        public var errorClass: String
        public var errorMessage: String
        /// The record it was made from: topic, partition, offset and message id. A record
        /// dead-lettered by one instance whose offset commit the rebalance refused is read again
        /// by the partition's next owner, which dead-letters it too: two copies, one record.
        public var record: String
    }

    public struct PoisonReport: Codable, Sendable, Equatable {
        /// The checks over the genuine incidents (its dead letters are the poison's).
        public var outcome: Outcome
        /// What was sent, and where.
        public var poisons: [String]
        /// Every dead letter of every instance, with its reason.
        public var deadLetters: [DeadLetterSeen]
        /// The records behind them: a record two instances dead-lettered (a rebalance re-read
        /// it) counts once.
        public var deadLetteredRecords: Int { Set(deadLetters.map { "\($0.service) \($0.record)" }).count }
        /// Rows left in the outboxes of all instances at the end (`encompass_outbox_pending`).
        public var outboxRows: Int
        /// `encompass_outbox_oldest_age_seconds` at the end, summed over the instances.
        public var oldestOutboxRowSeconds: Double

        /// The feed's record refused by intake's field limits, naming the field.
        public var feedPoisonRejected: Bool {
            deadLetters.contains {
                $0.service == "intake" && $0.errorClass == "payload.validation"
                    && $0.errorMessage.contains("children[0].givenName: is \(FaultScenarios.feedPoisonNameLength) characters long")
            }
        }

        /// The outbox row Kafka refused, dead-lettered with Kafka's reason.
        public var outboxPoisonDeadLettered: Bool {
            deadLetters.contains { $0.service == "intake" && $0.errorClass == "outbox.refused" && $0.errorMessage.contains("MSG_SIZE_TOO_LARGE") }
        }

        public var passed: Bool {
            var genuine = outcome
            genuine.deadLetters = 0
            return genuine.passed && deadLetteredRecords == 2 && feedPoisonRejected && outboxPoisonDeadLettered
                && outboxRows == 0 && oldestOutboxRowSeconds == 0
        }
    }

    /// The child name of the records feed's poison: its record stays under the broker's
    /// 1,000,000 bytes.
    static let feedPoisonNameLength = 900_000

    /// Poison records through the pipeline as processes: a record Kafka refuses must not hold
    /// back the records behind it, silently. Two poison records among genuine incidents:
    ///
    /// 1. a records system writes an incident with a 900,000-character child name straight to
    ///    `encompass.incidents.raw` (the record is under the broker's limit, so Kafka takes it);
    ///    intake's field limits refuse it (a dead letter naming the field), so it never grows
    ///    into a message Kafka would refuse one hop later;
    /// 2. halfway through the feed intake-1 is stopped and a 1.2 MB `IncidentRecorded` is put
    ///    in its outbox, as a release without `Outbox`'s size check could leave it (and an
    ///    upgrade carries over); intake-1 is started again and the rest is fed
    ///    to it, so genuine incidents queue behind the poison. Its relay must dead-letter it
    ///    (`outbox.refused`, MSG_SIZE_TOO_LARGE) and publish the rows behind it.
    ///
    /// Then the morning: every genuine child must get exactly one notice and one mail, the two
    /// poisons must be dead letters with their reasons (and nothing else), and every outbox
    /// of every instance empty.
    public static func poisonRecords(_ pipeline: LocalPipeline, incidents count: Int, report progress: @Sendable (String) -> Void) async throws
        -> PoisonReport
    {
        let incidents = try await prepare(pipeline, count: count, seed: 23)
        var poisons: [String] = []
        var feedPoison = incidents[0]
        feedPoison.occurrenceNumber = "26599999991"
        feedPoison.children[0].givenName = String(repeating: "A", count: feedPoisonNameLength)
        let value = Array(try WireFormat.data(feedPoison))
        let bootstrap = try String(contentsOfFile: pipeline.bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var logger = Logger(label: "encompass.faults")
        logger.logLevel = .critical
        let producer = try KafkaProducer(
            configuration: .init(client: KafkaClientConfiguration(bootstrapServers: bootstrap, clientId: "records-feed")),
            logger: logger)
        do {
            try await producer.send(ProducerRecord(topic: Topics.incidentsRaw.name, key: feedPoison.occurrenceNumber, value: value))
        } catch {
            await producer.close()
            throw error
        }
        await producer.close()
        poisons.append("\(Topics.incidentsRaw.name): an incident of \(value.count) bytes with a \(feedPoisonNameLength)-character child name")
        progress(poisons[0])

        // The first half over HTTP; then intake-1 stops with the poison at the head of its
        // outbox and the next batch of accepted incidents behind it, as intake's HTTP API
        // queues them (raw-topic submissions); then it starts again, and the rest is fed.
        let intake = LocalPipeline.Instance(service: .intake, number: 1)
        let split = max(1, incidents.count / 2 / batchSize) * batchSize
        let behind = Array(incidents[split..<min(incidents.count, split + batchSize)])
        try await feed(pipeline, Array(incidents[..<split])) { _, _ in }
        await pipeline.signal(intake, SIGTERM)
        var poison = incidents[0]
        poison.occurrenceNumber = "26599999992"
        poison.children[0].givenName = String(repeating: "B", count: 1_200_000)
        let envelope = Envelope(
            id: MessageID.derived(from: poison.occurrenceNumber, "poison"), key: poison.occurrenceNumber, producer: "intake",
            payload: IncidentRecorded(kind: .new, revision: 1, changes: [], source: "feed", incident: poison))
        let row = try WireFormat.encode(envelope)
        let store = try ServiceStore(path: "\(pipeline.options.directory)/\(intake.name)/\(ServiceName.intake.rawValue).sqlite")
        try await store.pool.write { db in
            // As the version before the size check queued it: straight into the table.
            try db.execute(
                sql: "INSERT INTO outbox (messageId, topic, key, value, headers, createdAt) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    envelope.id, Topics.incidents.name, envelope.key, Data(row),
                    #"{"encompass-message-id":"\#(envelope.id)"}"#, Date(),
                ])
            let outbox = Outbox(db: db, producer: "intake-http")
            for incident in behind {
                try outbox.publish(incident, to: Topics.incidentsRaw.name, key: incident.occurrenceNumber, id: MessageID.fresh())
            }
        }
        poisons.append(
            "\(intake.name)'s outbox: an IncidentRecorded of \(row.count) bytes for \(Topics.incidents.name), queued while it was stopped, \(behind.count) accepted incidents behind it"
        )
        progress(poisons[1])
        try await pipeline.restart(intake)
        progress("\(intake.name) restarted")
        try await feed(pipeline, Array(incidents[min(incidents.count, split + batchSize)...])) { _, _ in }
        try await waitForScheduled(pipeline, count: incidents.count, incidents: incidents)
        try await morning(pipeline, progress: progress)
        try await waitForMails(pipeline, count: incidents.count)
        let outcome = try await check(pipeline, incidents)
        let letters = try await deadLetters(pipeline)
        let figures = await pipeline.figures()
        return PoisonReport(
            outcome: outcome, poisons: poisons, deadLetters: letters, outboxRows: Int(figures.total("encompass_outbox_pending")),
            oldestOutboxRowSeconds: figures.total("encompass_outbox_oldest_age_seconds"))
    }

    static let batchSize = 50
    static let day = CalendarDate(year: 2026, month: 11, day: 23)

    /// The notice-page password the scenarios give every school (dispatch holds mail to a school without one).
    public static let schoolPassword = "fault-scenario-school-2026"

    /// Starts the pipeline at 23:30, imports every school's safeguarding contact, gives each
    /// school a notice password and returns the incidents (one eligible child each, at a school
    /// with an email contact).
    static func prepare(_ pipeline: LocalPipeline, count: Int, seed: UInt64, upTo: Int? = nil) async throws -> [Incident] {
        try await pipeline.start(clock: day.at(hour: 23, minute: 30), upTo: upTo)
        let schools = try SchoolList.read(path: SchoolList.shippedFile)
        let incidents = WorldGenerator.eligibleIncidents(count: count, day: day, schools: schools, seed: seed)
        let urns = Set(incidents.flatMap { $0.children.compactMap { $0.school?.urn } })
        let contacts =
            "urn,role,name,email,phone\r\n"
            + urns.sorted().map { "\($0),dsl,DSL,dsl.\($0)@schools.example.org.uk,0118 000 0000" }.joined(separator: "\r\n")
        let (imported, answer) = try await pipeline.client(.schoolResolution).call(
            "POST", "/v1/contacts/import", query: ["name": "contacts.csv"],
            raw: Data(contacts.utf8), contentType: "text/csv")
        guard (200..<300).contains(imported) else { throw PipelineError("contacts import refused: \(String(decoding: answer, as: UTF8.self))") }
        try await pipeline.setSchoolPasswords(Array(urns), password: schoolPassword)
        try await pipeline.quiet(stable: .seconds(2))
        return incidents
    }

    /// Posts the incidents to intake in batches of 50 (any instance that is up), calling `after`
    /// with the batch number (from 1) after each.
    static func feed(_ pipeline: LocalPipeline, _ incidents: [Incident], after: (Int, [Incident]) async throws -> Void) async throws {
        for (index, start) in stride(from: 0, to: incidents.count, by: batchSize).enumerated() {
            let slice = Array(incidents[start..<min(start + batchSize, incidents.count)])
            let body = try WireFormat.data(slice)
            var accepted = false
            var refusals: [String] = []
            // An intake instance may be down (killed on purpose): the records system tries another.
            for attempt in 0..<60 where !accepted {
                for number in pipeline.instances(of: .intake) {
                    do {
                        let (status, answer) = try await pipeline.client(.intake, instance: number).call("POST", "/v1/incidents", raw: body)
                        if status == 202 {
                            accepted = true
                            break
                        }
                        refusals.append("intake-\(number) answered \(status): \(String(decoding: answer.prefix(300), as: UTF8.self))")
                    } catch {
                        refusals.append("\(error)")
                    }
                }
                if !accepted { try await Task.sleep(for: .milliseconds(500 + 100 * attempt)) }
            }
            guard accepted else { throw PipelineError("no intake instance took batch \(index + 1): \(refusals.suffix(3))") }
            try await after(index + 1, slice)
        }
    }

    /// The next school morning, with the clock running in real time from 07:59:50.
    static func morning(_ pipeline: LocalPipeline, progress: @Sendable (String) -> Void) async throws {
        try await pipeline.setClock(day.adding(days: 1).at(hour: 7, minute: 59).addingTimeInterval(50), rate: 1)
        progress("clock → the next school morning")
    }

    struct MailCount {
        var first = 0
        var copies = 0
    }

    /// Notices mailed (first copies) and second copies in the mail folder.
    static func mails(in directory: String) -> MailCount {
        var count = MailCount()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".eml") {
            let stem = name.dropLast(4)
            if let dot = stem.lastIndex(of: "."), Int(stem[stem.index(after: dot)...]) != nil { count.copies += 1 } else { count.first += 1 }
        }
        return count
    }

    /// Waits until `count` notices are mailed; returns how many are. With `giveUpWhenQuiet`, also
    /// returns once no new mail came for 20 s (a kill point, not a check). Otherwise also returns
    /// once dispatch reports `count` notices settled (sent, uncertain or failed), so a run whose
    /// kills left some mail `uncertain` goes on to MASH's follow-up; throws after the timeout.
    @discardableResult
    static func waitForMails(_ pipeline: LocalPipeline, count: Int, giveUpWhenQuiet: Bool = false, timeout: Duration = .seconds(900)) async throws
        -> Int
    {
        let directory = pipeline.mailDirectory
        let deadline = ContinuousClock.now + timeout
        var last = -1
        var sameSince = ContinuousClock.now
        var lastAsked = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let now = mails(in: directory).first
            if now >= count { return now }
            if now != last {
                last = now
                sameSince = .now
            }
            if let name = await pipeline.exited() {
                throw PipelineError("\(name) stopped while waiting for mail; see \(pipeline.options.directory)/")
            }
            if ContinuousClock.now - sameSince > .seconds(20) {
                if giveUpWhenQuiet { return now }
                if ContinuousClock.now - lastAsked > .seconds(5) {
                    lastAsked = .now
                    if let settled = try? await settledNotices(pipeline), settled >= count { return now }
                }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw PipelineError("timed out waiting for \(count) mails (\(mails(in: directory).first) written); see \(pipeline.options.directory)/*.log")
    }

    /// Notices of the release day whose mail dispatch has finished with: sent, uncertain or failed.
    static func settledNotices(_ pipeline: LocalPipeline) async throws -> Int {
        var settled = Set<String>()
        for number in pipeline.instances(of: .dispatch) {
            let (status, body) = try await pipeline.operationsClient(.dispatch, instance: number)
                .call("GET", "/v1/notifications", query: ["date": day.adding(days: 1).description])
            guard status == 200 else { continue }
            let list = try WireFormat.decoder().decode(NotificationList.self, from: body).notifications
            for notice in list where ["sent", "uncertain", "failed"].contains(notice.mail?.state ?? "") { settled.insert(notice.noticeId) }
        }
        return settled.count
    }

    /// Waits until scheduling holds `count` pending notices (every instance keeps a standby copy
    /// of all of them; the union is taken) and the pipeline is quiet: only then may the clock
    /// move to the morning. Quiet alone is not enough under faults: a consumer group can be
    /// stalled for longer than any quiet period (a session timeout while its coordinator is down).
    /// The timeout is below the fault tests' 900 s for the whole run, so a notice that never comes
    /// is reported here, with how many came and which of `incidents` have none.
    static func waitForScheduled(
        _ pipeline: LocalPipeline, count: Int, incidents: [Incident] = [], timeout: Duration = .seconds(600)
    ) async throws {
        let seen = Locked<(notices: Int, occurrences: Set<String>)>((0, []))
        do {
            try await pipeline.waitFor("\(count) notices scheduled", timeout: timeout) {
                // Each answer lists every pending notice: ask once a second, not five times.
                try? await Task.sleep(for: .seconds(1))
                var pending = Set<String>()
                var occurrences = Set<String>()
                for number in pipeline.instances(of: .scheduling) {
                    guard let (status, body) = try? await pipeline.operationsClient(.scheduling, instance: number).call("GET", "/v1/pending"),
                        status == 200
                    else { continue }
                    for item in (try? WireFormat.decoder().decode(PendingList.self, from: body))?.notices ?? [] {
                        pending.insert(item.noticeId)
                        occurrences.insert(item.occurrenceNumber)
                    }
                }
                seen.withLock { $0 = (pending.count, occurrences) }
                return pending.count >= count
            }
        } catch let error as PipelineError {
            let (notices, occurrences) = seen.withLock { $0 }
            let missing = incidents.map(\.occurrenceNumber).filter { !occurrences.contains($0) }
            throw PipelineError(
                "\(error.description) (\(notices) of \(count) scheduled"
                    + (missing.isEmpty ? ")" : "; no notice for occurrence(s) \(missing.prefix(20).joined(separator: ", ")))"))
        }
        try await pipeline.quiet(stable: .seconds(3), timeout: .seconds(300))
    }

    /// MASH's follow-up of notices left `uncertain` by a kill: a notice whose mail is in the
    /// folder reached the school; the others are resent (`POST /v1/notifications/{id}/resend`).
    static func resendUncertain(_ pipeline: LocalPipeline, progress: @Sendable (String) -> Void) async throws -> (uncertain: Int, resent: Int) {
        try await pipeline.quiet(stable: .seconds(4), timeout: .seconds(300))
        var uncertain: [String] = []
        for number in pipeline.instances(of: .dispatch) {
            let client = pipeline.operationsClient(.dispatch, instance: number)
            let (status, body) = try await client.call("GET", "/v1/notifications", query: ["date": day.adding(days: 1).description])
            guard status == 200 else {
                throw PipelineError("dispatch-\(number) notifications: \(status) \(String(decoding: body.prefix(300), as: UTF8.self))")
            }
            let list = try WireFormat.decoder().decode(NotificationList.self, from: body).notifications
            for notice in list where notice.mail?.state == "uncertain" { uncertain.append(notice.noticeId) }
        }
        var resent = 0
        for id in uncertain {
            let file = "\(pipeline.mailDirectory)/\(MessageID.derived(from: id, "notice-mail"))@encompass.invalid.eml"
            if FileManager.default.fileExists(atPath: file) { continue } // the school has it
            var done = false
            for number in pipeline.instances(of: .dispatch) where !done {
                let (status, _) = try await pipeline.operationsClient(.dispatch, instance: number)
                    .call("POST", "/v1/notifications/\(id)/resend", json: ResendRequest(by: "fault scenario (MASH)"))
                done = status == 202
            }
            if done { resent += 1 }
        }
        if !uncertain.isEmpty { progress("uncertain after a kill: \(uncertain.count); not received, resent by MASH: \(resent)") }
        return (uncertain.count, resent)
    }

    /// Every dead letter of every instance, with its reason (the first 600 characters).
    static func deadLetters(_ pipeline: LocalPipeline) async throws -> [DeadLetterSeen] {
        var letters: [DeadLetterSeen] = []
        for service in ServiceName.allCases {
            for number in pipeline.instances(of: service) where !(await pipeline.isDown(.init(service: service, number: number))) {
                let (status, body) = try await pipeline.operationsClient(service, instance: number).call(
                    "GET", "/v1/dead-letters", query: ["status": "all"])
                guard status == 200 else { throw PipelineError("\(service.rawValue)-\(number) dead letters: \(status)") }
                for letter in try WireFormat.decoder().decode([DeadLetterView].self, from: body) {
                    letters.append(
                        DeadLetterSeen(
                            service: service.rawValue, instance: "\(service.rawValue)-\(number)", errorClass: letter.errorClass,
                            errorMessage: String(letter.errorMessage.prefix(600)),
                            record: "\(letter.originalTopic)/\(letter.originalPartition)@\(letter.originalOffset) \(letter.originalMessageId ?? "")"))
                }
            }
        }
        return letters
    }

    /// Reads `encompass.notices.due` whole, the mail folder and every service's dead letters.
    static func check(_ pipeline: LocalPipeline, _ incidents: [Incident]) async throws -> Outcome {
        try await pipeline.quiet(stable: .seconds(4), timeout: .seconds(300))
        let bootstrap = try String(contentsOfFile: pipeline.bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let client = KafkaClientConfiguration(bootstrapServers: bootstrap, clientId: "fault-check")
        var logger = Logger(label: "encompass.faults")
        logger.logLevel = .critical
        let ends = try await LagReport.collect(
            client: client, groups: [("fault-check-\(MessageID.fresh())", [Topics.noticesDue.name])], logger: logger)
        let total = ends.reduce(0) { $0 + Int($1.endOffset) }
        // Read by assignment, not as a new consumer group: no wait for a group to form.
        let records =
            total > 0
            ? try await KafkaAdmin.readFromStart(
                client: client, topic: Topics.noticesDue.name, count: total, logger: logger, timeout: .seconds(90)) : []
        var byNotice: [String: Set<String>] = [:]
        var occurrences = Set<String>()
        var noticesByOccurrence: [String: Set<String>] = [:]
        for record in records {
            if let envelope = try? WireFormat.decode(NoticeDue.self, from: record.value) {
                byNotice[envelope.payload.noticeId, default: []].insert(envelope.id)
                occurrences.insert(envelope.payload.request.incident.occurrenceNumber)
                noticesByOccurrence[envelope.payload.request.incident.occurrenceNumber, default: []].insert(envelope.payload.noticeId)
            }
        }

        let directory = pipeline.mailDirectory
        let count = mails(in: directory)
        // Any child's or adult's full name, or a child's date of birth, in a mail is personal data.
        var names = Set<String>()
        for incident in incidents {
            for child in incident.children {
                names.insert("\(child.givenName) \(child.familyName)")
                if let born = child.dateOfBirth { names.insert(born) }
            }
            for party in incident.parties { names.insert("\(party.givenName) \(party.familyName)") }
        }
        var personal = 0
        for mail in try FileManager.default.contentsOfDirectory(atPath: directory) where mail.hasSuffix(".eml") {
            let text = try String(contentsOfFile: "\(directory)/\(mail)", encoding: .utf8)
            if names.contains(where: { text.contains($0) }) { personal += 1 }
        }
        let letters = try await deadLetters(pipeline).map { "\($0.service): \($0.errorClass)" }
        return Outcome(
            incidents: incidents.count, notices: byNotice.count, noticesWithSeveralIds: byNotice.values.filter { $0.count > 1 }.count,
            occurrencesCovered: occurrences.intersection(incidents.map(\.occurrenceNumber)).count,
            occurrencesWithSeveralNotices: noticesByOccurrence.values.filter { $0.count > 1 }.count, mails: count.first,
            duplicateMails: count.copies, mailsWithPersonalData: personal, deadLetters: letters.count,
            deadLetterClasses: Array(Set(letters)).sorted(), uncertain: 0, uncertainResent: 0)
    }
}

extension Duration {
    /// The duration in seconds, fractions kept: for the reports of the drills and benchmarks.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
