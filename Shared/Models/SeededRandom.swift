/// A small deterministic generator (SplitMix64): the same seed makes the same demo world, and
/// the same random test values, on every machine and Swift version, which
/// `SystemRandomNumberGenerator` would not.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }

    public mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }

    /// Poisson-distributed count (Knuth), for small means.
    public mutating func poisson(_ mean: Double) -> Int {
        let limit = exp(-mean)
        var product = Double.random(in: 0..<1, using: &self)
        var count = 0
        while product > limit {
            product *= Double.random(in: 0..<1, using: &self)
            count += 1
        }
        return count
    }
}

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
