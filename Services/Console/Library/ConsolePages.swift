import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport

/// The console's pages: plain server-rendered HTML, no JavaScript, every value from a service
/// or a staff member escaped with `htmlEscape`.
public enum ConsolePages {
    public static let stylesheet = """
        body{font-family:system-ui,sans-serif;margin:0;color:#111;line-height:1.4;background:#f6f7f9}
        header{background:#1d3557;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
        header a{color:#fff;text-decoration:none;padding:.2rem .5rem;border-radius:.3rem}
        header a.active{background:#457b9d}
        header .who{margin-left:auto;font-size:.85rem}
        header form{display:inline}
        main{padding:1rem 1.2rem;max-width:78rem}
        table{border-collapse:collapse;width:100%;background:#fff;margin:.5rem 0 1.2rem}
        th,td{border:1px solid #d0d4da;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.92rem}
        th{background:#e9edf2}
        .box{padding:.6rem .9rem;border-radius:.3rem;margin:.6rem 0}
        .error{background:#fde2e1;border:1px solid #e5a4a0}
        .ok{background:#e3f4e1;border:1px solid #9fd39a}
        .warn{background:#fff4d6;border:1px solid #e8cf7a}
        .down{color:#9b1c1c;font-weight:bold}
        .flag{color:#9b1c1c;font-weight:bold}
        .stage{display:inline-block;min-width:13rem;background:#fff;border:1px solid #d0d4da;border-radius:.4rem;padding:.5rem .8rem;margin:.3rem .3rem .3rem 0;vertical-align:top}
        .arrow{display:inline-block;margin-top:2rem;color:#666}
        button{padding:.3rem .8rem;margin:.1rem}
        label{display:block;margin:.5rem 0 .2rem}
        input[type=text],input[type=password]{padding:.35rem;width:18rem}
        small{color:#555}
        """

    public enum Tab: String, CaseIterable, Sendable {
        case overview, review, requests, notices, calendars
        case laContacts = "la-contacts"
        var title: String {
            switch self {
            case .overview: "Pipeline"
            case .review: "Review queue"
            case .requests: "CSC requests"
            case .notices: "Notices today"
            case .calendars: "Term dates"
            case .laContacts: "LA contacts"
            }
        }
        var path: String { "/\(rawValue)" }
    }

    /// A message above the page's content.
    public struct Flash: Sendable, Equatable {
        public var text: String
        public var isError: Bool
        public init(_ text: String, isError: Bool = false) {
            self.text = text
            self.isError = isError
        }
    }

