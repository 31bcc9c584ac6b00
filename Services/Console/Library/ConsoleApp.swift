import EncompassKafka
import EncompassModels
import EncompassSecrets
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import ServiceRuntime
import UnixSignals

typealias HeaderName = HTTPFields.Element.Name

/// The console's request context: Hummingbird's basic one plus the client's address, which the
/// sign-in throttle counts by.
public struct ConsoleRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The console's web app: staff sign-in, the four pages, and the runtime's /healthz, /readyz
/// and /metrics. Every page reads the services live; nothing about children is stored here.
public final class ConsoleApp: Sendable {
    public let settings: ConsoleService.Settings
    public let store: ServiceStore
    public let staff: StaffDirectory
    public let links: ServiceLinks
    public let metrics: ServiceMetrics
    public let logger: Logger
    public let clock: ServiceClock
    private let group = Locked<ServiceGroup?>(nil)
    private let boundPort = Locked<Int?>(nil)
    private let portWaiters = Locked<[CheckedContinuation<Int, Never>]>([])

    static let sessionCookie = "encompass_console"
    static let signInCookie = "encompass_console_signin"
    static let formLimit = 64 * 1024
    static let uploadLimit = 16 * 1024 * 1024

    public init(settings: ConsoleService.Settings, logger: Logger, clock: ServiceClock? = nil) throws {
        var logger = logger
        logger[metadataKey: "service"] = "console"
        self.settings = settings
        self.logger = logger
        self.clock = clock ?? settings.clock
        self.store = try StaffDirectory.openStore(settings)
        self.staff = StaffDirectory(store: store, settings: settings, clock: self.clock)
        self.links = ServiceLinks(settings: settings)
        self.metrics = ServiceMetrics(service: "console")
    }

    // MARK: running

