import EncompassModels
import Foundation

/// A force's scheduling rules: the `scheduling` section of its protocol file.
public struct SchedulingProtocol: Codable, Sendable, Equatable {
    /// London wall-clock time notices go out on a school morning, `HH:MM` (default `08:00`,
    /// so the school reads it before 9am): the opening of the school-day release window.
    public var releaseTime: String
    /// London wall-clock end of the school-day release window, `HH:MM`, after `releaseTime`
    /// (e.g. `15:00`). A notice that becomes due on a school day from `releaseTime` until then
    /// goes out at once; outside it, at the next opening. Required in a protocol file.
    public var releaseWindowEnd: String?
    /// Send high-risk incidents that fall in a school holiday to the Education Safeguarding
    /// Manager now instead of holding them for the first day back.
    public var escalateHighRiskInHolidays: Bool
    /// The force's Education Safeguarding Manager (role `esm`).
    public var educationSafeguardingManager: SchoolContact?
    /// Plain-words statement of the weekend rule, for the explanation.
    public var weekendRule: String?

    public init(
        releaseTime: String = "08:00", releaseWindowEnd: String? = "15:00", escalateHighRiskInHolidays: Bool = true,
        educationSafeguardingManager: SchoolContact? = nil, weekendRule: String? = nil
    ) {
        self.releaseTime = releaseTime
        self.releaseWindowEnd = releaseWindowEnd
        self.escalateHighRiskInHolidays = escalateHighRiskInHolidays
        self.educationSafeguardingManager = educationSafeguardingManager
        self.weekendRule = weekendRule
    }

    /// Hour and minute of `releaseTime`.
    public func releaseClock() throws(SchedulingProtocolError) -> (hour: Int, minute: Int) {
        try Self.clock(releaseTime, field: "releaseTime", example: "08:00")
    }

    /// The school-day release window: opening (`releaseTime`) and end (`releaseWindowEnd`), in
    /// minutes after London midnight; the end is not part of it.
    public func releaseWindow() throws(SchedulingProtocolError) -> (opens: Int, closes: Int) {
        let (hour, minute) = try releaseClock()
        guard let releaseWindowEnd else {
            throw SchedulingProtocolError(
                forceCode: "?",
                problem:
                    "releaseWindowEnd is missing; set the end of the school-day release window as HH:MM, e.g. \"15:00\" (a notice due between releaseTime and then goes at once)"
            )
        }
        let end = try Self.clock(releaseWindowEnd, field: "releaseWindowEnd", example: "15:00")
        guard end.hour * 60 + end.minute > hour * 60 + minute else {
            throw SchedulingProtocolError(
                forceCode: "?",
                problem: "releaseWindowEnd \(releaseWindowEnd) is not after releaseTime \(releaseTime); the window must end later the same day")
        }
        return (hour * 60 + minute, end.hour * 60 + end.minute)
    }

    static func clock(_ text: String, field: String, example: String) throws(SchedulingProtocolError) -> (hour: Int, minute: Int) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
            (0...23).contains(h), (0...59).contains(m)
        else {
            throw SchedulingProtocolError(forceCode: "?", problem: "\(field) is \"\(text)\"; use HH:MM, e.g. \(example)")
        }
        return (h, m)
    }

    /// What makes the escalation contact a placeholder (the shipped files carry `.example`
    /// addresses and 000000 numbers until a force puts in its duty ESM); empty when it looks real
    /// or the force does not escalate.
    public var contactPlaceholders: [String] {
        guard escalateHighRiskInHolidays, let contact = educationSafeguardingManager else { return [] }
        return contact.placeholders
    }

    /// Each force's `scheduling` section, checked.
    public static func loadAll(_ protocols: ForceProtocols) throws(SchedulingProtocolError) -> [String: SchedulingProtocol] {
        var result: [String: SchedulingProtocol] = [:]
        for (code, force) in protocols.byCode {
            let section: SchedulingProtocol
            do {
                section = try force.section("scheduling", as: SchedulingProtocol.self)
            } catch {
                throw SchedulingProtocolError(forceCode: code, problem: error.description)
            }
            do {
                _ = try section.releaseWindow()
            } catch {
                throw SchedulingProtocolError(forceCode: code, problem: "\(force.path): \(error.problem)")
            }
            if section.escalateHighRiskInHolidays, section.educationSafeguardingManager == nil {
                throw SchedulingProtocolError(
                    forceCode: code,
                    problem: "\(force.path): escalateHighRiskInHolidays needs educationSafeguardingManager (a contact with role, name, email/phone)")
            }
            result[code] = section
        }
        return result
    }
}

