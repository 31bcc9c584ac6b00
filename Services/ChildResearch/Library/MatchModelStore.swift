import Foundation
import GRDB
import ServiceRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The learned person-matching model kept with the history index: learned from the index's own
/// people, stored as JSON in `researchMatchModel` (one row), and learned again once the index
/// has grown by a given number of people since. Learning reads the index and runs for seconds
/// at a million people, so it belongs on a background path, never in a message's transaction.
public enum MatchModelStore {
    public static let migration = StoreMigration("child-research-match-model-v1") { db in
        try db.execute(
            sql: """
                CREATE TABLE researchMatchModel (
                    id INTEGER PRIMARY KEY CHECK (id = 1), model BLOB NOT NULL, people INTEGER NOT NULL, trainedAt DATETIME NOT NULL)
                """)
    }

    /// The service day a model was learned for: it holds only records of days before it.
    public static let dayMigration = StoreMigration("child-research-match-model-v2-day") { db in
        try db.execute(sql: "ALTER TABLE researchMatchModel ADD COLUMN beforeDay TEXT NOT NULL DEFAULT ''")
    }

    /// An index of the people by the day of their record: the model's background check counts
    /// the people of earlier days every few seconds (`people(before:)`, and each metrics scrape),
    /// which without it reads the whole person table (a second at a million people).
    public static let personDayMigration = StoreMigration("child-research-index-v4-person-day") { db in
        try db.execute(sql: "CREATE INDEX researchPersonDay ON researchPerson(occurredDay)")
    }

    /// Learned from records of every day (tests, benchmarks): later than any service day.
    public static let allDays = "9999-12-31"

    public struct Stored: Sendable, Equatable {
        public var model: MatchModel
        /// People in the index when the model was learned.
        public var people: Int
        public var trainedAt: Date
        /// Learned from the records of days before this one (`yyyy-MM-dd`), as research reads them.
        public var beforeDay: String = MatchModelStore.allDays

        public init(model: MatchModel, people: Int, trainedAt: Date, beforeDay: String = MatchModelStore.allDays) {
            self.model = model
            self.people = people
            self.trainedAt = trainedAt
            self.beforeDay = beforeDay
        }
    }

    /// The stored model; nil when none is, or when it was written in another format (a model
    /// that cannot be read is learned again rather than stopping the service).
    public static func load(_ db: Database) throws -> Stored? {
        guard let row = try Row.fetchOne(db, sql: "SELECT model, people, trainedAt, beforeDay FROM researchMatchModel WHERE id = 1") else {
            return nil
        }
        let data: Data = row["model"]
        guard let model = try? JSONDecoder().decode(MatchModel.self, from: data), model.version == MatchModel.formatVersion else { return nil }
        return Stored(model: model, people: row["people"], trainedAt: row["trainedAt"], beforeDay: row["beforeDay"])
    }

