import ArgumentParser
import ChildResearchService
import EncompassDemo
import EncompassModels
import Foundation
import GRDB
import ServiceRuntime

#if canImport(Glibc)
import Glibc
#endif
#if canImport(CoreFoundation)
import CoreFoundation
#endif

/// Person-matcher quality and speed on a FEBRL-format file (beside an exact-match baseline in
/// the same run), and history index build rate and research latency on a generated history.
struct ResearchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "research",
        abstract:
            "Child research: matcher precision/recall/F1 and speed on a FEBRL file vs exact match; index build rate and research latency on a generated history."
    )

    @Option(
        help:
            "A FEBRL-format CSV (rec_id, given_name, surname, street_number, address_1, address_2, suburb, postcode, state, date_of_birth, soc_sec_id)."
    )
    var febrl: [String] = []

    @Option(help: "Person-matcher threshold (0...1).")
    var threshold: Double = PersonMatcher().threshold

    @Option(help: "Match probability at or above which the Fellegi-Sunter model links (0...1).")
    var probability: Double = MatchModel.defaultThreshold

    @Option(help: "Print up to this many false links of the Fellegi-Sunter model per file (and per held-out file with --folds), with its evidence.")
    var showFalseLinks: Int = 0

    @Option(
        help: "Print up to this many true pairs the Fellegi-Sunter model missed per file (and per held-out file with --folds), with its evidence.")
    var showMissedLinks: Int = 0

    @Flag(help: "With two or more files, also hold each out in turn: learn the model on the others and report it on the held-out file.")
    var folds = false

    @Flag(help: "Also run Splink on each file in the same run (bench/splink_dedupe.py in a venv created with pip: splink, duckdb, pandas).")
    var splink = false

    @Option(help: "The venv for Splink (created when missing).")
    var splinkVenv: String = ResearchBench.repositoryPath(".build/splink-venv")

    @Option(
        help:
            "Also score on the demo world's people: generate the world of this seed (as encompass demo does), write every person record with its identity as a FEBRL-format file (rec_id's group = the person) and treat it as one more --febrl file."
    )
    var demoWorld: UInt64?

    @Option(help: "The demo world's day (with --demo-world).")
    var demoDay: String = "2026-11-23"

    @Option(help: "The demo world's force, 43 or 05 (with --demo-world).")
    var demoForce: String = "43"

    @Option(help: "Generate a history of this many person records, index it and time research on it.")
    var generate: Int?

    @Option(help: "Incidents researched for the latency figures.")
    var queries: Int = 2000

    @Option(help: "Which matchers research is timed with: learned, hand or both.")
    var matcher: String = "both"

    @Option(
        help:
            "Where to put the generated index (default: a temporary folder, removed afterwards). An index already there from an earlier run with the same --generate is used again, with its learned model, instead of being built."
    )
    var directory: String?

    func run() async throws {
        guard !febrl.isEmpty || generate != nil || demoWorld != nil else {
            throw ValidationError("give --febrl FILE, --demo-world SEED and/or --generate N")
        }
        print("child research benchmark, \(Date()) on \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Self.loadAverage())")
        var febrl = febrl
        if let demoWorld { febrl.append(try writeDemoWorldPeople(seed: demoWorld)) }
        let python = splink ? try SplinkRunner.prepare(venv: splinkVenv) : nil
        var sets: [FebrlDataset] = []
        var options = MatchModelTrainer.Options()
        options.threshold = probability
        for file in febrl {
            let data = try FebrlDataset.load(path: file)
            sets.append(data)
            let matcher = data.linkWithMatcher(PersonMatcher(threshold: threshold))
            let exact = data.linkExact()
            let cpuStart = Self.cpuTime(CLOCK_PROCESS_CPUTIME_ID)
            let (learned, model) = data.linkWithModel(nil, options: options)
            let cpu = Self.cpuTime(CLOCK_PROCESS_CPUTIME_ID) - cpuStart
            print("\(file): \(data.records.count) records, \(data.truePairs.count) true pairs")
            print(
                "  Fellegi-Sunter, learned from this file (probability >= \(probability), expected false-link rate \(String(format: "%.5f", model.expectedFalseLinkRate)); records/s include training): \(learned)"
            )
            print(
                String(
                    format: "    learning and linking: %.1f ms wall, %.1f ms CPU (%.0f records per CPU-second)", learned.seconds * 1000, cpu * 1000,
                    Double(data.records.count) / max(cpu, 1e-9)))
            for line in data.falseLinks(model, limit: showFalseLinks) { print("    false link: \(line)") }
            for line in data.missedLinks(model, limit: showMissedLinks) { print("    missed: \(line)") }
            print("  hand-weighted person matcher (threshold \(threshold)): \(matcher)")
            print("  exact-match baseline (given+surname+DOB): \(exact)")
            if let python {
                let splinkQuality = try SplinkRunner.run(python: python, file: file, threshold: probability, data: data)
                print("  Splink (same file, probability >= \(probability); records/s include training): \(splinkQuality)")
                print(
                    String(
                        format: "  Fellegi-Sunter vs Splink: F1 %+.4f, %.1fx the records/s", learned.f1 - splinkQuality.f1,
                        learned.recordsPerSecond / max(splinkQuality.recordsPerSecond, 1e-9)))
            }
        }
        if !folds || sets.count < 2 { print("load at the end: \(Self.loadAverage())") }
        if folds, sets.count >= 2 {
            print("held out in turn (model learned on the other files, threshold \(probability)):")
            for (i, file) in febrl.enumerated() {
                let training = FebrlDataset.combined(sets.enumerated().filter { $0.offset != i }.map(\.element))
                let model = training.trainModel(options: options)
                let (held, _) = sets[i].linkWithModel(model)
                print("  \(file) held out: \(held)")
                for line in sets[i].falseLinks(model, limit: showFalseLinks) { print("    false link: \(line)") }
                for line in sets[i].missedLinks(model, limit: showMissedLinks) { print("    missed: \(line)") }
            }
            print("load at the end: \(Self.loadAverage())")
        }
        if let generate {
            try runGenerated(persons: generate)
        }
    }

    func runGenerated(persons: Int) throws {
        let folder = directory ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("encompass-bench-\(UUID().uuidString.prefix(8))")
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: folder) } }
        // The service's store as the service opens it: research runs on its writer, with its page cache.
        let serviceCacheMiB = ChildResearchService.Settings().indexCacheMiB
        let store = try ServiceStore(
            path: folder + "/child-research.sqlite", migrations: ChildResearchService.migrations,
            writerSetup: { db in try HistoryIndex.tuneConnection(db, cacheMiB: serviceCacheMiB) })
        // An index left by an earlier run (`--directory`) is used as it is: the generator repeats its households.
        let reused = try store.pool.read { try HistoryIndex.counts($0).people } > 0
        var generator = HistoryGenerator(seed: 42)
        var households: [HistoryGenerator.Household] = []
        var indexed = 0
        var seconds = 0.0
        var cpuSeconds = 0.0
        var batch: [Incident] = []
        func flush() throws {
            let incidents = batch
            if reused {
                batch.removeAll(keepingCapacity: true)
                return
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let startCPU = Self.cpuTime(CLOCK_PROCESS_CPUTIME_ID)
            try store.pool.write { db in
                try HistoryIndex.tuneForBulkLoad(db)
                for incident in incidents { try HistoryIndex.index(incident, revision: 0, source: "bench", db: db) }
            }
            seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            cpuSeconds += Self.cpuTime(CLOCK_PROCESS_CPUTIME_ID) - startCPU
            indexed += incidents.reduce(0) { $0 + $1.parties.count + $1.children.count }
            batch.removeAll(keepingCapacity: true)
        }
        var generated = 0
        while generated < persons {
            let (household, incidents) = generator.household()
            households.append(household)
            for incident in incidents {
                generated += incident.parties.count + incident.children.count
                batch.append(incident)
            }
            if batch.count >= 5000 { try flush() }
        }
        try flush()
        let counts = try store.pool.read { try HistoryIndex.counts($0) }
        print("generated history: \(counts.people) person records in \(counts.incidents) incidents")
        if reused {
            print("  index build: none (the index in \(folder) used again)")
        } else {
            print(
                String(
                    format:
                        "  index build: %.1f s, %.0f records/s (includes feature extraction and blocking keys); CPU %.1f s, %.0f records per CPU-second",
                    seconds, Double(indexed) / seconds, cpuSeconds, Double(indexed) / cpuSeconds))
        }
        // Back to the service's page cache for research (the bulk build's is larger).
        try store.pool.write { try HistoryIndex.tuneConnection($0, cacheMiB: serviceCacheMiB) }

        // The learned model, as the service's background task learns it (at most `MatchModelStore.sampleRecords` people),
        // and stores it; one stored by an earlier run on this index is used again.
        let learnStart = DispatchTime.now().uptimeNanoseconds
        let stored =
            try store.pool.read { try MatchModelStore.load($0) }
            ?? store.pool.read { db in
                MatchModelStore.Stored(model: try MatchModelStore.train(from: db), people: counts.people, trainedAt: Date())
            }
        try store.pool.write { try MatchModelStore.save(stored, db: $0) }
        print(
            String(
                format: "  learned model: %.1f s (from %d of the %d people, %d training pairs, %d EM iterations)",
                Double(DispatchTime.now().uptimeNanoseconds - learnStart) / 1e9, stored.model.records, counts.people,
                stored.model.trainingPairs, stored.model.iterations))
        let matchers: [(name: String, researcher: Researcher)] = [
            ("learned model (the default)", Researcher(settings: .standard, learned: LearnedMatcher(stored))),
            ("hand-weighted matcher", Researcher(settings: .standard)),
        ].filter { matcher == "both" || $0.name.hasPrefix(matcher) }
        guard !matchers.isEmpty else { throw ValidationError("--matcher is '\(matcher)'; give learned, hand or both") }
        var latencies = [[Double]](repeating: [], count: matchers.count)
        var cpuLatencies = [[Double]](repeating: [], count: matchers.count)
        var found = [Int](repeating: 0, count: matchers.count)
        // Every proposal's child, score and explanation, hashed: two builds that research alike print the same digest.
        var digests = [StableHash.Lanes](repeating: StableHash.Lanes(), count: matchers.count)
        var exactLatencies: [Double] = []
        for i in 0..<queries {
            let household = households[generator.int(households.count)]
            let incident = generator.newIncident(for: household, number: i)
            for (m, matcher) in matchers.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                let (candidates, cpu) = try store.pool.write { db in
                    let startCPU = Self.cpuTime(CLOCK_THREAD_CPUTIME_ID)
                    let found = try matcher.researcher.research(incident, db: db)
                    return (found, Self.cpuTime(CLOCK_THREAD_CPUTIME_ID) - startCPU)
                }
                latencies[m].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                cpuLatencies[m].append(cpu * 1000)
                if candidates.contains(where: { c in household.children.contains { $0.givenName == c.child.givenName } }) { found[m] += 1 }
                for c in candidates {
                    digests[m].add(
                        "\(c.child.childId)|\(c.evidence.score)|\(c.evidence.explanation.joined(separator: "|"))|\(c.evidence.sourceOccurrences)\n")
                }
            }
            // Baseline: the same address looked up exactly (one indexed query), no person matching.
            let startExact = DispatchTime.now().uptimeNanoseconds
            _ = try store.pool.write { db in
                try Row.fetchAll(
                    db, sql: "SELECT occurrenceNumber FROM researchIncident WHERE dwellingKey = ?",
                    arguments: [
                        PersonFeatures(
                            given: "", family: "", dateOfBirth: nil, addressLines: incident.incidentAddress.lines,
                            postcode: incident.incidentAddress.postcode
                        ).dwellingKey
                    ])
            }
            exactLatencies.append(Double(DispatchTime.now().uptimeNanoseconds - startExact) / 1e6)
        }
        func percentile(_ values: [Double], _ p: Double) -> Double {
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        let withChildren = households.filter { !$0.children.isEmpty }.count * 100 / max(1, households.count)
        for (m, matcher) in matchers.enumerated() {
            print(
                String(
                    format:
                        "  research with the %@ over %d incidents: p50 %.2f ms, p99 %.2f ms, max %.2f ms; a recorded child of the household proposed for %d (%d%% of households have children)",
                    matcher.name, queries, percentile(latencies[m], 0.5), percentile(latencies[m], 0.99), latencies[m].max() ?? 0, found[m],
                    withChildren))
            print(
                String(
                    format: "    CPU time per incident (the thread's own, unaffected by other load): p50 %.2f ms, p99 %.2f ms",
                    percentile(cpuLatencies[m], 0.5), percentile(cpuLatencies[m], 0.99)))
            let (x, y) = digests[m].finish()
            print("    proposals' digest (child, score, explanation): \(String(x, radix: 16))\(String(y, radix: 16))")
        }
        print(
            String(
                format: "  baseline (exact address lookup only): p50 %.3f ms, p99 %.3f ms", percentile(exactLatencies, 0.5),
                percentile(exactLatencies, 0.99)))
    }
}

