import EncompassModels
import Foundation
import GRDB

/// What research knows while it weighs whether a found child lives at the incident's address
/// now: the incident, its dwelling, the earlier incidents there, and the people of each
/// occurrence read so far.
struct ResidenceContext {
    let incident: Incident
    /// The incident's dwelling key (nil when its address has no number or street).
    let dwelling: String?
    /// The first day whose records count (the protocol's look-back).
    let earliest: String
    /// Earlier incidents at the dwelling, most recent first.
    let atDwelling: [HistoryIndex.IncidentRow]
    /// The people of each occurrence read so far, by "force/occurrence".
    var peopleByOccurrence: [String: [HistoryIndex.PersonRow]] = [:]

    init(incident: Incident, dwelling: String?, earliest: String, atDwelling: [HistoryIndex.IncidentRow]) {
        self.incident = incident
        self.dwelling = dwelling
        self.earliest = earliest
        self.atDwelling = atDwelling
    }

    /// Only records of earlier days weigh on residence: every instance holds those, so an
    /// incident researched again after a rebalance gets the same doubts.
    var incidentDay: String { CalendarDate(incident.occurredAt).description }

    func counts(_ row: HistoryIndex.PersonRow) -> Bool {
        row.occurredDay >= earliest && row.occurredDay < incidentDay
            && !(row.forceCode == incident.forceCode && row.occurrenceNumber == incident.occurrenceNumber)
    }

    mutating func people(_ forceCode: String, _ occurrenceNumber: String, db: Database) throws -> [HistoryIndex.PersonRow] {
        let key = "\(forceCode)/\(occurrenceNumber)"
        if let held = peopleByOccurrence[key] { return held }
        let rows = try HistoryIndex.people(forceCode: forceCode, occurrenceNumber: occurrenceNumber, db: db)
        peopleByOccurrence[key] = rows
        return rows
    }
}

extension Researcher {
    /// Evidence that a found child does not live at the incident's address: a factor that
    /// lowers the candidate's score, and the explanation line saying what was found.
    struct Doubt: Equatable {
        var factor: Double
        var line: String
    }

    /// A later record places the child (or the adults it lived with here) at another address.
    static let movedFactor = 0.5
    /// Another household has been recorded at the address since the child (previous occupants).
    static let otherHouseholdFactor = 0.6
    /// Found only through an adult recorded with another partner elsewhere (a partner's earlier children).
    static let otherPartnerFactor = 0.6

