import EncompassModels
import Foundation

/// Writes a world as the files the demo feeds to the system: `history.jsonl` and `day.jsonl`
/// (one incident per line, the intake API's JSON), `truth.json` (what really happened on the
/// day, for the summary), `contacts.csv` (schools' safeguarding contacts).
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
        let pretty = WireFormat.encoder()
        pretty.outputFormatting = [.sortedKeys, .prettyPrinted]
        try pretty.encode(world.truth).write(to: URL(fileURLWithPath: "\(directory)/truth.json"))
        var csv = "urn,role,name,email,phone\r\n"
        for contact in world.contacts {
            csv += [contact.urn, contact.role, contact.name, contact.email, contact.phone].map(csvField).joined(separator: ",") + "\r\n"
        }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(directory)/contacts.csv"))
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
        schools: \(world.schools.count) open Thames Valley schools, \(world.contacts.count) contacts
        """
    }
}
