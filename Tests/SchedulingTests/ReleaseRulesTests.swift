import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import Testing

@testable import SchedulingService
@testable import ServiceRuntime

/// `YYYY-MM-DD HH:MM` London wall-clock time, or an ISO 8601 instant with `Z`.
func instant(_ text: String) -> Date {
    if text.hasSuffix("Z") { return ISO8601DateFormatter().date(from: text)! }
    let parts = text.split(separator: " ")
    let day = CalendarDate(iso: String(parts[0]))!
    let clock = parts[1].split(separator: ":").map { Int($0)! }
    return day.at(hour: clock[0], minute: clock[1])
}

struct ReleaseCase: CustomTestStringConvertible, Sendable {
    var occurred: String
    var la: String
    var risk: RiskLevel = .standard
    /// Default: 30 minutes after the incident.
    var processed: String?
    /// London `YYYY-MM-DD HH:MM`, `at once` (released at the processing time, to the school) or `escalate`.
    var expected: String
    var why: String
    var urn: String? = nil

    var testDescription: String { "\(occurred) LA \(la) \(risk.rawValue) → \(expected): \(why)" }
}

let oxon = "931", cambs = "873"

let releaseCases: [ReleaseCase] = [
    // Ordinary school weeks (Oxfordshire, autumn 2025).
    .init(occurred: "2025-11-03 21:00", la: oxon, expected: "2025-11-04 08:00", why: "Monday evening → Tuesday"),
    .init(
        occurred: "2025-11-04 07:00", la: oxon, expected: "2025-11-04 08:00", why: "early Tuesday, processed 07:30 → that morning as the window opens"
    ),
    .init(occurred: "2025-11-05 23:59", la: oxon, expected: "2025-11-06 08:00", why: "a minute before midnight → Thursday"),
    .init(occurred: "2025-11-06 12:00", la: oxon, expected: "at once", why: "Thursday 12:30, inside the window → at once"),
    .init(occurred: "2025-11-06 10:00", la: oxon, expected: "at once", why: "reported 10:30 on a school day → at once (GMT)"),
    .init(occurred: "2025-11-06 15:30", la: oxon, expected: "2025-11-07 08:00", why: "reported 16:00 on a school day → next school day 08:00"),
    .init(occurred: "2025-11-06 14:29", la: oxon, expected: "at once", why: "processed 14:59, a minute before the window closes"),
    .init(occurred: "2025-11-06 14:30", la: oxon, expected: "2025-11-07 08:00", why: "processed at exactly 15:00: the window has closed"),
    .init(occurred: "2025-11-07 18:00", la: oxon, expected: "2025-11-10 08:00", why: "Friday → Monday"),
    .init(occurred: "2025-11-08 02:00", la: oxon, expected: "2025-11-10 08:00", why: "Saturday → Monday"),
    .init(occurred: "2025-11-09 22:30", la: oxon, expected: "2025-11-10 08:00", why: "Sunday evening → Monday"),
    // October half term 2025 (27-31 Oct), with the clocks going back on Sunday 26 Oct.
    .init(occurred: "2025-10-24 20:00", la: oxon, expected: "2025-11-03 08:00", why: "Friday before half term → first day back"),
    .init(occurred: "2025-10-24 20:00", la: oxon, risk: .high, expected: "escalate", why: "high risk waiting through half term"),
    .init(occurred: "2025-10-29 14:00", la: oxon, expected: "2025-11-03 08:00", why: "in half term → first day back"),
    .init(occurred: "2025-10-29 14:00", la: oxon, risk: .high, expected: "escalate", why: "high risk in half term"),
    .init(occurred: "2025-10-25 10:00", la: oxon, risk: .high, expected: "escalate", why: "high risk on the Saturday before half term"),
    .init(
        occurred: "2025-11-02 20:00", la: oxon, risk: .high, expected: "2025-11-03 08:00",
        why: "high risk on the Sunday before the first day back: no holiday to wait through"),
    .init(occurred: "2025-10-26T00:30:00Z", la: oxon, expected: "2025-11-03 08:00", why: "01:30 BST as the clocks go back, in half term"),
    .init(occurred: "2025-10-26T01:30:00Z", la: oxon, expected: "2025-11-03 08:00", why: "01:30 GMT, the second 01:30 of the night"),
    // Christmas 2025.
    .init(occurred: "2025-12-19 16:00", la: oxon, expected: "2026-01-05 08:00", why: "last day of the autumn term → spring term"),
    .init(occurred: "2025-12-25 10:00", la: oxon, expected: "2026-01-05 08:00", why: "Christmas Day → first day of spring term"),
    .init(occurred: "2025-12-25 10:00", la: oxon, risk: .high, expected: "escalate", why: "high risk on Christmas Day"),
    .init(occurred: "2026-01-01 03:00", la: oxon, risk: .high, expected: "escalate", why: "high risk on New Year's Day (holiday)"),
    .init(
        occurred: "2026-01-04 21:00", la: oxon, risk: .high, expected: "2026-01-05 08:00",
        why: "high risk on the Sunday before term: goes to school on Monday"),
    .init(occurred: "2025-12-19 16:00", la: cambs, expected: "2026-01-05 08:00", why: "Cambridgeshire: Christmas holidays"),
    // Spring 2026: February half term, Easter and the clocks going forward on 29 March.
    .init(occurred: "2026-02-13 17:00", la: oxon, expected: "2026-02-23 08:00", why: "Friday before February half term"),
    .init(occurred: "2026-02-13 17:00", la: cambs, expected: "2026-02-23 08:00", why: "Cambridgeshire: February half term"),
    .init(occurred: "2026-02-18 11:00", la: cambs, risk: .medium, expected: "2026-02-23 08:00", why: "medium risk in half term waits"),
    .init(occurred: "2026-03-26 20:00", la: oxon, expected: "2026-03-27 08:00", why: "Thursday → last day of spring term"),
    .init(occurred: "2026-03-27 19:00", la: oxon, expected: "2026-04-13 08:00", why: "last day of spring term → summer term after Easter"),
    .init(occurred: "2026-03-29T00:30:00Z", la: oxon, expected: "2026-04-13 08:00", why: "the night the clocks go forward, in the Easter holiday"),
    .init(occurred: "2026-04-03 12:00", la: oxon, expected: "2026-04-13 08:00", why: "Good Friday in the Easter holiday"),
    .init(occurred: "2026-04-06 12:00", la: oxon, risk: .high, expected: "escalate", why: "high risk on Easter Monday"),
    // May 2026 bank holidays and half term.
    .init(occurred: "2026-05-01 18:00", la: oxon, expected: "2026-05-05 08:00", why: "Friday before the Early May bank holiday → Tuesday"),
    .init(occurred: "2026-05-03 12:00", la: oxon, expected: "2026-05-05 08:00", why: "Sunday before the bank holiday → Tuesday"),
    .init(occurred: "2026-05-04 10:00", la: oxon, expected: "2026-05-05 08:00", why: "on the bank holiday → Tuesday"),
    .init(
        occurred: "2026-05-04 10:00", la: oxon, risk: .high, expected: "2026-05-05 08:00",
        why: "high risk on a term-time bank holiday is not a school holiday"),
    .init(occurred: "2026-05-22 18:00", la: oxon, expected: "2026-06-01 08:00", why: "Friday before spring bank holiday and half term"),
    .init(occurred: "2026-05-22 18:00", la: oxon, risk: .high, expected: "escalate", why: "high risk before May half term"),
    .init(
        occurred: "2026-06-07T23:30:00Z", la: oxon, expected: "2026-06-08 08:00",
        why: "23:30 UTC Sunday is 00:30 BST Monday → Monday as the window opens"),
    .init(occurred: "2026-01-11T23:30:00Z", la: oxon, expected: "2026-01-12 08:00", why: "23:30 GMT Sunday is Sunday in London → Monday"),
    // Summer 2026: LAs end on different days.
    .init(occurred: "2026-07-20 15:00", la: oxon, expected: "2026-09-02 08:00", why: "Oxfordshire's last day → autumn term"),
    .init(occurred: "2026-07-20 15:00", la: cambs, expected: "2026-07-21 08:00", why: "Cambridgeshire is still in term"),
    .init(occurred: "2026-07-22 18:00", la: cambs, expected: "2026-09-03 08:00", why: "Cambridgeshire's last day → autumn term"),
    .init(occurred: "2026-07-20 18:00", la: "867", expected: "2026-07-21 08:00", why: "Bracknell Forest ends 21 July"),
    .init(occurred: "2026-07-21 16:00", la: "869", expected: "2026-09-03 08:00", why: "West Berkshire's last day, after the window"),
    .init(occurred: "2026-07-21 12:00", la: "869", expected: "at once", why: "West Berkshire's last day, inside the window (BST)"),
    .init(occurred: "2026-09-01 12:00", la: oxon, expected: "2026-09-02 08:00", why: "day before term → first day"),
    .init(occurred: "2026-09-01 12:00", la: oxon, risk: .high, expected: "escalate", why: "high risk on the last day of the summer holiday"),
    .init(occurred: "2026-09-01 12:00", la: "871", expected: "2026-09-02 08:00", why: "Slough starts 2 September"),
    .init(occurred: "2026-09-01 12:00", la: "874", expected: "2026-09-02 08:00", why: "Peterborough starts 2 September"),
    .init(occurred: "2026-09-01 12:00", la: "870", expected: "2026-09-03 08:00", why: "Reading starts 3 September"),
    .init(occurred: "2025-09-03 16:00", la: "825", expected: "2025-09-04 08:00", why: "Buckinghamshire first day, after the window → Thursday"),
    .init(occurred: "2025-09-01 10:00", la: oxon, expected: "2025-09-02 08:00", why: "Oxfordshire INSET day → first day"),
    .init(occurred: "2025-08-28 22:00", la: oxon, risk: .high, expected: "escalate", why: "high risk in the summer holiday"),
    .init(
        occurred: "2025-08-31 22:00", la: oxon, risk: .high, expected: "2025-09-02 08:00",
        why: "high risk on the Sunday before an INSET day: a weekend and INSET, no holiday to wait through"),
    // October 2026 half term with the clocks going back on 25 October.
    .init(occurred: "2026-10-23 18:00", la: oxon, expected: "2026-11-02 08:00", why: "Friday before half term → 2 Nov (GMT)"),
    .init(occurred: "2026-10-25T00:30:00Z", la: oxon, expected: "2026-11-02 08:00", why: "01:30 BST as the clocks go back"),
    .init(occurred: "2026-10-24 23:30", la: oxon, expected: "2026-11-02 08:00", why: "Saturday 23:30 BST"),
    .init(occurred: "2026-10-28 11:00", la: cambs, risk: .high, expected: "escalate", why: "Cambridgeshire high risk in half term"),
    .init(occurred: "2026-10-23 18:00", la: "999", expected: "2026-10-26 08:00", why: "an LA without term dates: weekdays count"),
    // Christmas 2026: Boxing Day substitute on Monday 28 December, INSET on 4 January 2027.
    .init(occurred: "2026-12-18 18:00", la: oxon, expected: "2027-01-05 08:00", why: "Christmas holiday, INSET 4 Jan"),
    .init(occurred: "2026-12-27 12:00", la: oxon, expected: "2027-01-05 08:00", why: "Sunday 27 December"),
    .init(occurred: "2026-12-28 12:00", la: oxon, expected: "2027-01-05 08:00", why: "Boxing Day substitute bank holiday"),
    .init(occurred: "2026-12-18 18:00", la: cambs, expected: "2027-01-05 08:00", why: "Cambridgeshire Christmas holiday"),
    .init(occurred: "2026-12-28 12:00", la: "999", expected: "2026-12-29 08:00", why: "no term dates: only the substitute bank holiday closes"),
    // 2027: Easter, clocks forward on 28 March, May bank holidays and half term, end of data.
    .init(occurred: "2027-03-24 18:00", la: oxon, expected: "2027-03-25 08:00", why: "Wednesday → last day of spring term (GMT)"),
    .init(occurred: "2027-03-25 18:00", la: oxon, expected: "2027-04-12 08:00", why: "last day of spring term → summer term (BST)"),
    .init(occurred: "2027-03-28T00:30:00Z", la: "999", expected: "2027-03-30 08:00", why: "clocks forward Sunday; Easter Monday closed"),
    .init(occurred: "2027-04-30 18:00", la: oxon, expected: "2027-05-04 08:00", why: "Friday before the Early May bank holiday"),
    .init(occurred: "2027-05-28 18:00", la: oxon, expected: "2027-06-07 08:00", why: "before spring bank holiday and half term"),
    .init(occurred: "2027-05-27 20:00", la: oxon, risk: .high, expected: "2027-05-28 08:00", why: "high risk on a school night: next morning"),
    .init(occurred: "2027-05-28 20:00", la: oxon, risk: .high, expected: "escalate", why: "high risk waiting through half term"),
    .init(occurred: "2027-07-20 18:00", la: oxon, expected: "2027-09-01 08:00", why: "after the last term dates: weekdays count"),
    .init(occurred: "2025-03-28 20:00", la: oxon, expected: "2025-03-31 08:00", why: "before the term dates, across the March 2025 clock change"),
    // Late reports: never in the past.
    .init(occurred: "2025-11-03 21:00", la: oxon, processed: "2025-11-07 10:00", expected: "at once", why: "late, processed Friday 10:00 → at once"),
    .init(
        occurred: "2025-11-03 21:00", la: oxon, processed: "2025-11-07 18:00", expected: "2025-11-10 08:00",
        why: "late, processed Friday evening → Monday"),
    .init(
        occurred: "2025-11-03 21:00", la: oxon, processed: "2025-11-06 06:30", expected: "2025-11-06 08:00",
        why: "late, processed before 8am on a school day → that morning"),
    .init(
        occurred: "2025-11-03 21:00", la: oxon, processed: "2025-11-05 08:00", expected: "at once",
        why: "late, processed at exactly 8am: the window is open"),
    .init(
        occurred: "2025-11-03 21:00", la: oxon, processed: "2025-11-04 07:59", expected: "2025-11-04 08:00",
        why: "processed a minute before the release: on time"),
    .init(
        occurred: "2025-12-12 20:00", la: oxon, processed: "2025-12-20 10:00", expected: "2026-01-05 08:00",
        why: "late, processed in the Christmas holiday"),
    .init(
        occurred: "2025-12-12 20:00", la: oxon, risk: .high, processed: "2025-12-22 09:00", expected: "escalate",
        why: "late high risk processed in the holiday"),
    .init(
        occurred: "2025-10-29 14:00", la: oxon, risk: .high, processed: "2025-11-04 10:00", expected: "at once",
        why: "late high risk processed in term: at once to the school"),
    .init(
        occurred: "2025-10-29 14:00", la: oxon, risk: .high, processed: "2025-11-04 16:00", expected: "2025-11-05 08:00",
        why: "late high risk processed in term after the window: next morning"),
    .init(
        occurred: "2026-02-01 22:00", la: oxon, processed: "2026-02-02 08:30", expected: "at once", why: "processed half an hour after the release"),
    .init(
        occurred: "2026-12-24 20:00", la: oxon, processed: "2027-01-06 14:00", expected: "at once",
        why: "reported after the holiday, inside the window"),
    .init(
        occurred: "2026-12-24 20:00", la: oxon, processed: "2027-01-06 15:30", expected: "2027-01-07 08:00",
        why: "reported after the holiday, after the window"),
    // The release window against holidays and the clock changes.
    .init(
        occurred: "2026-05-25 10:00", la: cambs, expected: "2026-06-01 08:00", why: "10:30 on the spring bank holiday (in half term) → first day back"
    ),
    .init(occurred: "2026-05-04 10:00", la: "999", expected: "2026-05-05 08:00", why: "10:30 on the Early May bank holiday, no term dates → Tuesday"),
    .init(occurred: "2026-02-17 10:00", la: oxon, expected: "2026-02-23 08:00", why: "10:30 on a half-term day → first day back"),
    .init(
        occurred: "2026-02-20 18:00", la: oxon, processed: "2026-02-23 07:00", expected: "2026-02-23 08:00",
        why: "processed before the window on the first day back"),
    .init(occurred: "2026-03-27 10:00", la: "999", expected: "at once", why: "Friday before the clocks go forward, 10:30 GMT → at once"),
    .init(
        occurred: "2026-03-27 18:00", la: "999", expected: "2026-03-30 08:00", why: "Friday evening before the clocks go forward → Monday 08:00 BST"),
    .init(
        occurred: "2026-03-29T00:30:00Z", la: "999", processed: "2026-03-30T07:30:00Z", expected: "at once",
        why: "08:30 BST on the Monday after the change (07:30 UTC) is inside the window"),
    .init(
        occurred: "2026-03-29T00:30:00Z", la: "999", processed: "2026-03-30T06:30:00Z", expected: "2026-03-30 08:00",
        why: "07:30 BST Monday (06:30 UTC) is before the window"),
    .init(occurred: "2026-10-23 18:00", la: "999", expected: "2026-10-26 08:00", why: "Friday evening before the clocks go back → Monday 08:00 GMT"),
    .init(
        occurred: "2026-10-25T00:30:00Z", la: "999", processed: "2026-10-26T14:30:00Z", expected: "at once",
        why: "14:30 GMT Monday after the change is inside the window"),
    .init(
        occurred: "2026-10-25T00:30:00Z", la: "999", processed: "2026-10-26T15:00:00Z", expected: "2026-10-27 08:00",
        why: "15:00 GMT Monday: the window has closed"),
    .init(
        occurred: "2026-10-22 14:00", la: "999", processed: "2026-10-22T14:00:00Z", expected: "2026-10-23 08:00",
        why: "14:00 UTC in BST is 15:00 London: closed"),
    .init(occurred: "2026-10-22 14:00", la: "999", processed: "2026-10-22T13:59:00Z", expected: "at once", why: "14:59 BST: still open"),
]

