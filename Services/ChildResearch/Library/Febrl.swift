import Foundation

/// A FEBRL-format person file (`rec_id, given_name, surname, street_number, address_1,
/// address_2, suburb, postcode, state, date_of_birth, soc_sec_id`) with its ground truth:
/// records whose `rec_id` (`rec-<N>-org`, `rec-<N>-dup-<k>`) carry the same N are one person.
public struct FebrlDataset: Sendable {
    public struct Record: Sendable {
        public var recId: String
        public var entity: String
        public var person: PersonFeatures
        /// The raw fields, for the exact-match baseline.
        public var exactKey: String
    }

    public var records: [Record]

    public struct FormatError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func load(path: String) throws -> FebrlDataset {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(description: "cannot read \(path); give the path of a FEBRL CSV file")
        }
        return try parse(String(decoding: data, as: UTF8.self), name: path)
    }

    public static func parse(_ text: String, name: String = "input") throws -> FebrlDataset {
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let header = lines.first else { throw FormatError(description: "\(name) is empty") }
        let columns = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        func index(_ column: String) throws -> Int {
            guard let i = columns.firstIndex(of: column) else {
                throw FormatError(
                    description:
                        "\(name): no \(column) column in the header; expected rec_id, given_name, surname, street_number, address_1, address_2, suburb, postcode, state, date_of_birth"
                )
            }
            return i
        }
        let rec = try index("rec_id"), given = try index("given_name"), surname = try index("surname")
        let number = try index("street_number"), address1 = try index("address_1"), address2 = try index("address_2")
        let suburb = try index("suburb"), postcode = try index("postcode"), dob = try index("date_of_birth")
        lines.removeFirst()
        var records: [Record] = []
        records.reserveCapacity(lines.count)
        for (n, line) in lines.enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= columns.count else {
                throw FormatError(description: "\(name) line \(n + 2): \(fields.count) fields, expected \(columns.count)")
            }
            let recId = fields[rec]
            let parts = recId.split(separator: "-")
            guard parts.count >= 3, parts[0] == "rec" else {
                throw FormatError(description: "\(name) line \(n + 2): rec_id '\(recId)' is not rec-<N>-org or rec-<N>-dup-<k>")
            }
            let street = [fields[number], fields[address1]].filter { !$0.isEmpty }.joined(separator: " ")
            let person = PersonFeatures(
                givenName: fields[given], familyName: fields[surname], dateOfBirth: fields[dob],
                addressLines: [street, fields[address2]].filter { !$0.isEmpty }, town: fields[suburb], postcode: fields[postcode])
            let exact = [fields[given], fields[surname], fields[dob]].joined(separator: "|")
            records.append(Record(recId: recId, entity: String(parts[1]), person: person, exactKey: exact))
        }
        return FebrlDataset(records: records)
    }

    /// Precision, recall and F1 of a linkage against the ground truth, with its speed.
    public struct Quality: Sendable, CustomStringConvertible {
        public var truePositives: Int
        public var falsePositives: Int
        public var falseNegatives: Int
        public var candidatePairs: Int
        public var seconds: Double
        public var records: Int

        public var precision: Double { truePositives + falsePositives == 0 ? 0 : Double(truePositives) / Double(truePositives + falsePositives) }
        public var recall: Double { truePositives + falseNegatives == 0 ? 0 : Double(truePositives) / Double(truePositives + falseNegatives) }
        public var f1: Double { precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall) }
        public var recordsPerSecond: Double { seconds > 0 ? Double(records) / seconds : 0 }

        public var description: String {
            String(
                format: "precision %.4f  recall %.4f  F1 %.4f  (tp %d fp %d fn %d, %d candidate pairs)  %.0f records/s",
                precision, recall, f1, truePositives, falsePositives, falseNegatives, candidatePairs, recordsPerSecond)
        }
    }

    /// The true duplicate pairs (i < j).
    public var truePairs: Set<Pair> {
        var byEntity: [String: [Int]] = [:]
        for (i, r) in records.enumerated() { byEntity[r.entity, default: []].append(i) }
        var pairs = Set<Pair>()
        for members in byEntity.values where members.count > 1 {
            for x in 0..<members.count { for y in (x + 1)..<members.count { pairs.insert(Pair(members[x], members[y])) } }
        }
        return pairs
    }

    public struct Pair: Hashable, Sendable {
        public let a: Int32, b: Int32
        public init(_ i: Int, _ j: Int) {
            a = Int32(min(i, j))
            b = Int32(max(i, j))
        }
    }

    /// Links with the person matcher: blocking keys, then pairwise scores above the threshold.
    public func linkWithMatcher(_ matcher: PersonMatcher) -> Quality {
        let start = DispatchTime.now().uptimeNanoseconds
        var blocks: [String: [Int32]] = [:]
        for (i, record) in records.enumerated() {
            for key in record.person.blockingKeys { blocks[key, default: []].append(Int32(i)) }
        }
        var candidates = Set<Pair>()
        for members in blocks.values where members.count > 1 {
            for x in 0..<members.count { for y in (x + 1)..<members.count { candidates.insert(Pair(Int(members[x]), Int(members[y]))) } }
        }
        var linked = Set<Pair>()
        for pair in candidates where matcher.matches(records[Int(pair.a)].person, records[Int(pair.b)].person) {
            linked.insert(pair)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return quality(linked, candidates: candidates.count, seconds: seconds)
    }

    /// Baseline: records link when given name, surname and date of birth are exactly equal.
    public func linkExact() -> Quality {
        let start = DispatchTime.now().uptimeNanoseconds
        var groups: [String: [Int]] = [:]
        for (i, record) in records.enumerated() { groups[record.exactKey, default: []].append(i) }
        var linked = Set<Pair>()
        for members in groups.values where members.count > 1 {
            for x in 0..<members.count { for y in (x + 1)..<members.count { linked.insert(Pair(members[x], members[y])) } }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return quality(linked, candidates: linked.count, seconds: seconds)
    }

    /// The quality of links given as pairs of `rec_id`s (another tool's output); an unknown
    /// `rec_id` is an error naming it.
    public func quality(ofLinkedRecIds pairs: [(String, String)], seconds: Double) throws -> Quality {
        var index: [String: Int] = [:]
        for (i, r) in records.enumerated() { index[r.recId] = i }
        var linked = Set<Pair>()
        for (a, b) in pairs {
            guard let i = index[a], let j = index[b] else { throw FormatError(description: "linked pair \(a),\(b) names a rec_id not in the file") }
            if i != j { linked.insert(Pair(i, j)) }
        }
        return quality(linked, candidates: linked.count, seconds: seconds)
    }

    func quality(_ linked: Set<Pair>, candidates: Int, seconds: Double) -> Quality {
        let truth = truePairs
        let tp = linked.intersection(truth).count
        return Quality(
            truePositives: tp, falsePositives: linked.count - tp, falseNegatives: truth.count - tp,
            candidatePairs: candidates, seconds: seconds, records: records.count)
    }
}

extension FebrlDataset {
    public var people: [PersonFeatures] { records.map(\.person) }

    /// Learns a Fellegi-Sunter model from this file's records (no labels read).
    public func trainModel(options: MatchModelTrainer.Options = .init()) -> MatchModel {
        MatchModelTrainer.train(records: people, options: options)
    }

    /// Links with a Fellegi-Sunter model: the trainer's blocking, then every candidate pair at
    /// or above the model's threshold. With `train`, the model is learned from this file first
    /// and the time includes the training (as a Splink run's does).
    public func linkWithModel(_ given: MatchModel?, options: MatchModelTrainer.Options = .init()) -> (Quality, MatchModel) {
        let start = DispatchTime.now().uptimeNanoseconds
        let features = people
        let candidates = MatchModelTrainer.blockedPairs(features)
        let model: MatchModel
        var linked = Set<Pair>()
        if let given {
            model = given
            let scorer = model.scorer()
            for (a, b) in candidates where scorer.matches(features[a], features[b]) { linked.insert(Pair(a, b)) }
        } else {
            // Learning compares every candidate pair; the links come from those comparisons.
            let learned = MatchModelTrainer.trainAndLink(records: features, blockedPairs: candidates, options: options)
            model = learned.model
            for (a, b) in learned.links { linked.insert(Pair(a, b)) }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (quality(linked, candidates: candidates.count, seconds: seconds), model)
    }

    /// Pairs the model links that the ground truth says are different people, with the model's
    /// evidence: what a reader checks when precision falls short.
    public func falseLinks(_ model: MatchModel, limit: Int) -> [String] {
        let features = people
        let truth = truePairs
        var lines: [String] = []
        for (a, b) in MatchModelTrainer.blockedPairs(features) where lines.count < limit && !truth.contains(Pair(a, b)) {
            let evidence = model.evidence(features[a], features[b])
            guard evidence.probability >= model.threshold else { continue }
            func show(_ p: PersonFeatures) -> String {
                "\(p.given) \(p.family) \(p.dateOfBirth?.description ?? "-") \(p.line?.number ?? "") \(p.line?.street ?? "") \(p.postcode) \(p.town)"
            }
            lines.append("\(records[a].recId) [\(show(features[a]))] / \(records[b].recId) [\(show(features[b]))]: \(evidence)")
        }
        return lines
    }

    /// Several files as one (entities kept apart per file), to train on some and report on another.
    public static func combined(_ sets: [FebrlDataset]) -> FebrlDataset {
        var records: [Record] = []
        for (n, set) in sets.enumerated() {
            for var record in set.records {
                record.entity = "\(n):\(record.entity)"
                records.append(record)
            }
        }
        return FebrlDataset(records: records)
    }
}
