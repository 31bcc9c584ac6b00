import EncompassDemo
import EncompassTestSupport
import Foundation
import Testing

/// Each test runs its own demo (its own folder, ports and broker), so the tests run side by side.
@Suite("The main job: encompass demo", .tags(.processes))
struct DemoRunTests {
    /// A small Thames Valley day, the default seed.
    static let smallArguments = ["--families", "250", "--incidents", "30", "--day", "2026-11-23"]

    /// The small day with one instance of every service, run once and read by two tests: the
    /// day's own checks, and the one-instance side of scale invariance.
    static let smallRun = Task { () async throws -> (status: Int32, output: String, directory: String) in
        let directory = TestPaths.temporaryDirectory("demo")
        let (status, output) = try await demo(smallArguments, directory: directory)
        return (status, output, directory)
    }

    @Test(
        "a small demo runs the day to the next morning: notices sent as mail, more children reached than the officers' records, none to a wrong school"
    )
    func smallDemo() async throws {
        let (status, output, directory) = try await Self.smallRun.value
        #expect(status == 0, "\(output)")
        #expect(output.contains("notices to a wrong school or for a child not present: 0"))
        #expect(!output.contains("WRONG "), "every wrong notice is listed, and there must be none")
        #expect(output.contains("the same child notified twice to one school: 0") && !output.contains("TWICE "))
        #expect(
            output.contains("missed children by cause:") && output.contains("reviewer decisions:") && output.contains("untidy records:")
                && output.contains("statutory duty:"))
        // "correct notices:      N of M children at a school = P%" against "baseline: B = Q%"
        let correct = try #require(output.firstMatch(of: /correct notices:\s+(\d+) of (\d+)/))
        let baseline = try #require(output.firstMatch(of: /baseline: (\d+) =/))
        #expect(Int(correct.1)! > Int(baseline.1)!, "research and school resolution reach more children than the officers' records alone")
        let mails = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/mail").filter { $0.hasSuffix(".eml") }
        // Every correct notice reached its school: by mail, or as a telephone task the MASH called.
        let telephoned = try #require(output.firstMatch(of: /mails in [^;]*; (\d+) by telephone/))
        #expect(mails.count + Int(telephoned.1)! >= Int(correct.1)!, "\(mails.count) mails, \(telephoned.1) by telephone")
        #expect(output.contains("stopped the embedded broker"))
        // Every route's line, every notice of each sent; the late report's notices released at
        // once inside the release window, none waiting for a later release.
        for route in DemoJudge.Route.allCases { #expect(output.contains("  \(route.rawValue) "), "\(route.rawValue) line") }
        #expect(!output.contains("UNSENT "), "every notice of every route sent")
        let late = try #require(
            output.firstMatch(of: /late report in the release window\s+reported (\d\d:\d\d):\d\d: (\d+) notices released at once/))
        #expect(late.1 == "08:39" && Int(late.2)! >= 1 && !output.contains("WAITED"), "\(output)")
        // The child who moved school in the term: the school it left was notified (every record
        // named it), said "no longer attends" on its notice page, and the notice was redirected
        // to the child's school now, through Children's Social Care.
        let left = try #require(
            output.firstMatch(of: /to a school the child had left, which every record still named \(not counted as wrong above\): (\d+)/))
        let answered = try #require(
            output.firstMatch(of: /no longer attends:  (\d+) answered by the school, (\d+) redirected, (\d+) reached the new school/))
        #expect(Int(left.1) == 1 && Int(answered.1) == 1 && Int(answered.2) == 1 && Int(answered.3) == 1, "\(output)")
        #expect(output.contains("  after \"no longer attends\"           1 notices, 1 sent, 1 to the child's own school"))
        // The child on no school roll: its home local authority was notified (a telephone task, made).
        #expect(output.contains("on no school roll:  1 children (home educated), 1 notified to their home local authority"))
        #expect(output.contains("  no school roll, home LA's task      1 notices, 1 sent, 1 to the child's own school"))
        // The MASH console ran beside the services, with the demo's staff account.
        #expect(output.contains("MASH console         http://127.0.0.1:") && output.contains("staff mash.demo, password demo-"))
        #expect(output.contains("stopped the console"))
    }

    /// Runs `encompass demo --exit` with `arguments` on ports of this engineer's test range; its output.
    static func demo(_ arguments: [String], directory: String) async throws -> (status: Int32, output: String) {
        let run = try await runExecutable(
            "encompass", ["demo", "--exit", "--dir", directory, "--base-port", String(TestPorts.pipelineBase())] + arguments)
        print(run.output)
        return run
    }

    /// The summary's checks that hold for every force's day: nothing to a wrong school, every
    /// notice with exactly its protocol's fields, no email naming a child.
    static func expectSound(_ output: String) {
        #expect(output.contains("notices to a wrong school or for a child not present: 0"))
        #expect(!output.contains("WRONG "), "every wrong notice is listed, and there must be none")
        #expect(output.contains("the same child notified twice to one school: 0") && !output.contains("TWICE "))
        #expect(output.contains("fields on notices   every notice shows exactly the fields its force's protocol allows"))
        #expect(!output.contains("FIELDS "), "a notice showed fields its force's protocol does not allow")
        #expect(output.contains("emails              no personal data in any email (only the link)") && !output.contains("MAIL "))
        #expect(!output.contains("other: "), "every missed child's cause is known")
    }

    @Test(
        "Cambridgeshire and Peterborough: a Saturday's day from the DA desk's spreadsheet, reviewed by the Navigator, early years settings telephoned, notified on Monday at 08:00 with that protocol's fields"
    )
    func cambridgeshireSaturday() async throws {
        let directory = TestPaths.temporaryDirectory("demo-05")
        // 350 households: with the default share of places across the border, the smallest
        // such world of this seed with a child at an early years setting whom the officer recorded.
        let (status, output) = try await Self.demo(
            ["--force", "05", "--families", "350", "--incidents", "30", "--day", "2026-11-21"],
            directory: directory)
        #expect(status == 0, "\(output)")
        #expect(output.contains("Encompass demo: 2026-11-21, Cambridgeshire and Peterborough"))
        Self.expectSound(output)
        // Fed as the desk's spreadsheet through encompass ingest; the Navigator reviewed.
        let ingest = try #require(output.firstMatch(of: /encompass ingest da-desk-05-2026-11-21.csv: (\d+) rows, (\d+) incidents accepted/))
        #expect(Int(ingest.2) == 30)
        #expect(output.contains("MASH Navigator (demo): "))
        // Saturday's incidents (and the late reports of the week before) go on Monday morning, all of them.
        #expect(output.contains("first release       Mon 23 Nov 2026 08:00:00 London time"))
        let released = try #require(output.firstMatch(of: /released \(05\)\s+(.*)/))
        // Every notice of the day on Monday at 08:00; the late report, made at 08:39, at once.
        let releases = released.1.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(releases.first?.hasPrefix("Mon 23 Nov 2026 08:00:00: ") == true, "every notice on Monday at 08:00: \(released.1)")
        #expect(releases.dropFirst().allSatisfy { $0.hasPrefix("Mon 23 Nov 2026 08:4") }, "only the late report after 08:00: \(released.1)")
        // Early years settings are telephoned (the calls made), not emailed.
        let earlyYears = try #require(output.firstMatch(of: /early years setting\s+(\d+) notices \((\d+) by email, (\d+) by telephone\), (\d+) sent/))
        #expect(
            Int(earlyYears.3)! >= 1 && Int(earlyYears.2) == 0 && earlyYears.1 == earlyYears.4,
            "the world's early years settings get telephone tasks, made: \(output)")
        let correct = try #require(output.firstMatch(of: /correct notices:\s+(\d+) of (\d+)/))
        let baseline = try #require(output.firstMatch(of: /baseline: (\d+) =/))
        #expect(Int(correct.1)! > Int(baseline.1)!)
        // The occurrence numbers are Cambridgeshire's; the notices carry its free text.
        let sheet = try String(contentsOfFile: "\(directory)/world/da-desk-05-2026-11-21.csv", encoding: .utf8)
        #expect(sheet.contains("CC-20261121-0001,05,"))
    }

    @Test(
        "both forces through one deployment in the Christmas holidays: high-risk incidents escalated to each force's Education Safeguarding Manager at once, every school's own notice on the first day back, each notice under its own force's protocol"
    )
    func bothForcesInTheHolidays() async throws {
        let directory = TestPaths.temporaryDirectory("demo-43-05")
        // Monday 21 December 2026: both forces' schools broke up on Friday 18th; 4 January 2027 is an INSET day.
        // With the default share of school places across the border: an escalation about a
        // child at a school in the other force's area goes to this force's own Education
        // Safeguarding Manager (account ESM<force>).
        let (status, output) = try await Self.demo(
            ["--force", "43,05", "--families", "150", "--incidents", "20", "--day", "2026-12-21"],
            directory: directory)
        #expect(status == 0, "\(output)")
        #expect(output.contains("Encompass demo: 2026-12-21, Thames Valley and Cambridgeshire and Peterborough"))
        Self.expectSound(output)
        for force in ["43", "05"] {
            let released = try #require(output.firstMatch(of: try Regex("released \\(\(force)\\)\\s+(.*)")))
            let line = String(released.output[1].substring ?? "")
            #expect(
                line.contains("Mon 21 Dec 2026 23:30") && line.contains("escalated to the Education Safeguarding Manager"),
                "force \(force): high-risk incidents escalated at once: \(line)")
            #expect(
                line.contains("Tue 5 Jan 2027 08:00:00: ") && line.contains("to schools"),
                "force \(force): schools' own notices on the first day back: \(line)")
            #expect(!line.contains("Mon 4 Jan 2027"), "not on the INSET day")
        }
        // Each force's incidents came its own way.
        #expect(output.contains("encompass ingest da-desk-05-2026-12-21.csv"))
        #expect(!output.contains("da-desk-43"))
        // Each force's escalations went to its own Education Safeguarding Manager, from its own
        // MASH, about its own local authorities; each school's mail from its own force's MASH.
        let mails = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/mail").filter { $0.hasSuffix(".eml") }
            .map { try String(contentsOfFile: "\(directory)/mail/\($0)", encoding: .utf8) }
        let cambsESM = mails.filter { $0.contains("To: <education.safeguarding@cambs.police.example>") }
        let tvpESM = mails.filter { $0.contains("To: <education.safeguarding@thamesvalley.police.example>") }
        #expect(!cambsESM.isEmpty && !tvpESM.isEmpty)
        let escalationSubject = "Subject: Operation Encompass notice for the Education Safeguarding Manager (a holiday escalation)"
        #expect(cambsESM.allSatisfy { $0.hasPrefix("From: Cambridgeshire MASH ") && $0.contains(escalationSubject) && !$0.contains("Thames Valley") })
        #expect(
            tvpESM.allSatisfy {
                $0.hasPrefix("From: Thames Valley Police MASH ") && $0.contains(escalationSubject)
                    && !$0.contains("Cambridgeshire") && !$0.contains("Peterborough")
            })
        // Every notice sent, escalations included (one held for a password nobody was given is not).
        #expect(!output.contains("UNSENT "), "every notice of every route sent")
        #expect(mails.filter { $0.hasPrefix("From: Cambridgeshire MASH ") }.allSatisfy { $0.contains("from Cambridgeshire Constabulary") })
        #expect(mails.filter { $0.hasPrefix("From: Thames Valley Police MASH ") }.allSatisfy { $0.contains("from Thames Valley Police") })
        #expect(mails.allSatisfy { $0.hasPrefix("From: Cambridgeshire MASH ") || $0.hasPrefix("From: Thames Valley Police MASH ") })
    }

    /// The summary lines that must not depend on how many instances ran: children found,
    /// reviewer decisions, CSC requests, notices, correct share, wrong notices, missed children.
    static func invariantSummary(_ output: String) -> [String] {
        let prefixes = [
            "incidents:", "children present:", "recorded by officers", "schools:", "notices:", "correct notices:",
            "of the children records could show", "officer-recorded-only baseline", "notices to a wrong school",
            "missed children by cause", "reviewer decisions:",
        ]
        return output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { line in prefixes.contains { line.hasPrefix($0) } }
            .map { line in line.replacing(#/ \(\d+ mails in [^)]*\)/#, with: "") } // the mail folder differs per run
    }

    /// The one-instance run is the small demo's own (`smallRun`); the three-instance run goes
    /// beside it.
    @Test("scale invariance: the same seed with 1 and with 3 instances of every service gives the same summary")
    func scaleInvariance() async throws {
        async let threeRun = Self.demo(Self.smallArguments + ["--instances", "3"], directory: TestPaths.temporaryDirectory("demo-scale-3"))
        let oneRun = try await Self.smallRun.value
        let threeOutput = try await threeRun
        #expect(oneRun.status == 0, "\(oneRun.output)")
        #expect(threeOutput.status == 0, "\(threeOutput.output)")
        let one = Self.invariantSummary(oneRun.output)
        let three = Self.invariantSummary(threeOutput.output)
        #expect(one.count == 11, "every summary line present: \(one)")
        #expect(one.contains("notices to a wrong school or for a child not present: 0"))
        #expect(one == three, "1 instance:\n\(one.joined(separator: "\n"))\n3 instances:\n\(three.joined(separator: "\n"))")
    }
}
