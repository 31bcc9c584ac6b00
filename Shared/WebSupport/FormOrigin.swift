import Foundation
import Hummingbird

/// Where a browser says a form POST comes from, checked against where the page lives: the
/// second guard against cross-site request forgery beside each form's CSRF token.
///
/// Browsers send `Origin` with every form POST, and `Sec-Fetch-Site` with most. A POST is
/// accepted when its `Origin` is the origin of the service's public URL, or the scheme-less
/// `host[:port]` the request was sent to (`Host`, as a browser sees the service when no proxy
/// renames it). Any other origin is refused, and so is `Origin: null` (sandboxed frames, `data:`
/// pages, another site's page with no referrer) unless `Sec-Fetch-Site` is `same-origin`: a
/// page of ours, whose `no-referrer` policy makes Chromium send `null`. Without `Origin`, a
/// `Sec-Fetch-Site` other than `same-origin` or `none` is refused; a client sending neither
/// (curl, an old browser) is left to the CSRF token.
public enum FormOrigin {
    public enum Verdict: Sendable, Equatable {
        case sameOrigin
        /// No `Origin` nor `Sec-Fetch-Site`: not a browser's cross-site form, the CSRF token decides.
        case unstated
        /// Refused, with what the request claimed.
        case crossSite(String)
    }

    public static func check(_ request: Request, publicURL: String?) -> Verdict {
        check(
            origin: request.headers[HTTPFields.Element.Name("Origin")!], fetchSite: request.headers[HTTPFields.Element.Name("Sec-Fetch-Site")!],
            host: request.head.authority, publicURL: publicURL)
    }

    public static func check(origin: String?, fetchSite: String?, host: String?, publicURL: String?) -> Verdict {
        let site = fetchSite?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        if let origin = origin?.trimmingCharacters(in: .whitespaces), !origin.isEmpty {
            // A page served with `Referrer-Policy: no-referrer` (as ours are) makes Chromium send
            // `Origin: null` with its own forms; `Sec-Fetch-Site` (which no page can set) then says
            // whether the form was the site's own. A sandboxed frame's or another site's is not.
            if origin == "null" {
                return site == "same-origin"
                    ? .sameOrigin : .crossSite("Origin: null, Sec-Fetch-Site: \(site.isEmpty ? "none given" : String(site.prefix(40)))")
            }
            guard let claimed = Origin(origin) else { return .crossSite("Origin: \(origin.prefix(200))") }
            if let publicURL, let own = Origin(publicURL), own == claimed { return .sameOrigin }
            if let host, claimed.authority == host.lowercased() { return .sameOrigin }
            return .crossSite("Origin: \(origin.prefix(200))")
        }
        if !site.isEmpty {
            return site == "same-origin" || site == "none" ? .sameOrigin : .crossSite("Sec-Fetch-Site: \(site.prefix(40))")
        }
        return .unstated
    }

    /// scheme, host and port of a URL or an `Origin` value (the port made explicit).
    struct Origin: Equatable {
        let scheme: String
        let host: String
        let port: Int

        init?(_ text: String) {
            guard let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased(), let host = parts.host?.lowercased(),
                !host.isEmpty, scheme == "http" || scheme == "https"
            else { return nil }
            self.scheme = scheme
            self.host = host
            self.port = parts.port ?? (scheme == "https" ? 443 : 80)
        }

        /// As in a `Host` header: the port only when it is not the scheme's default.
        var authority: String { port == (scheme == "https" ? 443 : 80) ? host : "\(host):\(port)" }
    }
}
