import EncompassModels
import Foundation

/// A calendar file or override that cannot be used, with what to fix.
public struct CalendarDataError: Error, Sendable, CustomStringConvertible, Equatable {
    public var source: String
    public var problem: String

    public init(source: String, problem: String) {
        self.source = source
        self.problem = problem
    }

    public var description: String { "calendar data \(source): \(problem)" }
}

/// England and Wales bank holidays, read from a file in gov.uk's `bank-holidays.json` format
/// (https://www.gov.uk/bank-holidays.json), so an update is a file replace.
public struct BankHolidays: Sendable, Equatable {
    /// Date → title (with "(substitute day)" where gov.uk notes it).
    public let days: [CalendarDate: String]

    public init(days: [CalendarDate: String]) { self.days = days }

    public func title(of date: CalendarDate) -> String? { days[date] }

    /// The first and last year covered.
    public var years: ClosedRange<Int>? {
        guard let first = days.keys.min(), let last = days.keys.max() else { return nil }
        return first.year...last.year
    }

    struct GovUKFile: Decodable {
        struct Division: Decodable {
            var division: String
            var events: [Event]
        }
        struct Event: Decodable {
            var title: String
            var date: String
            var notes: String?
        }
    }

    public static func decode(_ data: Data, source: String) throws(CalendarDataError) -> BankHolidays {
        let file: [String: GovUKFile.Division]
        do {
            file = try JSONDecoder().decode([String: GovUKFile.Division].self, from: data)
        } catch {
            throw CalendarDataError(
                source: source,
                problem: "is not in gov.uk bank-holidays.json format (\(WireFormat.describe(error))); download https://www.gov.uk/bank-holidays.json")
        }
        guard let division = file["england-and-wales"] else {
            throw CalendarDataError(source: source, problem: "has no \"england-and-wales\" division")
        }
        var days: [CalendarDate: String] = [:]
        for (index, event) in division.events.enumerated() {
            guard let date = CalendarDate(iso: event.date) else {
                throw CalendarDataError(
                    source: source, problem: "england-and-wales event \(index) (\(event.title)) has date \"\(event.date)\"; use YYYY-MM-DD")
            }
            let note = event.notes?.isEmpty == false ? " (\(event.notes!.lowercased()))" : ""
            days[date] = event.title + note
        }
        guard !days.isEmpty else { throw CalendarDataError(source: source, problem: "lists no england-and-wales bank holidays") }
        return BankHolidays(days: days)
    }

    /// The shipped file (2019-2028), or `path` (`ENCOMPASS_BANK_HOLIDAYS_FILE`).
    public static func load(path: String? = nil) throws(CalendarDataError) -> BankHolidays {
        let file = path ?? bundledPath
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CalendarDataError(source: file, problem: "cannot be read; check ENCOMPASS_BANK_HOLIDAYS_FILE")
        }
        return try decode(data, source: file)
    }

    public static var bundledPath: String { Bundle.module.resourceURL!.appendingPathComponent("bank-holidays.json").path }
}

/// A range of days, both ends included.
public struct DateRange: Codable, Sendable, Equatable {
    public var start: String
    public var end: String

    public init(start: String, end: String) {
        self.start = start
        self.end = end
    }
}

/// Term dates as published: per school year, terms with their half terms, and INSET (staff
/// training) days when pupils are not in school. The same shape serves a local authority's
/// file and one school's override.
public struct TermDatesDocument: Codable, Sendable, Equatable {
    public struct Term: Codable, Sendable, Equatable {
        public var name: String
        public var start: String
        public var end: String
        public var halfTerms: [DateRange]?

        public init(name: String, start: String, end: String, halfTerms: [DateRange]? = nil) {
            self.name = name
            self.start = start
            self.end = end
            self.halfTerms = halfTerms
        }
    }

    public struct SchoolYear: Codable, Sendable, Equatable {
        public var schoolYear: String
        /// True when the dates follow the usual pattern rather than the LA's published calendar.
        public var approximate: Bool?
        public var terms: [Term]
        public var insetDays: [String]?
        /// Other days closed to pupils (e.g. polling day, an extra day's holiday).
        public var closures: [String]?

        public init(schoolYear: String, approximate: Bool? = nil, terms: [Term], insetDays: [String]? = nil, closures: [String]? = nil) {
            self.schoolYear = schoolYear
            self.approximate = approximate
            self.terms = terms
            self.insetDays = insetDays
            self.closures = closures
        }
    }

