import Foundation
import GRDB
import ServiceRuntime

/// The learned person-matching model kept with the history index: learned from the index's own
/// people, stored as JSON in `researchMatchModel` (one row), and learned again once the index
/// has grown by a given number of people since. Learning reads the index and runs for seconds
/// at a million people, so it belongs on a background path, never in a message's transaction.
public enum MatchModelStore {
    public static let migration = StoreMigration("child-research-match-model-v1") { db in
        try db.execute(sql: """
            CREATE TABLE researchMatchModel (
                id INTEGER PRIMARY KEY CHECK (id = 1), model BLOB NOT NULL, people INTEGER NOT NULL, trainedAt DATETIME NOT NULL)
            """)
    }

    public struct Stored: Sendable, Equatable {
        public var model: MatchModel
        /// People in the index when the model was learned.
        public var people: Int
        public var trainedAt: Date
    }

    /// The stored model; nil when none is, or when it was written in another format (a model
    /// that cannot be read is learned again rather than stopping the service).
    public static func load(_ db: Database) throws -> Stored? {
        guard let row = try Row.fetchOne(db, sql: "SELECT model, people, trainedAt FROM researchMatchModel WHERE id = 1") else { return nil }
        let data: Data = row["model"]
        guard let model = try? JSONDecoder().decode(MatchModel.self, from: data), model.version == MatchModel.formatVersion else { return nil }
        return Stored(model: model, people: row["people"], trainedAt: row["trainedAt"])
    }

    public static func save(_ stored: Stored, db: Database) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try db.execute(sql: "INSERT OR REPLACE INTO researchMatchModel (id, model, people, trainedAt) VALUES (1, ?, ?, ?)",
                       arguments: [try encoder.encode(stored.model), stored.people, stored.trainedAt])
    }

    /// Learns a model from the index's people: at most `maxRecords` of them, taken in the order of
    /// their content (stable person id, then every field the model reads), so the sample — and the
    /// model — depend only on what the index holds, not on the order it was fed in. Ordering by the
    /// person id keeps the records of one person together, so a sample keeps its true pairs.
    public static func train(from db: Database, maxRecords: Int = 200_000, options: MatchModelTrainer.Options = .init()) throws -> MatchModel {
        var fetch = try RawStatement(db.cachedStatement(sql: """
            SELECT \(HistoryIndex.PersonRow.columns) FROM researchPerson
            ORDER BY personId, givenName, familyName, dateOfBirth, address LIMIT ?
            """), db: db)
        fetch.bind(Int64(maxRecords))
        var places: [String: PersonFeatures] = [:]
        var people: [PersonFeatures] = []
        try fetch.rows { people.append(HistoryIndex.PersonRow(statement: $0).features(cache: &places)) }
        return MatchModelTrainer.train(records: people, options: options)
    }

    /// Whether the index has `minimumPeople` and has grown by `every` people since the stored
    /// model was learned (or no model is stored yet), or has shrunk: the model's name
    /// frequencies hold the names it was learned from, so people taken out by a retention purge
    /// leave the model at its next learning.
    public static func isDue(_ db: Database, every: Int, minimumPeople: Int = 1_000) throws -> (due: Bool, people: Int) {
        let people = try HistoryIndex.counts(db).people
        guard people >= minimumPeople else { return (false, people) }
        guard let stored = try load(db) else { return (true, people) }
        return (people - stored.people >= every || people < stored.people, people)
    }

    /// Learns and stores a new model when one is due: the check and the learning read the store
    /// (a reader, beside the writers), only the finished model is written.
    @discardableResult
    public static func retrainIfDue(store: ServiceStore, every: Int, minimumPeople: Int = 1_000, now: Date) throws -> Stored? {
        let (due, people) = try store.pool.read { try isDue($0, every: every, minimumPeople: minimumPeople) }
        guard due else { return nil }
        let model = try store.pool.read { try train(from: $0) }
        let stored = Stored(model: model, people: people, trainedAt: now)
        try store.pool.write { try save(stored, db: $0) }
        return stored
    }
}
