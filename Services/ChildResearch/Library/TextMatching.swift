import EncompassModels
import Foundation

/// Text normalisation and similarity used by the person matcher: names, UK given-name
/// nicknames, Soundex, Jaro-Winkler, dates of birth and UK addresses.
public enum NameText {
    /// Lower case ASCII letters, digits, spaces and hyphens; accents folded, punctuation dropped
    /// (`O'Brien` -> `obrien`, `Zoë` -> `zoe`), runs of spaces collapsed.
    public static func normalise(_ text: String) -> String {
        var source = text
        if !text.utf8.allSatisfy({ $0 < 128 }) {
            source = text.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil)
        }
        let capacity = source.utf8.count
        if capacity == 0 { return "" }
        // Written straight into the new string's storage (no intermediate array); the result
        // is never longer than the source.
        return String(unsafeUninitializedCapacity: capacity) { out in
            var count = 0
            var lastSpace = true
            for byte in source.utf8 {
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    out[count] = byte + 32
                    count += 1
                    lastSpace = false
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    out[count] = byte
                    count += 1
                    lastSpace = false
                case UInt8(ascii: "-"):
                    if !lastSpace {
                        out[count] = byte
                        count += 1
                    }
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: ","), UInt8(ascii: "/"), UInt8(ascii: "."):
                    if !lastSpace {
                        out[count] = UInt8(ascii: " ")
                        count += 1
                        lastSpace = true
                    }
                default:
                    continue // apostrophes and other punctuation vanish
                }
            }
            while count > 0, out[count - 1] == UInt8(ascii: " ") || out[count - 1] == UInt8(ascii: "-") { count -= 1 }
            return count
        }
    }

    /// The parts of a (possibly hyphenated or double-barrelled) name: `smith-jones` -> `[smith, jones]`.
    public static func parts(_ normalised: String) -> [String] {
        normalised.split(whereSeparator: { $0 == " " || $0 == "-" }).map(String.init)
    }

    /// American Soundex (letter + 3 digits), `""` for a name without letters.
    public static func soundex(_ normalised: String) -> String {
        let codes: [UInt8] = Array("01230120022455012623010202".utf8)
        var result: [UInt8] = []
        var last: UInt8 = 0
        for byte in normalised.utf8 {
            guard byte >= 97, byte <= 122 else { continue }
            let code = codes[Int(byte - 97)]
            if result.isEmpty {
                result.append(byte - 32)
                last = code
                continue
            }
            if code != UInt8(ascii: "0"), code != last { result.append(code) }
            if byte != UInt8(ascii: "h"), byte != UInt8(ascii: "w") { last = code }
            if result.count == 4 { break }
        }
        if result.isEmpty { return "" }
        while result.count < 4 { result.append(UInt8(ascii: "0")) }
        return String(decoding: result, as: UTF8.self)
    }

    /// Jaro-Winkler similarity in 0...1 (prefix scale 0.1, up to 4 characters).
    public static func jaroWinkler(_ a: String, _ b: String) -> Double {
        jaroWinkler(Array(a.utf8), Array(b.utf8))
    }

    public static func jaroWinkler(_ s: [UInt8], _ t: [UInt8]) -> Double {
        TextSimilarity.jaroWinkler(s, t)
    }
}

