import EncompassModels
import Foundation

/// Writes a world as the files the demo feeds to the system: `history.jsonl` and `day.jsonl`
/// (one incident per line, the intake API's JSON), `morning.jsonl` (the next school morning's
/// late report, the demo feeds after the first release), `truth.json` (what really happened on
/// the day and in the late report, for the summary), `contacts.csv` (schools' safeguarding contacts), `day.csv` (the same
/// day as the DA desk's spreadsheet, for `encompass ingest`) and, where the force has early
/// years settings the school list lacks, `early-years.csv` (their register entries, in the
/// school list's layout, for `encompass schools import`).
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
        let settings = world.schools.filter { SchoolReference.isEarlyYears($0.urn) }
        if !settings.isEmpty {
            try Data(registerFile(settings).utf8).write(to: URL(fileURLWithPath: "\(directory)/early-years.csv"))
        }
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