extension ResearchBench {
    /// A path inside the repository this command was built from.
    static func repositoryPath(_ relative: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(relative).path
    }

    /// The demo world's people as a FEBRL-format file (`WorldFiles.peopleFile`), in the
    /// temporary folder; its path.
    func writeDemoWorldPeople(seed: UInt64) throws -> String {
        guard let day = CalendarDate(iso: demoDay) else { throw ValidationError("--demo-day '\(demoDay)' is not a date (YYYY-MM-DD)") }
        guard let force = DemoForce.code(demoForce) else {
            throw ValidationError(
                "--demo-force '\(demoForce)' is not a demo force; use \(DemoForce.all.map { "\($0.code) (\($0.name))" }.joined(separator: " or "))")
        }
        let world = WorldGenerator.generate(
            WorldSettings(seed: seed, day: day, force: force, outOfAreaShare: 0.02), schools: try SchoolList.read(path: SchoolList.shippedFile))
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("demo-world-\(force.code)-\(seed)-\(demoDay)-people.csv")
        try Data(WorldFiles.peopleFile(world).utf8).write(to: URL(fileURLWithPath: path))
        print("demo world (seed \(seed), force \(force.code), day \(demoDay), as encompass demo makes it): its people in \(path)")
        return path
    }

    /// The load average (1, 5 and 15 minutes), for the figures' record.
    static func loadAverage() -> String {
        var loads = [Double](repeating: 0, count: 3)
        guard getloadavg(&loads, 3) == 3 else { return "load average unknown" }
        return String(format: "load average %.2f %.2f %.2f", loads[0], loads[1], loads[2])
    }