/// A force's scheduling section that cannot be used.
public struct SchedulingProtocolError: Error, Sendable, CustomStringConvertible, Equatable {
    public var forceCode: String
    public var problem: String

    public var description: String { "scheduling protocol of force \(forceCode): \(problem)" }
}

/// When a notice goes out and why.
public struct ReleaseDecision: Codable, Sendable, Equatable {
    /// The instant to release (an escalation: the processing time, i.e. now).
    public var releaseAt: Date
    /// The school morning the notice would go to the school (for an escalation, the first day back).
    public var schoolDay: CalendarDate
    public var schoolReleaseAt: Date
    /// High risk in a school holiday: send to the Education Safeguarding Manager now.
    public var escalate: Bool
    /// The rules that decided it, in order, in plain words.
    public var rules: [String]
}

/// The pure rules that decide a notice's release time.
///
/// 1. The incident's day is its Europe/London calendar date (so 23:30 BST on a Sunday is Sunday).
/// 2. Release window: on a school day, from the force's `releaseTime` (08:00) until its
///    `releaseWindowEnd` (e.g. 15:00), London time. A notice processed inside the window goes
///    at once ("as soon as is reasonably practicable", s.49A Domestic Abuse Act 2021); processed
///    before it opens on a school day, at the opening that morning; otherwise at the opening of
///    the first school day after the processing day. Never in the past.
///    A school day is a Monday–Friday that is not an England and Wales bank holiday,
///    and falls in term for the school's term dates (its own if it has an override, else its
///    local authority's), outside half terms, INSET days and closures. Days outside the years the
///    term dates cover count as school days (weekdays, not bank holidays) and the rules say so.
/// 3. High risk in a school holiday (the incident's day while the notice is on time, or any day
///    it would wait through from processing, is a half term or a holiday between terms), when
///    the force escalates: released now, to the Education Safeguarding Manager, instead of
///    waiting for the first day back. A notice that goes at once needs no escalation.
public enum ReleaseRules {
    public static func decide(
        occurredAt: Date, processedAt: Date, laCode: String, urn: String?, risk: RiskLevel,
        calendar: SchoolCalendars, protocol force: SchedulingProtocol
    ) throws(SchedulingProtocolError) -> ReleaseDecision {
        let (opens, closes) = try force.releaseWindow()
        // A request can carry an incident time after the processing clock (clocks differ):
        // the notice is then due from the incident, never before it.
        let processedAt = max(processedAt, occurredAt)
        let time = clockText(opens), end = clockText(closes)
        func opening(_ day: CalendarDate) -> Date { day.at(hour: opens / 60, minute: opens % 60) }
        var rules: [String] = []
        let occurredDay = CalendarDate(occurredAt)
        rules.append("incident on \(weekdayName(occurredDay)) \(occurredDay) (\(londonTime(occurredAt)) London time)")
        rules.append("release window: school days \(time)-\(end) London; a notice due inside it goes at once, outside it at the next opening")

        // The incident's day counts for the holiday check while the notice is on time, i.e.
        // processed before the first school morning after the incident.
        let (firstDay, _) = nextSchoolDay(after: occurredDay, la: laCode, urn: urn, calendar: calendar)
        var waited: [(CalendarDate, SchoolCalendars.Closed?)] = []
        if processedAt < opening(firstDay) {
            waited.append((occurredDay, calendar.closedReason(occurredDay, la: laCode, urn: urn)))
        } else {
            rules.append("late report: processed after \(weekdayName(firstDay)) \(firstDay) \(time), the first school morning after the incident")
        }

        let processedDay = CalendarDate(processedAt)
        let processedText = "\(weekdayName(processedDay)) \(processedDay) \(londonTime(processedAt))"
        let day: CalendarDate
        let release: Date
        if calendar.isSchoolDay(processedDay, la: laCode, urn: urn), opening(processedDay) > processedAt {
            day = processedDay
            release = opening(processedDay)
            rules.append("processed \(processedText), before the window opens on a school day: goes at \(time) that morning")
        } else if calendar.isSchoolDay(processedDay, la: laCode, urn: urn),
            processedDay.at(hour: closes / 60, minute: closes % 60) > processedAt
        {
            rules.append("processed \(processedText), inside the release window on a school day: goes at once")
            rules.append(contentsOf: dataNotes(day: processedDay, la: laCode, urn: urn, calendar: calendar))
            rules.append("release \(Timestamp.format(processedAt)) (at once)")
            return ReleaseDecision(releaseAt: processedAt, schoolDay: processedDay, schoolReleaseAt: processedAt, escalate: false, rules: rules)
        } else {
            let closedToday = calendar.closedReason(processedDay, la: laCode, urn: urn)
            let closed: [(CalendarDate, SchoolCalendars.Closed)]
            (day, closed) = nextSchoolDay(after: processedDay, la: laCode, urn: urn, calendar: calendar)
            waited.append((processedDay, closedToday))
            waited += closed.map { ($0.0, Optional($0.1)) }
            if let closedToday {
                rules.append("processed \(processedText), not a school day (\(closedToday))")
            } else {
                rules.append("processed \(processedText), after the release window closed at \(end)")
            }
            rules.append(contentsOf: describe(closed))
            rules.append("next school day: \(weekdayName(day)) \(day), notices go at \(time)")
            if let weekendRule = force.weekendRule, occurredDay.isoWeekday >= 5, day.isoWeekday == 1 || closed.contains(where: { $0.1 == .weekend }) {
                rules.append(weekendRule)
            }
            release = opening(day)
        }
        rules.append(contentsOf: dataNotes(day: day, la: laCode, urn: urn, calendar: calendar))

        let holidayDays = waited.filter { $0.1?.isSchoolHoliday == true }.map(\.0)
        if risk == .high, !holidayDays.isEmpty {
            if force.escalateHighRiskInHolidays {
                let who = force.educationSafeguardingManager?.name.map { " (\($0))" } ?? ""
                rules.append(
                    "high risk during the school holiday (\(holidayDays.first!)): escalated now to the Education Safeguarding Manager\(who); the school's own notice still goes on its first day back, \(day) at \(time)"
                )
                return ReleaseDecision(releaseAt: processedAt, schoolDay: day, schoolReleaseAt: release, escalate: true, rules: rules)
            }
            rules.append("high risk during the school holiday: this force does not escalate; waits for the first day back")
        }
        rules.append("release \(Timestamp.format(release)) (\(weekdayName(day)) \(day) \(time) London)")
        return ReleaseDecision(releaseAt: release, schoolDay: day, schoolReleaseAt: release, escalate: false, rules: rules)
    }

