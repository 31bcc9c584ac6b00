import EncompassModels
import EncompassTestSupport
import Foundation
import Testing
import WebSupport

@Suite("Service API client: where each service is, and a service that cannot be reached")
struct ServiceClientTests {
    @Test("a service's URL: its variable, else loopback on its default port; a scaled service's list")
    func baseURLs() {
        #expect(ServiceClient.variable(.schoolResolution) == "ENCOMPASS_SCHOOL_RESOLUTION_URL")
        #expect(ServiceClient.instancesVariable(.dispatch) == "ENCOMPASS_DISPATCH_URLS")
        #expect(ServiceClient.defaultBaseURL(.dispatch, environment: [:]) == "http://127.0.0.1:\(ServiceName.dispatch.defaultHTTPPort)")
        #expect(
            ServiceClient.defaultBaseURL(.dispatch, environment: ["ENCOMPASS_DISPATCH_URL": ""])
                == "http://127.0.0.1:\(ServiceName.dispatch.defaultHTTPPort)")
        #expect(ServiceClient.defaultBaseURL(.intake, environment: ["ENCOMPASS_INTAKE_URL": "http://intake:9000"]) == "http://intake:9000")

        let scaled = ["ENCOMPASS_DISPATCH_URLS": " http://d1:8085, http://d2:8085,,http://d1:8085 ", "ENCOMPASS_DISPATCH_URL": "http://one:8085"]
        #expect(ServiceClient.instanceBaseURLs(.dispatch, environment: scaled) == ["http://d1:8085", "http://d2:8085"])
        #expect(ServiceClient.instanceBaseURLs(.dispatch, environment: ["ENCOMPASS_DISPATCH_URL": "http://one:8085"]) == ["http://one:8085"])
        #expect(ServiceClient.splitURLs(["a,b", "b", " c "]) == ["a", "b", "c"])
    }

    @Test("a service nobody listens for: an error naming the service, its URL and what to set")
    func unreachable() async {
        // A port nothing listens on, handed to this test alone.
        let base = "http://127.0.0.1:\(TestPorts.pipelineBase())"
        var client = ServiceClient(service: .scheduling, baseURL: base, token: "t", timeout: 5)
        client.urlOption = "--url"
        let refused = await #expect(throws: ServiceCallError.self) { _ = try await client.call("GET", "/healthz") }
        let text = refused?.description ?? ""
        #expect(text.contains("scheduling at \(base) could not be reached"), "\(text)")
        #expect(text.contains("ENCOMPASS_SCHEDULING_URL") && text.contains("--url"), "\(text)")

        let notURL = ServiceClient(service: .intake, baseURL: "http://not a host", token: "t")
        let malformed = await #expect(throws: ServiceCallError.self) { _ = try await notURL.call("GET", "/healthz") }
        #expect(malformed?.description.contains("is not a URL; check ENCOMPASS_INTAKE_URL") == true, "\(String(describing: malformed))")
    }

    @Test("a refusal carries the service's own words")
    func refusal() {
        #expect(ServiceClient.refusal(.dispatch, 404, Data(#"{"error":"no such notice"}"#.utf8)) == "dispatch refused (404): no such notice")
        #expect(ServiceClient.refusal(.intake, 500, Data("plain text".utf8)) == "intake refused (500): plain text")
    }
}

@Suite("Pages for browsers: escaping and where a form comes from")
struct PageGuardTests {
    @Test("every character that could open markup or close an attribute is escaped; others pass")
    func escaping() {
        #expect(htmlEscape(#"<a href="x" onclick='y'>&</a>"#) == "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;")
        #expect(htmlEscape("Zoë Ó Briain, 5/6") == "Zoë Ó Briain, 5/6")
    }

    @Test("Origin null is the page's own only with Sec-Fetch-Site same-origin; Sec-Fetch-Site alone decides without Origin")
    func formOrigin() {
        let host = "127.0.0.1:8085"
        #expect(FormOrigin.check(origin: "http://127.0.0.1:8085", fetchSite: nil, host: host, publicURL: nil) == .sameOrigin)
        #expect(FormOrigin.check(origin: "null", fetchSite: "same-origin", host: host, publicURL: nil) == .sameOrigin)
        #expect(FormOrigin.check(origin: "null", fetchSite: nil, host: host, publicURL: nil) != .sameOrigin)
        #expect(
            FormOrigin.check(origin: "https://evil.example", fetchSite: "cross-site", host: host, publicURL: "https://notices.example") != .sameOrigin
        )
        #expect(FormOrigin.check(origin: "javascript:alert(1)", fetchSite: nil, host: host, publicURL: nil) != .sameOrigin)
        #expect(FormOrigin.check(origin: nil, fetchSite: "same-site", host: host, publicURL: nil) != .sameOrigin)
        #expect(FormOrigin.check(origin: nil, fetchSite: "none", host: host, publicURL: nil) == .sameOrigin)
        #expect(FormOrigin.check(origin: "http://127.0.0.1", fetchSite: nil, host: "127.0.0.1:80", publicURL: nil) != .sameOrigin)
    }
}
