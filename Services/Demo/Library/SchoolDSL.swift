import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A school's designated safeguarding lead as the demo plays them: opens the link of a notice
/// email, signs in to the notice page with the school's password and presses a button there,
/// through the same HTML forms a browser posts (the session cookie and the page's form token).
public struct SchoolDSL: Sendable {
    public let name: String
    let password: String

    public init(name: String, password: String) {
        self.name = name
        self.password = password
    }

    public struct PageError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The notice-page link in an email (`…/notice/<token>`), if any.
    public static func link(inMail text: String) -> String? {
        text.firstMatch(of: /https?:\/\/[^\s<>"]+\/notice\/[A-Za-z0-9_-]+/).map { String($0.output) }
    }

    /// Signs in at `link`; the notice page (HTML) and what its buttons need.
    public func signIn(_ link: String) async throws -> (page: String, cookie: String, csrf: String) {
        let (status, page, setCookie) = try await post(link, form: ["action": "sign-in", "name": name, "password": password], cookie: nil)
        guard status == 200, let cookie = setCookie?.split(separator: ";").first.map(String.init),
            let csrf = page.firstMatch(of: /name="csrf" value="([^"]+)"/).map({ String($0.1) })
        else {
            throw PageError(description: "signing in at the notice page \(link) failed (HTTP \(status)); see dispatch's log")
        }
        return (page, cookie, csrf)
    }

    /// Presses "This pupil no longer attends" on the signed-in notice page.
    public func noLongerAttends(_ link: String, cookie: String, csrf: String) async throws {
        let (status, _, _) = try await post(link, form: ["action": "no-longer-attends", "csrf": csrf], cookie: cookie)
        guard status == 200 else { throw PageError(description: "\"no longer attends\" at \(link) was refused (HTTP \(status)); see dispatch's log") }
    }

    func post(_ link: String, form: [String: String], cookie: String?) async throws -> (Int, String, String?) {
        guard let url = URL(string: link) else { throw PageError(description: "'\(link)' is not a link") }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.timeoutInterval = 60
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_.~"))
        request.httpBody = Data(
            form.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&").utf8)
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        if let cookie { request.setValue(cookie, forHTTPHeaderField: "Cookie") }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpShouldSetCookies = false
        configuration.httpCookieAcceptPolicy = .never
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        let (data, response) = try await session.data(for: request)
        let http = response as? HTTPURLResponse
        return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), http?.value(forHTTPHeaderField: "Set-Cookie"))
    }
}
