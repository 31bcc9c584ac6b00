import EncompassDemo
import EncompassModels
import Foundation
import Testing

@Suite("Benchmark figures: histograms from /metrics, accepted mail")
struct BenchFiguresTests {
    static let exposition = """
        # TYPE encompass_record_wait_seconds histogram
        encompass_record_wait_seconds_bucket{service="intake",topic="a",le="0.001"} 2
        encompass_record_wait_seconds_bucket{service="intake",topic="a",le="0.005"} 6
        encompass_record_wait_seconds_bucket{service="intake",topic="a",le="0.01"} 10
        encompass_record_wait_seconds_bucket{service="intake",topic="a",le="+Inf"} 10
        encompass_record_wait_seconds_sum{service="intake",topic="a"} 0.05
        encompass_record_wait_seconds_count{service="intake",topic="a"} 10
        encompass_record_wait_seconds_bucket{service="intake",topic="b",le="0.001"} 100
        encompass_record_wait_seconds_bucket{service="intake",topic="b",le="0.005"} 100
        encompass_record_wait_seconds_bucket{service="intake",topic="b",le="0.01"} 100
        encompass_record_wait_seconds_bucket{service="intake",topic="b",le="+Inf"} 100
        """

    @Test("buckets of the series with the labels, summed over instances; quantiles interpolated inside a bucket")
    func histogram() throws {
        let one = HistogramBuckets.parse([Self.exposition], metric: "encompass_record_wait_seconds", labels: ["topic=\"a\""])
        #expect(one.bounds == [0.001, 0.005, 0.01, .infinity])
        #expect(one.counts == [2, 6, 10, 10])
        // The 5th of 10 lies in (1 ms, 5 ms], third of the four there: 1 + 4 × 3/4 ms.
        #expect(abs(try #require(one.quantile(0.5)) - 0.004) < 1e-9)
        #expect(abs(try #require(one.quantile(0.1)) - 0.0005) < 1e-9)
        let two = HistogramBuckets.parse([Self.exposition, Self.exposition], metric: "encompass_record_wait_seconds", labels: ["topic=\"a\""])
        #expect(two.counts == [4, 12, 20, 20])
        let all = HistogramBuckets.parse([Self.exposition], metric: "encompass_record_wait_seconds")
        #expect(all.total == 110)
        #expect(HistogramBuckets.parse([Self.exposition], metric: "encompass_other").quantile(0.5) == nil)
    }

    @Test("a later reading minus an earlier one is what was observed between; beyond the last bound, its lower bound")
    func between() throws {
        let earlier = HistogramBuckets(bounds: [0.001, 0.01, .infinity], counts: [5, 5, 5])
        let later = HistogramBuckets(bounds: [0.001, 0.01, .infinity], counts: [5, 7, 9])
        let paced = later.subtracting(earlier)
        #expect(paced.counts == [0, 2, 4])
        #expect(try #require(paced.quantile(0.99)) == 0.01)
        #expect(abs(try #require(paced.quantile(0.25)) - 0.00550) < 1e-9)
    }

    @Test("accepted mail is matched to its notice by the Message-ID dispatch derives from the notice id")
    func acceptedMail() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("accepted-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let noticeId = "43-notice-1-esm"
        let message =
            "X-Envelope-From: a@b\r\nFrom: Encompass <a@b>\r\nMessage-ID: <\(AcceptedMail.messageId(noticeId: noticeId))>\r\nSubject: x\r\n\r\nMessage-ID: <not-this>\r\n"
        try message.write(toFile: "\(folder)/1.eml", atomically: true, encoding: .utf8)
        try "Subject: no id\r\n\r\nbody\r\n".write(toFile: "\(folder)/2.eml", atomically: true, encoding: .utf8)
        let accepted = AcceptedMail.read(folder: folder)
        #expect(accepted.keys.sorted() == [AcceptedMail.messageId(noticeId: noticeId)])
        #expect(AcceptedMail.messageId(noticeId: noticeId) == "\(MessageID.derived(from: noticeId, "notice-mail"))@encompass.invalid")
        let at = try #require(accepted.values.first)
        let spans = AcceptedMail.spans(notices: [noticeId: at.addingTimeInterval(-0.25), "never-sent": at], accepted: accepted)
        #expect(spans.count == 1)
        #expect(abs(spans[0] - 0.25) < 1e-6)
        #expect(AcceptedMail.messageId("Subject: a\nMessage-ID:   <x@y>\n\nbody") == "x@y")
    }

    @Test("a share of indices, spread evenly")
    func spread() {
        #expect(evenlySpread(count: 10, share: 0.3) == [0, 3, 6])
        #expect(evenlySpread(count: 3000, share: 0.1).count == 300)
        #expect(evenlySpread(count: 5, share: 0).isEmpty)
        #expect(evenlySpread(count: 4, share: 1) == [0, 1, 2, 3])
    }
}
