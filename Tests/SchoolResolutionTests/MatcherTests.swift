import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@testable import SchoolResolutionService

@Suite("School name matching over the real 2018 list", .tags(.slow))
struct MatcherTests {
    @Test("the shared list is read whole")
    func sharedList() {
        #expect(Fixtures.sharedList.count == 1652)
    }

    @Test("normalisation: Saint/St, C of E/CE, Catholic/RC, abbreviations, punctuation")
    func normalisation() {
        #expect(SchoolMatcher.tokens("St. Mary's C.E. Prim Sch") == ["st", "marys", "ce", "primary", "school"])
        #expect(SchoolMatcher.tokens("Saint Marys Church of England Primary School") == ["st", "marys", "ce", "primary", "school"])
        #expect(SchoolMatcher.tokens("St Mary's C of E (VA) Inf") == ["st", "marys", "ce", "infant"])
        #expect(SchoolMatcher.tokens("Our Lady's Roman Catholic Jun & Inf Acad") == ["our", "ladys", "rc", "junior", "and", "infant", "academy"])
        #expect(SchoolMatcher.tokens("St Joseph’s Catholic Primary") == ["st", "josephs", "rc", "primary"])
    }

    static let table: [(String, String?)] = [
        // abbreviations
        ("Caversham Prim Sch", "109778"),
        ("Alfred Sutton Pri", "109776"),
        ("Shinfield St Marys Jun", "109976"),
        ("Polehampton CE Inf", "109981"),
        ("Calcot Inf Sch & Nursery", "109931"),
        // missing CE / RC, C of E spelt out
        ("Bucklebury Primary School", "109955"),
        ("Kintbury St Mary's C of E Primary", "109967"),
        ("Winkfield St Marys Primary", "109994"),
        ("St Josephs Primary, Newbury", "110094"),
        ("Holy Family RC Primary", "110090"),
        // Primary / Prim with a town after a comma
        ("St Marys CE Prim, Slough", "109995"),
        ("St Mary's Catholic Prim, Maidenhead", "139882"),
        ("St Peters RC Primary, Marlow", "110473"),
        // typos
        ("Cavresham Primary", "109778"),
        ("Coley Primry School", "109779"),
        ("Burghfeild St Marys CE Primary", "109956"),
        ("Holme Cort School", "108886"),
        // an academy conversion: the closed maintained school does not compete with its open successor
        ("St Mary and All Saints CE Primary, Reading", "146275"),
        // ambiguous or unknown: never guessed
        ("St Marys", nil),
        ("St Mary's School", nil),
        ("St Josephs Catholic Primary", nil),
        ("Primary School", nil),
        ("Hogwarts School of Witchcraft", nil),
        ("", nil),
    ]

    @Test("real names as officers write them", arguments: Self.table)
    func realNames(_ query: String, _ expected: String?) {
        let outcome = Fixtures.matcher.match(query)
        #expect(outcome.winner?.urn == expected, "\(query): \(outcome.explanation) — \(outcome.candidates.map(\.summary))")
        if expected == nil, query.hasPrefix("St ") {
            #expect(!outcome.candidates.isEmpty, "ambiguous names keep their candidates for the request")
        }
    }

    @Test("a remembering matcher gives the plain matcher's outcome, first time and again, per thresholds; a full memo starts afresh")
    func remembering() {
        let remembering = Fixtures.matcher.remembering(capacity: 8)
        let strict = MatchThresholds(minimumScore: 0.95, minimumMargin: 0.3)
        for _ in 0..<3 {
            for (query, _) in Self.table {
                #expect(remembering.match(query) == Fixtures.matcher.match(query), "\(query)")
                #expect(remembering.match(query, thresholds: strict) == Fixtures.matcher.match(query, thresholds: strict), "\(query), strict")
            }
        }
        #expect(remembering.match("Caversham Prim Sch").winner?.urn == "109778")
        #expect(
            remembering.match("Caversham Prim Sch", thresholds: MatchThresholds(minimumScore: 1.01)).winner == nil,
            "thresholds are part of what is remembered")
    }

    @Test("Jaro-Winkler: known values")
    func jaroWinkler() {
        #expect(abs(SchoolMatcher.jaroWinkler("martha", "marhta") - 0.961) < 0.001)
        #expect(abs(SchoolMatcher.jaroWinkler("dixon", "dicksonx") - 0.813) < 0.001)
        #expect(SchoolMatcher.jaroWinkler("abc", "xyz") == 0)
    }

    @Test("every open school of the real list, garbled as officers write it: never another school, and mostly found")
    func garbledRegister() {
        #expect(MatcherBenchmark.garble("St Mary's Church of England Primary School") == "St Mary's Prim Sch")
        #expect(MatcherBenchmark.garble("Caversham Primary School") == "Cavresham Prim Sch")
        let report = MatcherBenchmark.run(schools: Fixtures.sharedList, baseline: false)
        #expect(report.queries > 1_500)
        #expect(report.wrong == 0, "\(report.wrongExamples)")
        #expect(Double(report.right) / Double(report.queries) > 0.9)
    }
}
