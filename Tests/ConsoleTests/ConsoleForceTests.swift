import EncompassModels
import EncompassTestSupport
import Foundation
import ServiceRuntime
import Testing

@testable import ConsoleService

@Suite("A force's own console over a pipeline serving several forces", .serialized, .tags(.kafka))
struct ConsoleForceTests {
    @Test("ENCOMPASS_CONSOLE_FORCES names the console's forces; anything but force codes is refused")
    func settings() throws {
        #expect(try ConsoleService.Settings.fromEnvironment([:]).forces == nil)
        #expect(try ConsoleService.Settings.fromEnvironment(["ENCOMPASS_CONSOLE_FORCES": "05"]).forces == ["05"])
        #expect(try ConsoleService.Settings.fromEnvironment(["ENCOMPASS_CONSOLE_FORCES": "43, 05"]).forces == ["43", "05"])
        for bad in [",", "05;43", "a force"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try ConsoleService.Settings.fromEnvironment(["ENCOMPASS_CONSOLE_FORCES": bad]) }
        }
    }

    @Test(
        "Cambridgeshire's console lists none of Thames Valley's proposals, CSC requests or notices and may not decide them; Thames Valley's lists its own"
    )
    func eachForceSeesItsOwn() async throws {
        let world = try await ConsoleWorld()
        try await world.seed()
        // Thames Valley's items: two proposals, a notice today; Amelia confirmed makes a CSC request for Reading.
        let all = world.links
        let proposals = try #require(await all.pendingProposals().value)
        let amelia = try #require(proposals.first { $0.child.givenName == "Amelia" })
        let oliver = try #require(proposals.first { $0.child.givenName == "Oliver" })
        #expect((200..<300).contains(await all.decide(proposal: amelia.proposalId, confirm: true, reviewer: "tvp.officer", note: nil).value ?? 0))
        _ = try await world.waitForRequest(lpa: "Reading")
        let day = CalendarDate(ConsoleWorld.start)

        var cambs = all
        cambs.forces = ["05"]
        #expect(await cambs.pendingProposals().value?.isEmpty == true)
        #expect(await cambs.openRequests().value?.isEmpty == true)
        #expect(await cambs.heldAnswers().value == [])
        let cambsNotices = try #require(await cambs.notices(on: day).value)
        #expect(cambsNotices.notifications.isEmpty && cambsNotices.flagged == 0)
        let sheet = try #require(await cambs.exportRequests(lpa: "all", format: "csv", day: day).value)
        #expect(sheet.requests == 0 && !String(decoding: sheet.data, as: UTF8.self).contains("Amelia"))
        guard case .refused(let why) = await cambs.decide(proposal: oliver.proposalId, confirm: false, reviewer: "cambs.navigator", note: nil) else {
            Issue.record("Cambridgeshire's console decided a Thames Valley proposal")
            return
        }
        #expect(why.contains("not one of force 05's"))
        #expect(await all.pendingProposals().value?.contains { $0.proposalId == oliver.proposalId } == true, "the refused decision was never sent")

        var tvp = all
        tvp.forces = ["43"]
        #expect(await tvp.pendingProposals().value?.map(\.proposalId) == [oliver.proposalId])
        #expect(await tvp.openRequests().value?.contains { $0.fields["child_given_name"] == "Amelia" } == true)
        #expect(await tvp.notices(on: day).value?.notifications.map(\.forceCode) == ["43"])
        #expect((200..<300).contains(await tvp.decide(proposal: oliver.proposalId, confirm: false, reviewer: "tvp.officer", note: nil).value ?? 0))
        try await world.stop()
    }
}
