import EncompassModels
import Foundation

/// `encompass-bench schools`: how fast and how right the matcher is on names as officers write
/// them — every open school of a register, its name abbreviated, stripped of CE/RC and given a
/// typo — against the same matcher scoring every school (no index) in the same run.
public enum MatcherBenchmark {
    public struct Report: Sendable {
        public var schools: Int
        public var queries: Int
        public var buildSeconds: Double
        public var indexedSeconds: Double
        public var fullScanSeconds: Double
        /// Winner is the school the name came from.
        public var right: Int
        /// Winner is another school (the figure that must stay at zero).
        public var wrong: Int
        /// No clear winner: the request path.
        public var unresolved: Int
        public var wrongExamples: [String]
    }

    /// An officer's rendering of a school name: abbreviations, CE/RC dropped, one typo in the
    /// longest word (deterministic).
    public static func garble(_ name: String) -> String {
        var words = name.split(separator: " ").map(String.init)
        words = words.compactMap { word in
            switch word.lowercased() {
            case "primary": return "Prim"
            case "school": return "Sch"
            case "infant", "infants": return "Inf"
            case "junior": return "Jun"
            case "academy": return "Acad"
            case "church", "of", "england", "ce", "c.e.", "cofe", "catholic", "rc": return nil
            default: return word
            }
        }
        if let longest = words.indices.max(by: { words[$0].count < words[$1].count }), words[longest].count >= 7 {
            var chars = Array(words[longest])
            chars.swapAt(3, 4)
            words[longest] = String(chars)
        }
        return words.joined(separator: " ")
    }

    public static func run(schools: [RegisteredSchool], baseline: Bool = true, now: () -> Date = Date.init) -> Report {
        let start = now()
        let matcher = SchoolMatcher(schools: schools)
        let built = now()
        let queries = schools.filter(\.isOpen).map { ($0.urn, garble($0.name)) }
        var right = 0, wrong = 0, unresolved = 0
        var examples: [String] = []
        let t0 = now()
        for (urn, query) in queries {
            switch matcher.match(query).winner?.urn {
            case nil: unresolved += 1
            case urn: right += 1
            case let other?:
                wrong += 1
                if examples.count < 10 { examples.append("\"\(query)\" from \(urn) → \(other) \(matcher.school(other)?.name ?? "")") }
            }
        }
        let t1 = now()
        if baseline { for (_, query) in queries { _ = matcher.match(query, fullScan: true) } }
        let t2 = now()
        return Report(
            schools: schools.count, queries: queries.count, buildSeconds: built.timeIntervalSince(start),
            indexedSeconds: t1.timeIntervalSince(t0), fullScanSeconds: t2.timeIntervalSince(t1),
            right: right, wrong: wrong, unresolved: unresolved, wrongExamples: examples)
    }
}
