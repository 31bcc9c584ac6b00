import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import ChildResearchService
@testable import ConsoleService

@Suite("Console against the five real services (in-process Kafka)", .serialized, .tags(.kafka))
struct ConsoleServiceTests {
    @Test(
        "signed in: the overview shows every stage up with the dead letter; a proposed child confirmed in the staff member's name reaches school resolution as a CSC request; the sheet downloads; a returned sheet's rows are answered; today's notice shown unacknowledged; every action audited"
    )
    func endToEnd() async throws {
        let world = try await ConsoleWorld()
        try await world.seed()
        let web = WebClient(base: world.console.base)
        let signInPage = try await web.get("/sign-in")
        let signInToken = try #require(WebClient.csrf(in: signInPage.text))
        #expect(
            try await web.post("/sign-in", form: ["name": ConsoleWorld.staff, "password": ConsoleWorld.password, "csrf": signInToken]).status == 303)

        // Overview: five stages answering, school resolution's dead letter listed.
        var overview = try await web.get("/overview")
        // Lag comes from librdkafka's statistics (every 5 s): wait for the first report too.
        try await eventually("five stages up and their lag reported", timeout: .seconds(60), interval: .seconds(1)) {
            overview = try await web.get("/overview")
            return overview.text.components(separatedBy: "data-state=\"up\"").count == 6 && overview.text.contains("<td>child-research-")
        }
        for service in ServiceName.allCases {
            #expect(overview.text.contains("id=\"stage-\(service.rawValue)\" data-state=\"up\""), "\(service.rawValue) up")
        }
        #expect(overview.text.contains("id=\"dead-letters-school-resolution\"") && overview.text.contains("envelope.not-json"))
        #expect(overview.text.contains("<td>child-research-"), "consumer groups listed with their lag: \(overview.text)")
        let csrf = try #require(WebClient.csrf(in: overview.text))