    /// CPU seconds of the process or the calling thread.
    static func cpuTime(_ clock: clockid_t) -> Double {
        var time = timespec()
        clock_gettime(clock, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

/// Runs Splink (bench/splink_dedupe.py) on a FEBRL file in a venv it creates with pip.
enum SplinkRunner {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// The venv's python, creating the venv and installing splink, duckdb and pandas when missing.
    static func prepare(venv: String) throws -> String {
        let python = venv + "/bin/python"
        if FileManager.default.isExecutableFile(atPath: python),
            (try? run([python, "-c", "import splink, duckdb, pandas"], quiet: true)) != nil
        {
            return python
        }
        print("creating the Splink venv in \(venv) (python3 -m venv; pip install splink duckdb pandas)…")
        do { try run(["/usr/bin/env", "python3", "-m", "venv", venv], quiet: false) } catch {
            throw Failure(
                description:
                    "cannot create a Python venv in \(venv) (\(error)); install python3 and python3-venv (apt-get install python3-venv), or give --splink-venv DIR of an existing venv with splink, duckdb and pandas"
            )
        }
        do { try run([venv + "/bin/pip", "install", "--quiet", "splink", "duckdb", "pandas"], quiet: false) } catch {
            throw Failure(
                description:
                    "pip could not install splink, duckdb and pandas into \(venv) (\(error)); check that PyPI is reachable (or set PIP_INDEX_URL to a mirror), or run without --splink"
            )
        }
        return python
    }

    static func run(python: String, file: String, threshold: Double, data: FebrlDataset) throws -> FebrlDataset.Quality {
        let out = NSTemporaryDirectory() + "splink-pairs-\(UUID().uuidString.prefix(8)).csv"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let script = ResearchBench.repositoryPath("bench/splink_dedupe.py")
        guard FileManager.default.fileExists(atPath: script) else {
            throw Failure(description: "\(script) is missing: run the benchmark from a checkout of the repository it was built from")
        }
        let output = try run([python, script, file, "--out", out, "--threshold", String(threshold)], quiet: true)
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let seconds = json["seconds"] as? Double
        else {
            throw Failure(description: "Splink printed no result line; its output was:\n\(output)")
        }
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let pairs = text.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: ",")
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
        return try data.quality(ofLinkedRecIds: pairs, seconds: seconds)
    }

    /// Runs a command; its standard output, or an error with its exit status and output.
    @discardableResult
    static func run(_ arguments: [String], quiet: Bool) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = quiet ? pipe : FileHandle.standardError
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) exited with \(process.terminationStatus): \(text.suffix(2000))")
        }
        return text
    }
}

