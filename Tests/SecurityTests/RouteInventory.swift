import Foundation
import Hummingbird

/// One HTTP route a router serves.
struct Route: Hashable, Comparable, CustomStringConvertible {
    var method: String
    /// As registered, with parameters (`/v1/schools/:urn`).
    var path: String

    var description: String { "\(method) \(path)" }
    static func < (a: Route, b: Route) -> Bool { (a.path, a.method) < (b.path, b.method) }
}

/// The routes registered on a Hummingbird router, read from the router itself, so a route
/// added to any service is enumerated without anyone listing it.
///
/// Hummingbird keeps its routes in a trie it does not publish: this walks it with `Mirror`
/// (router.trie.root → node.children…, node.value = EndpointResponders { path, methods }).
/// If a Hummingbird update changes that layout the walk finds nothing and the test that uses
/// it fails loudly (it requires the health routes to be found), rather than passing vacuously.
enum RouteInventory {
    static func routes<Context>(of router: Router<Context>) -> [Route] {
        guard let trie = child(router, "trie"), let root = child(trie, "root") else { return [] }
        var found: Set<Route> = []
        walk(root, into: &found)
        return found.sorted()
    }

    private static func walk(_ node: Any, into found: inout Set<Route>) {
        if let value = child(node, "value"), let endpoint = unwrap(value),
            let path = child(endpoint, "path"), let methods = child(endpoint, "methods")
        {
            let text = "\(path)"
            for entry in Mirror(reflecting: methods).children {
                // A dictionary's children are (key, value) pairs.
                guard let key = Mirror(reflecting: entry.value).children.first?.value else { continue }
                let method = (key as? HTTPRequest.Method)?.rawValue ?? "\(key)"
                found.insert(Route(method: method, path: text.hasPrefix("/") ? text : "/" + text))
            }
        }
        if let children = child(node, "children") {
            for item in Mirror(reflecting: children).children { walk(item.value, into: &found) }
        }
    }

    private static func child(_ value: Any, _ label: String) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: value)
        while let current = mirror {
            if let match = current.children.first(where: { $0.label == label }) { return match.value }
            mirror = current.superclassMirror
        }
        return nil
    }

    private static func unwrap(_ value: Any) -> Any? {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return value }
        return mirror.children.first?.value
    }
}