        // Review: two proposals with score and explanation; confirm Amelia.
        let review = try await web.get("/review")
        #expect(review.text.contains("Amelia") && review.text.contains("Oliver") && review.text.contains("address: same address as 43230000101"))
        let proposals = try #require(await world.links.pendingProposals().value)
        let amelia = try #require(proposals.first { $0.child.givenName == "Amelia" })
        let oliver = try #require(proposals.first { $0.child.givenName == "Oliver" })
        #expect(review.text.contains("id=\"confirm-\(amelia.proposalId)\""))
        let confirmed = try await web.post("/review/\(amelia.proposalId)/confirm", form: ["note": "known at the address", "csrf": csrf])
        #expect(confirmed.status == 200 && confirmed.text.contains("Confirmed"))
        let rejected = try await web.post("/review/\(oliver.proposalId)/reject", form: ["csrf": csrf])
        #expect(rejected.status == 200 && rejected.text.contains("Rejected"))
        let research = try #require(world.hosts[.childResearch])
        try await eventually("decisions applied at child research", timeout: .seconds(30)) {
            try await research.store.pool.read { db in
                try ReviewQueue.list(db, status: nil).filter { $0.decidedBy == ConsoleWorld.staff }.count == 2
            }
        }
        // The shipped protocol confirms nothing by itself; the two decisions make the calibration table.
        try await eventually("the decisions in the calibration table", timeout: .seconds(30)) {
            try await web.get("/review").text.contains("2 decided by officers (1 confirmed); 0 confirmed automatically")
        }
        let calibrated = try await web.get("/review").text
        #expect(
            calibrated.contains(
                "<tr class=\"band\" id=\"band-0.50\"><td>0.50</td><td class=\"decided\">2</td><td class=\"confirmed\">1</td><td class=\"share\">50%</td></tr>"
            ), "\(calibrated)")

        // Amelia has no known school: school resolution asks CSC for Reading.
        let request = try await world.waitForRequest(lpa: "Reading")
        #expect(request.fields["child_given_name"] == "Amelia")
        let requests = try await web.get("/requests")
        #expect(requests.text.contains("id=\"lpa-reading\"") && requests.text.contains("id=\"download-csv-reading\""))
        let sheet = try await web.post("/requests/download", form: ["lpa": "Reading", "format": "csv", "csrf": csrf])
        #expect(
            sheet.status == 200
                && sheet.headers["content-disposition"]?.contains("attachment; filename=\"csc-requests-Reading-2026-11-24.csv\"") == true)
        #expect(sheet.text.contains("request_id,") && sheet.text.contains(request.requestId) && sheet.text.contains("Amelia"), "\(sheet.text)")
        let xlsx = try await web.post("/requests/download", form: ["lpa": "Reading", "format": "xlsx", "csrf": csrf])
        #expect(xlsx.status == 200 && xlsx.body.prefix(2) == Data("PK".utf8))

        // CSC returns the sheet: one row answered with a Reading school, one unknown request refused with its reason.
        let returned = "request_id,school_urn,school_name\r\n\(request.requestId),109778,\r\nno-such-request,109778,\r\n"
        let upload = try await web.postMultipart("/requests/upload", fields: ["csrf": csrf], file: ("sheet", "csc-returned.csv", Data(returned.utf8)))
        #expect(upload.status == 200 && upload.text.contains("id=\"import-result\""))
        #expect(upload.text.contains("2 row(s): 1 accepted, 1 rejected"), "\(upload.text)")

        // Notices today: Oakwood, sent, not acknowledged (it is before 10:00); and Amelia's, released
        // at once now that CSC has named her school (it is past 08:00 on the release day).
        var notices = try await web.get("/notices")
        try await eventually("Amelia's notice listed beside Oakwood's", timeout: .seconds(30)) {
            notices = try await web.get("/notices")
            return notices.text.contains("<p id=\"notices-summary\">2 notice(s)")
        }
        #expect(notices.text.contains("Oakwood Primary School") && notices.text.contains("not acknowledged"))
        #expect(notices.text.contains("Notices released or active on 2026-11-24") && !notices.text.contains("FOLLOW UP"))
        // 10:00 passes on the simulated clock without an acknowledgement: flagged for a call.
        try SimulatedClockFile(simulated: Timestamp.parse("2026-11-24T10:00:05Z")!, real: Date(), rate: 1).write(to: world.clockFile)
        try await eventually("both notices flagged after 10:00", timeout: .seconds(30)) {
            let page = try await web.get("/notices").text
            return page.contains("FOLLOW UP") && page.contains("0 acknowledged, <span class=\"flag\">2 to follow up</span>")
        }

        // Nothing held for a password (Oakwood has one); the Navigator's audit spreadsheet downloads.
        let noticesPage = try await web.get("/notices").text
        #expect(noticesPage.contains("id=\"held-none\"") && noticesPage.contains("id=\"notices-export\""))
        let audit = try await web.post("/notices/export", form: ["from": "2026-11-01", "to": "2026-11-30", "la": "", "format": "csv", "csrf": csrf])
        #expect(audit.status == 200 && audit.headers["content-disposition"]?.contains("encompass-notices-2026-11-01-to-2026-11-30.csv") == true)
        #expect(
            audit.text.contains("occurrence_number,force,notice_id") && audit.text.contains("43260000777")
                && audit.text.contains("Oakwood Primary School"), "\(audit.text)")
        #expect(!audit.text.contains("Noah") && !audit.text.contains("Station Road"), "no child's name or address")
        #expect(
            try await web.post("/notices/export", form: ["from": "2026-11-01", "to": "2026-11-30", "format": "xlsx"]).status == 403, "no CSRF token")
        let badDates = try await web.post("/notices/export", form: ["from": "November", "to": "2026-11-30", "format": "csv", "csrf": csrf])
        #expect(badDates.status == 400 && badDates.text.contains("Give both dates"))

        // Term dates: every shipped LA, approximate for 2026-27, so each with a warning.
        let calendars = try await web.get("/calendars").text
        #expect(calendars.contains("id=\"calendar-931\"") && calendars.contains("2027-08-31") && calendars.contains("yes: 2026-27"), "\(calendars)")
        #expect(calendars.contains("11 local authorities, 11 with a warning"))

        // LA contacts: none yet, then as imported, the placeholder one flagged.
        let none = try await web.get("/la-contacts").text
        #expect(none.contains("No local authority's contacts are held") && !none.contains("<table id=\"la-contacts\""), "\(none)")
        let sheet2 =
            "la_code,role,name,email,phone\n873,encompass,Cambridgeshire Operation Encompass,encompass@cambridgeshire.gov.uk,01223 712345\n"
            + "850,encompass,Hampshire <Duty>,oe@hants.example,01962 000000\n850,education-otherwise,Hampshire CME,cme@hants.gov.uk,01962 845000\n"
        let imported = await world.links.fetch(
            .schoolResolution, "POST", "/v1/la-contacts/import", query: ["name": "la-contacts.csv"],
            raw: Data(sheet2.utf8), contentType: "text/csv")
        #expect(imported.value?.status == 202, "accepted: applied through the register topic")
        var contactsPage = ""
        try await eventually("the LA contacts applied", timeout: .seconds(30)) {
            contactsPage = try await web.get("/la-contacts").text
            return contactsPage.contains("2 local authorities with contacts, 1 with a placeholder contact.")
        }
        #expect(
            contactsPage.contains("<tr data-la=\"873\" data-role=\"encompass\"><td>873</td>")
                && contactsPage.contains("encompass@cambridgeshire.gov.uk"), "\(contactsPage)")
        #expect(
            contactsPage.contains("<tr data-la=\"850\" data-role=\"encompass\" class=\"flagged\">")
                && contactsPage.contains("PLACEHOLDER</span> email oe@hants.example, phone 01962 000000"))
        #expect(contactsPage.contains("data-role=\"education-otherwise\"><td>850</td>") && contactsPage.contains("la-contacts:la-contacts.csv"))
        #expect(contactsPage.contains("Hampshire &lt;Duty&gt;") && !contactsPage.contains("<Duty>"))

        let trail = try await world.console.app.staff.auditTrail()
        for action in ["review-confirm", "review-reject", "csc-download", "csc-upload", "sign-in", "notices-export"] {
            #expect(trail.contains { $0.action == action && $0.staffName == ConsoleWorld.staff && $0.outcome == "ok" }, "\(action) audited")
        }

        // A service that stops is shown as unreachable, the others still up.
        await world.hosts[.scheduling]!.shutdown()
        try await eventually("scheduling unreachable", timeout: .seconds(30)) {
            try await web.get("/overview").text.contains("id=\"stage-scheduling\" data-state=\"unreachable\"")
        }
        #expect(try await web.get("/overview").text.contains("id=\"stage-dispatch\" data-state=\"up\""))
        try await world.stop()
    }
}
