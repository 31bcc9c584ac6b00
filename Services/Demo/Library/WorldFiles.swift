import EncompassModels
import Foundation

/// Writes a world as the files the demo feeds to the system: `history.jsonl` and `day.jsonl`
/// (one incident per line, the intake API's JSON), `morning.jsonl` (the next school morning's
/// late report, the demo feeds after the first release), `truth.json` (what really happened on
/// the day and in the late report, for the summary), `contacts.csv` (schools' safeguarding contacts), `day.csv` (the same
/// day as the DA desk's spreadsheet, for `encompass ingest`) and, where the force has early
/// years settings the school list lacks, `early-years.csv` (their register entries, in the
/// school list's layout, for `encompass schools import`); `people.csv`, every person record with
/// its identity (`peopleFile`), to score a person matcher against.
public enum WorldFiles {
    public static func write(_ world: World, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = WireFormat.encoder()
        encoder.outputFormatting = [.sortedKeys]
        func lines(_ incidents: [Incident]) throws -> Data {
            var data = Data()
            for incident in incidents {
                data.append(try encoder.encode(incident))
                data.append(0x0A)
            }
            return data
        }
        try lines(world.history).write(to: URL(fileURLWithPath: "\(directory)/history.jsonl"))
        try lines(world.day).write(to: URL(fileURLWithPath: "\(directory)/day.jsonl"))
        try lines(world.morning).write(to: URL(fileURLWithPath: "\(directory)/morning.jsonl"))
        let pretty = WireFormat.encoder()
        pretty.outputFormatting = [.sortedKeys, .prettyPrinted]
        try pretty.encode(world.truth).write(to: URL(fileURLWithPath: "\(directory)/truth.json"))
        var csv = "urn,role,name,email,phone\r\n"
        for contact in world.contacts {
            csv += [contact.urn, contact.role, contact.name, contact.email, contact.phone].map(csvField).joined(separator: ",") + "\r\n"
        }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(directory)/contacts.csv"))
        try Data(deskSpreadsheet(world.day).utf8).write(to: URL(fileURLWithPath: "\(directory)/day.csv"))
        try Data(peopleFile(world).utf8).write(to: URL(fileURLWithPath: "\(directory)/people.csv"))
        let settings = world.schools.filter { SchoolReference.isEarlyYears($0.urn) }
        if !settings.isEmpty {
            try Data(registerFile(settings).utf8).write(to: URL(fileURLWithPath: "\(directory)/early-years.csv"))
        }
    }