/// UK given-name nicknames and short forms (Bob/Robert, Liz/Elizabeth, Jack/John, Kate/Catherine…).
public enum Nicknames {
    /// Short form -> the full names it stands for.
    static let table: [String: [String]] = [
        "bob": ["robert"], "bobby": ["robert"], "rob": ["robert"], "robbie": ["robert"], "bert": ["albert", "herbert", "robert"],
        "liz": ["elizabeth"], "lizzie": ["elizabeth"], "lizzy": ["elizabeth"], "beth": ["elizabeth", "bethany"], "betty": ["elizabeth"],
        "bess": ["elizabeth"], "eliza": ["elizabeth"], "libby": ["elizabeth"], "elsie": ["elizabeth"],
        "jack": ["john"], "johnny": ["john", "jonathan"], "jon": ["john", "jonathan"], "jonny": ["john", "jonathan"],
        "kate": ["catherine", "katherine", "kathryn"], "katie": ["catherine", "katherine", "kathryn"],
        "kathy": ["catherine", "katherine", "kathryn"],
        "cathy": ["catherine"], "kat": ["catherine", "katherine"], "kitty": ["catherine", "katherine"], "katy": ["catherine", "katherine"],
        "bill": ["william"], "billy": ["william"], "will": ["william"], "willie": ["william"], "liam": ["william"],
        "jim": ["james"], "jimmy": ["james"], "jamie": ["james"], "jem": ["james"],
        "mike": ["michael"], "mikey": ["michael"], "mick": ["michael"], "micky": ["michael"], "mickey": ["michael"],
        "dave": ["david"], "davey": ["david"], "davy": ["david"], "tom": ["thomas"], "tommy": ["thomas"],
        "dan": ["daniel"], "danny": ["daniel"], "sam": ["samuel", "samantha"], "sammy": ["samuel", "samantha"],
        "alex": ["alexander", "alexandra"], "sandy": ["alexander", "alexandra", "sandra"], "lexi": ["alexandra", "alexis"],
        "chris": ["christopher", "christine", "christina"], "kit": ["christopher"], "nick": ["nicholas"], "nicky": ["nicholas", "nicola"],
        "steve": ["stephen", "steven"], "stevie": ["stephen", "steven"], "tony": ["anthony"], "ant": ["anthony"],
        "andy": ["andrew"], "drew": ["andrew"], "pete": ["peter"], "joe": ["joseph"], "joey": ["joseph"],
        "jo": ["joanne", "josephine", "joanna"], "josie": ["josephine"], "ben": ["benjamin"], "benny": ["benjamin"],
        "charlie": ["charles", "charlotte"], "chas": ["charles"], "chuck": ["charles"], "lottie": ["charlotte"],
        "harry": ["henry", "harold", "harrison"], "hal": ["henry", "harold"], "ted": ["edward"], "ed": ["edward", "edmund"],
        "eddie": ["edward"], "ned": ["edward"], "fred": ["frederick", "alfred"], "freddie": ["frederick", "alfred"],
        "freddy": ["frederick", "alfred"],
        "matt": ["matthew"], "matty": ["matthew"], "nat": ["nathan", "natalie", "nathaniel"], "nate": ["nathan", "nathaniel"],
        "jen": ["jennifer"], "jenny": ["jennifer"], "jennie": ["jennifer"], "sue": ["susan", "suzanne"], "susie": ["susan", "suzanne"],
        "maggie": ["margaret"], "meg": ["margaret", "megan"], "peggy": ["margaret"], "madge": ["margaret"],
        "becky": ["rebecca"], "becca": ["rebecca"], "vicky": ["victoria"], "vikki": ["victoria"], "tori": ["victoria"],
        "debbie": ["deborah"], "debs": ["deborah"], "mandy": ["amanda"], "pat": ["patricia", "patrick"], "patty": ["patricia"],
        "paddy": ["patrick"], "tash": ["natasha"], "tasha": ["natasha"], "abi": ["abigail"], "abby": ["abigail"], "abbie": ["abigail"],
        "ellie": ["eleanor", "ellen", "elizabeth", "elena"], "nell": ["eleanor", "helen", "ellen"], "nellie": ["eleanor", "helen", "ellen"],
        "millie": ["amelia", "emily", "mildred", "camilla"], "milly": ["amelia", "emily", "mildred", "camilla"],
        "alfie": ["alfred"], "archie": ["archibald"], "ollie": ["oliver", "olivia"], "olly": ["oliver"], "liv": ["olivia"],
        "izzy": ["isabella", "isabel", "isobel"], "bella": ["isabella", "annabella"], "issy": ["isabella", "isabel", "isobel"],
        "josh": ["joshua"], "zac": ["zachary"], "zack": ["zachary"], "rich": ["richard"], "rick": ["richard"], "ricky": ["richard"],
        "dick": ["richard"], "richie": ["richard"], "gerry": ["gerald", "geraldine"], "les": ["leslie", "lesley"],
        "di": ["diana", "diane"], "terry": ["terence", "teresa"], "tess": ["teresa", "tessa"], "tilly": ["matilda"],
        "jess": ["jessica"], "jessie": ["jessica"], "lou": ["louise", "louis", "louisa"], "fran": ["frances", "francesca"],
        "frankie": ["francis", "frances", "frank"], "frank": ["francis"], "gabby": ["gabrielle", "gabriella"], "kim": ["kimberley", "kimberly"],
        "maddie": ["madeleine", "madison"], "maddy": ["madeleine", "madison"], "rosie": ["rosemary", "rose"], "sophie": ["sophia"],
        "theo": ["theodore"], "reg": ["reginald"], "ron": ["ronald"], "ronnie": ["ronald", "veronica"], "don": ["donald"], "donny": ["donald"],
        "ken": ["kenneth"], "kenny": ["kenneth"], "len": ["leonard"], "lenny": ["leonard"], "leo": ["leonard", "leon"],
        "greg": ["gregory"], "phil": ["philip", "phillip"], "pip": ["philippa", "philip"], "tim": ["timothy"], "timmy": ["timothy"],
        "vince": ["vincent"], "vinny": ["vincent"], "al": ["alan", "albert", "alfred", "alistair"], "ally": ["alison", "alexandra", "alistair"],
        "sid": ["sidney"], "stan": ["stanley"], "nicola": ["nicole"], "nikki": ["nicola", "nicole"], "trish": ["patricia"],
        "cassie": ["cassandra"], "ange": ["angela"], "angie": ["angela"], "bex": ["rebecca"], "ruby": ["ruby"], "evie": ["eve", "evelyn"],
        "gemma": ["gemma"], "jackie": ["jacqueline", "jack"], "jac": ["jacqueline"], "jake": ["jacob"],
        "kris": ["kristopher", "christopher", "kristina"],
        "lucy": ["lucinda", "lucille"], "mo": ["mohammed", "maureen", "morris"], "ray": ["raymond"], "russ": ["russell"],
        "shaz": ["sharon"], "stu": ["stuart", "stewart"], "wes": ["wesley"], "xander": ["alexander"], "zoe": ["zoe"],
        "mohammad": ["mohammed"], "muhammad": ["mohammed"], "mohamed": ["mohammed"],
    ]

