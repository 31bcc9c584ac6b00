import ArgumentParser
import EncompassDemo
import EncompassModels
import Foundation

/// `encompass generate`: the demo's synthetic force area (Thames Valley, or Cambridgeshire and Peterborough), as files.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract:
            "Generate a synthetic force area (Thames Valley, or --force 05 Cambridgeshire and Peterborough): families near real schools, incident history, one day of new incidents.",
        discussion: """
            Writes history.jsonl and day.jsonl (one incident per line, the intake API's JSON; send them \
            with encompass history import and encompass ingest or POST /v1/incidents), truth.json (the \
            children really present and their schools, to score against), contacts.csv (schools' \
            safeguarding contacts) and day.csv (the day as the DA desk's spreadsheet, for encompass \
            ingest); for Cambridgeshire also early-years.csv (synthetic early years settings for the \
            register: encompass schools import). The same seed, size and force make the same world.
            """
    )

    @Option(help: "Random seed.")
    var seed: UInt64 = 2026
    @Option(help: "The force: 43 Thames Valley, 05 Cambridgeshire and Peterborough.")
    var force: String = "43"
    @Option(help: "Households to invent (the history grows with it).")
    var families: Int = 1_500
    @Option(help: "New incidents on the day.")
    var incidents: Int = 120
    @Option(help: "The day of the new incidents (YYYY-MM-DD); default: today.")
    var day: String?
    @Option(help: "Years of history before the day.")
    var years: Int = 3
    @Option(help: "School list in the layout of schools_2018_tvp_cambs.csv (default: the shipped one).")
    var schools: String?
    @Option(help: "Folder to write to.")
    var out: String = "var/world"

    func run() throws {
        guard families > 0, incidents >= 0, (1...20).contains(years) else {
            throw ValidationError("--families must be positive, --incidents not negative, --years 1 to 20")
        }
        let date: CalendarDate
        if let day {
            guard let parsed = CalendarDate(iso: day) else { throw ValidationError("--day '\(day)' is not a date (YYYY-MM-DD)") }
            date = parsed
        } else {
            date = CalendarDate(Date())
        }
        guard let demoForce = DemoForce.code(force) else {
            throw ValidationError(
                "--force '\(force)' is not a demo force; use \(DemoForce.all.map { "\($0.code) (\($0.name))" }.joined(separator: " or "))")
        }
        let list = try SchoolList.read(path: schools ?? SchoolList.shippedFile)
        let world = WorldGenerator.generate(
            WorldSettings(
                seed: seed, families: families, dayIncidents: incidents, day: date, historyYears: years,
                force: demoForce), schools: list)
        try WorldFiles.write(world, to: out)
        print("world (seed \(seed)) written to \(out)/")
        print(WorldFiles.describe(world))
    }
}