@Suite("Release rules over real 2025-2027 dates")
struct ReleaseRulesTests {
    static let calendars = try! SchoolCalendars.load()
    static let protocols = try! SchedulingProtocol.loadAll(ForceProtocols.load())

    func decide(_ c: ReleaseCase, force: String = "43", protocol override: SchedulingProtocol? = nil, calendars: SchoolCalendars = calendars) throws
        -> ReleaseDecision
    {
        let occurred = instant(c.occurred)
        let processed = c.processed.map(instant) ?? occurred.addingTimeInterval(1800)
        return try ReleaseRules.decide(
            occurredAt: occurred, processedAt: processed, laCode: c.la, urn: c.urn, risk: c.risk,
            calendar: calendars, protocol: override ?? Self.protocols[force]!)
    }

    @Test("the table has at least 60 cases")
    func tableSize() { #expect(releaseCases.count >= 60) }

    @Test("release time", arguments: releaseCases)
    func release(_ c: ReleaseCase) throws {
        let decision = try decide(c)
        let processed = c.processed.map(instant) ?? instant(c.occurred).addingTimeInterval(1800)
        if c.expected == "at once" {
            #expect(!decision.escalate, "\(decision.rules)")
            #expect(decision.releaseAt == processed, "got \(Timestamp.format(decision.releaseAt)): \(decision.rules)")
            #expect(decision.schoolReleaseAt == processed)
            #expect(decision.rules.contains { $0.contains("inside the release window on a school day: goes at once") })
        } else if c.expected == "escalate" {
            #expect(decision.escalate, "\(decision.rules)")
            #expect(decision.releaseAt == processed)
            #expect(
                decision.rules.contains {
                    $0.contains("escalated now to the Education Safeguarding Manager") && $0.contains("the school's own notice still goes")
                })
            #expect(decision.schoolReleaseAt > processed, "the school's own notice waits for its first day back")
        } else {
            #expect(!decision.escalate, "\(decision.rules)")
            #expect(decision.releaseAt == instant(c.expected), "got \(Timestamp.format(decision.releaseAt)): \(decision.rules)")
        }
        #expect(decision.releaseAt >= processed, "never in the past")
    }