    /// Every person record of the world's incidents (history, day, morning; parties and recorded
    /// children) as a FEBRL-format file, `rec_id` `rec-<identity>-org` for a person's first record
    /// and `rec-<identity>-dup-<k>` for the others (`World.identities`): the ground truth for
    /// scoring a person matcher, as `encompass-bench research --febrl` reads it. Names and dates
    /// of birth as recorded (typos, nicknames, mistyped years; `YYYYMMDD`, empty when only an age
    /// was recorded); the address is the person's own where the record has one, else the
    /// incident's, its house number, street and flat apart; `state` is the force code. No commas
    /// inside a field (the format has no quoting).
    public static func peopleFile(_ world: World) -> String {
        var lines = ["rec_id,given_name,surname,street_number,address_1,address_2,suburb,postcode,state,date_of_birth,soc_sec_id"]
        var seen: [String: Int] = [:]
        func field(_ text: String?) -> String {
            (text ?? "").replacingOccurrences(of: ",", with: " ").replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
        }
        func row(_ identity: String, given: String, family: String, dob: String?, address: PostalAddress, force: String) {
            let n = seen[identity, default: 0]
            seen[identity] = n + 1
            let recId = n == 0 ? "rec-\(identity)-org" : "rec-\(identity)-dup-\(n)"
            let (number, street, flat) = addressParts(address.lines.first ?? "")
            lines.append(
                [
                    recId, field(given), field(family), number, street, flat, field(address.town), field(address.postcode), force,
                    (dob ?? "").filter { $0 != "-" }, "",
                ].joined(separator: ","))
        }
        for incident in world.history + world.day + world.morning {
            guard let ids = world.identities[incident.occurrenceNumber] else { continue }
            for (party, id) in zip(incident.parties, ids.parties) {
                row(
                    id, given: party.givenName, family: party.familyName, dob: party.dateOfBirth, address: party.address ?? incident.incidentAddress,
                    force: incident.forceCode)
            }
            for (child, id) in zip(incident.children, ids.children) {
                row(
                    id, given: child.givenName, family: child.familyName, dob: child.dateOfBirth,
                    address: child.homeAddress ?? incident.incidentAddress, force: incident.forceCode)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A first address line as the world writes it (`Flat 3, 12 High Street`, `3/12 High St`,
    /// `12 High Street`): house number, street and flat (`flat 3`), without commas.
    static func addressParts(_ line: String) -> (number: String, street: String, flat: String) {
        var tokens = line.replacingOccurrences(of: ",", with: " ").split(separator: " ").map(String.init)
        var flat = "", number = ""
        if tokens.count >= 2, tokens[0].lowercased() == "flat" {
            flat = tokens[1]
            tokens.removeFirst(2)
        }
        if let first = tokens.first, first.first?.isNumber == true {
            let parts = first.split(separator: "/")
            if parts.count == 2 {
                flat = String(parts[0])
                number = String(parts[1])
            } else {
                number = first
            }
            tokens.removeFirst()
        }
        return (number, tokens.joined(separator: " "), flat.isEmpty ? "" : "flat \(flat)")
    }

    /// Incidents as the DA desk's daily spreadsheet (README, "The DA desk's spreadsheet"): one
    /// row per child recorded, one row for an incident with none; times in London local time.
    public static func deskSpreadsheet(_ incidents: [Incident]) -> String {
        let header = [
            "occurrence_number", "force_code", "occurred_at", "reported_at", "incident_address", "incident_town", "incident_postcode",
            "lpa", "risk_level", "crime", "victim_given_name", "victim_family_name", "victim_dob", "suspect_given_name",
            "suspect_family_name", "suspect_dob", "circumstances", "safeguarding_information", "child_given_name", "child_family_name",
            "child_dob", "child_age", "child_presence", "child_address", "child_postcode", "child_school", "child_school_urn",
        ]
        let formatter = DateFormatter()
        formatter.calendar = CalendarDate.london
        formatter.timeZone = CalendarDate.london.timeZone
        formatter.locale = Locale(identifier: "en_GB_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        var csv = header.joined(separator: ",") + "\r\n"
        for incident in incidents {
            func party(_ role: PartyRole) -> [String] {
                let person = incident.parties.first { $0.role == role }
                return [person?.givenName ?? "", person?.familyName ?? "", person?.dateOfBirth ?? ""]
            }
            let common =
                [
                    incident.occurrenceNumber, incident.forceCode, formatter.string(from: incident.occurredAt),
                    formatter.string(from: incident.reportedAt),
                    incident.incidentAddress.lines.joined(separator: ", "), incident.incidentAddress.town ?? "", incident.incidentAddress.postcode,
                    incident.localPolicingArea ?? "", incident.riskLevel.rawValue, incident.crime ? "Y" : "N",
                ]
                + party(.victim) + party(.suspect) + [incident.circumstances ?? "", incident.safeguardingInformation ?? ""]
            let children: [[String]] = incident.children.map { child in
                [
                    child.givenName, child.familyName, child.dateOfBirth ?? "", child.ageYears.map(String.init) ?? "", child.presence.rawValue,
                    child.homeAddress.map { $0.lines.joined(separator: ", ") } ?? "", child.homeAddress?.postcode ?? "",
                    child.school?.name ?? "", child.school?.urn ?? "",
                ]
            }
            for row in children.isEmpty ? [Array(repeating: "", count: 9)] : children {
                csv += (common + row).map(csvField).joined(separator: ",") + "\r\n"
            }
        }
        return csv
    }

    /// Schools in the layout of the shipped school list (which the register imports).
    public static func registerFile(_ schools: [WorldSchool]) -> String {
        var csv = "URN,Name,Street,City,Postcode,Status,Type,Primary,Secondary,Post 16,Age From,Age To,Local Authority\r\n"
        for school in schools {
            csv +=
                [
                    school.urn, school.name, "", school.town, school.postcode, school.open ? "1" : "2", school.type, "0", "0", "0",
                    String(school.ageFrom), String(school.ageTo), school.localAuthorityCode,
                ].map(csvField).joined(separator: ",") + "\r\n"
        }
        return csv
    }

    static func csvField(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    /// Figures about a world, for the generator's own report.
    public static func describe(_ world: World) -> String {
        let children = world.truth.flatMap(\.children)
        let recorded = children.filter(\.recordedByOfficer).count
        let correct = children.filter(\.officerSchoolCorrect).count
        let withSchool = children.filter { $0.schoolURN != nil }.count
        return """
            history: \(world.history.count) incidents, \(world.history.reduce(0) { $0 + $1.children.count }) child records
            day \(world.settings.day): \(world.day.count) incidents, \(children.count) children present (\(withSchool) of school age with a school)
            officers recorded \(recorded) of them, \(correct) with the school's exact name; \(world.day.filter { $0.children.isEmpty }.count) incidents list no child
            schools: \(world.schools.count) open \(world.settings.force.name) schools and settings (\(world.schools.filter { SchoolReference.isEarlyYears($0.urn) }.count) early years settings), \(world.contacts.count) contacts
            """
    }
}
