import EncompassKafka
import EncompassModels
import Foundation
import GRDB
import Logging
import ServiceRuntime

/// The learned model as research uses it: the stored model and its scorer.
public struct LearnedMatcher: Sendable {
    public let stored: MatchModelStore.Stored
    public let scorer: MatchScorer

    public init(_ stored: MatchModelStore.Stored) {
        self.stored = stored
        self.scorer = stored.model.scorer()
    }

    public var model: MatchModel { stored.model }
}

/// The stored model for research: one small read per request to see which model is stored, and
/// the model decoded and turned into a scorer only when that changes. Research learns nothing.
public final class MatchModelCache: Sendable {
    private struct Version: Equatable {
        var beforeDay: String
        var people: Int
        var trainedAt: Date
    }
    private let current = Locked<(version: Version, matcher: LearnedMatcher?)?>(nil)

    public init() {}

    /// The stored model when it was learned for `day` (from the records of the days before it,
    /// the records research reads), else nil: research then uses the hand-weighted matcher.
    public func matcher(forDay day: String, db: Database) throws -> LearnedMatcher? {
        // Asked for every incident: a statement prepared once per connection.
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT people, trainedAt, beforeDay FROM researchMatchModel WHERE id = 1"))
        else { return nil }
        let version = Version(beforeDay: row["beforeDay"], people: row["people"], trainedAt: row["trainedAt"])
        guard version.beforeDay == day else { return nil }
        if let cached = current.withLock({ $0 }), cached.version == version { return cached.matcher }
        // A model in another format reads as nil and stays unused until it is learned again.
        let matcher = try MatchModelStore.load(db).map(LearnedMatcher.init)
        current.withLock { $0 = (version, matcher) }
        return matcher
    }
}

/// How child research keeps and uses the learned person-matching model.
public struct MatchModelSettings: Sendable, Equatable {
    /// Whether research scores with the learned model where one is stored for the day
    /// (`ENCOMPASS_RESEARCH_MATCHER`: `learned`, the default, or `hand`, the hand-weighted
    /// matcher, kept for comparison).
    public var useLearned = true
    /// Learn again once the earlier days' people have grown by this many (`ENCOMPASS_RESEARCH_MODEL_EVERY`).
    public var every = 50_000
    /// No model below this many people of earlier days: too few pairs to learn from.
    public var minimumPeople = 1_000
    /// How often the background task checks whether a model is due (`ENCOMPASS_RESEARCH_MODEL_CHECK_SECONDS`).
    public var checkInterval: Duration = .seconds(5)

    public init() {}

    static func fromEnvironment(_ environment: [String: String]) throws(ConfigurationError) -> MatchModelSettings {
        var settings = MatchModelSettings()
        func text(_ name: String) -> String? {
            environment[name].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        if let matcher = text("ENCOMPASS_RESEARCH_MATCHER") {
            guard ["learned", "hand"].contains(matcher) else {
                throw ConfigurationError(variable: "ENCOMPASS_RESEARCH_MATCHER", problem: "is '\(matcher)'; expected 'learned' or 'hand'")
            }
            settings.useLearned = matcher == "learned"
        }
        if let every = text("ENCOMPASS_RESEARCH_MODEL_EVERY") {
            guard let value = Int(every), value >= 1 else {
                throw ConfigurationError(variable: "ENCOMPASS_RESEARCH_MODEL_EVERY", problem: "is '\(every)'; expected a number of people, 1 or more")
            }
            settings.every = value
        }
        if let seconds = text("ENCOMPASS_RESEARCH_MODEL_CHECK_SECONDS") {
            guard let value = Double(seconds), value >= 0.1, value <= 86_400 else {
                throw ConfigurationError(
                    variable: "ENCOMPASS_RESEARCH_MODEL_CHECK_SECONDS", problem: "is '\(seconds)'; expected seconds from 0.1 to 86400")
            }
            settings.checkInterval = .milliseconds(Int(value * 1000))
        }
        return settings
    }
}

enum MatchModelUpkeep {
    /// Keeps the stored model current, off the message path: every `checkInterval` it learns a
    /// model for the service day (from the records of the days before it) when one is due
    /// (`MatchModelStore.isDue`). Instances that hold the same earlier days learn the same model.
    /// `encompass_research_match_model_behind_people` is how many people of earlier days the
    /// day's model has not learned from, as the last check counted them: 0 once it is current
    /// (or when there is nothing to learn, or the learned model is off), -1 when the check
    /// failed. A scrape only reads the figure: counting the people reads the whole day index
    /// (a second at 5 million people), too dear for every scrape, and a read transaction held
    /// open by scrape after scrape keeps the store's WAL from being reset.
    static func task(_ settings: MatchModelSettings) -> BackgroundTask {
        BackgroundTask(name: "match-model") { environment in
            let metrics = environment.metrics
            let lastBehind = Locked<Int?>(nil)
            @Sendable func behind(_ people: Int) {
                metrics.gauge(
                    "encompass_research_match_model_behind", unit: "people",
                    help: "People of earlier days the day's learned match model was not learned from (0: current)", value: people)
            }
            environment.metrics.addRefresher {
                guard settings.useLearned else {
                    behind(0)
                    return
                }
                if let figure = lastBehind.withLock({ $0 }) { behind(figure) }
            }
            // Off: nothing to learn, but the task stays (a background task that ends stops the service).
            while !settings.useLearned, !Task.isCancelled { try await Task.sleep(for: .seconds(3_600)) }
            var settled: Int?
            while !Task.isCancelled {
                let now = environment.clock.now()
                let day = CalendarDate(now).description
                do {
                    let started = ContinuousClock.now
                    let (learned, people, behindPeople) = try await MatchModelStore.retrainIfDue(
                        store: environment.store, every: settings.every,
                        minimumPeople: settings.minimumPeople, before: day, settled: settled, now: now)
                    lastBehind.withLock { $0 = behindPeople }
                    settled = people
                    if let stored = learned {
                        environment.logger.info(
                            "match model learned",
                            metadata: [
                                "beforeDay": "\(day)", "people": "\(stored.people)", "records": "\(stored.model.records)",
                                "trainingPairs": "\(stored.model.trainingPairs)", "expectedFalseLinkRate": "\(stored.model.expectedFalseLinkRate)",
                                "seconds": "\((ContinuousClock.now - started).components.seconds)",
                            ])
                    }
                } catch {
                    lastBehind.withLock { $0 = -1 }
                    environment.logger.error(
                        "match model not learned; research keeps the stored model or the hand-weighted matcher",
                        metadata: [
                            "error": "\(error)"
                        ])
                }
                try await Task.sleep(for: settings.checkInterval)
            }
        }
    }
}