    @Test("release instants in UTC across the clock changes")
    func utcInstants() throws {
        let cases: [(String, String)] = [
            ("2026-03-27 19:00", "2026-04-13T07:00:00Z"), // BST
            ("2026-10-23 18:00", "2026-11-02T08:00:00Z"), // GMT
            ("2025-03-28 20:00", "2025-03-31T07:00:00Z"), // BST from 30 March 2025
            ("2027-03-24 18:00", "2027-03-25T08:00:00Z"), // still GMT
        ]
        for (occurred, utc) in cases {
            let decision = try decide(.init(occurred: occurred, la: oxon, expected: "", why: ""))
            #expect(decision.releaseAt == instant(utc), "\(Timestamp.format(decision.releaseAt))")
        }
    }

    @Test("the rules explain the decision: bank holidays by name, half term, late report, approximate data, missing data")
    func explanations() throws {
        let boxing = try decide(.init(occurred: "2026-12-18 18:00", la: oxon, expected: "", why: ""))
        #expect(boxing.rules.contains { $0.contains("2026-12-28") && $0.contains("Boxing Day") && $0.contains("substitute day") })
        #expect(boxing.rules.contains { $0.contains("INSET") && $0.contains("2027-01-04") })
        #expect(boxing.rules.contains { $0.contains("approximate") })
        let halfTerm = try decide(.init(occurred: "2025-10-24 20:00", la: oxon, expected: "", why: ""))
        #expect(halfTerm.rules.contains { $0.contains("2025-10-27…2025-10-31") && $0.contains("half term") })
        #expect(halfTerm.rules.contains { $0.contains("Monday morning") })
        #expect(!halfTerm.rules.contains { $0.contains("approximate") }, "Oxfordshire 2025-26 is the published calendar")
        let late = try decide(.init(occurred: "2025-11-03 21:00", la: oxon, processed: "2025-11-07 10:00", expected: "", why: ""))
        #expect(late.rules.contains { $0.hasPrefix("late report") })
        let unknown = try decide(.init(occurred: "2026-10-23 18:00", la: "999", expected: "", why: ""))
        #expect(unknown.rules.contains { $0.contains("no term dates for LA 999") })
        let uncovered = try decide(.init(occurred: "2027-07-20 18:00", la: oxon, expected: "", why: ""))
        #expect(uncovered.rules.contains { $0.contains("do not cover 2027-09-01") })
    }

    @Test("a force that does not escalate waits for the first day back")
    func noEscalation() throws {
        var force = Self.protocols["43"]!
        force.escalateHighRiskInHolidays = false
        let decision = try decide(.init(occurred: "2025-10-29 14:00", la: oxon, risk: .high, expected: "", why: ""), protocol: force)
        #expect(!decision.escalate)
        #expect(decision.releaseAt == instant("2025-11-03 08:00"))
        #expect(decision.rules.contains { $0.contains("does not escalate") })
    }

    @Test("another release time from the protocol (07:30), across DST")
    func otherReleaseTime() throws {
        var force = Self.protocols["05"]!
        force.releaseTime = "07:30"
        let decision = try decide(.init(occurred: "2026-03-26 20:00", la: cambs, expected: "", why: ""), protocol: force)
        #expect(decision.releaseAt == instant("2026-03-27T07:30:00Z"))
        let summer = try decide(.init(occurred: "2026-06-09 20:00", la: cambs, expected: "", why: ""), protocol: force)
        #expect(summer.releaseAt == instant("2026-06-10T06:30:00Z"))
    }