    /// The doubts about one candidate: its rows (the records grouped into it), its features and
    /// the links that found it.
    func residenceDoubts(
        rows: [HistoryIndex.PersonRow], features: PersonFeatures, links: [Link], context: inout ResidenceContext,
        places: inout [String: PersonFeatures], db: Database
    ) throws -> [Doubt] {
        guard let latest = rows.max(by: { $0.occurredDay < $1.occurredDay }) else { return [] }
        let name = "\(latest.givenName) \(latest.familyName)"
        let parties = context.incident.parties.map { party in
            PersonFeatures(givenName: party.givenName, familyName: party.familyName, dateOfBirth: party.dateOfBirth)
        }
        func dwelling(_ row: HistoryIndex.PersonRow) -> String? { row.features(cache: &places).dwellingKey }
        func inIncident(_ adult: HistoryIndex.PersonRow) -> Bool {
            let person = adult.features(cache: &places)
            return parties.contains { sameCompanion($0, person) }
        }
        // The child's records of earlier days: those research grouped, and any other record of the same child.
        var records = rows.filter(context.counts)
        var known = Set(rows.map(\.row))
        for row in try HistoryIndex.candidates(for: features, db: db, kind: .children, before: context.incidentDay)
        where context.counts(row) && known.insert(row.row).inserted {
            if rows.contains(where: { $0.personId == row.personId }) || samePerson(features, row.features(cache: &places)) { records.append(row) }
        }
        records.sort { $0.occurredDay > $1.occurredDay }
        let viaDwelling = links.contains { $0.matchedAdult == nil }
        let viaAdult = links.contains { $0.matchedAdult != nil }
        var doubts: [Doubt] = []

        if let here = context.dwelling, let lastHere = records.first(where: { dwelling($0) == here }) {
            // Moved: a later record of the child elsewhere (not with an adult of this incident: the
            // child is where they are), or of every adult it lived with here.
            var elsewhere: HistoryIndex.PersonRow?
            for record in records where record.occurredDay > lastHere.occurredDay && dwelling(record).map({ $0 != here }) == true {
                let with = try context.people(record.forceCode, record.occurrenceNumber, db: db).filter { $0.role != "child" }
                if !with.contains(where: inIncident) {
                    elsewhere = record
                    break
                }
            }
            if let elsewhere {
                doubts.append(
                    Doubt(
                        factor: Self.movedFactor,
                        line:
                            "residence: \(name) recorded at \(Self.describe(elsewhere.address)) in \(elsewhere.occurrenceNumber) (\(elsewhere.occurredDay)), after \(lastHere.occurrenceNumber) (\(lastHere.occurredDay)) at this address"
                    ))
            } else {
                let household = try context.people(lastHere.forceCode, lastHere.occurrenceNumber, db: db).filter { $0.role != "child" }
                if !household.isEmpty, !household.contains(where: inIncident) {
                    var moves: [String] = []
                    for adult in household {
                        let person = adult.features(cache: &places)
                        let later = try HistoryIndex.candidates(for: person, db: db, kind: .adults, before: context.incidentDay)
                            .filter { context.counts($0) && $0.occurredDay > lastHere.occurredDay && dwelling($0).map { $0 != here } == true }
                            .filter { samePerson(person, $0.features(cache: &places)) }
                            .max { $0.occurredDay < $1.occurredDay }
                        guard let later else { break }
                        moves.append(
                            "\(adult.givenName) \(adult.familyName) at \(Self.describe(later.address)) in \(later.occurrenceNumber) (\(later.occurredDay))"
                        )
                    }
                    if moves.count == household.count {
                        doubts.append(
                            Doubt(
                                factor: Self.movedFactor,
                                line:
                                    "residence: the adults recorded here with \(name) in \(lastHere.occurrenceNumber) (\(lastHere.occurredDay)) were recorded elsewhere since: \(moves.joined(separator: "; "))"
                            ))
                    }
                }
            }
            // Previous occupants: another household at the address since the child's last record
            // there, or this incident's adults are strangers to the household the child lived with.
            if !viaAdult {
                let household = try context.people(lastHere.forceCode, lastHere.occurrenceNumber, db: db).filter { $0.role != "child" }
                var familyParts = Set(NameText.parts(NameText.normalise(latest.familyName)))
                for adult in household { familyParts.formUnion(NameText.parts(NameText.normalise(adult.familyName))) }
                let householdFeatures = household.map { $0.features(cache: &places) }
                // Related to the household the child lived with here: a family name alike (a
                // misspelt one too), or one of its adults.
                func related(_ person: PersonFeatures) -> Bool {
                    Self.alike(familyParts, person.family) || householdFeatures.contains { samePerson($0, person) }
                }
                let childIds = Set(records.map(\.personId))
                var since: Doubt?
                for later in context.atDwelling
                where later.occurredDay > lastHere.occurredDay && later.occurredDay < context.incidentDay
                    && later.occurredDay >= context.earliest
                {
                    let people = try context.people(later.forceCode, later.occurrenceNumber, db: db)
                    let adults = people.filter { $0.role != "child" }
                    guard !adults.isEmpty, !people.contains(where: { childIds.contains($0.personId) }),
                        !adults.contains(where: { related($0.features(cache: &places)) })
                    else { continue }
                    since = Doubt(
                        factor: Self.otherHouseholdFactor,
                        line:
                            "residence: a different household recorded at this address since \(name)'s last record here (\(lastHere.occurrenceNumber), \(lastHere.occurredDay)): \(Self.names(adults)) in \(later.occurrenceNumber) (\(later.occurredDay))"
                    )
                    break
                }
                if since == nil, !household.isEmpty, !parties.isEmpty, !parties.contains(where: related) {
                    since = Doubt(
                        factor: Self.otherHouseholdFactor,
                        line:
                            "residence: \(name) was recorded here with \(Self.names(household)) (\(lastHere.occurrenceNumber), \(lastHere.occurredDay)); this incident's adults (\(context.incident.parties.map { "\($0.givenName) \($0.familyName)" }.joined(separator: ", "))) are a different household"
                    )
                }
                if let since { doubts.append(since) }
            }
        } else if viaAdult, !viaDwelling, !links.contains(where: { $0.partyRole == .victim }) {
            // Never recorded at this address, found through an adult other than the victim (a
            // victim's children from an earlier relationship usually live with her): when every
            // record that linked it shows that adult with another partner who is not in this
            // incident, the child is likely that partner's and lives with them.
            var partnered: [String] = []
            var byOccurrence: [String: Link] = [:]
            for link in links where link.matchedAdult != nil && byOccurrence["\(link.forceCode)/\(link.occurrenceNumber)"] == nil {
                byOccurrence["\(link.forceCode)/\(link.occurrenceNumber)"] = link
            }
            for (_, link) in byOccurrence.sorted(by: { $0.key < $1.key }) {
                let people = try context.people(link.forceCode, link.occurrenceNumber, db: db)
                guard let adult = people.first(where: { $0.row == link.matchedAdult }) else { break }
                let others = people.filter { $0.role != "child" && $0.row != adult.row }
                guard !others.isEmpty, !others.contains(where: inIncident) else { break }
                let place = people.first { $0.role == "child" && rows.contains($0) }?.address ?? adult.address
                partnered.append(
                    "with \(adult.givenName) \(adult.familyName) and \(Self.names(others)) at \(Self.describe(place)) in \(link.occurrenceNumber) (\(link.occurredDay))"
                )
            }
            if !partnered.isEmpty, partnered.count == byOccurrence.count {
                doubts.append(
                    Doubt(
                        factor: Self.otherPartnerFactor,
                        line:
                            "household: \(name) was recorded only \(partnered.joined(separator: "; ")), never at this address, and that partner is not in this incident (a partner's earlier children rarely live with the new household)"
                    ))
            }
        }
        return doubts
    }

    /// Whether a normalised family name has a part alike one of `parts`: equal, the same Soundex
    /// code, or Jaro-Winkler 0.9 or more (generous: a doubt needs clearly different names).
    static func alike(_ parts: Set<String>, _ family: String) -> Bool {
        NameText.parts(family).contains { part in
            parts.contains { $0 == part || NameText.soundex($0) == NameText.soundex(part) || NameText.jaroWinkler($0, part) >= 0.9 }
        }
    }

    static func describe(_ address: PostalAddress?) -> String {
        guard let address else { return "an unknown address" }
        return (address.lines + [address.postcode]).joined(separator: ", ")
    }

    static func names(_ people: [HistoryIndex.PersonRow]) -> String {
        people.map { "\($0.givenName) \($0.familyName)" }.joined(separator: ", ")
    }
}