    static func document(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer"><title>\(htmlEscape(title)) · Encompass MASH console</title>
        <link rel="stylesheet" href="/static/console.css"></head>
        <body>
        \(body)
        </body></html>
        """
    }

    static func csrfField(_ token: String) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(htmlEscape(token))\">"
    }

    static func flash(_ flash: Flash?) -> String {
        guard let flash else { return "" }
        return "<p class=\"box \(flash.isError ? "error" : "ok")\" id=\"message\" role=\"status\">\(htmlEscape(flash.text))</p>"
    }

    /// A page inside the signed-in frame: navigation, who is signed in, sign-out.
    static func frame(_ tab: Tab, session: StaffSession, now: Date, flash: Flash?, content: String) -> String {
        let nav = Tab.allCases.map { item in
            "<a href=\"\(item.path)\" id=\"nav-\(item.rawValue)\"\(item == tab ? " class=\"active\"" : "")>\(htmlEscape(item.title))</a>"
        }.joined(separator: "\n")
        let body = """
            <header><strong>Encompass · MASH</strong>
            \(nav)
            <span class="who">Signed in as <strong id="staff-name">\(htmlEscape(session.staffName))</strong> (\(htmlEscape(session.role))) · \(htmlEscape(format(now)))</span>
            <form method="post" action="/sign-out">\(csrfField(session.csrfToken))<button type="submit" id="sign-out">Sign out</button></form>
            </header>
            <main id="page-\(tab.rawValue)">
            <h1>\(htmlEscape(tab.title))</h1>
            \(Self.flash(flash))
            \(content)
            </main>
            """
        return document(title: tab.title, body: body)
    }

    // MARK: sign-in

    public static func signIn(csrf: String, flash: Flash?) -> String {
        document(
            title: "Sign in",
            body: """
                <main>
                <h1>Encompass MASH console</h1>
                <p>Sign in with your MASH staff account.</p>
                \(Self.flash(flash))
                <form method="post" action="/sign-in" id="sign-in-form">
                \(csrfField(csrf))
                <label for="name">Name</label><input type="text" id="name" name="name" autocomplete="username" required>
                <label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
                <p><button type="submit" id="sign-in">Sign in</button></p>
                </form>
                </main>
                """)
    }

    public static func problem(_ title: String, _ text: String) -> String {
        document(
            title: title,
            body:
                "<main><h1>\(htmlEscape(title))</h1><p class=\"box error\">\(htmlEscape(text))</p><p><a href=\"/\">Back to the console</a></p></main>"
        )
    }

    // MARK: overview

    public static func overview(_ reports: [ServiceName: ServiceLinks.StageReport], session: StaffSession, now: Date, flash: Flash? = nil) -> String {
        var stages: [String] = []
        var details = ""
        for service in ServiceName.allCases {
            guard let report = reports[service] else { continue }
            let id = "stage-\(service.rawValue)"
            switch report.status {
            case .ok(let status):
                let open = report.deadLetters.value.map { "\($0.count)" } ?? "?"
                stages.append(
                    """
                    <div class="stage" id="\(id)" data-state="up"><strong>\(htmlEscape(service.rawValue))</strong><br>
                    processed <span data-field="processed">\(count(status.processed["applied"] ?? 0))</span>
                    <small>(+\(count(status.processed["duplicate"] ?? 0)) duplicates)</small><br>
                    failed (retried) <span data-field="failed">\(count(status.failed))</span><br>
                    dead-lettered <span data-field="dead-lettered">\(count(status.deadLettered))</span>, open <span data-field="open-dead-letters">\(htmlEscape(open))</span><br>
                    lag <span data-field="lag">\(count(status.lag.reduce(0) { $0 + $1.messages }))</span> messages<br>
                    outbox <span data-field="outbox">\(count(status.outboxPending))</span></div>
                    """)
                let lagRows = status.lagByGroup.map { line in
                    "<tr><td>\(htmlEscape(line.group))</td><td>\(htmlEscape(line.topic))</td><td>\(count(line.messages))</td><td>\(String(format: "%.0f", line.seconds)) s</td></tr>"
                }
                details += "<h2>\(htmlEscape(service.rawValue))</h2>"
                details +=
                    lagRows.isEmpty
                    ? "<p><small>No consumer lag reported yet.</small></p>"
                    : "<table class=\"lag\"><tr><th>Consumer group</th><th>Topic</th><th>Lag (messages)</th><th>Oldest waiting</th></tr>\(lagRows.joined())</table>"
            case .unreachable(let why), .refused(let why):
                let unreachable: Bool = if case .unreachable = report.status { true } else { false }
                stages.append(
                    """
                    <div class="stage" id="\(id)" data-state="\(unreachable ? "unreachable" : "refused")"><strong>\(htmlEscape(service.rawValue))</strong><br>
                    <span class="down">\(unreachable ? "service unreachable" : "service refused")</span><br><small>\(htmlEscape(why))</small></div>
                    """)
                details += "<h2>\(htmlEscape(service.rawValue))</h2><p class=\"box error\">\(htmlEscape(why))</p>"
            }
            switch report.deadLetters {
            case .ok(let letters) where !letters.isEmpty:
                let rows = letters.prefix(20).map { letter in
                    // A record two instances dead-lettered: both copies named, each distinct reason once.
                    let copies = letter.copies ?? [DeadLetterCopy(letter)]
                    var classes: [String] = []
                    var reasons: [String] = []
                    for copy in copies {
                        if !classes.contains(copy.errorClass) { classes.append(copy.errorClass) }
                        if !reasons.contains(copy.errorMessage) { reasons.append(copy.errorMessage) }
                    }
                    return
                        "<tr><td>\(copies.map { htmlEscape($0.address) }.joined(separator: "<br>"))</td><td>\(htmlEscape(letter.originalTopic))</td><td>\(htmlEscape(letter.originalKey ?? ""))</td><td>\(htmlEscape(classes.joined(separator: ", ")))</td><td>\(reasons.map { htmlEscape(String($0.prefix(300))) }.joined(separator: "<br>"))</td><td>\(htmlEscape(format(letter.deadLetteredAt)))</td></tr>"
                }.joined()
                details +=
                    "<table class=\"dead-letters\" id=\"dead-letters-\(service.rawValue)\"><tr><th>Dead letter</th><th>Topic</th><th>Key</th><th>Error class</th><th>Reason</th><th>When</th></tr>\(rows)</table>"
                if letters.count > 20 {
                    details += "<p><small>\(letters.count - 20) more: encompass dlq list --service \(service.rawValue)</small></p>"
                }
            case .ok: details += "<p><small>No open dead letters.</small></p>"
            case .refused(let why):
                if case .ok = report.status { details += "<p class=\"box warn\">Dead letters: \(htmlEscape(why))</p>" }
            case .unreachable: break
            }
        }
        let content = """
            <p>Counts since each service instance started; lag per consumer group; open dead letters (replay or discard them with <code>encompass dlq</code>).</p>
            <div id="stages">\(stages.joined(separator: "<span class=\"arrow\">→</span>"))</div>
            \(details)
            """
        return frame(.overview, session: session, now: now, flash: flash, content: content)
    }

    // MARK: review

    public static func review(
        _ proposals: Fetched<[ReviewProposalState]>, calibration: Fetched<ReviewCalibration>, session: StaffSession, now: Date,
        flash: Flash? = nil
    ) -> String {
        var content =
            "<p>Children the research found in earlier records but not recorded by the officer. Confirm only when you are satisfied the child lives at the address; your name is recorded with the decision.</p>"
        switch proposals {
        case .unreachable(let why), .refused(let why):
            content += "<p class=\"box error\" id=\"review-unavailable\">\(htmlEscape(why))</p>"
        case .ok(let list) where list.isEmpty:
            content += "<p class=\"box ok\" id=\"review-empty\">No proposals wait for review.</p>"
        case .ok(let list):
            var rows = ""
            for proposal in list {
                let child = proposal.child
                let born = child.dateOfBirth ?? child.ageYears.map { "age \($0)" } ?? "unknown"
                let address = child.homeAddress.map { ($0.lines + [$0.postcode]).joined(separator: ", ") } ?? ""
                let explanation = proposal.evidence.explanation.map { "<li>\(htmlEscape($0))</li>" }.joined()
                let actions =
                    session.role == "officer"
                    ? """
                    <form method="post" action="/review/\(htmlEscape(ServiceLinks.pathSegment(proposal.proposalId)))/confirm">\(csrfField(session.csrfToken))<input type="text" name="note" placeholder="note (optional)" aria-label="note"><button type="submit" name="verdict" value="confirm" id="confirm-\(htmlEscape(proposal.proposalId))">Confirm</button></form>
                    <form method="post" action="/review/\(htmlEscape(ServiceLinks.pathSegment(proposal.proposalId)))/reject">\(csrfField(session.csrfToken))<button type="submit" name="verdict" value="reject" id="reject-\(htmlEscape(proposal.proposalId))">Reject</button></form>
                    """ : "<small>viewers cannot decide</small>"
                rows += """
                    <tr class="proposal" id="proposal-\(htmlEscape(proposal.proposalId))"><td>\(htmlEscape(proposal.forceCode))/\(htmlEscape(proposal.occurrenceNumber))</td>
                    <td class="child">\(htmlEscape(child.givenName)) \(htmlEscape(child.familyName))<br><small>\(htmlEscape(born))</small></td>
                    <td>\(htmlEscape(address))</td>
                    <td class="score">\(String(format: "%.2f", proposal.evidence.score))</td>
                    <td><ul>\(explanation)</ul><small>earlier records: \(htmlEscape(proposal.evidence.sourceOccurrences.joined(separator: ", ")))</small></td>
                    <td>\(actions)</td></tr>
                    """
            }
            content +=
                "<table id=\"proposals\"><tr><th>Occurrence</th><th>Child</th><th>Address</th><th>Score</th><th>Why</th><th>Decision</th></tr>\(rows)</table>"
        }
        content += calibrationSection(calibration)
        return frame(.review, session: session, now: now, flash: flash, content: content)
    }

    /// Past decisions by score: for each band, how many proposals officers decided and the share
    /// they confirmed, so a force can choose an automatic confirmation threshold on evidence.
    static func calibrationSection(_ calibration: Fetched<ReviewCalibration>) -> String {
        var content =
            "<h2>Past decisions by score</h2><p>How often officers confirmed the children research proposed, for scores at or above each value. Found children wait for an officer unless the force's protocol turns automatic confirmation on with a threshold; choose it from this table.</p>"
        switch calibration {
        case .unreachable(let why), .refused(let why):
            content += "<p class=\"box error\" id=\"calibration-unavailable\">\(htmlEscape(why))</p>"
        case .ok(let table):
            var rows = ""
            for band in table.bands {
                let bound = String(format: "%.2f", band.minimumScore)
                let share = band.shareConfirmed.map { String(format: "%.0f%%", $0 * 100) } ?? "–"
                rows +=
                    "<tr class=\"band\" id=\"band-\(bound)\"><td>\(bound)</td><td class=\"decided\">\(band.decided)</td><td class=\"confirmed\">\(band.confirmed)</td><td class=\"share\">\(share)</td></tr>"
            }
            content +=
                "<table id=\"calibration\"><tr><th>Score at or above</th><th>Decided by officers</th><th>Confirmed</th><th>Share confirmed</th></tr>\(rows)</table>"
            content +=
                "<p id=\"calibration-totals\"><small>\(table.decided) decided by officers (\(table.confirmed) confirmed); \(table.automatic) confirmed automatically, not counted.</small></p>"
        }
        return content
    }

    // MARK: CSC requests

    public static func requests(
        _ requests: Fetched<[CSCRequest]>, held: Fetched<[HeldAnswer]> = .ok([]), imported: CSCImportAnswer? = nil,
        session: StaffSession, now: Date, flash: Flash? = nil
    ) -> String {
        var content =
            "<p>Children whose school could not be verified: ask Children's Social Care per local policing area. Download the sheet, send it to CSC, upload the sheet they return (school_urn and/or school_name filled in; corrected_date_of_birth and the corrected names where the police record was wrong).</p>"
        switch held {
        case .unreachable(let why), .refused(let why):
            content += "<p class=\"box error\" id=\"held-unavailable\">\(htmlEscape(why))</p>"
        case .ok(let items) where !items.isEmpty:
            var rows = ""
            for item in items {
                let school = [item.school?.urn, item.school?.name].compactMap { $0 }.joined(separator: " ")
                let forms =
                    session.role == "officer"
                    ? ["accept", "decline"].map { verdict in
                        "<form method=\"post\" action=\"/requests/\(htmlEscape(item.requestId))/\(verdict)\">\(csrfField(session.csrfToken))<input type=\"text\" name=\"note\" placeholder=\"note\"><button type=\"submit\" id=\"\(verdict)-\(htmlEscape(item.requestId))\">\(verdict == "accept" ? "Accept: notify this school" : "Decline: back to CSC")</button></form>"
                    }.joined() : "<small>viewers cannot decide</small>"
                rows +=
                    "<tr class=\"held\" id=\"held-\(htmlEscape(item.requestId))\"><td>\(htmlEscape(item.occurrenceNumber))</td><td>\(htmlEscape(item.childName)) (\(htmlEscape(item.dateOfBirth ?? "date of birth unknown")))</td><td>\(htmlEscape(school))</td><td>\(htmlEscape(item.reason))</td><td>\(forms)</td></tr>"
            }
            content += """
                <h2>Answers held for a MASH officer</h2>
                <p>Children's Social Care named a school that does not fit the child's recorded age. CSC is the authority on school; the police record may hold a wrong date of birth. Accept to notify that school, or decline to ask CSC again.</p>
                <table id="held"><tr><th>Occurrence</th><th>Child</th><th>School named by CSC</th><th>Why held</th><th>Decision</th></tr>\(rows)</table>
                """
        case .ok: break
        }
        if let imported {
            let rejected = imported.answers.filter { $0.outcome == "rejected" }.count
            var rows = ""
            for answer in imported.answers {
                rows +=
                    "<tr class=\"import-\(htmlEscape(answer.outcome))\"><td>\(answer.row)</td><td>\(htmlEscape(answer.requestId ?? ""))</td><td>\(htmlEscape(answer.outcome))</td><td>\(htmlEscape(answer.urn ?? ""))</td><td>\(htmlEscape(answer.reasons.joined(separator: "; ")))</td></tr>"
            }
            content += """
                <h2>Imported \(htmlEscape(imported.file))</h2>
                <p id="import-summary">\(imported.answers.count) row(s): \(imported.answers.count - rejected) accepted, \(rejected) rejected.</p>
                \(imported.error.map { "<p class=\"box error\">\(htmlEscape($0))</p>" } ?? "")
                <table id="import-result"><tr><th>Row</th><th>Request</th><th>Outcome</th><th>School URN</th><th>Reasons</th></tr>\(rows)</table>
                """
        }
        switch requests {
        case .unreachable(let why), .refused(let why):
            content += "<p class=\"box error\" id=\"requests-unavailable\">\(htmlEscape(why))</p>"
        case .ok(let list):
            let byLPA = Dictionary(grouping: list, by: \.lpa)
            if byLPA.isEmpty { content += "<p class=\"box ok\" id=\"requests-empty\">No open requests.</p>" }
            var rows = ""
            for lpa in byLPA.keys.sorted() {
                let items = byLPA[lpa] ?? []
                let forms =
                    session.role == "officer"
                    ? ["xlsx", "csv"].map { format in
                        "<form method=\"post\" action=\"/requests/download\">\(csrfField(session.csrfToken))<input type=\"hidden\" name=\"lpa\" value=\"\(htmlEscape(lpa))\"><input type=\"hidden\" name=\"format\" value=\"\(format)\"><button type=\"submit\" id=\"download-\(format)-\(htmlEscape(slug(lpa)))\">Download \(format.uppercased())</button></form>"
                    }.joined() : "<small>viewers cannot download</small>"
                let children = items.prefix(10).map {
                    "\(htmlEscape($0.fields["child_given_name"] ?? "")) \(htmlEscape($0.fields["child_family_name"] ?? "")) (\(htmlEscape($0.fields["occurrence_number"] ?? "")))"
                }.joined(separator: "<br>")
                rows +=
                    "<tr class=\"lpa\" id=\"lpa-\(htmlEscape(slug(lpa)))\"><td>\(htmlEscape(lpa.isEmpty ? "(none)" : lpa))</td><td data-field=\"open\">\(items.count)</td><td>\(children)\(items.count > 10 ? "<br>…" : "")</td><td>\(forms)</td></tr>"
            }
            if !byLPA.isEmpty {
                content +=
                    "<table id=\"requests\"><tr><th>Local policing area</th><th>Open requests</th><th>Children</th><th>Sheet for CSC</th></tr>\(rows)</table>"
            }
        }
        if session.role == "officer" {
            content += """
                <h2>Upload a returned sheet</h2>
                <form method="post" action="/requests/upload" enctype="multipart/form-data" id="upload-form">
                \(csrfField(session.csrfToken))
                <input type="file" name="sheet" id="sheet" accept=".xlsx,.csv" required>
                <button type="submit" id="upload">Upload</button>
                </form>
                """
        }
        return frame(.requests, session: session, now: now, flash: flash, content: content)
    }

    static func slug(_ text: String) -> String { String(text.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }) }

    // MARK: notices

    /// Whether a notice needs a call: dispatch flagged it, or it is not acknowledged and its
    /// acknowledge-by time (10:00 by default) has passed.
    public static func needsFollowUp(_ notice: NotificationSummary, now: Date) -> Bool {
        if notice.acknowledgedAt != nil { return false }
        if notice.flagged { return true }
        if let by = notice.acknowledgeBy { return by <= now }
        if let sent = notice.sentAt { return CalendarDate(sent).at(hour: 10) <= now }
        return false
    }

    public static func notices(
        _ listing: Fetched<NotificationList>, day: CalendarDate, session: StaffSession, now: Date, flash: Flash? = nil,
        held: Fetched<HeldNoticeListing>? = nil
    ) -> String {
        var content = (held.map(heldSection) ?? "") + exportForm(day: day, csrf: session.csrfToken)
        content +=
            "<p>Notices released or active on \(htmlEscape(day.description)) (London). Schools should acknowledge by 10:00; those that have not are flagged: call the school.</p>"
        switch listing {
        case .unreachable(let why), .refused(let why):
            content += "<p class=\"box error\" id=\"notices-unavailable\">\(htmlEscape(why))</p>"
        case .ok(let list) where list.notifications.isEmpty:
            content += "<p class=\"box ok\" id=\"notices-empty\">No notices today.</p>"
        case .ok(let list):
            let follow = list.notifications.filter { needsFollowUp($0, now: now) }.count
            let acknowledged = list.notifications.filter { $0.acknowledgedAt != nil }.count
            content +=
                "<p id=\"notices-summary\">\(list.notifications.count) notice(s), \(acknowledged) acknowledged, <span class=\"\(follow > 0 ? "flag" : "")\">\(follow) to follow up</span>.</p>"
            var rows = ""
            for notice in list.notifications {
                let flagged = needsFollowUp(notice, now: now)
                let ack =
                    notice.acknowledgedAt.map { "acknowledged \(format($0))\(notice.acknowledgedBy.map { " by \($0)" } ?? "")" } ?? "not acknowledged"
                let reason = flagged ? (notice.flagReason ?? "not acknowledged by \(notice.acknowledgeBy.map(time) ?? "10:00")") : ""
                rows += """
                    <tr class="notice\(flagged ? " flagged" : "")" id="notice-\(htmlEscape(notice.noticeId))"><td>\(htmlEscape(notice.schoolName ?? "?"))<br><small>URN \(htmlEscape(notice.schoolURN ?? "?"))</small></td>
                    <td>\(htmlEscape(notice.forceCode))/\(htmlEscape(notice.occurrenceNumber))</td>
                    <td>\(htmlEscape(notice.releaseAt.map(time) ?? ""))</td>
                    <td data-field="state">\(htmlEscape(notice.state))\(notice.channel.map { " (\(htmlEscape($0)))" } ?? "")</td>
                    <td data-field="acknowledged">\(htmlEscape(ack))</td>
                    <td>\(flagged ? "<span class=\"flag\">FOLLOW UP</span><br><small>\(htmlEscape(reason))</small>" : "")</td></tr>
                    """
            }
            content +=
                "<table id=\"notices\"><tr><th>School</th><th>Occurrence</th><th>Released</th><th>State</th><th>Acknowledgement</th><th>Flag</th></tr>\(rows)</table>"
        }
        return frame(.notices, session: session, now: now, flash: flash, content: content)
    }

    /// Notice mail held because its school (or LA) has no notice password: set one
    /// (`encompass notifications set-password`) and the mail goes out.
    static func heldSection(_ held: Fetched<HeldNoticeListing>) -> String {
        switch held {
        case .unreachable(let why), .refused(let why):
            return "<p class=\"box error\" id=\"held-unavailable\">Held notices: \(htmlEscape(why))</p>"
        case .ok(let listing) where listing.held.isEmpty:
            return "<p class=\"box ok\" id=\"held-none\">No notice is held for want of a school password.</p>"
        case .ok(let listing):
            var rows = ""
            for item in listing.held {
                rows +=
                    "<tr id=\"held-\(htmlEscape(item.noticeId))\"><td>\(htmlEscape(item.schoolName))<br><small>\(htmlEscape(item.account))</small></td>"
                    + "<td>\(htmlEscape(item.forceCode))/\(htmlEscape(item.occurrenceNumber))</td><td>\(htmlEscape(format(item.heldSince)))</td>"
                    + "<td>\(item.ageSeconds / 3600) h \(item.ageSeconds % 3600 / 60) min</td></tr>"
            }
            return """
                <section class="box error" id="held"><h2>\(listing.held.count) notice(s) held: no school password</h2>
                <p>These schools cannot open a notice link until they have a password, so their mail waits. Set each password (<code>encompass notifications set-password --urn URN</code>, or <code>--file</code> for many) and the mail goes out within a minute.</p>
                <table id="held-notices"><tr><th>School</th><th>Occurrence</th><th>Held since</th><th>Waiting</th></tr>\(rows)</table></section>
                """
        }
    }

    /// The Navigator's audit spreadsheet: notices released in a date range, optionally one LA.
    static func exportForm(day: CalendarDate, csrf: String) -> String {
        let first = CalendarDate(year: day.year, month: day.month, day: 1)
        return """
            <form method="post" action="/notices/export" id="notices-export">\(csrfField(csrf))
            <strong>Audit spreadsheet</strong> (incident, school, DSL and DA lead, sent, viewed and acknowledged times):
            <label>from <input type="date" name="from" value="\(first)" required></label>
            <label>to <input type="date" name="to" value="\(day)" required></label>
            <label>LA <input type="text" name="la" size="4" pattern="[0-9]{3}" placeholder="all"></label>
            <select name="format"><option value="xlsx">XLSX</option><option value="csv">CSV</option></select>
            <button type="submit" id="export-notices">Download</button></form>
            """
    }

    /// Every local authority's term dates as scheduling uses them.
    public static func calendars(_ readiness: Fetched<SchedulingReadiness>, session: StaffSession, now: Date, flash: Flash? = nil) -> String {
        var content =
            "<p>Term dates decide which days are school days. Dates that end within 60 days or are approximate must be replaced by the local authority's published calendar (<code>ENCOMPASS_TERM_DATES_DIR</code>, .json, .csv or .ics; docs/SCHEDULING.md).</p>"
        switch readiness {
        case .unreachable(let why), .refused(let why):
            content += "<p class=\"box error\" id=\"calendars-unavailable\">\(htmlEscape(why))</p>"
        case .ok(let answer):
            let warned = answer.calendars.filter(\.warning).count
            content +=
                "<p id=\"calendars-summary\" class=\"box \(warned > 0 ? "error" : "ok")\">\(answer.calendars.count) local authorities, \(warned) with a warning.</p>"
            var rows = ""
            for calendar in answer.calendars {
                let approximate = calendar.approximateYears.isEmpty ? "no" : "yes: " + calendar.approximateYears.joined(separator: ", ")
                rows += """
                    <tr id="calendar-\(htmlEscape(calendar.la))"\(calendar.warning ? " class=\"flagged\"" : "")><td>\(htmlEscape(calendar.la))</td><td>\(htmlEscape(calendar.name ?? ""))</td>
                    <td>\(htmlEscape(calendar.source))</td><td>\(htmlEscape(calendar.firstDay))</td><td>\(htmlEscape(calendar.lastDay))</td>
                    <td data-field="approximate">\(htmlEscape(approximate))</td><td data-field="days-left">\(calendar.daysLeft)</td>
                    <td>\(calendar.warning ? "<span class=\"flag\">WARNING</span>" : "")</td></tr>
                    """
            }
            content +=
                "<table id=\"calendars\"><tr><th>LA</th><th>Name</th><th>Source</th><th>First day</th><th>Last day</th><th>Approximate</th><th>Days left</th><th></th></tr>\(rows)</table>"
            if !answer.warnings.isEmpty {
                content += "<ul id=\"calendar-warnings\">" + answer.warnings.map { "<li>\(htmlEscape($0))</li>" }.joined() + "</ul>"
            }
        }
        return frame(.calendars, session: session, now: now, flash: flash, content: content)
    }

    /// The local authorities' Operation Encompass contacts (role `encompass`: notices to an
    /// out-of-area school with no contact of its own) and education-otherwise contacts (children
    /// on no school roll), as school resolution holds them.
    public static func laContacts(_ list: Fetched<LAContactsList>, session: StaffSession, now: Date) -> String {
        var content =
            "<p>A notice to a school outside the force's area for which no contact is held goes to its local authority's Operation Encompass contact (role <code>encompass</code>); a child on no school roll becomes a telephone task to the home local authority's <code>education-otherwise</code> contact. With neither held, the notice is a telephone task for the MASH. Import them with <code>encompass schools la-contacts import FILE.csv</code> (la_code, role, name, email, phone; docs/SCHOOLRESOLUTION.md).</p>"
        switch list {
        case .unreachable(let why), .refused(let why):
            content += "<p class=\"box error\" id=\"la-contacts-unavailable\">\(htmlEscape(why))</p>"
        case .ok(let answer):
            let flagged = answer.localAuthorities.filter { $0.contacts.contains { !$0.placeholders.isEmpty } }.count
            content +=
                "<p id=\"la-contacts-summary\" class=\"box \(flagged > 0 || answer.localAuthorities.isEmpty ? "error" : "ok")\">"
                + (answer.localAuthorities.isEmpty
                    ? "No local authority's contacts are held: out-of-area notices and children on no school roll become telephone tasks."
                    : "\(answer.localAuthorities.count) local authorities with contacts, \(flagged) with a placeholder contact.") + "</p>"
            var rows = ""
            for entry in answer.localAuthorities {
                for contact in entry.contacts {
                    let placeholders = contact.placeholders
                    let warning =
                        placeholders.isEmpty
                        ? ""
                        : "<span class=\"flag\">PLACEHOLDER</span> \(htmlEscape(placeholders.joined(separator: ", "))): replace it with the LA's real contact"
                    let imported = htmlEscape(format(entry.updatedAt)) + (entry.source.map { "<br><small>\(htmlEscape($0))</small>" } ?? "")
                    rows +=
                        "<tr data-la=\"\(htmlEscape(entry.laCode))\" data-role=\"\(htmlEscape(contact.role))\"\(placeholders.isEmpty ? "" : " class=\"flagged\"")>"
                        + "<td>\(htmlEscape(entry.laCode))</td><td>\(htmlEscape(entry.localAuthority ?? ""))</td><td>\(htmlEscape(contact.role))</td>"
                        + "<td>\(htmlEscape(contact.name ?? ""))</td><td>\(htmlEscape(contact.email ?? ""))</td><td>\(htmlEscape(contact.phone ?? ""))</td>"
                        + "<td>\(imported)</td><td data-field=\"warning\">\(warning)</td></tr>\n"
                }
            }
            if !rows.isEmpty {
                content +=
                    "<table id=\"la-contacts\"><tr><th>LA</th><th>Name</th><th>Role</th><th>Contact</th><th>Email</th><th>Phone</th><th>Imported</th><th></th></tr>\(rows)</table>"
            }
        }
        return frame(.laContacts, session: session, now: now, flash: nil, content: content)
    }

    // MARK: formatting

    static func count(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value) }

    static func format(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "Europe/London")
        formatter.locale = Locale(identifier: "en_GB")
        formatter.dateFormat = "EEE d MMM yyyy HH:mm"
        return formatter.string(from: date)
    }

    static func time(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "Europe/London")
        formatter.locale = Locale(identifier: "en_GB")
        formatter.dateFormat = "HH:mm"
        return formatter.string(from: date)
    }
}
