import EncompassModels
import Foundation
import Testing

/// The direct timestamp writer and reader must agree with Foundation's ISO 8601 styles.
@Suite struct TimestampFastPathTests {
    @Test func formatMatchesFoundationOnRandomDates() {
        var generator = SystemRandomNumberGenerator()
        var dates: [Date] = [
            Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -1), Date(timeIntervalSince1970: 951_782_400), // 2000-02-29
            Date(timeIntervalSince1970: 1_774_745_999.250), Date(timeIntervalSince1970: 4_102_444_800), // 2100-01-01
            Date(timeIntervalSince1970: -2_208_988_800.5), // 1900-01-01 minus half a second
        ]
        for _ in 0..<5_000 {
            // Whole milliseconds, as every timestamp this project writes after a round trip.
            let ms = Int64.random(in: -2_208_988_800_000...4_102_444_800_000, using: &generator)
            dates.append(Date(timeIntervalSince1970: Double(ms) / 1000))
        }
        var oneMillisecondApart = 0
        for date in dates {
            let fast = Timestamp.format(date), foundation = Timestamp.formatWithFoundation(date)
            if fast == foundation { continue }
            // Foundation truncates the binary fraction, so a whole millisecond such as .487 may
            // come out as .486 (and not read back as the same date); the direct writer does not.
            let a = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(fast)
            let b = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(foundation)
            #expect(a != nil && b != nil && abs(a!.timeIntervalSince(b!) - 0.001) < 0.0001, "\(date.timeIntervalSince1970): \(fast) vs \(foundation)")
            oneMillisecondApart += 1
        }
        #expect(oneMillisecondApart < dates.count)
    }

    @Test func formatReadsBackToTheSameText() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let ms = Int64.random(in: -2_208_988_800_000...4_102_444_800_000, using: &generator)
            let text = Timestamp.format(Date(timeIntervalSince1970: Double(ms) / 1000))
            #expect(Timestamp.format(try #require(Timestamp.parse(text))) == text)
        }
    }

    @Test func parseRoundTripsAndRefusesInvalidDates() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let ms = Int64.random(in: -2_208_988_800_000...4_102_444_800_000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let text = Timestamp.format(date)
            let parsed = try #require(Timestamp.parse(text))
            #expect(abs(parsed.timeIntervalSince(date)) < 0.0005, "\(text)")
            let reference = try Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
            #expect(abs(parsed.timeIntervalSince(reference)) < 0.0005, "\(text)")
        }
        #expect(Timestamp.parse("2026-11-24T06:30:00Z") == Date(timeIntervalSince1970: 1_795_501_800))
        for invalid in [
            "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-04-31T00:00:00.000Z", "2026-11-24T24:00:00Z",
            "2026-11-24T23:60:00Z", "2026-11-24T23:59:60.000Z", "20a6-11-24T00:00:00Z", "2026-11-24T00:00:00.0a0Z",
        ] {
            // The fast path refuses these and leaves them to Foundation, which decides as before.
            let foundation =
                (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(invalid)) ?? (try? Date.ISO8601FormatStyle().parse(invalid))
            #expect(Timestamp.parse(invalid) == foundation, "\(invalid)")
        }
        // Other forms still go through Foundation: offsets and London local times.
        #expect(Timestamp.parse("2026-07-01T09:00:00+01:00") == Date(timeIntervalSince1970: 1_782_892_800))
        #expect(Timestamp.parse("2026-07-01T09:00:00") == Date(timeIntervalSince1970: 1_782_892_800))
    }
}
