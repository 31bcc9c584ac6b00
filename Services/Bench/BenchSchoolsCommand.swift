import ArgumentParser
import Foundation
import SchoolResolutionService

/// School resolution's name matcher on the register, garbled as officers write names.
struct SchoolsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schools",
        abstract: "Name matching: speed (index vs scoring every school, same run) and rightness on garbled real names.",
        discussion:
            "Every open school's name is abbreviated (Prim, Sch, Inf, Jun, Acad), stripped of CE/RC and given a typo; the matcher must find it, leave it unresolved (request path), and never pick another school."
    )

    @Option(help: "Register file (default: the shipped 2018 list).") var register: String?

    func run() async throws {
        let data: Data
        if let register {
            guard let read = FileManager.default.contents(atPath: register) else { throw ValidationError("cannot read \(register)") }
            data = read
        } else {
            guard let url = RegisterImporter.bundledListURL, let read = FileManager.default.contents(atPath: url.path) else {
                throw ValidationError("the shipped school list is missing")
            }
            data = read
        }
        let schools = try RegisterImporter.read(data).schools
        let r = MatcherBenchmark.run(schools: schools)
        let n = Double(max(r.queries, 1))
        print("register: \(r.schools) schools; matcher built in \(String(format: "%.1f", r.buildSeconds * 1000)) ms")
        print(
            "indexed:   \(r.queries) names in \(String(format: "%.3f", r.indexedSeconds)) s = \(String(format: "%.0f", n / max(r.indexedSeconds, 1e-9))) names/s (\(String(format: "%.2f", r.indexedSeconds / n * 1000)) ms each)"
        )
        print(
            "full scan: \(r.queries) names in \(String(format: "%.3f", r.fullScanSeconds)) s = \(String(format: "%.0f", n / max(r.fullScanSeconds, 1e-9))) names/s (baseline, same run)"
        )
        print(
            "right \(r.right) (\(String(format: "%.1f", Double(r.right) / n * 100))%), unresolved → request \(r.unresolved), WRONG school \(r.wrong)")
        for example in r.wrongExamples { print("  wrong: \(example)") }
    }
}
