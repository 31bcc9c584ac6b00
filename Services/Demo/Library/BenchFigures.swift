import EncompassModels
import Foundation

/// A Prometheus histogram's cumulative buckets (`<name>_bucket{…,le="…"}`), summed over the
/// series read: what `encompass-bench pipeline --hops` reads from the services' `/metrics`
/// before and after its paced phase, to say where a hop's time goes.
public struct HistogramBuckets: Sendable, Equatable {
    /// Upper bounds in ascending order (seconds for a duration histogram); `+Inf` last.
    public var bounds: [Double]
    /// Cumulative counts, one per bound.
    public var counts: [Double]

    public init(bounds: [Double], counts: [Double]) {
        self.bounds = bounds
        self.counts = counts
    }

    /// Observations counted (the `+Inf` bucket).
    public var total: Double { counts.last ?? 0 }

    /// Reads the `_bucket` lines of `metric` in Prometheus text, keeping the series whose line
    /// holds every one of `labels` (`name="value"`), and sums them bucket by bucket.
    public static func parse(_ texts: [String], metric: String, labels: [String] = []) -> HistogramBuckets {
        var byBound: [Double: Double] = [:]
        let prefix = metric + "_bucket{"
        for text in texts {
            for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
                guard labels.allSatisfy({ line.contains($0) }), let le = line.range(of: "le=\"") else { continue }
                let boundText = line[le.upperBound...].prefix { $0 != "\"" }
                let bound = boundText == "+Inf" ? Double.infinity : Double(boundText)
                guard let bound, let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
                byBound[bound, default: 0] += value
            }
        }
        let bounds = byBound.keys.sorted()
        return HistogramBuckets(bounds: bounds, counts: bounds.map { byBound[$0]! })
    }

    /// What was observed between `earlier` and this reading of the same histogram.
    public func subtracting(_ earlier: HistogramBuckets) -> HistogramBuckets {
        var before: [Double: Double] = [:]
        for (bound, count) in zip(earlier.bounds, earlier.counts) { before[bound] = count }
        return HistogramBuckets(bounds: bounds, counts: zip(bounds, counts).map { max(0, $1 - (before[$0] ?? 0)) })
    }

    /// The `p` quantile, interpolated linearly inside its bucket as Prometheus's
    /// `histogram_quantile` does; the bucket's lower bound when it falls in `+Inf`, nil when empty.
    public func quantile(_ p: Double) -> Double? {
        guard total > 0 else { return nil }
        let rank = p * total
        var lower = 0.0
        var below = 0.0
        for (bound, count) in zip(bounds, counts) {
            if count >= rank {
                guard bound.isFinite else { return lower }
                let inBucket = count - below
                return inBucket <= 0 ? bound : lower + (bound - lower) * (rank - below) / inBucket
            }
            lower = bound
            below = count
        }
        return lower
    }
}

extension PipelineFigures {
    /// A histogram summed over a service's instances (`HistogramBuckets.parse`).
    public func histogram(_ service: ServiceName, _ metric: String, labels: [String] = []) -> HistogramBuckets {
        HistogramBuckets.parse(metrics[service] ?? [], metric: metric, labels: labels)
    }
}

/// Mail an SMTP server accepted, as files of one message each (`Tests/DispatchTests/Peers/smtp_server.py`
/// writes each message it accepts, before it answers, as `<n>.eml`): when each was accepted, by its
/// Message-ID.
public enum AcceptedMail {
    /// Message-ID (without angle brackets) → the file's modification time, for every `.eml` in `folder`.
    public static func read(folder: String) -> [String: Date] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var accepted: [String: Date] = [:]
        for name in files where name.hasSuffix(".eml") {
            let path = "\(folder)/\(name)"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8), let id = messageId(text),
                let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
            else { continue }
            if accepted[id].map({ $0 > modified }) ?? true { accepted[id] = modified }
        }
        return accepted
    }

    /// The Message-ID of an RFC 5322 message (its header, before the first empty line), without
    /// angle brackets.
    public static func messageId(_ message: String) -> String? {
        // CRLF is one Character, so `isNewline` splits CRLF and LF text alike.
        for line in message.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if line.isEmpty { return nil }
            guard line.lowercased().hasPrefix("message-id:") else { continue }
            let value = line.dropFirst("message-id:".count).trimmingCharacters(in: .whitespaces)
            return value.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
        }
        return nil
    }

    /// The Message-ID dispatch gives a notice's mail: its idempotency key, derived from the notice
    /// id (`NoticeIntake.accept`), at `encompass.invalid`.
    public static func messageId(noticeId: String) -> String { "\(MessageID.derived(from: noticeId, "notice-mail"))@encompass.invalid" }

    /// Seconds from each notice's start (e.g. its incident's raw record) to its mail's acceptance,
    /// sorted; notices without both are left out.
    public static func spans(notices: [String: Date], accepted: [String: Date]) -> [Double] {
        notices.compactMap { noticeId, start in
            accepted[messageId(noticeId: noticeId)].map { max(0, $0.timeIntervalSince(start)) }
        }.sorted()
    }
}

/// `share` of the indices `0..<count` (rounded), spread evenly from the first: which of a
/// benchmark's paced incidents get a property (e.g. high risk).
public func evenlySpread(count: Int, share: Double) -> Set<Int> {
    guard share > 0, count > 0 else { return [] }
    let wanted = min(count, Int((Double(count) * min(share, 1)).rounded()))
    return Set((0..<wanted).map { $0 * count / wanted })
}