    /// DfE LA code (LA files) — absent for a school override.
    public var laCode: String?
    public var name: String?
    /// The school's URN (school overrides).
    public var urn: String?
    public var source: String?
    public var years: [SchoolYear]

    public init(laCode: String? = nil, name: String? = nil, urn: String? = nil, source: String? = nil, years: [SchoolYear]) {
        self.laCode = laCode
        self.name = name
        self.urn = urn
        self.source = source
        self.years = years
    }
}

/// Term dates checked and ready for day-by-day questions.
public struct TermCalendar: Sendable, Equatable {
    public enum DayKind: Sendable, Equatable {
        /// In term; pupils in school (weekends and bank holidays are decided elsewhere).
        case term(String)
        /// A half term inside the named term.
        case halfTerm(String)
        /// Between terms (Christmas, Easter, summer).
        case holiday
        case inset
        case closure
        /// Outside the years these dates cover.
        case uncovered
    }

    struct Term: Sendable, Equatable {
        var name: String
        var start: CalendarDate
        var end: CalendarDate
        var halfTerms: [ClosedRange<CalendarDate>]
    }

    /// Days between two terms beyond which the gap is taken as missing data, not a holiday
    /// (the summer holiday is about 45 days).
    static let longestHoliday = 62

    public let label: String
    let terms: [Term]
    let inset: Set<CalendarDate>
    let closures: Set<CalendarDate>
    let covered: ClosedRange<CalendarDate>
    /// School years marked approximate.
    public let approximateYears: [String]
    public let document: TermDatesDocument

    public init(_ document: TermDatesDocument, label: String) throws(CalendarDataError) {
        func day(_ text: String, _ field: String) throws(CalendarDataError) -> CalendarDate {
            guard let date = CalendarDate(iso: text) else {
                throw CalendarDataError(source: label, problem: "\(field) is \"\(text)\"; use YYYY-MM-DD")
            }
            return date
        }
        guard !document.years.isEmpty else { throw CalendarDataError(source: label, problem: "has no school years") }
        var terms: [Term] = []
        var inset: Set<CalendarDate> = []
        var closures: Set<CalendarDate> = []
        for (y, year) in document.years.enumerated() {
            guard !year.terms.isEmpty else { throw CalendarDataError(source: label, problem: "years[\(y)] (\(year.schoolYear)) has no terms") }
            for (t, term) in year.terms.enumerated() {
                let field = "years[\(y)].terms[\(t)]"
                let start = try day(term.start, "\(field).start")
                let end = try day(term.end, "\(field).end")
                guard start <= end else {
                    throw CalendarDataError(source: label, problem: "\(field) (\(term.name)) ends \(end) before it starts \(start)")
                }
                var halves: [ClosedRange<CalendarDate>] = []
                for (h, half) in (term.halfTerms ?? []).enumerated() {
                    let hs = try day(half.start, "\(field).halfTerms[\(h)].start")
                    let he = try day(half.end, "\(field).halfTerms[\(h)].end")
                    guard hs <= he, hs >= start, he <= end else {
                        throw CalendarDataError(
                            source: label, problem: "\(field).halfTerms[\(h)] \(hs)…\(he) must lie inside the term \(start)…\(end)")
                    }
                    halves.append(hs...he)
                }
                terms.append(Term(name: "\(term.name) \(year.schoolYear)", start: start, end: end, halfTerms: halves))
            }
            for (i, text) in (year.insetDays ?? []).enumerated() { inset.insert(try day(text, "years[\(y)].insetDays[\(i)]")) }
            for (i, text) in (year.closures ?? []).enumerated() { closures.insert(try day(text, "years[\(y)].closures[\(i)]")) }
        }
        terms.sort { $0.start < $1.start }
        for (a, b) in zip(terms, terms.dropFirst()) where b.start <= a.end {
            throw CalendarDataError(source: label, problem: "terms \(a.name) and \(b.name) overlap")
        }
        // Covered: from 1 August when the first term is an autumn term (else from its first day)
        // to 31 August when the last is a summer term (else to its last day). Days outside are
        // not known, so they count as school days with a warning rather than as a holiday that
        // would hold notices back for months.
        let first = terms.first!.start, last = terms.last!.end
        let coverStart = (8...9).contains(first.month) ? CalendarDate(year: first.year, month: 8, day: 1) : first
        let coverEnd = (7...8).contains(last.month) ? CalendarDate(year: last.year, month: 8, day: 31) : last
        self.label = label
        self.terms = terms
        self.inset = inset
        self.closures = closures
        self.covered = coverStart...coverEnd
        self.approximateYears = document.years.filter { $0.approximate == true }.map(\.schoolYear)
        self.document = document
    }

