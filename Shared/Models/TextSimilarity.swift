/// String similarity shared by the services that match what people typed: child research
/// (names, streets) and school resolution (words of a school's name).
public enum TextSimilarity {
    /// Jaro-Winkler similarity in 0...1 (prefix scale 0.1, up to 4 elements), over bytes,
    /// unicode scalars or any comparable unit. Half the out-of-order matches, rounded down,
    /// count as transpositions. Inlinable, so each caller gets a version specialised for its
    /// element type (child research calls it for every candidate pair).
    @inlinable
    public static func jaroWinkler<Element: Equatable>(_ s: [Element], _ t: [Element]) -> Double {
        s.withUnsafeBufferPointer { s in t.withUnsafeBufferPointer { t in jaroWinkler(s, t) } }
    }

    /// `jaroWinkler` over buffers. Which elements are matched is kept in two 64-bit masks when
    /// both sides have at most 64 elements (every name and word), so a call allocates nothing;
    /// longer text takes the same steps with flags in a temporary buffer.
    @inlinable
    public static func jaroWinkler<Element: Equatable>(_ s: UnsafeBufferPointer<Element>, _ t: UnsafeBufferPointer<Element>) -> Double {
        let sCount = s.count, tCount = t.count
        if sCount == 0 || tCount == 0 { return 0 }
        if sCount == tCount, s.elementsEqual(t) { return 1 }
        let window = max(0, max(sCount, tCount) / 2 - 1)
        var matches = 0, transpositions = 0
        if sCount <= 64, tCount <= 64 {
            var sMatched: UInt64 = 0, tMatched: UInt64 = 0
            for i in 0..<sCount {
                let lo = max(0, i - window), hi = min(tCount - 1, i + window)
                if lo > hi { continue }
                let element = s[i]
                for j in lo...hi where tMatched & (1 << UInt64(j)) == 0 && element == t[j] {
                    sMatched |= 1 << UInt64(i)
                    tMatched |= 1 << UInt64(j)
                    matches += 1
                    break
                }
            }
            if matches == 0 { return 0 }
            // The matched elements of each side in order: count the positions where they differ.
            var sRest = sMatched, tRest = tMatched
            while sRest != 0 {
                let i = sRest.trailingZeroBitCount, k = tRest.trailingZeroBitCount
                if s[i] != t[k] { transpositions += 1 }
                sRest &= sRest - 1
                tRest &= tRest - 1
            }
        } else {
            let counts = withUnsafeTemporaryAllocation(of: Bool.self, capacity: sCount + tCount) { flags -> (Int, Int) in
                // flags[0..<sCount]: s's elements matched; flags[sCount...]: t's.
                flags.initialize(repeating: false)
                var matches = 0
                for i in 0..<sCount {
                    let lo = max(0, i - window), hi = min(tCount - 1, i + window)
                    if lo > hi { continue }
                    for j in lo...hi where !flags[sCount + j] && s[i] == t[j] {
                        flags[i] = true
                        flags[sCount + j] = true
                        matches += 1
                        break
                    }
                }
                var transpositions = 0
                var k = 0
                for i in 0..<sCount where flags[i] {
                    while !flags[sCount + k] { k += 1 }
                    if s[i] != t[k] { transpositions += 1 }
                    k += 1
                }
                return (matches, transpositions)
            }
            (matches, transpositions) = counts
            if matches == 0 { return 0 }
        }
        let m = Double(matches)
        let jaro = (m / Double(sCount) + m / Double(tCount) + (m - Double(transpositions / 2)) / m) / 3
        var prefix = 0
        while prefix < min(4, sCount, tCount), s[prefix] == t[prefix] { prefix += 1 }
        return jaro + Double(prefix) * 0.1 * (1 - jaro)
    }
}
