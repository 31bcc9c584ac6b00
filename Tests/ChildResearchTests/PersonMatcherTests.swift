import EncompassTestSupport
import Foundation
import Testing

@testable import ChildResearchService

func person(_ given: String, _ family: String, _ dob: String? = nil, _ lines: [String] = [], postcode: String? = nil) -> PersonFeatures {
    PersonFeatures(givenName: given, familyName: family, dateOfBirth: dob, addressLines: lines, postcode: postcode)
}

@Suite("Person matcher: UK names, dates of birth and addresses")
struct PersonMatcherTests {
    let matcher = PersonMatcher()

    @Test("nicknames match their full names, unrelated names do not")
    func nicknames() {
        #expect(matcher.matches(person("Bob", "Smith", "1985-04-12"), person("Robert", "Smith", "1985-04-12")))
        #expect(matcher.matches(person("Liz", "Okafor", "1990-01-30"), person("Elizabeth", "Okafor", "1990-01-30")))
        #expect(matcher.matches(person("Jack", "Hughes", "2015-06-02"), person("John", "Hughes", "2015-06-02")))
        #expect(
            matcher.compare(person("Kate", "Ward", "2012-03-09"), person("Catherine", "Ward", "2012-03-09")).reasons.contains {
                $0.contains("nickname")
            })
        #expect(!matcher.matches(person("Bob", "Smith", "1985-04-12"), person("Sarah", "Jones", "1985-04-12")))
        #expect(!matcher.matches(person("Oliver", "Hughes", "2015-06-02"), person("Amelia", "Hughes", "2017-11-21")))
    }

    @Test("hyphenated and double-barrelled surnames match one part; accents and apostrophes are ignored")
    func surnames() {
        #expect(matcher.matches(person("Amelia", "Smith-Jones", "2016-02-01"), person("Amelia", "Jones", "2016-02-01")))
        #expect(matcher.matches(person("Amelia", "Smith Jones", "2016-02-01"), person("amelia", "SMITH-JONES", "2016-02-01")))
        #expect(matcher.matches(person("Zoë", "O'Brien", "2011-09-14"), person("Zoe", "OBrien", "2011-09-14")))
        #expect(NameText.normalise("  Mary-Anne  O'Neill ") == "mary-anne oneill")
    }

    @Test("typos, swapped names, transposed DOB digits, day/month swaps and missing DOB")
    func typosAndDates() {
        #expect(matcher.matches(person("Sarah", "Thompson", "1988-07-21"), person("Sara", "Thomson", "1988-07-21")))
        #expect(
            matcher.compare(person("Hughes", "Oliver", "2015-06-02"), person("Oliver", "Hughes", "2015-06-02")).reasons.contains {
                $0.contains("swapped")
            })
        #expect(matcher.matches(person("Hughes", "Oliver", "2015-06-02"), person("Oliver", "Hughes", "2015-06-02")))
        #expect(PartialDate.compare(PartialDate("2015-06-12")!, PartialDate("2015-06-21")!).score == 0.85)
        #expect(PartialDate.compare(PartialDate("2015-04-06")!, PartialDate("2015-06-04")!).reason.contains("swapped"))
        #expect(PartialDate.compare(PartialDate("2015")!, PartialDate("2015-06-04")!).score == 0.6)
        #expect(PartialDate.compare(PartialDate("2014-06-04")!, PartialDate("2019-01-30")!).score == 0)
        #expect(
            matcher.matches(
                person("Oliver", "Hughes", "2015-06-12", ["10 High St"], postcode: "RG1 7LL"),
                person("Oliver", "Hughes", "2015-06-21", ["10 High Street"], postcode: "rg17ll")))
        // No DOB on one side: name and address carry it.
        #expect(
            matcher.matches(
                person("Oliver", "Hughes", nil, ["10 High St"], postcode: "RG1 7LL"),
                person("Oliver", "Hughes", "2015-06-21", ["10 High Street"], postcode: "RG1 7LL")))
        // Same name, different DOB and address: a different child.
        #expect(
            !matcher.matches(
                person("Oliver", "Hughes", "2009-01-03", ["4 Mill Lane"], postcode: "OX4 1AA"),
                person("Oliver", "Hughes", "2015-06-21", ["10 High Street"], postcode: "RG1 7LL")))
    }

    @Test(
        "the learned model's identity rules where both dates of birth are known: siblings born close together are refused, the rule named; a nickname without a date of birth still matches"
    )
    func identityRules() {
        let dean = person("Dean", "Fisher", "1989-07-25", ["33 Highfield Road"], postcode: "HP9 4FJ")
        let sister = matcher.compare(person("Shabana", "Fisher", "1989-07-20", ["33 Highfield Road"], postcode: "HP9 4FJ"), dean)
        #expect(sister.score == 0 && sister.reasons.first == "not a link: \(ComparisonVector.differentGivenNameCloseDate)", "\(sister)")
        // Without their addresses too.
        let names = matcher.compare(person("Shabana", "Fisher", "1989-07-20"), person("Dean", "Fisher", "1989-07-25"))
        #expect(names.score == 0)
        // The same man with a mistyped date of birth and given name is still one person.
        #expect(matcher.matches(person("Deen", "Fisher", "1989-07-20", ["33 Highfield Road"], postcode: "HP9 4FJ"), dean))
        // A child recorded by nickname and without a date of birth still matches the earlier record.
        #expect(
            matcher.matches(
                person("Ollie", "Hughes", nil, ["10 High St"], postcode: "RG1 7LL"),
                person("Oliver", "Hughes", "2015-06-21", ["10 High Street"], postcode: "RG1 7LL")))
        let kelly = person("Kelly", "Lee", "1993-03-09", ["171 Mortimer Road"], postcode: "RG1 9QG")
        #expect(matcher.compare(kelly, person("Lee", "Kelly", "1980-12-07", ["176 Station Road"], postcode: "RG5 5ZA")).score == 0)
    }

    @Test("addresses: flat numbers in any form, abbreviations and postcodes")
    func addresses() {
        let a = AddressText.parse(["Flat 2, 10 High St"])
        let b = AddressText.parse(["2/10 High Street"])
        let c = AddressText.parse(["Flat 3", "10 High Street"])
        #expect(a == b)
        #expect(a.flat == "2" && a.number == "10" && a.street == "high street")
        #expect(c.flat == "3" && c.number == "10")
        #expect(AddressText.dwellingKey(a, postcode: AddressText.postcodeKey("rg1 7ll")) == AddressText.dwellingKey(b, postcode: "RG17LL"))
        #expect(AddressText.dwellingKey(a, postcode: "RG17LL") != AddressText.dwellingKey(c, postcode: "RG17LL"))
        #expect(AddressText.parse(["10a Mill Rd"]).number == "10a")
    }

    @Test("Soundex and Jaro-Winkler reference values")
    func primitives() {
        #expect(NameText.soundex("robert") == "R163")
        #expect(NameText.soundex("rupert") == "R163")
        #expect(NameText.soundex("ashcraft") == "A261")
        #expect(abs(NameText.jaroWinkler("martha", "marhta") - 0.9611) < 0.001)
        #expect(abs(NameText.jaroWinkler("dwayne", "duane") - 0.84) < 0.001)
    }

    @Test("swapped names and nicknames share a blocking key")
    func blocking() {
        let a = person("Oliver", "Hughes", "2015-06-02"), b = person("Hughes", "Oliver", "2015-06-02")
        #expect(!Set(a.blockingKeys).isDisjoint(with: b.blockingKeys))
        let c = person("Bob", "Smith", "1980"), d = person("Robert", "Smyth", "1980-02-02")
        #expect(!Set(c.blockingKeys).isDisjoint(with: d.blockingKeys))
    }
}

@Suite("Person matcher on FEBRL dataset 1", .tags(.slow))
struct FebrlQualityTests {
    @Test("F1 of the matcher on dataset1 is at least 0.95 (measured 0.98) and beats the exact-match baseline")
    func dataset1() throws {
        let path = TestPaths.shared + "/data/febrl/dataset1.csv"
        let data = try FebrlDataset.load(path: path)
        #expect(data.records.count == 1000)
        #expect(data.truePairs.count == 500)
        let quality = data.linkWithMatcher(PersonMatcher())
        let baseline = data.linkExact()
        print("dataset1 matcher: \(quality)\ndataset1 exact: \(baseline)")
        #expect(quality.f1 >= 0.95)
        #expect(quality.f1 > baseline.f1)
    }
}
