#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A number in fixed-point notation exactly as `String(format: "%.Nf")` (or `"%+.Nf"`) writes
/// it, through the C library's formatter (which Foundation's uses for a double) without
/// Foundation's format-string machinery: explanations are built for every link research makes
/// and every pair the hand-weighted matcher compares, where `String(format:)` took a fifth of
/// research's time with that matcher (perf, docs/BENCHMARKS.md).
enum FixedText {
    /// `value` with `digits` decimals (0...9); `sign`: a `+` before a positive number, as `%+.Nf`.
    static func text(_ value: Double, digits: Int, sign: Bool = false) -> String {
        precondition((0...9).contains(digits), "FixedText takes 0 to 9 decimals")
        return formats[sign ? 10 + digits : digits].withUnsafeBufferPointer { format in
            // Room for any double: up to 309 integer digits, the sign, the point and 9 decimals.
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 330) { buffer in
                let written = withVaList([value]) { vsnprintf(buffer.baseAddress!, buffer.count, format.baseAddress!, $0) }
                let count = Int(max(0, min(written, Int32(buffer.count - 1))))
                return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: count), as: UTF8.self)
            }
        }
    }

    /// `%.0f`…`%.9f`, then `%+.0f`…`%+.9f`, as C strings.
    private static let formats: [[CChar]] = (0..<20).map { i in
        Array((i < 10 ? "%.\(i)f" : "%+.\(i - 10)f").utf8CString)
    }
}
