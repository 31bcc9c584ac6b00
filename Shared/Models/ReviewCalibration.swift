import Foundation

/// How often MASH officers confirmed the children research proposed, by score: for each band
/// "score at or above X", how many proposals officers decided and the share they confirmed.
/// A force reads it to choose an automatic confirmation threshold on evidence. Automatic
/// confirmations are counted apart (`automatic`): they are not an officer's judgement.
/// Child research answers `GET /v1/review/calibration` with it.
public struct ReviewCalibration: Codable, Sendable, Equatable {
    public struct Band: Codable, Sendable, Equatable {
        /// Proposals scoring at or above this.
        public var minimumScore: Double
        /// Decided by an officer (confirmed or rejected).
        public var decided: Int
        public var confirmed: Int
        /// confirmed / decided; nil when none were decided.
        public var shareConfirmed: Double?

        public init(minimumScore: Double, decided: Int, confirmed: Int) {
            self.minimumScore = minimumScore
            self.decided = decided
            self.confirmed = confirmed
            self.shareConfirmed = decided == 0 ? nil : Double(confirmed) / Double(decided)
        }
    }

    /// One officer's decision on a proposal.
    public struct Decision: Sendable, Equatable {
        public var score: Double
        public var confirmed: Bool

        public init(score: Double, confirmed: Bool) {
            self.score = score
            self.confirmed = confirmed
        }
    }

    /// The bands' lower bounds: 0.5 to 0.9 in tenths, then 0.95 and 0.99.
    public static let bounds: [Double] = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]

    public var bands: [Band]
    /// Every proposal an officer decided, whatever its score.
    public var decided: Int
    public var confirmed: Int
    /// Confirmed automatically (not counted in the bands).
    public var automatic: Int

    public init(bands: [Band], decided: Int, confirmed: Int, automatic: Int) {
        self.bands = bands
        self.decided = decided
        self.confirmed = confirmed
        self.automatic = automatic
    }

    /// The table from officers' decisions.
    public init(decisions: [Decision], automatic: Int, bounds: [Double] = ReviewCalibration.bounds) {
        self.init(
            bands: bounds.map { bound in
                let above = decisions.filter { $0.score >= bound }
                return Band(minimumScore: bound, decided: above.count, confirmed: above.filter(\.confirmed).count)
            }, decided: decisions.count, confirmed: decisions.filter(\.confirmed).count, automatic: automatic)
    }
}