    /// The name and the full names it may stand for.
    public static func forms(of name: String) -> [String] {
        guard let full = table[name] else { return [name] }
        return [name] + full
    }

    /// Whether two normalised given names can name the same person by nickname.
    public static func equivalent(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        let fa = forms(of: a), fb = forms(of: b)
        return fa.contains { fb.contains($0) }
    }

    /// One canonical form (the first full name, else the name itself), for stable ids and blocking.
    public static func canonical(_ name: String) -> String {
        table[name]?.first ?? name
    }
}

/// A date of birth, possibly partial (year only, or year and month) as records hold them.
public struct PartialDate: Sendable, Hashable, CustomStringConvertible {
    public var year: Int?
    public var month: Int?
    public var day: Int?

    public init(year: Int?, month: Int? = nil, day: Int? = nil) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// `YYYY-MM-DD`, `YYYYMMDD`, `YYYY-MM`, `YYYY`, or `DD/MM/YYYY`; nil for anything else or empty.
    public init?(_ text: String?) {
        guard let text, !text.isEmpty else { return nil }
        // Fast path: YYYY-MM-DD.
        let bytes = Array(text.utf8)
        if bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") {
            func number(_ range: Range<Int>) -> Int? {
                var value = 0
                for i in range {
                    guard bytes[i] >= 48, bytes[i] <= 57 else { return nil }
                    value = value * 10 + Int(bytes[i] - 48)
                }
                return value
            }
            if let y = number(0..<4), let m = number(5..<7), let d = number(8..<10), y >= 1000 {
                self.init(year: y, month: m, day: d)
                return
            }
        }
        let raw = text.trimmingCharacters(in: .whitespaces)
        guard !raw.isEmpty else { return nil }
        let digits = raw.filter(\.isNumber)
        if raw.contains("/") {
            let parts = raw.split(separator: "/").compactMap { Int($0) }
            guard parts.count == 3 else { return nil }
            self.init(year: parts[2], month: parts[1], day: parts[0])
        } else if raw.contains("-") {
            let parts = raw.split(separator: "-").compactMap { Int($0) }
            guard !parts.isEmpty else { return nil }
            self.init(year: parts[0], month: parts.count > 1 ? parts[1] : nil, day: parts.count > 2 ? parts[2] : nil)
        } else if digits.count == 8, digits.count == raw.count {
            let d = Array(digits)
            self.init(year: Int(String(d[0..<4])), month: Int(String(d[4..<6])), day: Int(String(d[6..<8])))
        } else if digits.count == 4, digits.count == raw.count {
            self.init(year: Int(digits))
        } else {
            return nil
        }
        if let year, year < 1000 || year > 2999 { return nil }
    }

    public var isComplete: Bool { year != nil && month != nil && day != nil }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    public var description: String {
        var text = year.map { Self.pad($0, 4) } ?? "????"
        if let month { text += "-" + Self.pad(month, 2) }
        if let day { text += "-" + Self.pad(day, 2) }
        return text
    }

    var digits: [UInt8]? {
        guard let year, let month, let day else { return nil }
        return Array((Self.pad(year, 4) + Self.pad(month, 2) + Self.pad(day, 2)).utf8)
    }

    /// How the two dates agree: 1 equal; 0.85 two digits transposed or day and month swapped;
    /// 0.75 one digit wrong; 0.6 equal where both are known but one is partial; 0.4 two digits
    /// wrong; 0 otherwise. The reason names the kind of agreement.
    public static func compare(_ a: PartialDate, _ b: PartialDate) -> (score: Double, reason: String) {
        if let da = a.digits, let db = b.digits {
            if da == db { return (1, "same date of birth") }
            if a.year == b.year, a.month == b.day, a.day == b.month { return (0.85, "date of birth with day and month swapped") }
            var differ: [Int] = []
            for i in 0..<8 where da[i] != db[i] { differ.append(i) }
            if differ.count == 2, differ[1] == differ[0] + 1, da[differ[0]] == db[differ[1]], da[differ[1]] == db[differ[0]] {
                return (0.85, "date of birth with two digits transposed")
            }
            if differ.count == 1 { return (0.75, "date of birth one digit apart") }
            if differ.count == 2 { return (0.4, "date of birth two digits apart") }
            if a.year == b.year { return (0.2, "same birth year only") }
            return (0, "different date of birth")
        }
        guard let ya = a.year, let yb = b.year, ya == yb else { return (0, "different birth year") }
        if let ma = a.month, let mb = b.month, ma != mb { return (0.2, "same birth year, different month") }
        return (0.6, "same birth year (partial date of birth)")
    }
}