    static func clockText(_ minutes: Int) -> String {
        CalendarDate.padded(minutes / 60, 2) + ":" + CalendarDate.padded(minutes % 60, 2)
    }

    /// The first school day strictly after `day`, and the closed days skipped on the way.
    static func nextSchoolDay(after day: CalendarDate, la: String, urn: String?, calendar: SchoolCalendars)
        -> (CalendarDate, [(CalendarDate, SchoolCalendars.Closed)])
    {
        var skipped: [(CalendarDate, SchoolCalendars.Closed)] = []
        var candidate = day.adding(days: 1)
        // Term dates never close more than a summer; uncovered days count as open, so this ends.
        for _ in 0..<400 {
            guard let reason = calendar.closedReason(candidate, la: la, urn: urn) else { return (candidate, skipped) }
            skipped.append((candidate, reason))
            candidate = candidate.adding(days: 1)
        }
        return (candidate, skipped)
    }

    /// Consecutive skipped days with the same reason, one line each.
    static func describe(_ skipped: [(CalendarDate, SchoolCalendars.Closed)]) -> [String] {
        var lines: [String] = []
        var index = 0
        while index < skipped.count {
            var end = index
            while end + 1 < skipped.count, skipped[end + 1].1 == skipped[index].1 { end += 1 }
            let range = end == index ? "\(skipped[index].0)" : "\(skipped[index].0)…\(skipped[end].0)"
            lines.append("not a school day: \(range) \(skipped[index].1)")
            index = end + 1
        }
        return lines
    }