    public func kind(of date: CalendarDate) -> DayKind {
        guard covered.contains(date) else { return .uncovered }
        if inset.contains(date) { return .inset }
        if closures.contains(date) { return .closure }
        guard let term = terms.first(where: { $0.start <= date && date <= $0.end }) else {
            // Between two terms: a holiday, unless the gap is longer than any school holiday
            // (a school year missing from the file).
            if let before = terms.last(where: { $0.end < date }), let after = terms.first(where: { $0.start > date }),
                let gap = CalendarDate.london.dateComponents([.day], from: before.end.at(hour: 12), to: after.start.at(hour: 12)).day,
                gap > Self.longestHoliday
            {
                // Still the summer holiday after a summer term, or before an autumn term.
                if (7...8).contains(before.end.month), date <= CalendarDate(year: before.end.year, month: 8, day: 31) { return .holiday }
                if (8...9).contains(after.start.month), date >= CalendarDate(year: after.start.year, month: 8, day: 1) { return .holiday }
                return .uncovered
            }
            return .holiday
        }
        if term.halfTerms.contains(where: { $0.contains(date) }) { return .halfTerm(term.name) }
        return .term(term.name)
    }

    public static func decode(_ data: Data, label: String) throws(CalendarDataError) -> TermCalendar {
        let document: TermDatesDocument
        do {
            document = try JSONDecoder().decode(TermDatesDocument.self, from: data)
        } catch {
            throw CalendarDataError(
                source: label, problem: "is not a term dates file (\(WireFormat.describe(error))); see docs/SCHEDULING.md for the format")
        }
        return try TermCalendar(document, label: label)
    }
}

/// Bank holidays plus the term dates of every local authority and of schools that set their own.
public struct SchoolCalendars: Sendable {
    public let bankHolidays: BankHolidays
    /// By DfE LA code.
    public let localAuthorities: [String: TermCalendar]
    /// By URN (academies and others with their own dates).
    public var schools: [String: TermCalendar]

    public init(bankHolidays: BankHolidays, localAuthorities: [String: TermCalendar], schools: [String: TermCalendar] = [:]) {
        self.bankHolidays = bankHolidays
        self.localAuthorities = localAuthorities
        self.schools = schools
    }

    /// The shipped data, or the files named by `ENCOMPASS_BANK_HOLIDAYS_FILE` and
    /// `ENCOMPASS_TERM_DATES_DIR` (a folder of `<LA code>.json`, read in place of the shipped ones
    /// it names; the others stay).
    public static func load(bankHolidaysFile: String? = nil, termDatesDirectory: String? = nil) throws(CalendarDataError) -> SchoolCalendars {
        let holidays = try BankHolidays.load(path: bankHolidaysFile)
        var las = try readFolder(bundledTermDatesDirectory)
        if let termDatesDirectory { las.merge(try readFolder(termDatesDirectory)) { _, new in new } }
        return SchoolCalendars(bankHolidays: holidays, localAuthorities: las)
    }

    public static var bundledTermDatesDirectory: String { Bundle.module.resourceURL!.appendingPathComponent("term-dates").path }