/// UK address normalisation: flat numbers, street abbreviations and postcodes.
public enum AddressText {
    static let abbreviations: [String: String] = [
        "st": "street", "rd": "road", "ave": "avenue", "av": "avenue", "ln": "lane", "cl": "close", "cres": "crescent",
        "cresc": "crescent", "dr": "drive", "ct": "court", "crt": "court", "gdns": "gardens", "gdn": "gardens", "pl": "place",
        "sq": "square", "tce": "terrace", "terr": "terrace", "pde": "parade", "wy": "way", "gr": "grove", "gro": "grove",
        "hl": "hill", "pk": "park", "mt": "mount", "cir": "circle", "cv": "cove", "pkwy": "parkway", "bvd": "boulevard",
        "blvd": "boulevard", "hwy": "highway", "mws": "mews", "wk": "walk", "grn": "green", "est": "estate",
    ]
    static let flatWords: Set<String> = ["flat", "apartment", "apt", "unit", "room", "maisonette"]

    /// Upper-cased postcode without spaces (`rg17ll` -> `RG17LL`), for keys; empty when none.
    public static func postcodeKey(_ text: String?) -> String {
        guard let text else { return "" }
        if text.utf8.allSatisfy({ $0 < 128 }) {
            // ASCII (every real postcode): letters upper-cased, digits kept, the rest dropped.
            let count = text.utf8.count
            if count == 0 { return "" }
            return String(unsafeUninitializedCapacity: count) { out in
                var n = 0
                for byte in text.utf8 {
                    switch byte {
                    case UInt8(ascii: "a")...UInt8(ascii: "z"):
                        out[n] = byte - 32
                        n += 1
                    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                        out[n] = byte
                        n += 1
                    default: continue
                    }
                }
                return n
            }
        }
        return String(text.uppercased().filter { $0.isLetter || $0.isNumber })
    }

