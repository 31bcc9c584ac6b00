import EncompassModels
import Foundation

/// Reads the term dates local authorities and schools publish, iCalendar (`.ics`) or CSV, into
/// a `TermDatesDocument` (docs/SCHEDULING.md, "Importing published term dates").
///
/// Both give dated entries of four kinds: a term (first to last day pupils attend), a half term,
/// an INSET day (or days) and a closure. Everything else (holidays, bank holidays) is implied: the
/// days between terms are holidays and bank holidays come from their own file.
public enum TermDatesImport {
    enum Kind: String { case term, halfTerm = "half term", inset, closure }

    /// The formats read: the JSON term dates document, CSV and iCalendar.
    public enum Format: String, Sendable, CaseIterable {
        case json, csv, ics

        /// By a file's extension (`.json`, `.csv`, `.ics`).
        public init?(fileName: String) { self.init(rawValue: (fileName as NSString).pathExtension.lowercased()) }

        /// By an HTTP `Content-Type` (`text/csv`, `text/calendar`; anything else is JSON).
        public init(contentType: String?) {
            let type = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
            self = type == "text/csv" ? .csv : type == "text/calendar" ? .ics : .json
        }
    }

    /// A term calendar from a file or upload in any of the formats; CSV and iCalendar give only
    /// the years (the caller names the LA or school).
    public static func calendar(_ data: Data, format: Format, label: String) throws(CalendarDataError) -> TermCalendar {
        switch format {
        case .json:
            return try TermCalendar.decode(data, label: label)
        case .csv, .ics:
            guard let text = String(data: data, encoding: .utf8) else { throw CalendarDataError(source: label, problem: "is not UTF-8 text") }
            let years = format == .csv ? try csv(text, source: label) : try icalendar(text, source: label)
            return try TermCalendar(TermDatesDocument(source: "imported from \(format.rawValue): \(label)", years: years), label: label)
        }
    }

    struct Entry {
        var kind: Kind
        var start: CalendarDate
        var end: CalendarDate
        var what: String
    }

    /// CSV with a header naming the columns `type`, `start` and optionally `end` (others are
    /// ignored): `type` is `term`, `half term`, `inset` or `closure` (also `autumn term`, `INSET day`
    /// …, matched like iCalendar summaries); dates `YYYY-MM-DD` or `DD/MM/YYYY`; no `end` is one day.
    public static func csv(_ text: String, source: String) throws(CalendarDataError) -> [TermDatesDocument.SchoolYear] {
        let lines = text.split(whereSeparator: \.isNewline).map { String($0) }.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard let header = lines.first else { throw CalendarDataError(source: source, problem: "is empty; expected a header row type,start,end") }
        let columns = cells(header).map { $0.lowercased() }
        guard let type = columns.firstIndex(of: "type"), let start = columns.firstIndex(of: "start") else {
            throw CalendarDataError(source: source, problem: "header is \"\(header)\"; it needs the columns type, start and (optionally) end")
        }
        let end = columns.firstIndex(of: "end")
        var entries: [Entry] = []
        for (n, line) in lines.dropFirst().enumerated() {
            let row = cells(line), rowName = "row \(n + 2)"
            guard row.count > max(type, start) else {
                throw CalendarDataError(source: source, problem: "\(rowName) has \(row.count) columns; the header has \(columns.count)")
            }
            guard let kind = kind(of: row[type]) else {
                throw CalendarDataError(source: source, problem: "\(rowName): type \"\(row[type])\" is not term, half term, inset or closure")
            }
            let first = try date(row[start], "\(rowName) start", source)
            let endText = end.flatMap { $0 < row.count ? row[$0] : nil } ?? ""
            let last = endText.isEmpty ? first : try date(endText, "\(rowName) end", source)
            entries.append(Entry(kind: kind, start: first, end: last, what: "\(rowName) (\(row[type]))"))
        }
        return try years(entries, source: source)
    }