    static func readFolder(_ folder: String) throws(CalendarDataError) -> [String: TermCalendar] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw CalendarDataError(source: folder, problem: "is not a readable folder; check ENCOMPASS_TERM_DATES_DIR")
        }
        var result: [String: TermCalendar] = [:]
        for name in names.sorted() {
            guard let format = TermDatesImport.Format(fileName: name) else { continue }
            let path = (folder as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else { throw CalendarDataError(source: path, problem: "cannot be read") }
            var calendar = try TermDatesImport.calendar(data, format: format, label: path)
            if format != .json {
                // An LA's published CSV or iCalendar file is named by its code: 931.ics.
                let code = (name as NSString).deletingPathExtension
                guard code.count == 3, code.allSatisfy(\.isNumber) else {
                    throw CalendarDataError(source: path, problem: "name the file by the DfE local authority code, e.g. 931.\(format.rawValue)")
                }
                var document = calendar.document
                document.laCode = code
                calendar = try TermCalendar(document, label: path)
            }
            guard let code = calendar.document.laCode, !code.isEmpty else {
                throw CalendarDataError(source: path, problem: "needs \"laCode\" (the DfE local authority code, e.g. 931)")
            }
            guard result[code] == nil else {
                throw CalendarDataError(source: path, problem: "LA \(code) has term dates in more than one file in \(folder); keep one")
            }
            result[code] = calendar
        }
        return result
    }

    /// Every local authority's term dates, by LA code.
    public func states(today: CalendarDate, days: Int = 60) -> [SchedulingReadiness.Calendar] {
        let current = ReleaseRules.schoolYear(of: today)
        return localAuthorities.keys.sorted().map { code in
            let calendar = localAuthorities[code]!
            let approximate = calendar.approximateYears.filter { $0 >= current }
            let end = calendar.covered.upperBound
            return SchedulingReadiness.Calendar(
                la: code, name: calendar.document.name, source: calendar.document.source ?? calendar.label,
                firstDay: calendar.covered.lowerBound.description, lastDay: end.description,
                daysLeft: CalendarDate.london.dateComponents([.day], from: today.at(hour: 12), to: end.at(hour: 12)).day ?? 0,
                approximateYears: approximate,
                warning: end < today.adding(days: days) || !approximate.isEmpty)
        }
    }

    /// One line per local authority whose term dates end within `days` of `today` (or have
    /// ended), or that are marked approximate for the current school year or a later one.
    public func dataWarnings(today: CalendarDate, days: Int = 60) -> [String] {
        let current = ReleaseRules.schoolYear(of: today)
        return localAuthorities.keys.sorted().flatMap { code -> [String] in
            let calendar = localAuthorities[code]!
            let name = calendar.document.name.map { "LA \(code) (\($0))" } ?? "LA \(code)"
            var lines: [String] = []
            let end = calendar.covered.upperBound
            if end < today.adding(days: days) {
                lines.append(
                    "\(name): term dates \(end < today ? "ended" : "end") \(end)\(end < today ? "" : ", within \(days) days"); after it weekdays count as school days — import the next years' published dates (ENCOMPASS_TERM_DATES_DIR, .json/.csv/.ics)"
                )
            }
            let approximate = calendar.approximateYears.filter { $0 >= current }
            if !approximate.isEmpty {
                lines.append(
                    "\(name): term dates for \(approximate.joined(separator: ", ")) are approximate — import the published calendar (ENCOMPASS_TERM_DATES_DIR, .json/.csv/.ics)"
                )
            }
            return lines
        }
    }

    /// The term dates that apply to a school: its own when it has an override, else its LA's.
    public func termCalendar(la: String, urn: String?) -> (calendar: TermCalendar, origin: String)? {
        if let urn, let own = schools[urn] { return (own, "school \(urn)'s own term dates") }
        if let calendar = localAuthorities[la] { return (calendar, "\(calendar.document.name ?? "LA") (\(la)) term dates") }
        return nil
    }

    /// Why `date` is not a school day, or nil when it is one.
    public func closedReason(_ date: CalendarDate, la: String, urn: String?) -> Closed? {
        if date.isoWeekday >= 6 { return .weekend }
        if let title = bankHolidays.title(of: date) { return .bankHoliday(title) }
        guard let (calendar, _) = termCalendar(la: la, urn: urn) else { return nil }
        switch calendar.kind(of: date) {
        case .term, .uncovered: return nil
        case .halfTerm(let term): return .schoolHoliday("half term (\(term))")
        case .holiday: return .schoolHoliday("school holiday")
        case .inset: return .inset
        case .closure: return .closure
        }
    }

    public enum Closed: Sendable, Equatable, CustomStringConvertible {
        case weekend
        case bankHoliday(String)
        case schoolHoliday(String)
        case inset
        case closure

        public var description: String {
            switch self {
            case .weekend: "weekend"
            case .bankHoliday(let title): "bank holiday: \(title)"
            case .schoolHoliday(let what): what
            case .inset: "INSET day"
            case .closure: "school closed"
            }
        }

        public var isSchoolHoliday: Bool { if case .schoolHoliday = self { true } else { false } }
    }

    public func isSchoolDay(_ date: CalendarDate, la: String, urn: String?) -> Bool { closedReason(date, la: la, urn: urn) == nil }
}