    static func dataNotes(day: CalendarDate, la: String, urn: String?, calendar: SchoolCalendars) -> [String] {
        var notes: [String] = []
        if let years = calendar.bankHolidays.years, !years.contains(day.year) {
            notes.append("warning: bank holidays are known for \(years.lowerBound)-\(years.upperBound) only; update ENCOMPASS_BANK_HOLIDAYS_FILE")
        }
        guard let (terms, origin) = calendar.termCalendar(la: la, urn: urn) else {
            notes.append("warning: no term dates for LA \(la); every weekday that is not a bank holiday counts as a school day — add term dates")
            return notes
        }
        notes.append("term dates: \(origin)")
        if terms.kind(of: day) == .uncovered {
            notes.append("warning: \(origin) do not cover \(day); weekdays counted as school days — update the term dates")
        } else if terms.approximateYears.contains(schoolYear(of: day)) {
            notes.append("note: \(origin) for \(schoolYear(of: day)) are approximate; check against the published calendar")
        }
        return notes
    }

    static func schoolYear(of day: CalendarDate) -> String {
        let start = day.month >= 8 ? day.year : day.year - 1
        return "\(start)-" + CalendarDate.padded((start + 1) % 100, 2)
    }

    static func weekdayName(_ day: CalendarDate) -> String {
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][day.isoWeekday - 1]
    }

    static func londonTime(_ date: Date) -> String {
        let c = CalendarDate.london.dateComponents([.hour, .minute], from: date)
        return CalendarDate.padded(c.hour ?? 0, 2) + ":" + CalendarDate.padded(c.minute ?? 0, 2)
    }
}

/// What `encompass schedule explain` prints: the decision with its inputs, as text or JSON.
public struct ScheduleExplanation: Codable, Sendable, Equatable {
    public var forceCode: String
    public var laCode: String
    public var urn: String?
    public var risk: RiskLevel
    public var occurredAt: String
    public var processedAt: String
    /// UTC instant.
    public var releaseAt: String
    /// London wall-clock time, e.g. `Tuesday 2025-11-04 08:00 (GMT)`.
    public var releaseLondon: String
    public var schoolDay: String
    public var escalate: Bool
    public var escalationContact: SchoolContact?
    public var rules: [String]

    public static func make(
        forceCode: String, occurredAt: Date, processedAt: Date, laCode: String, urn: String?, risk: RiskLevel,
        calendars: SchoolCalendars, protocols: [String: SchedulingProtocol]
    ) throws(SchedulingProtocolError) -> ScheduleExplanation {
        guard let force = protocols[forceCode] else {
            throw SchedulingProtocolError(
                forceCode: forceCode, problem: "no protocol file for this force; known: \(protocols.keys.sorted().joined(separator: ", "))")
        }
        let decision = try ReleaseRules.decide(
            occurredAt: occurredAt, processedAt: processedAt, laCode: laCode, urn: urn, risk: risk,
            calendar: calendars, protocol: force)
        let zone = TimeZone(identifier: "Europe/London")!
        let releaseDay = CalendarDate(decision.releaseAt)
        let london =
            "\(ReleaseRules.weekdayName(releaseDay)) \(releaseDay) \(ReleaseRules.londonTime(decision.releaseAt)) (\(zone.abbreviation(for: decision.releaseAt) ?? "London"))"
        return ScheduleExplanation(
            forceCode: forceCode, laCode: laCode, urn: urn, risk: risk, occurredAt: Timestamp.format(occurredAt),
            processedAt: Timestamp.format(processedAt), releaseAt: Timestamp.format(decision.releaseAt), releaseLondon: london,
            schoolDay: decision.schoolDay.description, escalate: decision.escalate,
            escalationContact: decision.escalate ? force.educationSafeguardingManager : nil, rules: decision.rules)
    }

    public var text: String {
        var lines: [String] = []
        if escalate {
            let who = [escalationContact?.name, escalationContact?.email, escalationContact?.phone].compactMap { $0 }.joined(separator: ", ")
            lines.append("ESCALATE NOW to the Education Safeguarding Manager\(who.isEmpty ? "" : ": \(who)")")
            lines.append("(the school's own notice goes on its first day back: \(schoolDay))")
        } else {
            lines.append("release: \(releaseLondon) = \(releaseAt)")
        }
        lines.append("force \(forceCode), LA \(laCode)\(urn.map { ", school \($0)" } ?? ""), risk \(risk.rawValue)")
        lines.append("rules:")
        lines.append(contentsOf: rules.enumerated().map { "  \($0.offset + 1). \($0.element)" })
        return lines.joined(separator: "\n")
    }
}
