import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

/// The fuzz passes' random source (`SeededRandom`: a seed repeats a run).
struct FuzzRandom {
    private var generator: SeededRandom

    init(seed: UInt64) { generator = SeededRandom(seed: seed) }

    mutating func next() -> UInt64 { generator.next() }

    /// Uniform in 0..<bound (bound > 0).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// How much to fuzz and from which seed: `ENCOMPASS_FUZZ_SEED` (decimal or 0x hex) replays a
/// run, `ENCOMPASS_FUZZ_ITERATIONS` sets the inputs per parser.
enum FuzzConfig {
    static let environment = ProcessInfo.processInfo.environment

    static let seed: UInt64 = {
        if let text = environment["ENCOMPASS_FUZZ_SEED"]?.trimmingCharacters(in: .whitespaces) {
            if text.lowercased().hasPrefix("0x"), let value = UInt64(text.dropFirst(2), radix: 16) { return value }
            if let value = UInt64(text) { return value }
        }
        return UInt64.random(in: 1...UInt64(UInt32.max))
    }()

    static func iterations(default value: Int) -> Int {
        environment["ENCOMPASS_FUZZ_ITERATIONS"].flatMap(Int.init).map { max(1, $0) } ?? value
    }

    /// When set, every input is written to this folder's `<parser>.last` before it is parsed,
    /// so the input of a crash is on disk.
    static let saveDirectory = environment["ENCOMPASS_FUZZ_SAVE_DIR"]

    /// Inputs are bounded so that a run stays short; parsers must cope with anything up to this.
    static let maximumInput = 512 * 1024
}

/// The verdict on one input.
enum FuzzOutcome: Equatable {
    case parsed
    case rejected(String)
}

/// What a fuzz run of one parser saw; a failure names the seed and iteration to replay it.
struct FuzzReport: CustomStringConvertible {
    var parser: String
    var seed: UInt64
    var iterations = 0
    var parsed = 0
    var rejected = 0
    var slowest: Duration = .zero
    var slowestIteration = -1
    var failures: [String] = []
    var elapsed: Duration = .zero
    var errorSamples: [String] = []

