import EncompassModels
import EncompassSecrets
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import ServiceRuntime
import WebSupport

typealias HeaderName = HTTPFields.Element.Name

/// The notice pages a school's DSL sees: plain server-rendered HTML, no JavaScript, every value escaped.
public enum NoticeHTML {
    static let style = """
        body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#111;line-height:1.45}
        h1{font-size:1.5rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
        .box{border:1px solid #bbb;border-radius:6px;padding:1rem;margin:1rem 0}.error{border-color:#b00;color:#800}
        .ok{border-color:#070;color:#050}button{font-size:1rem;padding:.5rem 1rem;margin:.3rem .5rem .3rem 0}
        label{display:block;margin:.6rem 0 .2rem}input{font-size:1rem;padding:.3rem;width:20rem;max-width:100%}
        """

    static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer"><title>\(htmlEscape(title))</title><style>\(style)</style></head>
        <body>\(body)</body></html>
        """
    }

    public static func signIn(account: String, schoolName: String, message: String?, isError: Bool) -> String {
        let note = message.map { "<p class=\"box \(isError ? "error" : "ok")\" role=\"alert\">\(htmlEscape($0))</p>" } ?? ""
        let accountLabel =
            NoticeAccount.educationSafeguardingManagerForce(account) != nil
            ? "Education Safeguarding Manager"
            : account.hasPrefix("LA") ? "Local authority" : "School URN"
        return page(
            title: "Operation Encompass notice: sign in",
            body: """
                <h1>Operation Encompass notice</h1>
                <p>A notice is waiting for <strong>\(htmlEscape(schoolName))</strong>. Sign in with your school's Operation Encompass password.</p>
                \(note)
                <form method="post" class="box">
                <input type="hidden" name="action" value="sign-in">
                <p>\(accountLabel): <strong id="urn">\(htmlEscape(account))</strong></p>
                <label for="name">Your name</label><input id="name" name="name" autocomplete="name" required maxlength="120">
                <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
                <p><button type="submit" id="sign-in">Sign in</button></p>
                </form>
                """)
    }

    /// `csrf`: the session's token, which both forms carry.
    public static func notice(
        _ content: NoticeContent, account: String, signedInAs: String, csrf: String, acknowledgedAt: Date?, acknowledgedBy: String?,
        feedbackAt: Date?, message: String?
    ) -> String {
        let token = "<input type=\"hidden\" name=\"csrf\" value=\"\(htmlEscape(csrf))\">"
        var rows = ""
        for line in content.lines {
            rows += "<dt>\(htmlEscape(line.label))</dt><dd data-field=\"\(htmlEscape(line.field))\">\(htmlEscape(line.value))</dd>\n"
        }
        let wording = content.wording.map { "<p>\(htmlEscape($0))</p>" }.joined(separator: "\n")
        let note = message.map { "<p class=\"box ok\" role=\"status\" id=\"message\">\(htmlEscape($0))</p>" } ?? ""
        var actions = ""
        if let acknowledgedAt {
            actions +=
                "<p class=\"box ok\" id=\"acknowledged\">Acknowledged by \(htmlEscape(acknowledgedBy ?? "the school")) on \(htmlEscape(NoticeFormat.dateTime(acknowledgedAt))).</p>"
        } else {
            actions += """
                <form method="post"><input type="hidden" name="action" value="acknowledge">\(token)
                <button type="submit" id="acknowledge">Acknowledge this notice</button></form>
                """
        }
        if let feedbackAt {
            actions +=
                "<p class=\"box ok\" id=\"no-longer-attends-done\">You told us on \(htmlEscape(NoticeFormat.dateTime(feedbackAt))) that this pupil no longer attends. Thank you: the MASH will find the right school.</p>"
        } else {
            actions += """
                <form method="post"><input type="hidden" name="action" value="no-longer-attends">\(token)
                <button type="submit" id="no-longer-attends">This pupil no longer attends</button></form>
                """
        }
        return page(
            title: content.title,
            body: """
                <h1>\(htmlEscape(content.title))</h1>
                <p>From \(htmlEscape(content.senderName)) to \(htmlEscape(content.schoolName)) (\(htmlEscape(account))). Signed in as \(htmlEscape(signedInAs)).</p>
                \(note)
                <dl class="box" id="notice">
                \(rows)</dl>
                \(wording)
                \(actions)
                """)
    }

    public static func problem(_ title: String, _ text: String) -> String {
        page(title: title, body: "<h1>\(htmlEscape(title))</h1><p class=\"box error\">\(htmlEscape(text))</p>")
    }
}

/// GET/POST /notice/{token}: sign in with the school's password, read, acknowledge, or report
/// that the pupil no longer attends.
struct NoticePage: Sendable {
    let settings: DispatchService.Settings
    let environment: ServiceEnvironment

    static let cookieName = "encompass_notice"

    func register(on router: Router<BasicRequestContext>) {
        router.get("notice/:token") { request, context -> Response in
            try await show(request, token: context.parameters.get("token") ?? "")
        }
        router.post("notice/:token") { request, context -> Response in
            try await act(request, token: context.parameters.get("token") ?? "")
        }
    }

    static func html(_ status: HTTPResponse.Status, _ body: String, cookie: Cookie? = nil) -> Response {
        let headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store, max-age=0",
            HeaderName("Pragma")!: "no-cache",
            HeaderName("Content-Security-Policy")!:
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            HeaderName("X-Content-Type-Options")!: "nosniff",
            HeaderName("X-Frame-Options")!: "DENY",
            HeaderName("Referrer-Policy")!: "no-referrer",
        ]
        var response = Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        if let cookie { response.setCookie(cookie) }
        return response
    }

    enum Lookup {
        case found(NoticeRow)
        case unknown
        case expired(NoticeRow)
    }

    func lookup(_ token: String, now: Date) async throws -> Lookup {
        guard token.count >= 32, token.count <= 64, token.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            return .unknown
        }
        let hash = Secrets.sha256Hex(token)
        guard
            let notice = try await environment.store.pool.read({ db in
                try NoticeRow.filter(Column("linkTokenHash") == hash).fetchOne(db)
            })
        else { return .unknown }
        if let expires = notice.linkExpiresAt, expires <= now { return .expired(notice) }
        return .found(notice)
    }

    static let unknownLink = html(
        .notFound,
        NoticeHTML.problem(
            "Link not recognised", "This notice link is not valid. Check that you copied the whole link from the email, or contact the MASH."))

    func expiredLink(_ notice: NoticeRow) async throws -> Response {
        let now = environment.clock.now()
        try await environment.store.pool.write { db in
            try Audit.recordLocal("link-expired", notice: notice, detail: "expired link opened", db: db, now: now)
        }
        return Self.html(.gone, NoticeHTML.problem("Link expired", "This notice link has expired. Contact the MASH, who can send the notice again."))
    }

    /// The signed-in session for this notice, if the request's cookie carries one.
    func session(_ request: Request, notice: NoticeRow, now: Date) async throws -> NoticeSession? {
        guard let value = request.cookies[Self.cookieName]?.value, !value.isEmpty else { return nil }
        let hash = Secrets.sha256Hex(value)
        return try await environment.store.pool.read { db in
            try NoticeSession.filter(Column("sessionHash") == hash && Column("noticeId") == notice.noticeId && Column("expiresAt") > now).fetchOne(db)
        }
    }

    func show(_ request: Request, token: String) async throws -> Response {
        let now = environment.clock.now()
        switch try await lookup(token, now: now) {
        case .unknown: return Self.unknownLink
        case .expired(let notice): return try await expiredLink(notice)
        case .found(let notice):
            if let session = try await session(request, notice: notice, now: now) {
                return try await showNotice(notice, session: session, message: nil, now: now)
            }
            try await environment.store.pool.write { db in
                try Audit.recordLocal("link-opened", notice: notice, detail: "sign-in page shown", db: db, now: now)
            }
            return Self.html(.ok, NoticeHTML.signIn(account: notice.account, schoolName: notice.schoolName, message: nil, isError: false))
        }
    }

    func showNotice(
        _ notice: NoticeRow, session: NoticeSession, message: String?, now: Date, status: HTTPResponse.Status = .ok, cookie: Cookie? = nil
    ) async throws -> Response {
        // Every view is audited (a NoticeEvent `viewed`).
        let fresh = try await environment.write { db, outbox -> NoticeRow in
            let current = try NoticeRow.fetchOne(db, key: notice.noticeId) ?? notice
            try Audit.record(
                .viewed, notice: current, detail: "viewed by \(session.signedInAs) (\(current.account))",
                eventId: MessageID.fresh(), db: db, outbox: outbox, now: now)
            return current
        }
        let content = try fresh.decodedContent()
        return Self.html(
            status,
            NoticeHTML.notice(
                content, account: fresh.account, signedInAs: session.signedInAs, csrf: session.csrfToken,
                acknowledgedAt: fresh.acknowledgedAt, acknowledgedBy: fresh.acknowledgedBy,
                feedbackAt: fresh.feedbackAt, message: message), cookie: cookie)
    }

    func client(_ request: Request) -> String {
        if settings.trustForwardedFor, let forwarded = request.headers[HeaderName("X-Forwarded-For")!] {
            return String(forwarded.split(separator: ",").first ?? "").trimmingCharacters(in: .whitespaces)
        }
        return "any"
    }

    func act(_ request: Request, token: String) async throws -> Response {
        let now = environment.clock.now()
        let notice: NoticeRow
        switch try await lookup(token, now: now) {
        case .unknown: return Self.unknownLink
        case .expired(let row): return try await expiredLink(row)
        case .found(let row): notice = row
        }
        if case .crossSite(let claim) = FormOrigin.check(request, publicURL: settings.publicURL) {
            return try await refuseForm(notice, why: "from another site (\(claim))", now: now)
        }
        guard let buffer = try? await request.body.collect(upTo: 16 * 1024) else {
            return Self.html(.contentTooLarge, NoticeHTML.problem("Request too large", "The form was too large."))
        }
        let form: NoticeForm
        do { form = try NoticeForm(body: String(buffer: buffer)) } catch {
            return Self.html(
                .badRequest, NoticeHTML.problem("Form not understood", "The form could not be read (\(error)). Open the link again and retry."))
        }
        switch form.action ?? "" {
        case "sign-in":
            return try await signIn(notice, form: form, client: client(request), now: now)
        case "acknowledge", "no-longer-attends":
            guard let session = try await session(request, notice: notice, now: now) else {
                return Self.html(
                    .unauthorized,
                    NoticeHTML.signIn(
                        account: notice.account, schoolName: notice.schoolName,
                        message: "Your session has ended: sign in again.", isError: true))
            }
            guard !session.csrfToken.isEmpty, let given = form.csrf,
                constantTimeEqual(Array(given.utf8), Array(session.csrfToken.utf8))
            else {
                return try await refuseForm(notice, why: "without this session's form token", now: now)
            }
            if form.action == "acknowledge" { return try await acknowledge(notice, session: session, now: now) }
            return try await noLongerAttends(notice, session: session, now: now)
        default:
            return Self.html(.badRequest, NoticeHTML.problem("Unknown action", "The form sent an action this page does not know."))
        }
    }

    /// A form that did not come from this notice's own page (another site's, or a stale one):
    /// nothing is done, the refusal is audited (`form-refused`), and the school is told what to do.
    func refuseForm(_ notice: NoticeRow, why: String, now: Date) async throws -> Response {
        try await environment.store.pool.write { db in
            try Audit.recordLocal("form-refused", notice: notice, detail: "form refused: \(why)", db: db, now: now)
        }
        environment.logger.warning("notice form refused", metadata: ["noticeId": .string(notice.noticeId), "reason": .string(why)])
        return Self.html(
            .forbidden,
            NoticeHTML.problem(
                "Form refused",
                "This form did not come from this notice's page, or the page is out of date. Open the link from the email again, sign in, and press the button there."
            ))
    }

    func signIn(_ notice: NoticeRow, form: NoticeForm, client: String, now: Date) async throws -> Response {
        let name = (form.name ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let password = form.password ?? ""
        // Wrong passwords count per account (the school, or LA<code>) and client: every link to
        // one school shares the same tries.
        let account = notice.account
        let throttle = try await environment.store.pool.read { db in
            try SignInThrottle.fetchOne(db, key: ["account": account, "client": client])
        }
        if let until = throttle?.lockedUntil, until > now {
            try await environment.store.pool.write { db in
                try Audit.recordLocal(
                    "sign-in-locked", notice: notice, detail: "sign-in refused: locked until \(Timestamp.format(until))", db: db, now: now)
            }
            return Self.html(
                .tooManyRequests,
                NoticeHTML.signIn(
                    account: notice.account, schoolName: notice.schoolName,
                    message:
                        "Too many wrong passwords. Sign-in is locked until \(NoticeFormat.dateTime(until)); contact the MASH if you need the notice sooner.",
                    isError: true))
        }
        guard !name.isEmpty, name.count <= 120 else {
            return Self.html(
                .unprocessableContent,
                NoticeHTML.signIn(
                    account: notice.account, schoolName: notice.schoolName,
                    message: "Enter your name (up to 120 characters).", isError: true))
        }
        let stored = try await environment.store.pool.read { db in try SchoolPassword.fetchOne(db, key: account) }
        // Hash even without a stored password so the answer takes the same time.
        let candidate = stored?.hash ?? Self.dummyHash
        let matches = (try? await Secrets.verifyPassword(password, stored: candidate)) ?? false
        guard matches, stored != nil else {
            let settings = self.settings
            let locked = try await environment.store.pool.write { db -> Date? in
                var row =
                    try SignInThrottle.fetchOne(db, key: ["account": account, "client": client])
                    ?? SignInThrottle(account: account, client: client, failures: 0, lockedUntil: nil, updatedAt: now)
                row.failures += 1
                row.updatedAt = now
                var lockedUntil: Date?
                if row.failures >= settings.maxFailedSignIns {
                    lockedUntil = now.addingTimeInterval(settings.lockDuration)
                    row.lockedUntil = lockedUntil
                    row.failures = 0
                }
                try row.save(db)
                try Audit.recordLocal(
                    "sign-in-refused", notice: notice, detail: "wrong password\(stored == nil ? " (no password set for \(account))" : "")", db: db,
                    now: now)
                if let lockedUntil {
                    try Audit.recordLocal(
                        "sign-in-locked", notice: notice,
                        detail: "\(settings.maxFailedSignIns) wrong passwords: locked until \(Timestamp.format(lockedUntil))", db: db, now: now)
                }
                return lockedUntil
            }
            if let locked {
                return Self.html(
                    .tooManyRequests,
                    NoticeHTML.signIn(
                        account: notice.account, schoolName: notice.schoolName,
                        message:
                            "Too many wrong passwords. Sign-in is locked until \(NoticeFormat.dateTime(locked)); contact the MASH if you need the notice sooner.",
                        isError: true))
            }
            return Self.html(
                .unauthorized,
                NoticeHTML.signIn(
                    account: notice.account, schoolName: notice.schoolName,
                    message: "That password is not right for \(notice.account). Try again.", isError: true))
        }
        let secret = try Secrets.newToken()
        let session = NoticeSession(
            sessionHash: Secrets.sha256Hex(secret), noticeId: notice.noticeId, signedInAs: name,
            createdAt: now, expiresAt: now.addingTimeInterval(settings.sessionLifetime), csrfToken: try Secrets.newToken())
        try await environment.store.pool.write { db in
            try session.insert(db)
            try SignInThrottle.filter(Column("account") == account && Column("client") == client).deleteAll(db)
            try NoticeSession.filter(Column("expiresAt") <= now).deleteAll(db)
        }
        let cookie = Cookie(
            name: Self.cookieName, value: secret, maxAge: Int(settings.sessionLifetime), path: settings.noticeCookiePath,
            secure: settings.publicURL.hasPrefix("https:"), httpOnly: true, sameSite: .strict)
        return try await showNotice(notice, session: session, message: nil, now: now, cookie: cookie)
    }

    func acknowledge(_ notice: NoticeRow, session: NoticeSession, now: Date) async throws -> Response {
        try await environment.write { db, outbox in
            guard var current = try NoticeRow.fetchOne(db, key: notice.noticeId), current.acknowledgedAt == nil else { return }
            current.acknowledgedAt = now
            current.acknowledgedBy = session.signedInAs
            if current.state == .sent || current.state == .pending || current.state == .uncertain { current.state = .acknowledged }
            try current.update(db)
            try Audit.record(
                .acknowledged, notice: current, detail: "acknowledged by \(session.signedInAs) (\(current.account))",
                eventId: MessageID.derived(from: current.noticeId, "acknowledged"), db: db, outbox: outbox, now: now)
        }
        return try await showNotice(notice, session: session, message: "Thank you: the notice is acknowledged.", now: now)
    }

    func noLongerAttends(_ notice: NoticeRow, session: NoticeSession, now: Date) async throws -> Response {
        try await environment.write { db, outbox in
            guard var current = try NoticeRow.fetchOne(db, key: notice.noticeId), current.feedbackAt == nil else { return }
            current.feedbackAt = now
            current.state = .noLongerAttends
            try current.update(db)
            let feedbackId = MessageID.derived(from: current.noticeId, "no-longer-attends")
            try outbox.publish(
                SchoolFeedback(
                    childId: current.childId, noticeId: current.noticeId, schoolURN: current.schoolURN, kind: .noLongerAttends,
                    reportedAt: now, reportedBy: "\(session.signedInAs) (\(current.account))"),
                to: Topics.schoolFeedback.name, key: current.childId, id: feedbackId, now: now)
            try Audit.record(
                .feedback, notice: current, detail: "no longer attends, reported by \(session.signedInAs)",
                eventId: MessageID.derived(from: current.noticeId, "feedback"), causationId: feedbackId, db: db, outbox: outbox, now: now)
        }
        return try await showNotice(notice, session: session, message: "Thank you: the MASH will find the pupil's current school.", now: now)
    }

    /// A hash of a random password, checked when an account has no password (same timing).
    /// (a fixed hash of random bytes nobody knows).
    static let dummyHash = "pbkdf2-sha256$210000$SLPZte0RtHr/CfM2QYEFCQ==$zCICS1D3yK+bbHvQsJqd5QZGgJ4ZebTB7/VS+IzI0S0="
}

/// The notice page's form (`application/x-www-form-urlencoded`, decoded by Hummingbird's
/// `URLEncodedFormDecoder`): `sign-in` with name and password, `acknowledge` and
/// `no-longer-attends` with the session's CSRF token.
struct NoticeForm: Decodable, Sendable {
    var action: String?
    var csrf: String?
    var name: String?
    var password: String?

    init(body: String) throws {
        self = try URLEncodedFormDecoder().decode(NoticeForm.self, from: body)
    }
}
