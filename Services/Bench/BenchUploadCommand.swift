import ArgumentParser
import EncompassDemo
import EncompassModels
import Foundation
import IntakeService
import ServiceRuntime
import WebSupport

/// The cost of a hostile or mistaken spreadsheet upload: a file of a million invalid rows sent to
/// intake's `POST /v1/spreadsheets`, beside the baseline of a DA desk's ordinary day in the same
/// run. Intake reads at most `maximumUploadRows` rows and keeps a refused file as one dead
/// letter, so time, intake's peak memory, the answer and the store's growth must stay bounded
/// whatever the number of rows.
struct UploadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Spreadsheet uploads: a file of --rows invalid rows vs a DA desk's day, time, intake's peak memory, answer and store growth."
    )

    @Option(help: "Rows of a large file (each invalid); repeat for several sizes.")
    var rows: [Int] = [1_000_000]
    @Option(help: "Incidents in the baseline day's spreadsheet.")
    var incidents: Int = 120
    @Option(help: "Folder for the run's logs and stores.")
    var dir: String = "/tmp/encompass-bench-upload"
    @Option(help: "First port of the run's services.")
    var basePort: Int = 29_581
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard rows.allSatisfy({ $0 >= 1 }), incidents >= 1 else { throw ValidationError("--rows and --incidents must be at least 1") }
    }

    func run() async throws {
        _ = try log.logger("encompass.bench")
        print(
            "upload benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB; \(Date().formatted(.iso8601))"
        )
        try? FileManager.default.removeItem(atPath: dir)
        let pipeline = LocalPipeline(
            .init(binDirectory: binDirectory(), directory: dir, basePort: basePort, environment: ["ENCOMPASS_LOG_LEVEL": "warning"]))
        do {
            try await pipeline.start(clock: CalendarDate(year: 2026, month: 11, day: 23).at(hour: 23))
            try await measure(pipeline)
        } catch {
            await pipeline.stopAll()
            throw error
        }
        await pipeline.stopAll()
    }

    private func measure(_ pipeline: LocalPipeline) async throws {
        let day = CalendarDate(year: 2026, month: 11, day: 23)
        let schools = try SchoolList.read(path: SchoolList.shippedFile)
        let ordinary = WorldFiles.deskSpreadsheet(WorldGenerator.eligibleIncidents(count: incidents, day: day, schools: schools, seed: 1))
        // Invalid rows as short as a row can be (an occurrence number in no force's format and
        // the other required columns empty), so that many fit under intake's body limit.
        func invalid(_ count: Int) -> Data {
            var file = Data("\(IncidentSheet.requiredColumns.joined(separator: ","))\r\n".utf8)
            let empties = String(repeating: ",", count: IncidentSheet.requiredColumns.count - 1)
            for index in 0..<count { file.append(contentsOf: Array("BAD\(index)\(empties)\r\n".utf8)) }
            return file
        }
        let largest = invalid(SpreadsheetUpload.maximumRows)

        guard let intakePid = await pipeline.processIds()["intake-1"] else { throw ValidationError("intake is not running") }
        let store = "\(dir)/intake-1"
        func storeBytes() -> Int {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: store)) ?? []
            return names.filter { $0.contains(".sqlite") }.reduce(0) { total, name in
                total + ((try? FileManager.default.attributesOfItem(atPath: "\(store)/\(name)")[.size] as? Int) ?? 0)
            }
        }
        // The peak of each upload alone: the kernel's high-water mark is reset before it.
        var perUpload = true
        func upload(_ name: String, _ body: Data) async throws -> (status: Int, seconds: Double, answer: Int, grown: Int, peak: Double) {
            if !resetPeakResident(intakePid) { perUpload = false }
            let before = storeBytes()
            let started = ContinuousClock.now
            let (status, answer) = try await pipeline.client(.intake).call(
                "POST", "/v1/spreadsheets", query: ["name": name], raw: body, contentType: "text/csv")
            let elapsed = ContinuousClock.now - started
            try await pipeline.quiet()
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return (status, seconds, answer.count, storeBytes() - before, peakResidentMiB(intakePid) ?? .nan)
        }
        let idle = peakResidentMiB(intakePid) ?? .nan
        let day1 = try await upload("day.csv", Data(ordinary.utf8))
        let most = try await upload("largest.csv", largest)
        var bigs: [(rows: Int, bytes: Int, result: (status: Int, seconds: Double, answer: Int, grown: Int, peak: Double))] = []
        for count in rows {
            let large = invalid(count)
            bigs.append((count, large.count, try await upload("many-\(count).csv", large)))
        }
        let letters = try await pipeline.operationsClient(.intake).call("GET", "/v1/dead-letters", query: ["status": "open"])
        let open = (try? JSONSerialization.jsonObject(with: letters.body)) as? [Any]
        func line(_ label: String, _ bytes: Int, _ r: (status: Int, seconds: Double, answer: Int, grown: Int, peak: Double)) {
            print(
                String(
                    format: "  %@ %8.1f KB: HTTP %d in %6.2f s; answer %7.1f KB; intake store grew %7.1f KB; intake peak resident %5.0f MiB",
                    label, Double(bytes) / 1e3, r.status, r.seconds, Double(r.answer) / 1e3, Double(r.grown) / 1e3, r.peak))
        }
        print(String(format: "  intake idle: peak resident %.0f MiB", idle))
        print(
            perUpload
                ? "  (peak resident: the high-water mark during each upload alone, reset before it through /proc/PID/clear_refs)"
                : "  (peak resident: cumulative over the run; /proc/PID/clear_refs could not be written)")
        line("baseline: a DA desk's day, \(incidents) incidents", ordinary.utf8.count, day1)
        line("\(SpreadsheetUpload.maximumRows) invalid rows (the most intake reads)", largest.count, most)
        for big in bigs { line("\(big.rows) invalid rows", big.bytes, big.result) }
        print("  intake's open dead letters after all the uploads: \(open.map { String($0.count) } ?? "?") (one per file with rejected rows)")
    }
}

/// Resets the process's peak resident memory (VmHWM) to its current resident memory, so that
/// the next reading is the peak since now. False when the kernel refuses (another user's process).
func resetPeakResident(_ pid: Int32) -> Bool {
    guard let handle = FileHandle(forWritingAtPath: "/proc/\(pid)/clear_refs") else { return false }
    defer { try? handle.close() }
    return (try? handle.write(contentsOf: Data("5".utf8))) != nil
}