    /// iCalendar: each all-day `VEVENT` is classified by its `SUMMARY` (half term, INSET/training
    /// day, closure, else any summary with "term"; other events such as holidays are ignored).
    /// `DTEND` of an all-day event is exclusive. A term given as two one-day events ("Autumn term
    /// starts", "Autumn term ends") is joined.
    public static func icalendar(_ text: String, source: String) throws(CalendarDataError) -> [TermDatesDocument.SchoolYear] {
        // Unfold continuation lines (RFC 5545 3.1).
        var lines: [String] = []
        // CRLF is one Character in Swift: normalise line ends before splitting.
        let normalised = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        for raw in normalised.split(separator: "\n", omittingEmptySubsequences: false) {
            if let first = raw.first, first == " " || first == "\t", !lines.isEmpty {
                lines[lines.count - 1] += raw.dropFirst()
            } else {
                lines.append(String(raw))
            }
        }
        var entries: [Entry] = []
        var event: [String: String]? = nil
        var opened: (CalendarDate, String)? = nil
        for line in lines {
            if line == "BEGIN:VEVENT" {
                event = [:]
                continue
            }
            if line == "END:VEVENT", let fields = event {
                event = nil
                let summary = fields["SUMMARY"] ?? ""
                guard let startText = fields["DTSTART"] else {
                    throw CalendarDataError(source: source, problem: "event \"\(summary)\" has no DTSTART")
                }
                let start = try date(String(startText.prefix(8)), "DTSTART of \"\(summary)\"", source)
                var end = start
                if let endText = fields["DTEND"] {
                    end = try date(String(endText.prefix(8)), "DTEND of \"\(summary)\"", source)
                    if endText.count == 8, end > start { end = end.adding(days: -1) }
                }
                guard let kind = kind(of: summary) else { continue }
                let lower = summary.lowercased()
                if kind == .term, start == end, ["start", "begin", "open"].contains(where: lower.contains) {
                    opened = (start, summary)
                    continue
                }
                if kind == .term, start == end, ["end", "finish", "close"].contains(where: lower.contains) {
                    guard let (first, name) = opened else {
                        throw CalendarDataError(source: source, problem: "\"\(summary)\" on \(start) ends a term that no event started")
                    }
                    entries.append(Entry(kind: .term, start: first, end: start, what: "\"\(name)\" to \"\(summary)\""))
                    opened = nil
                    continue
                }
                entries.append(Entry(kind: kind, start: start, end: end, what: "\"\(summary)\""))
                continue
            }
            guard event != nil, let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].split(separator: ";").first.map(String.init)?.uppercased() ?? ""
            if ["SUMMARY", "DTSTART", "DTEND"].contains(name) {
                event?[name] = String(line[line.index(after: colon)...]).replacingOccurrences(of: "\\,", with: ",")
            }
        }
        if let (first, name) = opened { throw CalendarDataError(source: source, problem: "\"\(name)\" on \(first) has no matching end of term") }
        return try years(entries, source: source)
    }

    static func kind(of text: String) -> Kind? {
        let lower = text.lowercased()
        if lower.contains("half term") || lower.contains("half-term") || lower == "halfterm" { return .halfTerm }
        if lower.contains("inset") || lower.contains("training day") || lower.contains("staff development") { return .inset }
        if lower.contains("closure") || lower.contains("closed") { return .closure }
        if lower.contains("term") { return .term }
        return nil
    }

    /// Terms grouped into school years (August to July by their first day), half terms inside
    /// their term, INSET days and closures by date.
    static func years(_ entries: [Entry], source: String) throws(CalendarDataError) -> [TermDatesDocument.SchoolYear] {
        for entry in entries where entry.start > entry.end {
            throw CalendarDataError(source: source, problem: "\(entry.what) ends \(entry.end) before it starts \(entry.start)")
        }
        let terms = entries.filter { $0.kind == .term }.sorted { $0.start < $1.start }
        guard !terms.isEmpty else {
            throw CalendarDataError(source: source, problem: "has no terms; expected entries such as \"Autumn term\" with their first and last days")
        }
        func yearName(_ day: CalendarDate) -> String { ReleaseRules.schoolYear(of: day) }
        var byYear: [String: TermDatesDocument.SchoolYear] = [:]
        for term in terms {
            let season = term.start.month >= 8 ? "autumn" : term.start.month <= 3 ? "spring" : "summer"
            let halves = entries.filter { $0.kind == .halfTerm && term.start <= $0.start && $0.end <= term.end }
            byYear[yearName(term.start), default: .init(schoolYear: yearName(term.start), approximate: false, terms: [])].terms.append(
                .init(
                    name: season, start: "\(term.start)", end: "\(term.end)",
                    halfTerms: halves.isEmpty ? nil : halves.map { DateRange(start: "\($0.start)", end: "\($0.end)") }))
        }
        for half in entries where half.kind == .halfTerm && !terms.contains(where: { $0.start <= half.start && half.end <= $0.end }) {
            throw CalendarDataError(source: source, problem: "half term \(half.what) \(half.start)…\(half.end) is not inside any term")
        }
        for entry in entries where entry.kind == .inset || entry.kind == .closure {
            var day = entry.start
            while day <= entry.end {
                let year = yearName(day)
                guard byYear[year] != nil else {
                    throw CalendarDataError(source: source, problem: "\(entry.what) on \(day) is in school year \(year), which has no terms")
                }
                if entry.kind == .inset {
                    byYear[year]!.insetDays = (byYear[year]!.insetDays ?? []) + ["\(day)"]
                } else {
                    byYear[year]!.closures = (byYear[year]!.closures ?? []) + ["\(day)"]
                }
                day = day.adding(days: 1)
            }
        }
        return byYear.keys.sorted().map { byYear[$0]! }
    }

    static func date(_ text: String, _ field: String, _ source: String) throws(CalendarDataError) -> CalendarDate {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let date = CalendarDate(iso: text) { return date }
        let slash = text.split(separator: "/").compactMap { Int($0) }
        if slash.count == 3, (1...31).contains(slash[0]), (1...12).contains(slash[1]), slash[2] >= 2000,
            let date = CalendarDate(iso: "\(slash[2])-\(CalendarDate.padded(slash[1], 2))-\(CalendarDate.padded(slash[0], 2))")
        {
            return date
        }
        if text.count == 8, text.allSatisfy(\.isNumber),
            let date = CalendarDate(iso: "\(text.prefix(4))-\(text.dropFirst(4).prefix(2))-\(text.suffix(2))")
        {
            return date
        }
        throw CalendarDataError(source: source, problem: "\(field) is \"\(text)\"; use YYYY-MM-DD or DD/MM/YYYY")
    }

    /// Splits a CSV line on commas outside double quotes.
    static func cells(_ line: String) -> [String] {
        var cells: [String] = [], current = "", quoted = false
        for character in line {
            if character == "\"" {
                quoted.toggle()
            } else if character == ",", !quoted {
                cells.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        cells.append(current)
        return cells.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