    public static func save(_ stored: Stored, db: Database) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try db.execute(
            sql: "INSERT OR REPLACE INTO researchMatchModel (id, model, people, trainedAt, beforeDay) VALUES (1, ?, ?, ?, ?)",
            arguments: [try encoder.encode(stored.model), stored.people, stored.trainedAt, stored.beforeDay])
    }

    /// The most people a model is learned from. Blocked pairs grow about as the square of the
    /// sample (generated history: 57,000 pairs at 15,000 people, 620,000 at 50,000, 9.8 million
    /// at 200,000), and learning holds them and the sample's features: in the 100,000-incident
    /// backfill child research peaked at 124-125 MiB with 15,000, 139-146 MiB with 25,000 and
    /// 493 MiB with 200,000, against 86 MiB without learning (the target: 150 MB a service).
    /// m and u learned from 15,000 are within a few thousandths of those from 200,000, except
    /// the date of birth's m (exact 0.997 against 0.948, "different" 0.003 against 0.051), and the learned model finds
    /// the same children (docs/BENCHMARKS.md).
    public static let sampleRecords = 15_000

    /// Learns a model from the index's people: at most `maxRecords` of them, taken in the order of
    /// their content (stable person id, then every field the model reads), so the sample — and the
    /// model — depend only on what the index holds, not on the order it was fed in. Ordering by the
    /// person id keeps the records of one person together, so a sample keeps its true pairs.
    /// Only records of days before `beforeDay` are read.
    public static func train(
        from db: Database, before beforeDay: String = allDays, maxRecords: Int = sampleRecords,
        options: MatchModelTrainer.Options = .init()
    ) throws -> MatchModel {
        var fetch = try RawStatement(
            db.cachedStatement(
                sql: """
                    SELECT \(HistoryIndex.PersonRow.columns) FROM researchPerson WHERE occurredDay < ?
                    ORDER BY personId, givenName, familyName, dateOfBirth, address LIMIT ?
                    """), db: db)
        fetch.bind(beforeDay)
        fetch.bind(Int64(maxRecords))
        // The address cache is dropped before learning: only the people's features are kept.
        let people = try { () throws -> [PersonFeatures] in
            var places: [String: PersonFeatures] = [:]
            var people: [PersonFeatures] = []
            try fetch.rows { people.append(HistoryIndex.PersonRow(statement: $0).features(cache: &places)) }
            return people
        }()
        return MatchModelTrainer.train(records: people, options: options)
    }

    /// People of days before `beforeDay` in the index.
    public static func people(before beforeDay: String, db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM researchPerson WHERE occurredDay < ?", arguments: [beforeDay]) ?? 0
    }

    /// Learning reads every person of earlier days (the sample is the first in content order,
    /// which no index gives), so within an import a model is learned again once the people have
    /// grown by `every` or by this fraction of those the last model was learned from, whichever
    /// is more: the reads then add up to about eleven times the final index, not its square
    /// over `every` (at 5 million people a read takes tens of seconds, and one every 50,000
    /// people held a read transaction open all the time, so the WAL could never be reset).
    public static let growthBeforeRelearning = 0.1

    /// Whether a model is due for `beforeDay`: the index holds `minimumPeople` of earlier days, and
    /// no model is stored, or the stored one was learned for another day, or the earlier days'
    /// people have grown by `every` (or by `growthBeforeRelearning` of the stored model's people,
    /// if more) since it was learned, or shrunk (a retention purge: the model's name frequencies
    /// hold the names it was learned from), or have changed at all and were `settled` (the count
    /// the previous check saw: an import has finished). The last rule brings every instance, once
    /// its index holds the same earlier days, to the same model. `behind`: the people of earlier
    /// days the stored model was not learned from (0 below `minimumPeople`).
    public static func isDue(
        _ db: Database, every: Int, minimumPeople: Int = 1_000, before beforeDay: String = allDays,
        settled: Int? = nil
    ) throws -> (due: Bool, people: Int, behind: Int) {
        let people = try people(before: beforeDay, db: db)
        guard people >= minimumPeople else { return (false, people, 0) }
        guard let stored = try load(db), stored.beforeDay == beforeDay else { return (true, people, people) }
        let growth = max(every, Int(Double(stored.people) * growthBeforeRelearning))
        let due = people - stored.people >= growth || people < stored.people || (people != stored.people && settled == people)
        return (due, people, abs(people - stored.people))
    }

    /// Learns and stores a new model when one is due (`isDue`): the check and the learning read
    /// the store in one read transaction (a reader, beside the writers), so the stored count is
    /// the one learned from; only the finished model is written.
    @discardableResult
    public static func retrainIfDue(
        store: ServiceStore, every: Int, minimumPeople: Int = 1_000, before beforeDay: String = allDays,
        settled: Int? = nil, now: Date
    ) throws -> Stored? {
        let (learned, _, _) = try store.pool.read {
            try learnIfDue($0, every: every, minimumPeople: minimumPeople, before: beforeDay, settled: settled, now: now)
        }
        guard let learned else { return nil }
        try store.pool.write { try save(learned, db: $0) }
        return learned
    }

    /// `retrainIfDue` for a background task: the learning runs on the store's reader queue,
    /// not on a thread of the task pool. Also returns the people of earlier days it counted
    /// (the next check's `settled`) and how many of them the stored model has not learned from
    /// (0 once one is learned from all of them).
    public static func retrainIfDue(
        store: ServiceStore, every: Int, minimumPeople: Int = 1_000, before beforeDay: String,
        settled: Int?, now: Date
    ) async throws -> (learned: Stored?, people: Int, behind: Int) {
        let (learned, people, behind) = try await store.pool.read {
            try learnIfDue($0, every: every, minimumPeople: minimumPeople, before: beforeDay, settled: settled, now: now)
        }
        guard let learned else { return (nil, people, behind) }
        try await store.pool.write { try save(learned, db: $0) }
        return (learned, people, 0)
    }

    #if canImport(Glibc)
    /// glibc's `malloc_trim(0)` (not in Swift's Glibc module): returns the free memory of every
    /// arena to the kernel.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = dlsym(nil, "malloc_trim").map {
        unsafeBitCast($0, to: (@convention(c) (Int) -> Int32).self)
    }

    static func releaseFreedMemory() { _ = mallocTrim?(0) }

    /// glibc's `mallopt` (not in Swift's Glibc module either).
    private static let mallopt: (@convention(c) (Int32, Int32) -> Int32)? = dlsym(nil, "mallopt").map {
        unsafeBitCast($0, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }
    #endif

    /// Caps glibc's malloc arenas at two (`M_ARENA_MAX`, as `MALLOC_ARENA_MAX=2` does); call it
    /// first thing, before any thread. By default each thread that allocates under contention
    /// gets an arena of its own (up to 8 a core), and child research's freed memory stayed
    /// spread over them: in a backfill of 300,000 incidents its floor rose to about 140 MiB and
    /// it peaked at 165-174 MiB; with two arenas the floor was 87-106 MiB and the peak 142 MiB,
    /// at the same rate (docs/BENCHMARKS.md). A value already in the environment is kept.
    public static func capMallocArenas() {
        #if canImport(Glibc)
        guard ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil else { return }
        let arenaMax: Int32 = -8 // glibc's M_ARENA_MAX
        _ = mallopt?(arenaMax, 2)
        #endif
    }

    static func learnIfDue(
        _ db: Database, every: Int, minimumPeople: Int, before beforeDay: String, settled: Int?,
        now: Date
    ) throws -> (Stored?, Int, Int) {
        let (due, people, behind) = try isDue(db, every: every, minimumPeople: minimumPeople, before: beforeDay, settled: settled)
        guard due else { return (nil, people, behind) }
        let model = try train(from: db, before: beforeDay)
        #if canImport(Glibc)
        // Learning runs on whichever reader thread the pool gives it, so each model learned
        // leaves its freed tens of MiB in another of glibc's per-thread arenas, which keep
        // them: the resident size grew by a sample's worth with every model. Give them back.
        releaseFreedMemory()
        #endif
        return (Stored(model: model, people: people, trainedAt: now, beforeDay: beforeDay), people, 0)
    }
}