    var description: String {
        "\(parser): \(iterations) inputs (\(parsed) parsed, \(rejected) rejected with an error) in \(elapsed), slowest \(slowest) (#\(slowestIteration)), seed \(seed)"
    }
}

/// Runs `parse` over `iterations` inputs from `generate` and checks each verdict.
///
/// `parse` returns `.parsed` after checking what it read makes sense (no silent garbage), or
/// throws; a thrown error must describe itself (non-empty, not just the type's name).
func fuzz(
    _ parser: String, iterations: Int, seed: UInt64 = FuzzConfig.seed, slowLimit: Duration = .seconds(5),
    generate: (inout FuzzRandom, Int) -> Data, parse: (Data) throws -> FuzzOutcome
) -> FuzzReport {
    // Each parser gets its own stream, so adding a parser does not change the others' inputs.
    var random = FuzzRandom(seed: seed ^ UInt64(truncatingIfNeeded: StableHash.hex128(parser).hashValueStable))
    var report = FuzzReport(parser: parser, seed: seed)
    let clock = ContinuousClock()
    let started = clock.now
    for iteration in 0..<iterations {
        var input = generate(&random, iteration)
        if input.count > FuzzConfig.maximumInput { input = input.prefix(FuzzConfig.maximumInput) }
        if let folder = FuzzConfig.saveDirectory {
            try? input.write(to: URL(fileURLWithPath: folder).appendingPathComponent("\(parser).last"))
        }
        let began = clock.now
        let outcome: FuzzOutcome
        do {
            outcome = try parse(input)
        } catch {
            outcome = .rejected(describeError(error))
        }
        let took = clock.now - began
        if took > report.slowest {
            report.slowest = took
            report.slowestIteration = iteration
        }
        report.iterations += 1
        switch outcome {
        case .parsed:
            report.parsed += 1
        case .rejected(let text):
            report.rejected += 1
            if let problem = unclearError(text) {
                report.failures.append("#\(iteration): \(problem): \(text.prefix(200)) (input \(preview(input)))")
            } else if report.errorSamples.count < 5, !report.errorSamples.contains(text) {
                report.errorSamples.append(String(text.prefix(160)))
            }
        }
        if took > slowLimit {
            report.failures.append("#\(iteration): took \(took) (limit \(slowLimit)); input \(preview(input))")
        }
    }
    report.elapsed = clock.now - started
    print("fuzz \(report)")
    for sample in report.errorSamples { print("  e.g. \(sample)") }
    return report
}

/// A parser's error as a user sees it.
func describeError(_ error: any Error) -> String {
    String(describing: error) // the error's description where it has one
}

/// Why an error text does not say what is wrong, or nil when it does.
func unclearError(_ text: String) -> String? {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if trimmed.isEmpty { return "empty error" }
    if trimmed.count < 12 { return "error too short to say what is wrong" }
    // A bare type name or enum case dump ("SomeError()", "Foundation.NSError") says nothing.
    if trimmed.range(of: #"^[A-Za-z_.]+(\(\))?$"#, options: .regularExpression) != nil { return "error is only a type name" }
    if trimmed.contains("The operation could not be completed") { return "error is Foundation's generic text" }
    return nil
}

/// The start of an input, printable.
func preview(_ data: Data) -> String {
    let head = data.prefix(80)
    let text = String(decoding: head, as: UTF8.self).replacingOccurrences(of: "\n", with: "\\n")
    return "\(data.count) bytes: \(text.debugDescription)"
}

extension String {
    /// The first 16 hex digits as a number (StableHash is platform-independent; Hasher is not).
    var hashValueStable: UInt64 { UInt64(prefix(16), radix: 16) ?? 0 }
}

/// Ways to break an input: byte-level damage and the tokens that upset parsers.
enum Mutator {
    static let tokens: [[UInt8]] = [
        Array("\"".utf8), Array("\"\"".utf8), Array("'".utf8), Array(",".utf8), Array(";".utf8), Array("\n".utf8), Array("\r".utf8),
        Array("\r\n".utf8), [0x00], [0x00, 0x00, 0x00], [0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
        [0xEF, 0xBB, 0xBF], [0xFF, 0xFE], [0xFE, 0xFF], Array("\\".utf8), Array("\\u0000".utf8), Array("\\ud800".utf8),
        Array("99999999999999999999999999999999999999".utf8), Array("-9223372036854775809".utf8), Array("9223372036854775807".utf8),
        Array("1e999999".utf8), Array("-1e-999999".utf8), Array("NaN".utf8), Array("Infinity".utf8), Array("-0".utf8), Array("0x1F".utf8),
        Array("null".utf8), Array("true".utf8), Array("{}".utf8), Array("[]".utf8), Array("{".utf8), Array("}".utf8), Array("[".utf8),
        Array("]".utf8), Array(":".utf8), Array("<".utf8), Array(">".utf8), Array("&".utf8), Array("&amp;".utf8), Array("&#0;".utf8),
        Array("&#xD800;".utf8), Array("]]>".utf8), Array("<![CDATA[".utf8), Array("<!--".utf8), Array("=HYPERLINK(\"x\")".utf8),
        Array("+1".utf8), Array("@SUM(A1)".utf8), Array("\t".utf8), Array("2026-02-30".utf8), Array("0000-00-00T00:00:00Z".utf8),
        Array("9999-12-31T23:59:59Z".utf8), Array("\u{202E}".utf8), Array("\u{FEFF}".utf8), Array("AAAAAAAAAAAAAAAAAAAAAAAA1".utf8),
    ]

    /// A copy of `input` with one to four damages.
    static func mutate(_ input: Data, _ random: inout FuzzRandom, dictionary: [[UInt8]] = []) -> Data {
        var bytes = [UInt8](input)
        let vocabulary = tokens + dictionary
        for _ in 0..<(1 + random.below(4)) {
            let at = bytes.isEmpty ? 0 : random.below(bytes.count + 1)
            switch random.below(11) {
            case 0 where !bytes.isEmpty: // flip a bit
                let i = min(at, bytes.count - 1)
                bytes[i] ^= UInt8(1 << random.below(8))
            case 1 where !bytes.isEmpty: // random byte
                bytes[min(at, bytes.count - 1)] = UInt8(random.below(256))
            case 2: // truncate
                bytes = Array(bytes.prefix(at))
            case 3 where !bytes.isEmpty: // delete a range
                let end = min(bytes.count, at + 1 + random.below(32))
                if at < end { bytes.removeSubrange(at..<end) }
            case 4, 5: // insert a token
                bytes.insert(contentsOf: random.pick(vocabulary), at: at)
            case 6 where !bytes.isEmpty: // duplicate a chunk
                let start = random.below(bytes.count)
                let end = min(bytes.count, start + 1 + random.below(256))
                bytes.insert(contentsOf: bytes[start..<end], at: at)
            case 7 where !bytes.isEmpty: // replace a range with a token
                let end = min(bytes.count, at + 1 + random.below(8))
                if at < end { bytes.replaceSubrange(at..<end, with: random.pick(vocabulary)) }
            case 8: // a long run of one character
                bytes.insert(contentsOf: [UInt8](repeating: random.pick(Array("\"{[<,a0\n".utf8)), count: 1 + random.below(5_000)), at: at)
            case 9 where !bytes.isEmpty: // swap two bytes
                let other = random.below(bytes.count)
                bytes.swapAt(min(at, bytes.count - 1), other)
            default: // random bytes
                bytes.insert(contentsOf: (0..<(1 + random.below(16))).map { _ in UInt8(random.below(256)) }, at: at)
            }
        }
        return Data(bytes.prefix(FuzzConfig.maximumInput))
    }

    /// Random bytes, random printable text, or structural extremes.
    static func random(_ random: inout FuzzRandom) -> Data {
        switch random.below(6) {
        case 0:
            return Data((0..<random.below(512)).map { _ in UInt8(random.below(256)) })
        case 1:
            let alphabet = Array(" ,\"\n\r{}[]:;0123456789abcdefXYZ<>/=&'\t.-+@".utf8)
            return Data((0..<random.below(1_024)).map { _ in random.pick(alphabet) })
        case 2: // deep nesting
            let depth = 1 + random.below(100_000)
            let open = random.pick(["[", "{\"a\":", "<a>"])
            return Data((String(repeating: open, count: depth)).utf8)
        case 3: // one huge number
            return Data((random.pick(["", "-", "+"]) + String(repeating: "9", count: 1 + random.below(20_000))).utf8)
        case 4: // many empty lines / separators
            return Data(String(repeating: random.pick(["\n", ",", "\r\n", "\"\"", ",,\n"]), count: random.below(50_000)).utf8)
        default:
            return Data()
        }
    }
}

/// Asserts a fuzz run found nothing wrong.
func expectClean(_ report: FuzzReport, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(report.iterations > 0, sourceLocation: sourceLocation)
    #expect(
        report.failures.isEmpty,
        "\(report.parser) (replay: ENCOMPASS_FUZZ_SEED=\(report.seed)): \(report.failures.prefix(10).joined(separator: "\n"))",
        sourceLocation: sourceLocation)
}