    /// The sector (outward code + first inward digit), e.g. `RG1 7`.
    public static func postcodeSector(_ key: String) -> String {
        key.count >= 5 ? String(key.dropLast(2)) : key
    }

    /// A parsed first address line: flat, house number and street words.
    public struct Line: Sendable, Hashable {
        public var flat: String
        public var number: String
        public var street: String { didSet { streetWords = Self.words(street) } }
        /// The street's words as bytes: the learned model compares streets word by word for
        /// every pair, and splitting the text each time was a fifth of learning's time.
        public private(set) var streetWords: [[UInt8]]

        public init(flat: String, number: String, street: String) {
            self.flat = flat
            self.number = number
            self.street = street
            self.streetWords = Self.words(street)
        }

        public var key: String { "\(flat)|\(number)|\(street)" }

        static func words(_ text: String) -> [[UInt8]] { text.utf8.split(separator: 32).map(Array.init) }
    }

    /// Parses `Flat 2, 10 High St`, `2/10 High Street`, `10a High Street` and `2 10 High Street`
    /// (flat then house number) into one form; named houses keep their name as the street part.
    public static func parse(_ lines: [String]) -> Line {
        var text = lines.joined(separator: ", ")
        // normalise lower-cases ASCII itself; other text is lower-cased first, as it always was.
        if !text.utf8.allSatisfy({ $0 < 128 }) { text = text.lowercased() }
        if text.utf8.contains(UInt8(ascii: "/")) { text = text.replacingOccurrences(of: "/", with: " slash ") }
        var tokens = NameText.normalise(text).split(separator: " ").map(String.init)
        var flat = "", number = ""
        var street: [String] = []
        var i = 0
        // "slash" marks flat/number.
        if let slash = tokens.firstIndex(of: "slash"), slash > 0, slash + 1 < tokens.count {
            flat = tokens[slash - 1]
            tokens.remove(at: slash)
            tokens.remove(at: slash - 1)
            number = tokens.indices.contains(slash - 1) ? tokens[slash - 1] : ""
            if !number.isEmpty { tokens.remove(at: slash - 1) }
        }
        while i < tokens.count {
            let token = tokens[i]
            if flatWords.contains(token), i + 1 < tokens.count, flat.isEmpty {
                flat = tokens[i + 1]
                i += 2
                continue
            }
            if startsWithDigit(token), number.isEmpty {
                // "2 10 high street": a flat number before the house number.
                if i + 1 < tokens.count, startsWithDigit(tokens[i + 1]), flat.isEmpty {
                    flat = token
                    number = tokens[i + 1]
                    i += 2
                    continue
                }
                number = token
                i += 1
                continue
            }
            if street.count < 3 {
                street.append(abbreviations[token] ?? token)
            }
            i += 1
        }
        return Line(flat: flat, number: number, street: street.joined(separator: " "))
    }