    @Test("a school's own term dates override its LA's (academy with a later half term)")
    func schoolOverride() throws {
        let document = TermDatesDocument(
            urn: "123456",
            years: [
                .init(
                    schoolYear: "2026-27",
                    terms: [
                        .init(name: "autumn", start: "2026-09-03", end: "2026-12-16", halfTerms: [DateRange(start: "2026-11-02", end: "2026-11-06")])
                    ])
            ])
        var calendars = Self.calendars
        calendars.schools["123456"] = try TermCalendar(document, label: "test")
        let own = try decide(.init(occurred: "2026-10-23 18:00", la: oxon, expected: "", why: "", urn: "123456"), calendars: calendars)
        #expect(own.releaseAt == instant("2026-10-26 08:00"))
        #expect(own.rules.contains { $0.contains("school 123456's own term dates") })
        let inOwnHalfTerm = try decide(.init(occurred: "2026-10-30 18:00", la: oxon, expected: "", why: "", urn: "123456"), calendars: calendars)
        #expect(inOwnHalfTerm.releaseAt == instant("2026-11-09 08:00"))
        // The override stops at Christmas: later days are unknown, so they count as school days
        // (with a warning) rather than holding notices until the next September.
        let ends = try decide(.init(occurred: "2026-12-16 18:00", la: oxon, expected: "", why: "", urn: "123456"), calendars: calendars)
        #expect(ends.releaseAt == instant("2026-12-17 08:00"))
        #expect(ends.rules.contains { $0.contains("warning") && $0.contains("do not cover 2026-12-17") })
        let otherSchool = try decide(.init(occurred: "2026-10-23 18:00", la: oxon, expected: "", why: "", urn: "654321"), calendars: calendars)
        #expect(otherSchool.releaseAt == instant("2026-11-02 08:00"))
    }
}

@Suite("Calendar data and protocol files")
struct CalendarDataTests {
    @Test("shipped bank holidays cover 2019-2028 with the special and substitute days")
    func bankHolidays() throws {
        let holidays = try BankHolidays.load()
        #expect(holidays.years == 2019...2028)
        for (date, word) in [
            ("2020-05-08", "VE"), ("2022-06-02", "Spring"), ("2022-06-03", "Jubilee"), ("2022-09-19", "Funeral"),
            ("2023-05-08", "coronation"), ("2026-12-28", "substitute"), ("2027-12-27", "substitute"),
            ("2021-12-28", "Boxing"), ("2022-01-03", "New Year"), ("2028-01-03", "New Year"), ("2028-04-14", "Good Friday"),
        ] {
            #expect(holidays.title(of: CalendarDate(iso: date)!)?.localizedCaseInsensitiveContains(word) == true, "\(date)")
        }
        #expect(holidays.title(of: CalendarDate(iso: "2020-05-04")!) == nil, "VE day moved the May holiday")
        #expect(holidays.title(of: CalendarDate(iso: "2022-05-30")!) == nil, "the Jubilee moved the spring holiday")
        for year in 2019...2028 { #expect(holidays.days.keys.filter { $0.year == year }.count >= 8) }
        #expect(holidays.days.keys.allSatisfy { $0.isoWeekday <= 5 })
    }

    @Test("shipped bank holidays agree with the gov.uk file for 2024-2027")
    func matchesGovUK() throws {
        let path = TestPaths.shared + "/data/calendars/bank-holidays.json"
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let reference = try BankHolidays.decode(data, source: path)
        let shipped = try BankHolidays.load()
        #expect(Set(shipped.days.keys.filter { (2024...2027).contains($0.year) }) == Set(reference.days.keys))
    }

    @Test("every Thames Valley and Cambridgeshire LA has term dates for 2025-26 and 2026-27")
    func termDates() throws {
        let calendars = try SchoolCalendars.load()
        for code in ["867", "868", "869", "870", "871", "872", "825", "826", "931", "873", "874"] {
            let la = try #require(calendars.localAuthorities[code], "LA \(code)")
            #expect(la.document.years.map(\.schoolYear) == ["2025-26", "2026-27"])
            #expect(la.kind(of: CalendarDate(iso: "2026-01-14")!) == .term("spring 2025-26"))
            #expect(la.kind(of: CalendarDate(iso: "2027-08-10")!) == .holiday)
            #expect(la.kind(of: CalendarDate(iso: "2027-09-10")!) == .uncovered)
        }
    }

    @Test("ENCOMPASS_BANK_HOLIDAYS_FILE replaces the data; a bad file is a clear error naming the variable")
    func bankHolidayOverride() throws {
        let dir = TestPaths.temporaryDirectory("sched")
        let good = dir + "/bh.json"
        try Data(
            #"{"england-and-wales":{"division":"england-and-wales","events":[{"title":"Extra day","date":"2026-11-24","notes":"","bunting":true}]}}"#
                .utf8
        )
        .write(to: URL(fileURLWithPath: good))
        let settings = try SchedulingService.Settings.fromEnvironment(["ENCOMPASS_BANK_HOLIDAYS_FILE": good])
        #expect(settings.calendars.bankHolidays.days.count == 1)
        let bad = dir + "/bad.json"
        try Data(#"{"england-and-wales":{"division":"england-and-wales","events":[{"title":"x","date":"24/11/2026"}]}}"#.utf8)
            .write(to: URL(fileURLWithPath: bad))
        #expect {
            try SchedulingService.Settings.fromEnvironment(["ENCOMPASS_BANK_HOLIDAYS_FILE": bad])
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.variable == "ENCOMPASS_BANK_HOLIDAYS_FILE" && error.problem.contains("24/11/2026")
        }
        #expect(throws: CalendarDataError.self) { try BankHolidays.load(path: dir + "/missing.json") }
        #expect {
            try SchedulingService.Settings.fromEnvironment(["ENCOMPASS_PROTOCOLS_DIR": dir + "/no-such-folder"])
        } throws: { ($0 as? ConfigurationError)?.variable == "ENCOMPASS_PROTOCOLS_DIR" }
    }

