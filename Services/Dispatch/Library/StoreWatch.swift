import Foundation
import Logging
import Prometheus
import ServiceRuntime

/// A check of the dispatch store on a timer, shared by the watches that keep a gauge current
/// (`HeldNoticesWatch`, `UnsentClaimsWatch`): each pass calls `update` (which reads the store and
/// sets the gauges); when the number it counts changes to something other than zero, `report`
/// logs what was found; a failed pass is logged and the next one comes at the next tick.
enum StoreWatch {
    /// The watch's gauge `<name>_<unit>`, labelled with the service.
    static func gauge(_ metrics: ServiceMetrics, _ name: String, unit: String, help: String) -> Gauge {
        metrics.registry.makeGauge(descriptor: .init(metricName: name, unitName: unit, helpText: help), labels: [("service", metrics.service)])
    }

    static func run<Found: Sendable>(
        every interval: Duration, check: String, logger: Logger,
        update: () async throws -> Found, count: (Found) -> Int, report: (Found) -> Void
    ) async {
        var last = 0
        while !Task.isCancelled {
            do {
                let found = try await update()
                let now = count(found)
                if now != last, now > 0 { report(found) }
                last = now
            } catch {
                logger.warning("\(check) check failed; retrying", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