    /// Tokens are normalised ASCII, so a digit is 0-9.
    @inline(__always) static func startsWithDigit(_ token: String) -> Bool {
        guard let first = token.utf8.first else { return false }
        return first >= 48 && first <= 57
    }

    /// A key for "the same dwelling": flat, number, first street word and the postcode.
    public static func dwellingKey(_ line: Line, postcode: String) -> String {
        let firstWord = line.street.split(separator: " ").first.map(String.init) ?? ""
        return "\(postcode)|\(line.flat)|\(line.number)|\(firstWord)"
    }
}

/// Builds a blocking-key hash byte by byte, without the key string: the same FNV-1a and
/// finaliser as `HistoryIndex.keyHash(String)`, so `KeyHasher` fed the bytes of a key gives
/// the hash of that key's string (the index format does not change).
struct KeyHasher {
    var state: UInt64 = 0xcbf2_9ce4_8422_2325

    @inline(__always) mutating func byte(_ byte: UInt8) { state = (state ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }

    @inline(__always) mutating func text(_ text: String) {
        var text = text
        text.withUTF8 { for b in $0 { byte(b) } }
    }

    /// A packed Soundex code (`NameText.soundexCode`): its 4 characters, none when 0.
    @inline(__always) mutating func soundex(_ code: UInt32) {
        guard code != 0 else { return }
        byte(UInt8(truncatingIfNeeded: code >> 24))
        byte(UInt8(truncatingIfNeeded: code >> 16))
        byte(UInt8(truncatingIfNeeded: code >> 8))
        byte(UInt8(truncatingIfNeeded: code))
    }

    /// `value` in decimal, zero-padded to `width` digits (`String(value)` when width is 0),
    /// exactly as `PartialDate.pad` writes it.
    mutating func decimal(_ value: Int, width: Int = 0) {
        guard value >= 0 else {
            text(width == 0 ? String(value) : PartialDate.pad(value, width))
            return
        }
        var divisor = 1, digits = 1
        while divisor <= value / 10 {
            divisor *= 10
            digits += 1
        }
        if width > digits { for _ in digits..<width { byte(48) } }
        while divisor > 0 {
            byte(UInt8(48 + (value / divisor) % 10))
            divisor /= 10
        }
    }

    var value: Int64 {
        var h = state
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return Int64(bitPattern: h)
    }
}

extension NameText {
    /// `soundex(_:)` packed into 4 bytes (first character in the high byte), 0 for `""`.
    static func soundexCode(_ normalised: String) -> UInt32 {
        var normalised = normalised
        return normalised.withUTF8 { bytes -> UInt32 in
            let codes: StaticString = "01230120022455012623010202"
            var result: UInt32 = 0
            var count = 0
            var last: UInt8 = 0
            for byte in bytes {
                guard byte >= 97, byte <= 122 else { continue }
                let code = codes.utf8Start[Int(byte - 97)]
                if count == 0 {
                    result = UInt32(byte - 32)
                    count = 1
                    last = code
                    continue
                }
                if code != UInt8(ascii: "0"), code != last {
                    result = result << 8 | UInt32(code)
                    count += 1
                }
                if byte != UInt8(ascii: "h"), byte != UInt8(ascii: "w") { last = code }
                if count == 4 { break }
            }
            if count == 0 { return 0 }
            while count < 4 {
                result = result << 8 | UInt32(UInt8(ascii: "0"))
                count += 1
            }
            return result
        }
    }
}