    @Test("bad term dates are typed errors that say what to fix")
    func badTermDates() throws {
        func problem(_ json: String) -> String? {
            do {
                _ = try TermCalendar.decode(Data(json.utf8), label: "t")
                return nil
            } catch { return error.problem }
        }
        #expect(problem("{}")?.contains("not a term dates file") == true)
        #expect(problem(#"{"years":[]}"#)?.contains("no school years") == true)
        #expect(
            problem(#"{"years":[{"schoolYear":"x","terms":[{"name":"a","start":"2026-09-40","end":"2026-12-18"}]}]}"#)?.contains(
                "years[0].terms[0].start") == true)
        #expect(
            problem(#"{"years":[{"schoolYear":"x","terms":[{"name":"a","start":"2026-12-18","end":"2026-09-01"}]}]}"#)?.contains("before it starts")
                == true)
        #expect(
            problem(
                #"{"years":[{"schoolYear":"x","terms":[{"name":"a","start":"2026-09-01","end":"2026-12-18","halfTerms":[{"start":"2027-01-01","end":"2027-01-02"}]}]}]}"#
            )?.contains("inside the term") == true)
        #expect(
            problem(
                #"{"years":[{"schoolYear":"x","terms":[{"name":"a","start":"2026-09-01","end":"2026-12-18"},{"name":"b","start":"2026-12-01","end":"2027-01-18"}]}]}"#
            )?.contains("overlap") == true)
        let dir = TestPaths.temporaryDirectory("terms")
        try Data(#"{"years":[{"schoolYear":"x","terms":[{"name":"a","start":"2026-09-01","end":"2026-12-18"}]}]}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/931.json"))
        #expect {
            try SchedulingService.Settings.fromEnvironment(["ENCOMPASS_TERM_DATES_DIR": dir])
        } throws: { error in
            (error as? ConfigurationError)?.variable == "ENCOMPASS_TERM_DATES_DIR" && "\(error)".contains("laCode")
        }
    }

    @Test("coverage: a summer term covers to 31 August; a missing school year is not a holiday")
    func coverage() throws {
        let calendar = try TermCalendar(
            TermDatesDocument(years: [
                .init(schoolYear: "2025-26", terms: [.init(name: "summer", start: "2026-04-13", end: "2026-07-20")]),
                .init(schoolYear: "2027-28", terms: [.init(name: "autumn", start: "2027-09-02", end: "2027-12-17")]),
            ]), label: "t")
        #expect(calendar.kind(of: CalendarDate(iso: "2026-04-10")!) == .uncovered)
        #expect(calendar.kind(of: CalendarDate(iso: "2026-08-20")!) == .holiday)
        #expect(calendar.kind(of: CalendarDate(iso: "2026-10-20")!) == .uncovered)
        #expect(calendar.kind(of: CalendarDate(iso: "2027-12-20")!) == .uncovered)
        let oxfordshire = try #require(try SchoolCalendars.load().localAuthorities["931"])
        #expect(oxfordshire.kind(of: CalendarDate(iso: "2025-08-01")!) == .holiday)
        #expect(oxfordshire.kind(of: CalendarDate(iso: "2025-07-31")!) == .uncovered)
    }

    @Test("an override folder replaces one LA's dates and keeps the others")
    func termDatesOverride() throws {
        let dir = TestPaths.temporaryDirectory("terms")
        try Data(
            #"{"laCode":"931","name":"Oxfordshire","years":[{"schoolYear":"2026-27","terms":[{"name":"autumn","start":"2026-09-07","end":"2026-12-18"}]}]}"#
                .utf8
        )
        .write(to: URL(fileURLWithPath: dir + "/931.json"))
        let calendars = try SchoolCalendars.load(termDatesDirectory: dir)
        #expect(calendars.localAuthorities["931"]?.kind(of: CalendarDate(iso: "2026-09-03")!) == .holiday)
        #expect(calendars.localAuthorities["873"] != nil)
    }

    @Test("both forces ship a scheduling section; bad sections are typed errors")
    func protocols() throws {
        let protocols = try SchedulingProtocol.loadAll(ForceProtocols.load())
        #expect(protocols["43"]?.releaseTime == "08:00")
        #expect(protocols["05"]?.educationSafeguardingManager?.role == "esm")
        #expect(protocols["43"]?.escalateHighRiskInHolidays == true)

        let dir = TestPaths.temporaryDirectory("protocols")
        try Data(#"{"forceCode":"43","name":"T","scheduling":{"releaseTime":"8am","escalateHighRiskInHolidays":false}}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/t.json"))
        #expect {
            try SchedulingProtocol.loadAll(ForceProtocols.load(directory: dir))
        } throws: { ($0 as? SchedulingProtocolError)?.problem.contains("releaseTime is \"8am\"") == true }
        try Data(
            #"{"forceCode":"43","name":"T","scheduling":{"releaseTime":"08:00","releaseWindowEnd":"15:00","escalateHighRiskInHolidays":true}}"#.utf8
        )
        .write(to: URL(fileURLWithPath: dir + "/t.json"))
        #expect {
            try SchedulingProtocol.loadAll(ForceProtocols.load(directory: dir))
        } throws: { ($0 as? SchedulingProtocolError)?.problem.contains("educationSafeguardingManager") == true }
        for (window, problem) in [
            (#""#, "releaseWindowEnd is missing"), (#","releaseWindowEnd":"3pm""#, "releaseWindowEnd is \"3pm\""),
            (#","releaseWindowEnd":"08:00""#, "is not after releaseTime"),
        ] {
            try Data(#"{"forceCode":"43","name":"T","scheduling":{"releaseTime":"08:00"\#(window),"escalateHighRiskInHolidays":false}}"#.utf8)
                .write(to: URL(fileURLWithPath: dir + "/t.json"))
            #expect {
                try SchedulingProtocol.loadAll(ForceProtocols.load(directory: dir))
            } throws: { ($0 as? SchedulingProtocolError)?.problem.contains(problem) == true }
        }
        #expect(protocols["43"]?.releaseWindowEnd == "15:00")
        #expect(protocols["05"]?.releaseWindowEnd == "15:00")
        try Data(#"{"forceCode":"43","name":"T","scheduling":{"_owner":"x"}}"#.utf8).write(to: URL(fileURLWithPath: dir + "/t.json"))
        #expect(throws: SchedulingProtocolError.self) { try SchedulingProtocol.loadAll(ForceProtocols.load(directory: dir)) }
    }
}

@Suite("Importing published term dates (CSV, iCalendar) and their warnings")
struct TermDatesImportTests {
    static let ics = """
        BEGIN:VCALENDAR\r
        VERSION:2.0\r
        BEGIN:VEVENT\r
        SUMMARY:Autumn Term\r
        DTSTART;VALUE=DATE:20260903\r
        DTEND;VALUE=DATE:20261219\r
        END:VEVENT\r
        BEGIN:VEVENT\r
        SUMMARY:October Half\r
          Term\r
        DTSTART;VALUE=DATE:20261026\r
        DTEND;VALUE=DATE:20261031\r
        END:VEVENT\r
        BEGIN:VEVENT\r
        SUMMARY:INSET day\r
        DTSTART;VALUE=DATE:20260902\r
        END:VEVENT\r
        BEGIN:VEVENT\r
        SUMMARY:Christmas holidays\r
        DTSTART;VALUE=DATE:20261219\r
        DTEND;VALUE=DATE:20270105\r
        END:VEVENT\r
        BEGIN:VEVENT\r
        SUMMARY:Spring term starts\r
        DTSTART;VALUE=DATE:20270105\r
        END:VEVENT\r
        BEGIN:VEVENT\r
        SUMMARY:Spring term ends\r
        DTSTART;VALUE=DATE:20270326\r
        END:VEVENT\r
        END:VCALENDAR\r

        """

    @Test("iCalendar: terms (one event, or starts/ends pairs), half term, INSET; holidays implied; exclusive DTEND")
    func icalendar() throws {
        let calendar = try TermDatesImport.calendar(Data(Self.ics.utf8), format: .ics, label: "t.ics")
        let year = try #require(calendar.document.years.first)
        #expect(calendar.document.years.map(\.schoolYear) == ["2026-27"])
        #expect(year.terms.map { "\($0.name) \($0.start) \($0.end)" } == ["autumn 2026-09-03 2026-12-18", "spring 2027-01-05 2027-03-26"])
        #expect(year.terms[0].halfTerms == [DateRange(start: "2026-10-26", end: "2026-10-30")])
        #expect(year.insetDays == ["2026-09-02"])
        #expect(year.approximate == false)
        #expect(calendar.kind(of: CalendarDate(iso: "2026-10-28")!) == .halfTerm("autumn 2026-27"))
        #expect(calendar.kind(of: CalendarDate(iso: "2026-12-18")!) == .term("autumn 2026-27"))
        #expect(calendar.kind(of: CalendarDate(iso: "2026-12-21")!) == .holiday)
        #expect(calendar.kind(of: CalendarDate(iso: "2026-09-02")!) == .inset)
    }

    @Test("CSV: DD/MM/YYYY or ISO dates, quoted cells, a one-day entry without an end")
    func csv() throws {
        let text =
            "type,start,end,note\nterm,2026-09-03,18/12/2026,\"first, autumn\"\nhalf term,26/10/2026,30/10/2026,\ninset,02/09/2026,,\nclosure,2026-11-20,,polling day\n"
        let calendar = try TermDatesImport.calendar(Data(text.utf8), format: .csv, label: "t.csv")
        #expect(calendar.kind(of: CalendarDate(iso: "2026-10-30")!) == .halfTerm("autumn 2026-27"))
        #expect(calendar.kind(of: CalendarDate(iso: "2026-11-20")!) == .closure)
        #expect(calendar.kind(of: CalendarDate(iso: "2026-09-02")!) == .inset)
    }

    @Test(
        "bad files are typed errors that say what to fix",
        arguments: [
            ("csv", "kind,from\nterm,2026-09-03", "needs the columns type, start"),
            ("csv", "type,start,end\nholiday,2026-09-03,2026-12-18", "is not term, half term, inset or closure"),
            ("csv", "type,start,end\nterm,2026-13-03,2026-12-18", "row 2 start is \"2026-13-03\""),
            ("csv", "type,start,end\nterm,2026-12-18,2026-09-03", "before it starts"),
            ("csv", "type,start,end\nterm,2026-09-03,2026-12-18\nhalf term,2027-02-15,2027-02-19", "is not inside any term"),
            ("csv", "type,start,end\nhalf term,2027-02-15,2027-02-19", "has no terms"),
            ("ics", "BEGIN:VEVENT\nSUMMARY:Summer term ends\nDTSTART;VALUE=DATE:20270721\nEND:VEVENT", "that no event started"),
            ("ics", "BEGIN:VEVENT\nSUMMARY:Summer term\nEND:VEVENT", "has no DTSTART"),
        ])
    func bad(format: String, text: String, problem: String) {
        #expect {
            try TermDatesImport.calendar(Data(text.utf8), format: TermDatesImport.Format(rawValue: format)!, label: "t")
        } throws: { ($0 as? CalendarDataError)?.problem.contains(problem) == true }
    }

    @Test("ENCOMPASS_TERM_DATES_DIR takes <LA>.ics and <LA>.csv; the imported dates decide releases")
    func folder() throws {
        let dir = TestPaths.temporaryDirectory("terms")
        try Data(Self.ics.utf8).write(to: URL(fileURLWithPath: dir + "/867.ics"))
        let calendars = try SchoolCalendars.load(termDatesDirectory: dir)
        #expect(calendars.localAuthorities["867"]?.document.laCode == "867")
        #expect(calendars.localAuthorities["867"]?.approximateYears == [])
        #expect(calendars.localAuthorities["931"] != nil)
        // Friday before the imported half term (26-30 Oct) → Monday 2 November.
        let decision = try ReleaseRules.decide(
            occurredAt: instant("2026-10-23 18:00"), processedAt: instant("2026-10-23 18:30"), laCode: "867", urn: nil, risk: .standard,
            calendar: calendars, protocol: SchedulingProtocol())
        #expect(decision.releaseAt == instant("2026-11-02 08:00"))
        try Data("type,start\nterm,2026-09-03".utf8).write(to: URL(fileURLWithPath: dir + "/bracknell.csv"))
        #expect {
            try SchoolCalendars.load(termDatesDirectory: dir)
        } throws: { ($0 as? CalendarDataError)?.problem.contains("DfE local authority code") == true }
    }

    @Test("warnings: dates ending within 60 days or ended, approximate years from the current one")
    func warnings() throws {
        let shipped = try SchoolCalendars.load()
        let december = shipped.dataWarnings(today: CalendarDate(iso: "2026-12-06")!)
        #expect(december.count == 11, "every shipped LA is approximate for 2026-27: \(december)")
        #expect(december.allSatisfy { $0.contains("2026-27 are approximate") })
        let oxfordshire = shipped.dataWarnings(today: CalendarDate(iso: "2025-11-06")!).filter { $0.hasPrefix("LA 931") }
        #expect(oxfordshire.count == 1 && oxfordshire[0].contains("for 2026-27 are approximate"), "2025-26 is the published calendar: \(oxfordshire)")
        let july = shipped.dataWarnings(today: CalendarDate(iso: "2027-07-15")!)
        #expect(july.filter { $0.contains("end 2027-08-31, within 60 days") }.count == 11)
        #expect(shipped.dataWarnings(today: CalendarDate(iso: "2027-06-01")!).allSatisfy { !$0.contains("within 60 days") })
        #expect(shipped.dataWarnings(today: CalendarDate(iso: "2027-09-10")!).filter { $0.contains("ended 2027-08-31") }.count == 11)
        let dir = TestPaths.temporaryDirectory("terms")
        try Data(Self.ics.utf8).write(to: URL(fileURLWithPath: dir + "/867.ics"))
        let imported = try SchoolCalendars.load(termDatesDirectory: dir).dataWarnings(today: CalendarDate(iso: "2026-12-06")!)
        #expect(!imported.contains { $0.hasPrefix("LA 867") && $0.contains("approximate") }, "published dates imported")

        // The same state per LA, for the console's Term dates page and the metrics.
        let july15 = shipped.states(today: CalendarDate(iso: "2027-07-15")!)
        #expect(july15.count == 11)
        #expect(july15.allSatisfy { $0.lastDay == "2027-08-31" && $0.daysLeft == 47 && $0.warning }, "\(july15)")
        let june = shipped.states(today: CalendarDate(iso: "2027-06-01")!)
        #expect(june.allSatisfy { $0.daysLeft == 91 && $0.approximateYears == ["2026-27"] && $0.warning })
        let oxford = try #require(shipped.states(today: CalendarDate(iso: "2025-11-06")!).first { $0.la == "931" })
        #expect(oxford.firstDay == "2025-08-01" && oxford.lastDay == "2027-08-31" && oxford.daysLeft == 663, "\(oxford)")
        #expect(oxford.approximateYears == ["2026-27"] && !oxford.source.isEmpty && oxford.warning, "\(oxford)")
        #expect(
            shipped.states(today: CalendarDate(iso: "2027-09-10")!).allSatisfy { $0.daysLeft == -10 && $0.approximateYears.isEmpty && $0.warning })
        let importedState = try #require(
            try SchoolCalendars.load(termDatesDirectory: dir).states(today: CalendarDate(iso: "2026-12-06")!).first { $0.la == "867" })
        #expect(importedState.approximateYears.isEmpty)
    }
}

