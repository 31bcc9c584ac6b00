import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A cookie-keeping HTTP client that does not follow redirects, to check the console's answers exactly.
final class WebClient: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private var jar: [String: String] = [:]
    private var session: URLSession!
    let base: String

    struct Answer {
        var status: Int
        var headers: [String: String]
        var setCookies: [String]
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    init(base: String) {
        self.base = base
        super.init()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpShouldSetCookies = false
        configuration.httpCookieAcceptPolicy = .never
        configuration.timeoutIntervalForRequest = 60
        session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }

    var cookies: [String: String] { lock.withLock { jar } }

    func setCookie(_ name: String, _ value: String?) { lock.withLock { jar[name] = value } }

    func get(_ path: String) async throws -> Answer { try await send("GET", path) }

    func post(_ path: String, form: [String: String]) async throws -> Answer {
        let body = form.sorted { $0.key < $1.key }.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }.joined(separator: "&")
        return try await send("POST", path, body: Data(body.utf8), contentType: "application/x-www-form-urlencoded")
    }

    func postMultipart(_ path: String, fields: [String: String], file: (field: String, name: String, data: Data)) async throws -> Answer {
        let boundary = "----console-test-\(UUID().uuidString)"
        var body = Data()
        for (key, value) in fields {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(key)\"\r\n\r\n\(value)\r\n".utf8))
        }
        body.append(
            Data(
                "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.field)\"; filename=\"\(file.name)\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    .utf8))
        body.append(file.data)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        return try await send("POST", path, body: body, contentType: "multipart/form-data; boundary=\(boundary)")
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~"))) ?? ""
    }

    func send(_ method: String, _ path: String, body: Data? = nil, contentType: String? = nil) async throws -> Answer {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.httpBody = body
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        let cookieHeader = cookies.filter { !$0.value.isEmpty }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        if !cookieHeader.isEmpty { request.setValue(cookieHeader, forHTTPHeaderField: "Cookie") }
        let (data, response) = try await session.data(for: request)
        let http = response as? HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http?.allHeaderFields ?? [:] { headers[String(describing: key).lowercased()] = String(describing: value) }
        // Several Set-Cookie headers may arrive folded into one, comma-separated.
        let setCookies = Self.splitSetCookie(headers["set-cookie"] ?? "")
        for cookie in setCookies {
            let first = cookie.split(separator: ";").first.map(String.init) ?? ""
            let pair = first.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard pair.count == 2 else { continue }
            setCookie(pair[0].trimmingCharacters(in: .whitespaces), pair[1].isEmpty ? nil : pair[1])
        }
        return Answer(status: http?.statusCode ?? 0, headers: headers, setCookies: setCookies, body: data)
    }

    /// Splits a folded Set-Cookie header at the commas that start a new cookie (`, name=`).
    static func splitSetCookie(_ header: String) -> [String] {
        guard !header.isEmpty else { return [] }
        var cookies: [String] = []
        var current = ""
        let parts = header.components(separatedBy: ", ")
        for part in parts {
            if current.isEmpty {
                current = part
                continue
            }
            if part.range(of: #"^[A-Za-z0-9_]+="#, options: .regularExpression) != nil {
                cookies.append(current)
                current = part
            } else {
                current += ", " + part
            }
        }
        if !current.isEmpty { cookies.append(current) }
        return cookies
    }

    /// The value of the hidden `csrf` field of the first form on a page.
    static func csrf(in page: String) -> String? {
        guard let match = page.firstMatch(of: /name="csrf" value="([^"]+)"/) else { return nil }
        return String(match.1)
    }
}
