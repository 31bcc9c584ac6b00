import EncompassKafka
import Foundation

/// The service's idea of "now". Production uses the system clock; tests and the demo use a
/// simulated clock so that a day of incidents can run through to the next morning's release
/// in minutes.
///
/// A simulated clock shared by several processes lives in a small JSON file
/// (`ENCOMPASS_CLOCK_FILE`): `{"simulated": "2026-11-23T18:00:00Z", "real": "2026-11-24T02:00:00Z", "rate": 60}`
/// means that at real time `real` the simulated time was `simulated`, and it runs `rate` times
/// faster than real time (0 stops it). Whoever drives the simulation rewrites the file; every
/// process reads it again at most every 100 ms.
public struct ServiceClock: Sendable {
    private let read: @Sendable () -> Date

    public init(_ read: @escaping @Sendable () -> Date) { self.read = read }

    public func now() -> Date { read() }

    public static let system = ServiceClock { Date() }

    /// A clock that follows the simulation file at `path` (see the type's documentation).
    /// Until the file exists it runs as the system clock.
    public static func file(_ path: String) -> ServiceClock {
        let cache = Locked<(checked: Date, anchor: SimulatedClockFile?)>((.distantPast, nil))
        return ServiceClock {
            let real = Date()
            let anchor = cache.withLock { state -> SimulatedClockFile? in
                if real.timeIntervalSince(state.checked) >= 0.1 {
                    state = (real, SimulatedClockFile.read(path) ?? state.anchor)
                }
                return state.anchor
            }
            return anchor?.simulatedTime(atReal: real) ?? real
        }
    }

    /// A clock the caller sets and advances (tests).
    public static func manual(_ clock: ManualClock) -> ServiceClock { ServiceClock { clock.now } }
}

/// A clock a test moves by hand.
public final class ManualClock: Sendable {
    private let current: Locked<Date>

    public init(_ start: Date) { current = Locked(start) }

    public var now: Date { current.withLock { $0 } }

    public func set(_ date: Date) { current.withLock { $0 = date } }

    public func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// The simulation file of `ServiceClock.file`.
public struct SimulatedClockFile: Codable, Sendable, Equatable {
    public var simulated: Date
    public var real: Date
    public var rate: Double

    public init(simulated: Date, real: Date = Date(), rate: Double = 1) {
        self.simulated = simulated
        self.real = real
        self.rate = rate
    }

    public func simulatedTime(atReal now: Date) -> Date {
        simulated.addingTimeInterval(now.timeIntervalSince(real) * rate)
    }

    public static func read(_ path: String) -> SimulatedClockFile? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(SimulatedClockFile.self, from: data)
    }

    /// Writes the file atomically (readers never see half of it).
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