@Suite("Escalation contacts")
struct EscalationContactTests {
    @Test("the shipped contacts are placeholders: one warning per force, naming the variables to set")
    func shippedPlaceholders() throws {
        let settings = try SchedulingService.Settings.fromEnvironment([:])
        #expect(settings.contactWarnings.count == 2)
        let thamesValley = try #require(settings.contactWarnings.first { $0.hasPrefix("force 43:") })
        #expect(thamesValley.contains("education.safeguarding@thamesvalley.police.example") && thamesValley.contains("01865 000000"))
        #expect(thamesValley.contains("ENCOMPASS_ESM_EMAIL_43"))
        #expect(settings.contactWarnings.contains { $0.hasPrefix("force 05:") && $0.contains("ENCOMPASS_ESM_PHONE_05") })
    }

    @Test("ENCOMPASS_ESM_*_<force> replace the contact, clear the warning and reach the escalation; bad values name the variable")
    func overrides() throws {
        let settings = try SchedulingService.Settings.fromEnvironment([
            "ENCOMPASS_ESM_EMAIL_43": "esm.duty@thamesvalley.police.uk", "ENCOMPASS_ESM_PHONE_43": "01865 541 000",
            "ENCOMPASS_ESM_NAME_43": "Duty ESM",
        ])
        let contact = try #require(settings.protocols["43"]?.educationSafeguardingManager)
        #expect(contact == SchoolContact(role: "esm", name: "Duty ESM", email: "esm.duty@thamesvalley.police.uk", phone: "01865 541 000"))
        #expect(!settings.contactWarnings.contains { $0.hasPrefix("force 43:") })
        #expect(settings.contactWarnings.contains { $0.hasPrefix("force 05:") }, "Cambridgeshire's is still a placeholder")
        let escalation = try ScheduleExplanation.make(
            forceCode: "43", occurredAt: instant("2025-10-29 14:00"), processedAt: instant("2025-10-29 15:00"), laCode: "931", urn: nil,
            risk: .high, calendars: settings.calendars, protocols: settings.protocols)
        #expect(escalation.escalationContact?.email == "esm.duty@thamesvalley.police.uk")
        // Only the email replaced: the phone placeholder still warns.
        let half = try SchedulingService.Settings.fromEnvironment(["ENCOMPASS_ESM_EMAIL_05": "esm@cambridgeshire.gov.uk"])
        #expect(half.contactWarnings.contains { $0.hasPrefix("force 05:") && $0.contains("phone") && !$0.contains("email") })
        for (variable, value) in [("ENCOMPASS_ESM_EMAIL_43", "not-an-address"), ("ENCOMPASS_ESM_PHONE_43", "999")] {
            #expect {
                try SchedulingService.Settings.fromEnvironment([variable: value])
            } throws: { ($0 as? ConfigurationError)?.variable == variable }
        }
    }

    @Test(
        "placeholder addresses and numbers",
        arguments: [
            ("a@b.police.example", "01865 123456", true), ("a@example.com", "01865 123456", true), ("a@x.invalid", "01865 123456", true),
            ("a@thamesvalley.police.uk", "01223 000000", true), ("a@thamesvalley.police.uk", "01865 541000", false),
            ("a@example.police.uk", "01865 541000", false),
        ])
    func placeholders(email: String, phone: String, placeholder: Bool) {
        let force = SchedulingProtocol(educationSafeguardingManager: SchoolContact(role: "esm", email: email, phone: phone))
        #expect(force.contactPlaceholders.isEmpty == !placeholder)
        var quiet = force
        quiet.escalateHighRiskInHolidays = false
        #expect(quiet.contactPlaceholders.isEmpty, "a force that does not escalate needs no contact")
    }
}

