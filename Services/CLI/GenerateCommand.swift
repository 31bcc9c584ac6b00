import ArgumentParser
import EncompassDemo
import EncompassModels
import Foundation

/// `encompass generate`: the demo's synthetic Thames Valley, as files.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a synthetic Thames Valley world: families near real schools, incident history, one day of new incidents.",
        discussion: """
        Writes history.jsonl and day.jsonl (one incident per line, the intake API's JSON; send them \
        with encompass history import and encompass ingest or POST /v1/incidents), truth.json (the \
        children really present and their schools, to score against) and contacts.csv (schools' \
        safeguarding contacts). The same seed and size make the same world.
        """
    )

    @Option(help: "Random seed.")
    var seed: UInt64 = 2026
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
        let list = try SchoolList.read(path: schools ?? SchoolList.shippedFile)
        let world = WorldGenerator.generate(WorldSettings(seed: seed, families: families, dayIncidents: incidents, day: date, historyYears: years), schools: list)
        try WorldFiles.write(world, to: out)
        print("world (seed \(seed)) written to \(out)/")
        print(WorldFiles.describe(world))
    }
}