    public func run(handleSignals: Bool = true) async throws {
        if try await staff.bootstrap(), let user = settings.bootstrapUser {
            logger.notice("bootstrap staff account created", metadata: ["staff": .string(user.name), "role": .string(user.role)])
        }
        if settings.apiToken == nil {
            logger.warning("ENCOMPASS_API_TOKEN is not set: the console cannot read the services")
        }
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: "encompass-console"),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? settings.httpPort
                let waiters = portWaiters.withLock { w -> [CheckedContinuation<Int, Never>] in
                    defer { w = [] }
                    return w
                }
                boundPort.withLock { $0 = port }
                waiters.forEach { $0.resume(returning: port) }
                logger.info("http listening", metadata: ["port": "\(port)"])
            },
            logger: logger
        )
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: app, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
            ],
            logger: logger)
        if handleSignals { configuration.gracefulShutdownSignals = [.sigterm, .sigint] }
        let serviceGroup = ServiceGroup(configuration: configuration)
        group.withLock { $0 = serviceGroup }
        let purge = Task { [self] in
            while !Task.isCancelled {
                await purgeOnce()
                try? await Task.sleep(for: settings.retention.interval)
            }
        }
        defer { purge.cancel() }
        logger.info(
            "console starting",
            metadata: ["services": "\(settings.serviceURLs.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value)" })"])
        try await serviceGroup.run()
        logger.info("console stopped")
    }

    /// One run of the retention purge (`ConsoleRetention`), logged; a failure is retried at the next interval.
    @discardableResult
    public func purgeOnce() async -> [String: Int] {
        let now = clock.now()
        do {
            let counts = try await RetentionPurge.run(ConsoleRetention.rules, store: store, settings: settings.retention, now: now)
            let total = counts.values.reduce(0, +)
            if total > 0 {
                logger.notice("personal data purged", metadata: ["purged": "\(total)", "retentionDays": "\(settings.retention.days)"])
            }
            return counts
        } catch {
            logger.error("personal data purge failed; retrying at the next interval", metadata: ["error": "\(error)"])
            return [:]
        }
    }

    public func shutdown() async {
        await group.withLock { $0 }?.triggerGracefulShutdown()
    }

    /// The HTTP port once the server listens (useful with port 0).
    public func httpPort() async -> Int {
        await withCheckedContinuation { continuation in
            if let port = boundPort.withLock({ $0 }) {
                continuation.resume(returning: port)
                return
            }
            portWaiters.withLock { $0.append(continuation) }
            if let port = boundPort.withLock({ $0 }) {
                let pending = portWaiters.withLock { w -> [CheckedContinuation<Int, Never>] in
                    defer { w = [] }
                    return w
                }
                pending.forEach { $0.resume(returning: port) }
            }
        }
    }

    // MARK: routes

    public func makeRouter() -> Router<ConsoleRequestContext> {
        let store = self.store
        let router = HTTPEndpoint.makeRouter(
            context: ConsoleRequestContext.self, service: "console", instanceId: ProcessInfo.processInfo.hostName, metrics: metrics,
            readiness: [
                ReadinessCheck(name: "store") {
                    do {
                        _ = try await store.pool.read { try Int.fetchOne($0, sql: "SELECT 1") }
                        return nil
                    } catch { return "SQLite store unreadable: \(error)" }
                }
            ])
        router.get("static/console.css") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: ConsolePages.stylesheet)))
        }
        router.get("/") { [self] request, _ -> Response in
            try await session(request) == nil ? Self.redirect("/sign-in") : Self.redirect("/overview")
        }
        router.get("sign-in") { [self] request, _ -> Response in
            if try await session(request) != nil { return Self.redirect("/overview") }
            return try signInPage(request, flash: nil, status: .ok)
        }
        router.post("sign-in") { [self] request, context -> Response in try await signIn(request, source: clientAddress(request, context)) }
        router.post("sign-out") { [self] request, _ -> Response in
            try await withForm(request, as: PlainForm.self) { session, _ in
                try await staff.signOut(session)
                logger.notice("staff signed out", metadata: ["staff": .string(session.staffName)])
                return Self.redirect("/sign-in", cookies: [cookie(Self.sessionCookie, "", maxAge: 0)])
            }
        }
        router.get("overview") { [self] request, _ -> Response in
            try await page(request) { session in ConsolePages.overview(await links.overview(), session: session, now: clock.now()) }
        }
        router.get("review") { [self] request, _ -> Response in
            try await page(request) { session in await reviewPage(session) }
        }
        router.post("review/:id/:verdict") { [self] request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            let verdict = context.parameters.get("verdict") ?? ""
            return try await withForm(request, as: NoteForm.self, officer: true) { session, form in
                try await decide(session, proposal: id, verdict: verdict, note: form.note)
            }
        }
        router.get("requests") { [self] request, _ -> Response in
            try await page(request) { session in
                ConsolePages.requests(await links.openRequests(), held: await links.heldAnswers(), session: session, now: clock.now())
            }
        }
        router.post("requests/download") { [self] request, _ -> Response in
            try await withForm(request, as: RequestsDownloadForm.self, officer: true) { session, form in
                try await download(session, lpa: form.lpa ?? "", format: form.format ?? "xlsx")
            }
        }
        router.post("requests/upload") { [self] request, _ -> Response in try await upload(request) }
        router.post("requests/:id/:verdict") { [self] request, context -> Response in
            let id = context.parameters.get("id") ?? "", verdict = context.parameters.get("verdict") ?? ""
            return try await withForm(request, as: NoteForm.self, officer: true) { session, form in
                try await decideHeld(session, request: id, verdict: verdict, note: form.note)
            }
        }
        router.get("notices") { [self] request, _ -> Response in
            try await page(request) { session in
                let now = clock.now()
                let day = CalendarDate(now)
                return ConsolePages.notices(await links.notices(on: day), day: day, session: session, now: now, held: await links.heldNotices())
            }
        }
        router.post("notices/export") { [self] request, _ -> Response in
            try await withForm(request, as: NoticesExportForm.self) { session, form in
                try await exportNotices(
                    session, from: form.from ?? "", to: form.to ?? "", la: form.la.flatMap { $0.isEmpty ? nil : $0 },
                    format: form.format ?? "xlsx")
            }
        }
        router.get("calendars") { [self] request, _ -> Response in
            try await page(request) { session in ConsolePages.calendars(await links.calendars(), session: session, now: clock.now()) }
        }
        router.get("la-contacts") { [self] request, _ -> Response in
            try await page(request) { session in ConsolePages.laContacts(await links.laContacts(), session: session, now: clock.now()) }
        }
        return router
    }

    // MARK: sessions and forms

    func session(_ request: Request) async throws -> StaffSession? {
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty else { return nil }
        return try await staff.session(token: token)
    }

    func cookie(_ name: String, _ value: String, maxAge: Int) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: settings.secureCookies, httpOnly: true, sameSite: .strict)
    }

    /// A URL-encoded form of at most `formLimit` bytes, or the page that says why it was refused.
    static func decodeForm<Form: StaffForm>(_ request: Request, as type: Form.Type) async -> Result<Form, HTMLRefusal> {
        guard let buffer = try? await request.body.collect(upTo: formLimit) else {
            return .failure(HTMLRefusal(response: html(.contentTooLarge, ConsolePages.problem("Form too large", "The form is larger than 64 KiB."))))
        }
        do {
            return .success(try URLEncodedFormDecoder().decode(Form.self, from: String(buffer: buffer)))
        } catch {
            return .failure(
                HTMLRefusal(
                    response: html(
                        .badRequest,
                        ConsolePages.problem(
                            "Form refused", "The form could not be read (\(error)). Go back, reload the page and try again."))))
        }
    }

    /// A page refusing a request, carried as a `Result`'s failure.
    struct HTMLRefusal: Error { let response: Response }

    /// A signed-in page; without a session, to the sign-in page.
    func page(_ request: Request, _ render: (StaffSession) async throws -> String) async throws -> Response {
        guard let session = try await session(request) else { return Self.redirect("/sign-in") }
        return Self.html(.ok, try await render(session))
    }

    /// A signed-in POST with a URL-encoded form carrying the session's CSRF token.
    func withForm<Form: StaffForm>(
        _ request: Request, as type: Form.Type, officer: Bool = false,
        _ body: (StaffSession, Form) async throws -> Response
    ) async throws -> Response {
        guard let session = try await session(request) else {
            return Self.html(.unauthorized, ConsolePages.problem("Signed out", "Your session has ended. Sign in again."))
        }
        let form: Form
        switch await Self.decodeForm(request, as: Form.self) {
        case .success(let decoded): form = decoded
        case .failure(let refusal): return refusal.response
        }
        guard Self.csrfMatches(form.csrf, session.csrfToken) else {
            try await refuseCSRF(session, request)
            return Self.html(
                .forbidden,
                ConsolePages.problem(
                    "Form refused", "This form is stale or did not come from the console (CSRF check). Go back, reload the page and try again."))
        }
        if officer, session.role != "officer" {
            return Self.html(.forbidden, ConsolePages.problem("Not allowed", "Your role (\(session.role)) may look but not act; ask a supervisor."))
        }
        return try await body(session, form)
    }

    func refuseCSRF(_ session: StaffSession?, _ request: Request) async throws {
        let name = session?.staffName ?? "(not signed in)"
        try await staff.audit(name, "csrf-refused", target: request.uri.path, outcome: "refused", detail: "form without the session's CSRF token")
        logger.warning("form refused: CSRF token missing or wrong", metadata: ["staff": .string(name), "path": .string(request.uri.path)])
        countAction("csrf", outcome: "refused")
    }

    static func csrfMatches(_ given: String?, _ expected: String) -> Bool {
        guard let given, !given.isEmpty else { return false }
        return constantTimeEqual(Array(given.utf8), Array(expected.utf8))
    }

    func signInPage(_ request: Request, flash: ConsolePages.Flash?, status: HTTPResponse.Status) throws -> Response {
        // Sign-in's own CSRF token: a cookie the form must repeat (double submit).
        var token = request.cookies[Self.signInCookie]?.value ?? ""
        var cookies: [Cookie] = []
        if token.count != 43 {
            token = try Secrets.newToken()
            cookies.append(cookie(Self.signInCookie, token, maxAge: 3600))
        }
        return Self.html(status, ConsolePages.signIn(csrf: token, flash: flash), cookies: cookies)
    }

    /// Where a sign-in comes from, for the throttle: the TCP peer's address, or behind a trusted
    /// proxy (`ENCOMPASS_CONSOLE_TRUST_FORWARDED_FOR`) the last `X-Forwarded-For` entry, the one
    /// the proxy itself added (a client can write the earlier ones).
    func clientAddress(_ request: Request, _ context: ConsoleRequestContext) -> String {
        if settings.trustForwardedFor, let forwarded = request.headers[HeaderName("X-Forwarded-For")!],
            let last = forwarded.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !last.isEmpty
        {
            return String(last.prefix(64))
        }
        return context.remoteAddress?.ipAddress ?? "unknown"
    }

    func signIn(_ request: Request, source: String) async throws -> Response {
        let form: SignInForm
        switch await Self.decodeForm(request, as: SignInForm.self) {
        case .success(let decoded): form = decoded
        case .failure(let refusal): return refusal.response
        }
        guard let expected = request.cookies[Self.signInCookie]?.value, expected.count == 43, Self.csrfMatches(form.csrf, expected) else {
            try await refuseCSRF(nil, request)
            return try signInPage(
                request, flash: .init("The sign-in form was stale or did not come from the console. Try again.", isError: true), status: .forbidden)
        }
        let name = (form.name ?? "").trimmingCharacters(in: .whitespaces)
        let password = form.password ?? ""
        do {
            let (session, token) = try await staff.signIn(name: name, password: password, source: source)
            logger.notice("staff signed in", metadata: ["staff": .string(session.staffName), "role": .string(session.role)])
            countSignIn("ok")
            return Self.redirect(
                "/overview",
                cookies: [
                    cookie(Self.sessionCookie, token, maxAge: Int(settings.sessionLifetime)),
                    cookie(Self.signInCookie, "", maxAge: 0),
                ])
        } catch let error as StaffError {
            logger.warning("sign-in refused", metadata: ["staff": .string(name), "source": .string(source), "reason": .string(error.description)])
            countSignIn(error == .badCredentials ? "wrong_password" : "throttled")
            let status: HTTPResponse.Status = if case .throttled = error { .tooManyRequests } else { .unauthorized }
            return try signInPage(request, flash: .init(error.description, isError: true), status: status)
        }
    }

    // MARK: staff actions (each audited)

    func decide(_ session: StaffSession, proposal: String, verdict: String, note: String?) async throws -> Response {
        guard verdict == "confirm" || verdict == "reject" else {
            return Self.html(.notFound, ConsolePages.problem("Not found", "Use confirm or reject."))
        }
        let outcome = await links.decide(proposal: proposal, confirm: verdict == "confirm", reviewer: session.staffName, note: note)
        let flash: ConsolePages.Flash
        switch outcome {
        case .ok:
            flash = .init(
                verdict == "confirm"
                    ? "Confirmed: the child goes on to school resolution." : "Rejected: the child will not be notified for this incident.")
            try await record(session, "review-\(verdict)", target: proposal, outcome: "ok", detail: note ?? "")
        case .refused(let why), .unreachable(let why):
            flash = .init(why, isError: true)
            try await record(session, "review-\(verdict)", target: proposal, outcome: "failed", detail: why)
        }
        // Child research applies the decision from its topic: give it a moment before listing.
        try? await Task.sleep(for: .milliseconds(300))
        return Self.html(.ok, await reviewPage(session, flash: flash))
    }

    /// The review queue with the table of past decisions by score.
    func reviewPage(_ session: StaffSession, flash: ConsolePages.Flash? = nil) async -> String {
        async let proposals = links.pendingProposals()
        async let calibration = links.calibration()
        return ConsolePages.review(await proposals, calibration: await calibration, session: session, now: clock.now(), flash: flash)
    }

    func decideHeld(_ session: StaffSession, request: String, verdict: String, note: String?) async throws -> Response {
        guard verdict == "accept" || verdict == "decline" else {
            return Self.html(.notFound, ConsolePages.problem("Not found", "Use accept or decline."))
        }
        let flash: ConsolePages.Flash
        switch await links.decideHeld(request: request, accept: verdict == "accept", reviewer: session.staffName, note: note) {
        case .ok:
            flash = .init(
                verdict == "accept"
                    ? "Accepted: the notice goes to the school Children's Social Care named."
                    : "Declined: the request goes back to Children's Social Care.")
            try await record(session, "csc-answer-\(verdict)", target: request, outcome: "ok", detail: note ?? "")
        case .refused(let why), .unreachable(let why):
            flash = .init(why, isError: true)
            try await record(session, "csc-answer-\(verdict)", target: request, outcome: "failed", detail: why)
        }
        return Self.html(
            .ok, ConsolePages.requests(await links.openRequests(), held: await links.heldAnswers(), session: session, now: clock.now(), flash: flash))
    }

    func download(_ session: StaffSession, lpa: String, format: String) async throws -> Response {
        guard format == "xlsx" || format == "csv", !lpa.isEmpty else {
            return Self.html(.badRequest, ConsolePages.problem("Cannot download", "Choose a local policing area and XLSX or CSV."))
        }
        switch await links.exportRequests(lpa: lpa, format: format, day: CalendarDate(clock.now())) {
        case .ok(let sheet):
            return try await sheetDownload(sheet, session, action: "csc-download", target: lpa, counting: "request")
        case .refused(let why), .unreachable(let why):
            try await record(session, "csc-download", target: lpa, outcome: "failed", detail: why)
            return Self.html(
                .badGateway, ConsolePages.requests(await links.openRequests(), session: session, now: clock.now(), flash: .init(why, isError: true)))
        }
    }

    /// The Navigator's audit spreadsheet, from dispatch; any role may download it (it holds no
    /// child's name or address), and each download is in the staff audit.
    func exportNotices(_ session: StaffSession, from: String, to: String, la: String?, format: String) async throws -> Response {
        let now = clock.now()
        let day = CalendarDate(now)
        guard format == "xlsx" || format == "csv", CalendarDate(iso: from) != nil, CalendarDate(iso: to) != nil else {
            return Self.html(
                .badRequest,
                ConsolePages.notices(
                    await links.notices(on: day), day: day, session: session, now: now,
                    flash: .init("Give both dates (YYYY-MM-DD) and XLSX or CSV.", isError: true)))
        }
        let target = "\(from)..\(to)\(la.map { " LA \($0)" } ?? "")"
        switch await links.exportNotices(from: from, to: to, la: la, format: format) {
        case .ok(let sheet):
            return try await sheetDownload(sheet, session, action: "notices-export", target: target, counting: "notice")
        case .refused(let why), .unreachable(let why):
            try await record(session, "notices-export", target: target, outcome: "failed", detail: why)
            return Self.html(
                .badGateway,
                ConsolePages.notices(
                    await links.notices(on: day), day: day, session: session, now: now,
                    flash: .init(why, isError: true), held: await links.heldNotices()))
        }
    }

    /// A spreadsheet as a download, recorded in the staff audit (`action` on `target`, with the
    /// file's name and how many `counting` rows it has when known).
    func sheetDownload(_ sheet: CSCSheet, _ session: StaffSession, action: String, target: String, counting noun: String) async throws -> Response {
        try await record(
            session, action, target: target, outcome: "ok",
            detail: "\(sheet.fileName)\(sheet.requests >= 0 ? ", \(sheet.requests) \(noun)(s)" : "")")
        var headers = Self.securityHeaders
        headers[.contentType] = sheet.contentType
        headers[.contentDisposition] = "attachment; filename=\"\(sheet.fileName)\""
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: sheet.data)))
    }

    func upload(_ request: Request) async throws -> Response {
        guard let session = try await session(request) else {
            return Self.html(.unauthorized, ConsolePages.problem("Signed out", "Your session has ended. Sign in again."))
        }
        guard let boundary = FormData.boundary(contentType: request.headers[.contentType] ?? "") else {
            try await refuseCSRF(session, request)
            return Self.html(.forbidden, ConsolePages.problem("Form refused", "Upload the sheet with the console's form."))
        }
        guard let buffer = try? await request.body.collect(upTo: Self.uploadLimit) else {
            return Self.html(.contentTooLarge, ConsolePages.problem("File too large", "A returned sheet may be at most 16 MiB."))
        }
        let parts: [FormData.Part]
        do { parts = try FormData.multipart(Data(buffer.readableBytesView), boundary: boundary) } catch {
            return Self.html(.badRequest, ConsolePages.problem("Upload refused", error.description))
        }
        let csrf = parts.first { $0.name == "csrf" }.map { String(decoding: $0.data, as: UTF8.self) }
        guard Self.csrfMatches(csrf, session.csrfToken) else {
            try await refuseCSRF(session, request)
            return Self.html(
                .forbidden,
                ConsolePages.problem(
                    "Form refused", "This form is stale or did not come from the console (CSRF check). Go back, reload the page and try again."))
        }
        guard session.role == "officer" else {
            return Self.html(.forbidden, ConsolePages.problem("Not allowed", "Your role (\(session.role)) may look but not act; ask a supervisor."))
        }
        guard let sheet = parts.first(where: { $0.name == "sheet" }), !sheet.data.isEmpty else {
            return Self.html(
                .badRequest,
                ConsolePages.requests(
                    await links.openRequests(), session: session, now: clock.now(),
                    flash: .init("Choose the sheet CSC returned (XLSX or CSV).", isError: true)))
        }
        let name = Self.safeFileName(sheet.fileName ?? "returned.xlsx")
        switch await links.importReturned(sheet.data, name: name) {
        case .ok(let answer):
            let rejected = answer.answers.filter { $0.outcome == "rejected" }.count
            try await record(session, "csc-upload", target: name, outcome: "ok", detail: "\(answer.answers.count) row(s), \(rejected) rejected")
            try? await Task.sleep(for: .milliseconds(200))
            return Self.html(
                .ok,
                ConsolePages.requests(
                    await links.openRequests(), held: await links.heldAnswers(), imported: answer, session: session, now: clock.now(),
                    flash: .init("\(name): \(answer.answers.count - rejected) row(s) accepted, \(rejected) rejected.", isError: rejected > 0)))
        case .refused(let why), .unreachable(let why):
            try await record(session, "csc-upload", target: name, outcome: "failed", detail: why)
            return Self.html(
                .ok, ConsolePages.requests(await links.openRequests(), session: session, now: clock.now(), flash: .init(why, isError: true)))
        }
    }

    static func safeFileName(_ name: String) -> String {
        let base = (name as NSString).lastPathComponent
        let cleaned = String(base.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(100))
        return cleaned.isEmpty ? "returned.xlsx" : cleaned
    }

    func record(_ session: StaffSession, _ action: String, target: String, outcome: String, detail: String) async throws {
        try await staff.audit(session.staffName, action, target: target, outcome: outcome, detail: detail)
        logger.notice(
            "staff action",
            metadata: ["staff": .string(session.staffName), "action": .string(action), "target": .string(target), "outcome": .string(outcome)])
        countAction(action, outcome: outcome)
    }

    func countAction(_ action: String, outcome: String) {
        metrics.registry.makeCounter(
            descriptor: .init(metricName: "encompass_console_actions", unitName: "total", helpText: "Staff actions through the console, by outcome"),
            labels: [("action", action), ("outcome", outcome)]
        ).increment()
    }

    func countSignIn(_ outcome: String) {
        metrics.registry.makeCounter(
            descriptor: .init(metricName: "encompass_console_sign_ins", unitName: "total", helpText: "Sign-in attempts, by outcome"),
            labels: [("outcome", outcome)]
        ).increment()
    }

    // MARK: responses

    static let securityHeaders: HTTPFields = [
        .cacheControl: "no-store, max-age=0",
        HeaderName("Content-Security-Policy")!:
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HeaderName("X-Content-Type-Options")!: "nosniff",
        HeaderName("X-Frame-Options")!: "DENY",
        HeaderName("Referrer-Policy")!: "no-referrer",
    ]

    static func html(_ status: HTTPResponse.Status, _ body: String, cookies: [Cookie] = []) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        var response = Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        for cookie in cookies { response.setCookie(cookie) }
        return response
    }

    static func redirect(_ location: String, cookies: [Cookie] = []) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        var response = Response(status: .seeOther, headers: headers)
        for cookie in cookies { response.setCookie(cookie) }
        return response
    }
}