@Suite("schedule explain")
struct ExplainTests {
    @Test("text and JSON name the release, the rules and, for an escalation, whom to call")
    func explain() throws {
        let calendars = try SchoolCalendars.load()
        let protocols = try SchedulingProtocol.loadAll(ForceProtocols.load())
        let plain = try ScheduleExplanation.make(
            forceCode: "43", occurredAt: instant("2026-12-18 18:00"), processedAt: instant("2026-12-18 18:30"), laCode: "931", urn: nil,
            risk: .standard, calendars: calendars, protocols: protocols)
        #expect(plain.text.hasPrefix("release: Tuesday 2027-01-05 08:00 (GMT)"))
        #expect(plain.text.contains("Boxing Day (substitute day)"))
        #expect(plain.text.contains("release window: school days 08:00-15:00 London"))
        let atOnce = try ScheduleExplanation.make(
            forceCode: "43", occurredAt: instant("2025-11-06 10:00"), processedAt: instant("2025-11-06 10:30"), laCode: "931", urn: nil,
            risk: .standard, calendars: calendars, protocols: protocols)
        #expect(atOnce.text.hasPrefix("release: Thursday 2025-11-06 10:30 (GMT)"), "\(atOnce.text)")
        #expect(atOnce.text.contains("inside the release window on a school day: goes at once"))
        let escalation = try ScheduleExplanation.make(
            forceCode: "05", occurredAt: instant("2025-10-29 14:00"), processedAt: instant("2025-10-29 15:00"), laCode: "873", urn: nil,
            risk: .high, calendars: calendars, protocols: protocols)
        #expect(escalation.text.hasPrefix("ESCALATE NOW to the Education Safeguarding Manager: Cambridgeshire"))
        let json = try JSONDecoder().decode(ScheduleExplanation.self, from: JSONEncoder().encode(escalation))
        #expect(json == escalation)
        #expect(json.schoolDay == "2025-11-03")
        #expect(throws: SchedulingProtocolError.self) {
            try ScheduleExplanation.make(
                forceCode: "99", occurredAt: Date(), processedAt: Date(), laCode: "931", urn: nil, risk: .standard,
                calendars: calendars, protocols: protocols)
        }
    }
}

@Suite("changelog replication rules")
struct ChangelogApplyTests {
    func state(_ id: String, _ state: PendingState, revision: Int, release: String = "2025-11-04 08:00") -> SchedulingChangelog {
        let request = NoticeRequested(
            noticeId: id,
            incident: Incident(
                occurrenceNumber: "43251100001", forceCode: "43", occurredAt: instant("2025-11-03 21:00"),
                reportedAt: instant("2025-11-03 21:00"), incidentAddress: PostalAddress(lines: ["1 A St"], postcode: "OX1 1AA"),
                riskLevel: .standard, crime: true),
            incidentRevision: revision, child: IdentifiedChild(childId: "c", givenName: "A", familyName: "B"), childSource: .officer,
            school: ResolvedSchool(urn: "100001", name: "S", localAuthorityCode: "931", localAuthorityName: "Oxfordshire"), resolution: [])
        return SchedulingChangelog(
            notice: .init(
                noticeId: id, partition: 2, state: state, incidentRevision: revision, releaseAt: instant(release), escalate: false,
                due: NoticeDue(request: request, releaseAt: instant(release), rules: []), updatedAt: Date(), releasedAt: nil))
    }