/// Deterministic UK-style households and incidents for the benchmark.
struct HistoryGenerator {
    struct Household {
        var address: PostalAddress
        var adults: [Party]
        var children: [RecordedChild]
    }

    var state: UInt64
    var occurrence = 43_150_000_000

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func pick<T>(_ list: [T]) -> T { list[int(list.count)] }

    static let given = [
        "Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Muhammad", "Thomas", "Oscar", "William", "James",
        "Leo", "Alfie", "Henry", "Joshua", "Freddie", "Archie", "Ethan", "Isaac", "Alexander", "Joseph", "Edward", "Samuel",
        "Max", "Daniel", "Arthur", "Lucas", "Mohammed", "Logan", "Theo", "Harrison", "Benjamin", "Mason", "Sebastian", "Finley",
        "Adam", "Dylan", "Zachary", "Riley", "Teddy", "Theodore", "David", "Elijah", "Jake", "Toby", "Louie", "Reuben", "Arlo",
        "Olivia", "Amelia", "Isla", "Ava", "Emily", "Isabella", "Mia", "Poppy", "Ella", "Lily", "Evie", "Grace", "Sophia",
        "Sophie", "Freya", "Charlotte", "Scarlett", "Chloe", "Daisy", "Ruby", "Alice", "Florence", "Phoebe", "Jessica", "Sienna",
        "Matilda", "Harper", "Millie", "Rosie", "Evelyn", "Sarah", "Emma", "Rebecca", "Laura", "Hannah", "Lucy", "Amy", "Zara",
        "Mark", "Paul", "Andrew", "Richard", "Robert", "Michael", "Christopher", "Stephen", "Anthony", "Kevin", "Gary", "Dean",
        "Lisa", "Claire", "Nicola", "Kelly", "Joanne", "Michelle", "Donna", "Karen", "Tracey", "Gemma", "Natalie", "Leanne",
        "Priya", "Aisha", "Fatima", "Amir", "Omar", "Hassan", "Kwame", "Chidi", "Agnieszka", "Piotr", "Tomasz", "Katarzyna",
    ]
    static let prefixes = [
        "Ash", "Black", "Brad", "Brook", "Castle", "Cole", "Cran", "Dun", "East", "Fair", "Fox", "Green", "Hal", "Hart",
        "Hay", "Hol", "Kings", "Lang", "Lee", "Mar", "Mid", "Mil", "Moor", "New", "North", "Old", "Pen", "Red", "Rich",
        "Ring", "Rose", "Shel", "South", "Stan", "Stock", "Thorn", "Wal", "West", "Whit", "Wood",
    ]
    static let suffixes = [
        "ley", "ton", "ford", "field", "wood", "man", "son", "well", "by", "more", "ham", "worth", "ridge", "land",
        "stead", "hurst", "wick", "bourne", "dale", "combe", "cott", "ing", "er", "smith", "ward",
    ]
    static let surnames = [
        "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson", "Roberts",
        "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green", "Hall", "Lewis", "Harris",
        "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark",
        "Lee", "King", "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker",
        "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey", "Collins",
        "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards", "Khan", "Marshall", "Anderson", "Simpson", "Ellis", "Adams",
        "Singh", "Begum", "Wilkinson", "Foster", "Chapman", "Powell", "Webb", "Rogers", "Gray", "Mason", "Ali", "Hunt",
        "Hussain", "Campbell", "Matthews", "Owen", "Palmer", "Holmes", "Mills", "Barnes", "Knight", "Lloyd", "Butler",
        "Russell", "Barker", "Fisher", "Stevens", "Jenkins", "Murray", "Dixon", "Harvey", "Nowak", "Kowalski", "Okafor",
    ]
    static let streets = [
        "High Street", "Station Road", "Church Lane", "Mill Lane", "Park Road", "Queens Road", "London Road", "Victoria Road",
        "Oxford Road", "Kings Road", "Green Lane", "Manor Road", "Church Street", "Park Avenue", "The Avenue", "New Road",
        "School Lane", "York Road", "Grange Road", "Springfield Road", "Windsor Road", "North Street", "West Street",
        "Albert Road", "Mill Road", "Highfield Road", "The Crescent", "Chapel Lane", "Bath Road", "Forbury Road",
    ]
    static let areas = [
        "RG1", "RG2", "RG4", "RG5", "RG6", "RG30", "RG31", "RG40", "RG41", "SL1", "SL2", "SL3", "SL6", "OX1", "OX2", "OX3",
        "OX4", "OX14", "MK1", "MK2", "MK3", "MK9", "MK40", "HP1", "HP2", "HP11", "HP13", "HP20", "RG14", "RG21",
    ]
    static let letters = Array("ABDEFGHJLNPQRSTUWXYZ")

