/// String similarity shared by the services that match what people typed: child research
/// (names, streets) and school resolution (words of a school's name).
public enum TextSimilarity {
    /// Jaro-Winkler similarity in 0...1 (prefix scale 0.1, up to 4 elements), over bytes,
    /// unicode scalars or any comparable unit. Half the out-of-order matches, rounded down,
    /// count as transpositions. Inlinable, so each caller gets a version specialised for its
    /// element type (child research calls it for every candidate pair).
    @inlinable
    public static func jaroWinkler<Element: Equatable>(_ s: [Element], _ t: [Element]) -> Double {
        if s.isEmpty || t.isEmpty { return 0 }
        if s == t { return 1 }
        let window = max(0, max(s.count, t.count) / 2 - 1)
        var sMatched = [Bool](repeating: false, count: s.count)
        var tMatched = [Bool](repeating: false, count: t.count)
        var matches = 0
        for i in 0..<s.count {
            let lo = max(0, i - window), hi = min(t.count - 1, i + window)
            if lo > hi { continue }
            for j in lo...hi where !tMatched[j] && s[i] == t[j] {
                sMatched[i] = true
                tMatched[j] = true
                matches += 1
                break
            }
        }
        if matches == 0 { return 0 }
        var transpositions = 0
        var k = 0
        for i in 0..<s.count where sMatched[i] {
            while !tMatched[k] { k += 1 }
            if s[i] != t[k] { transpositions += 1 }
            k += 1
        }
        let m = Double(matches)
        let jaro = (m / Double(s.count) + m / Double(t.count) + (m - Double(transpositions / 2)) / m) / 3
        var prefix = 0
        while prefix < min(4, s.count, t.count), s[prefix] == t[prefix] { prefix += 1 }
        return jaro + Double(prefix) * 0.1 * (1 - jaro)
    }
}