    @Test("the changelog's hand-written codec writes Foundation's bytes and reads them back, for each kind of record")
    func changelogCodec() throws {
        var released = state("n-\"1\"", .released, revision: 3)
        released.notice?.releasedAt = instant("2025-11-04 08:00")
        released.notice?.escalate = true
        released.notice?.due.escalationContact = SchoolContact(role: "esm", email: "esm@la.example")
        let held = try PendingNoticeRow(released.notice!)
        let document = TermDatesDocument(
            urn: "123456",
            years: [
                .init(
                    schoolYear: "2026-27",
                    terms: [
                        .init(
                            name: "autumn", start: "2026-09-03", end: "2026-12-16",
                            halfTerms: [DateRange(start: "2026-11-02", end: "2026-11-06")])
                    ])
            ])
        let records = [
            state("n1", .pending, revision: 1), released,
            SchedulingChangelog(forgotten: held.forgotten),
            SchedulingChangelog(schoolTermDates: .init(urn: "123456", document: document, updatedAt: instant("2026-09-01 12:00"))),
            SchedulingChangelog(schoolTermDates: .init(urn: "123456", document: nil, updatedAt: instant("2026-09-01 12:00"))),
        ]
        for record in records {
            let envelope = Envelope(id: "m-1", key: "k", producer: "scheduling", createdAt: instant("2025-11-03 22:00"), payload: record)
            let ours = try WireEncoder.encode(envelope)
            #expect(String(decoding: ours, as: UTF8.self) == String(decoding: try WireFormat.encoder().encode(envelope), as: UTF8.self))
            // (Foundation's reading, not `envelope`: `state` stamps `Date()`, and the wire keeps milliseconds.)
            #expect(
                try WireDecoder.decode(Envelope<SchedulingChangelog>.self, from: ours)
                    == WireFormat.decoder().decode(Envelope<SchedulingChangelog>.self, from: Data(ours)))
        }
        #expect(WireFormat.isHandWritten(Envelope<SchedulingChangelog>.self))
    }

    @Test("a state the row already holds (an instance's own change coming back) is not written again; a changed one is")
    func ownChangeSkipped() throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("apply-own") + "/scheduling.sqlite", migrations: Scheduler.migrations)
        let first = state("n1", .pending, revision: 1)
        try store.pool.write { try Scheduler.apply(first, db: $0) }
        let unchanged = try store.pool.write { db -> Int in
            let before = db.totalChangesCount
            try Scheduler.apply(first, db: db)
            return db.totalChangesCount - before
        }
        #expect(unchanged == 0, "the same state again writes nothing")
        // Applied without its record (and in stores written before), `due` holds the NoticeDue itself.
        #expect(try store.pool.read { try PendingNoticeRow.fetchOne($0, key: "n1")?.notice() } == first.notice?.due)
        var later = first
        later.notice?.updatedAt = Date().addingTimeInterval(5)
        later.notice?.releaseAt = instant("2025-11-05 08:00")
        let changed = try store.pool.write { db -> Int in
            let before = db.totalChangesCount
            try Scheduler.apply(later, db: db)
            return db.totalChangesCount - before
        }
        #expect(changed == 1, "a newer state of the same revision is written")
        #expect(try store.pool.read { try PendingNoticeRow.fetchOne($0, key: "n1") }?.releaseAt == instant("2025-11-05 08:00"))
    }

    @Test("the changelog replica skips, undecoded, a record whose state the row holds (by message id); others are decoded and applied")
    func replicaSkipsHeldRecordUndecoded() throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("replica-skip") + "/scheduling.sqlite", migrations: Scheduler.migrations)
        let handler = SchedulingService.changelogHandler()
        func record(_ id: String, value: [UInt8]) -> KafkaRecord {
            KafkaRecord(
                topic: Topics.schedulingChangelog.name, partition: 0, offset: 1, key: Array("n1".utf8), value: value,
                headers: [KafkaHeader(key: MessageHeader.messageId, value: Array(id.utf8))])
        }
        func replicate(_ record: KafkaRecord, _ db: Database) throws -> (HandleOutcome, changes: Int) {
            let before = db.totalChangesCount
            let outcome = try handler.apply(record, db, Outbox(db: db, producer: "scheduling"), Date(), TestLog.logger("replica"))
            return (outcome, db.totalChangesCount - before)
        }
        let change = state("n1", .pending, revision: 1, release: "2025-11-05 08:00")
        let value = try WireFormat.encode(Envelope(id: "c-1", key: "n1", producer: "scheduling", payload: change))
        try store.pool.write { (db: Database) throws in
            #expect(try replicate(record("c-1", value: value), db).0 == .applied)
            let row = try #require(try PendingNoticeRow.fetchOne(db, key: "n1"))
            #expect(row.changelogId == "c-1")
            // The notice is kept as the record came, not encoded again, and reads back whole.
            #expect(row.due == Data(value))
            #expect(try row.notice() == change.notice?.due)
            // The same record again, even unreadable, is passed over without decoding.
            let again = try replicate(record("c-1", value: Array("not json".utf8)), db)
            #expect(again.0 == .duplicate && again.changes == 0)
            // Any other record is decoded, and an unreadable one is refused.
            #expect(throws: EnvelopeError.self) { try replicate(record("c-2", value: Array("not json".utf8)), db) }
            // A release records the id of the changelog record it publishes.
            let released = try Scheduler.releaseDue(
                now: instant("2025-11-06 08:00"), partitions: [2], db: db, outbox: Outbox(db: db, producer: "scheduling"))
            #expect(released == ["n1"])
            let releasedId = MessageID.derived(from: "n1", "changelog-released")
            #expect(try PendingNoticeRow.fetchOne(db, key: "n1")?.changelogId == releasedId)
            let published = try OutboxMessage.filter(Column("topic") == Topics.schedulingChangelog.name).fetchAll(db)
            #expect(try published.map { try WireFormat.decode(SchedulingChangelog.self, from: Array($0.value)).id } == [releasedId])
            #expect(try replicate(record(releasedId, value: Array("not json".utf8)), db).0 == .duplicate)
        }
    }

    @Test("the pending-notice row's column list matches its Codable encoding, and a replaced row reads back whole")
    func replaceableRow() throws {
        var row = try PendingNoticeRow(try #require(state("n1", .pending, revision: 1).notice))
        row.updatedAt = instant("2025-11-04 09:00")
        #expect(try row.replacementDrift() == [])
        var released = row
        released.state = .released
        released.releasedAt = instant("2025-11-05 08:00")
        released.changelogId = "c-2"
        #expect(try released.replacementDrift() == [])
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("pending-row") + "/scheduling.sqlite", migrations: Scheduler.migrations)
        try store.pool.write { db in
            try row.insertOrReplace(db)
            try released.insertOrReplace(db)
            #expect(try PendingNoticeRow.fetchAll(db) == [released])
        }
    }

    @Test("a forgotten notice (retention) replaces any copy and is never undone; a pending one, or one with another part, is refused")
    func forgottenMarker() throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("apply-forgotten") + "/scheduling.sqlite", migrations: Scheduler.migrations)
        var held = try PendingNoticeRow(try #require(state("n1", .released, revision: 2).notice))
        held.releasedAt = instant("2025-11-04 08:00")
        let gone = SchedulingChangelog(forgotten: held.forgotten)
        try store.pool.write { db in
            try Scheduler.apply(state("n1", .pending, revision: 2), db: db)
            try Scheduler.apply(gone, messageId: "f-1", db: db)
            let row = try #require(try PendingNoticeRow.fetchOne(db, key: "n1"))
            #expect(row.state == .released && row.due.isEmpty && row.changelogId == "f-1" && row.schoolURN == "100001")
            #expect(row.releasedAt == instant("2025-11-04 08:00") && row.incidentRevision == 2)
            // Nothing brings the notice back: not a later pending state, not its old release.
            try Scheduler.apply(state("n1", .pending, revision: 9), db: db)
            try Scheduler.apply(state("n1", .released, revision: 2), db: db)
            #expect(try PendingNoticeRow.fetchOne(db, key: "n1") == row)
        }
        #expect(gone.validationErrors().isEmpty)
        var pending = gone
        pending.forgotten?.state = .pending
        #expect(pending.validationErrors().map(\.field) == ["forgotten.state"])
        var both = gone
        both.notice = state("n1", .released, revision: 2).notice
        #expect(both.validationErrors().map(\.field) == ["notice"])
    }

    @Test("final states win and stay; a pending state replaces only an older or equal revision")
    func ordering() throws {
        let store = try ServiceStore(path: TestPaths.temporaryDirectory("apply") + "/scheduling.sqlite", migrations: Scheduler.migrations)
        let db = store.pool
        func row(_ id: String) throws -> PendingNoticeRow? { try db.read { try PendingNoticeRow.fetchOne($0, key: id) } }

        try db.write { try Scheduler.apply(state("n1", .pending, revision: 2, release: "2025-11-05 08:00"), db: $0) }
        try db.write { try Scheduler.apply(state("n1", .pending, revision: 1), db: $0) }
        #expect(try row("n1")?.incidentRevision == 2, "an older revision arriving late is ignored")
        #expect(try row("n1")?.partition == 2)
        try db.write { try Scheduler.apply(state("n1", .pending, revision: 3, release: "2025-11-06 08:00"), db: $0) }
        #expect(try row("n1")?.releaseAt == instant("2025-11-06 08:00"))
        try db.write { try Scheduler.apply(state("n1", .released, revision: 1), db: $0) }
        #expect(try row("n1")?.state == .released, "a release wins over any pending revision")
        try db.write { try Scheduler.apply(state("n1", .pending, revision: 9), db: $0) }
        #expect(try row("n1")?.state == .released, "and is never undone")

        // Releasing: only due notices of the given partitions, once.
        try db.write { try Scheduler.apply(state("n2", .pending, revision: 1), db: $0) }
        try db.write { try Scheduler.apply(state("n3", .pending, revision: 1, release: "2025-11-05 08:00"), db: $0) }
        let none = try db.write {
            try Scheduler.releaseDue(now: instant("2025-11-04 09:00"), partitions: [0, 1], db: $0, outbox: Outbox(db: $0, producer: "scheduling"))
        }
        #expect(none.isEmpty)
        let released = try db.write {
            try Scheduler.releaseDue(now: instant("2025-11-04 09:00"), partitions: [2], db: $0, outbox: Outbox(db: $0, producer: "scheduling"))
        }
        #expect(released == ["n2"])
        let again = try db.write {
            try Scheduler.releaseDue(now: instant("2025-11-04 10:00"), partitions: [2], db: $0, outbox: Outbox(db: $0, producer: "scheduling"))
        }
        #expect(again.isEmpty)
        let outbox = try db.read { try OutboxMessage.fetchAll($0) }
        #expect(outbox.map(\.topic).sorted() == [Topics.noticeEvents.name, Topics.noticesDue.name, Topics.schedulingChangelog.name])
        #expect(outbox.first { $0.topic == Topics.noticesDue.name }?.messageId == MessageID.derived(from: "n2", "due"))
    }
}