    mutating func surname() -> String {
        int(3) == 0 ? pick(Self.surnames) : pick(Self.prefixes) + pick(Self.suffixes)
    }

    mutating func date(fromYear: Int, toYear: Int) -> String {
        String(format: "%04d-%02d-%02d", fromYear + int(toYear - fromYear + 1), 1 + int(12), 1 + int(28))
    }

    mutating func household() -> (Household, [Incident]) {
        let area = pick(Self.areas)
        let postcode = "\(area) \(int(10))\(pick(Self.letters))\(pick(Self.letters))"
        let flat = int(4) == 0 ? "Flat \(1 + int(12)), " : ""
        let address = PostalAddress(lines: ["\(flat)\(1 + int(250)) \(pick(Self.streets))"], town: "Reading", postcode: postcode)
        let family = surname()
        let adults = [
            Party(role: .victim, givenName: pick(Self.given), familyName: family, dateOfBirth: date(fromYear: 1970, toYear: 2000)),
            Party(
                role: .suspect, givenName: pick(Self.given), familyName: int(3) == 0 ? surname() : family,
                dateOfBirth: date(fromYear: 1965, toYear: 2000)),
        ]
        var children: [RecordedChild] = []
        for _ in 0..<int(4) {
            let known = int(5) != 0
            children.append(
                RecordedChild(
                    givenName: pick(Self.given), familyName: int(6) == 0 ? "\(family)-\(surname())" : family,
                    dateOfBirth: known ? date(fromYear: 2010, toYear: 2024) : nil, ageYears: known ? nil : 1 + int(14)))
        }
        let household = Household(address: address, adults: adults, children: children)
        var incidents: [Incident] = []
        for _ in 0..<(1 + (int(5) == 0 ? 1 : 0)) {
            occurrence += 1
            let when = Date(timeIntervalSince1970: 1_609_459_200 + Double(int(5 * 365)) * 86_400) // 2021-2025
            incidents.append(
                Incident(
                    occurrenceNumber: String(occurrence), forceCode: "43", occurredAt: when, reportedAt: when,
                    incidentAddress: address, riskLevel: .medium, crime: false, parties: adults, children: children))
        }
        return (household, incidents)
    }

