import Foundation
import ServiceRuntime
import Testing

@Suite("Wakeup: a loop's signal, with its timeout as the fallback")
struct WakeupTests {
    @Test("a signal wakes the waiter at once; one sent before the wait is kept for it; else the timeout ends the wait")
    func signal() async {
        let wakeup = Wakeup()
        let started = ContinuousClock.now
        let waiter = Task { await wakeup.wait(timeout: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        wakeup.signal()
        await waiter.value
        #expect(ContinuousClock.now - started < .seconds(30))

        wakeup.signal()
        let early = ContinuousClock.now
        await wakeup.wait(timeout: .seconds(60))
        #expect(ContinuousClock.now - early < .seconds(30))

        let idle = ContinuousClock.now
        await wakeup.wait(timeout: .milliseconds(200))
        #expect(ContinuousClock.now - idle >= .milliseconds(200))
    }

    @Test("a cancelled waiter returns at once (a loop stopped at shutdown does not wait out its timeout)")
    func cancelled() async {
        let wakeup = Wakeup()
        let started = ContinuousClock.now
        let waiter = Task { await wakeup.wait(timeout: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await waiter.value
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