    /// Today's incident at a known household, without children; the victim's name sometimes misspelt.
    mutating func newIncident(for household: Household, number: Int) -> Incident {
        var victim = household.adults[0]
        if int(3) == 0 { victim.givenName = String(victim.givenName.dropLast()) }
        let when = Date(timeIntervalSince1970: 1_795_000_000)
        return Incident(
            occurrenceNumber: String(43_269_000_000 + number), forceCode: "43", occurredAt: when, reportedAt: when,
            incidentAddress: household.address, riskLevel: .medium, crime: false, parties: [victim, household.adults[1]])
    }
}

extension FebrlDataset {
    /// True pairs the model does not link, with its evidence (whether blocking met them or not):
    /// what a reader checks when recall falls short. Spread over the file (every k-th missed pair).
    func missedLinks(_ model: MatchModel, limit: Int) -> [String] {
        guard limit > 0 else { return [] }
        let features = people, scorer = model.scorer()
        let blocked = Set(MatchModelTrainer.blockedPairs(features).map { Pair($0.0, $0.1) })
        let missed = truePairs.filter { !blocked.contains($0) || !scorer.matches(features[Int($0.a)], features[Int($0.b)]) }
            .sorted { ($0.a, $0.b) < ($1.a, $1.b) }
        let step = max(1, missed.count / limit)
        func show(_ p: PersonFeatures) -> String {
            "\(p.given) \(p.family) \(p.dateOfBirth?.description ?? "-") \(p.line?.flat ?? "")/\(p.line?.number ?? "") \(p.line?.street ?? "") \(p.postcode) \(p.town)"
        }
        return stride(from: 0, to: missed.count, by: step).prefix(limit).map { k in
            let (a, b) = (Int(missed[k].a), Int(missed[k].b))
            let why = blocked.contains(missed[k]) ? "" : "not blocked; "
            return
                "\(records[a].recId) [\(show(features[a]))] / \(records[b].recId) [\(show(features[b]))]: \(why)\(model.evidence(features[a], features[b]))"
        }
    }
}
