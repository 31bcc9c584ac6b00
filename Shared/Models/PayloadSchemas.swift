import Foundation

/// Every message schema of the pipeline by name, so a tool can check any envelope without
/// knowing its topic (an edited dead letter before replay, a fuzz pass).
public enum PayloadSchemas {
    typealias Reader = @Sendable ([UInt8]) throws -> Void

    /// Decoders by schema name; each throws `EnvelopeError`.
    private static let registry = Registry()

    private final class Registry: @unchecked Sendable {
        private let lock = NSLock()
        private var readers: [String: Reader] = PayloadSchemas.builtIn
        func reader(_ schema: String) -> Reader? { lock.withLock { readers[schema] } }
        func add(_ schema: String, _ reader: @escaping Reader) { lock.withLock { readers[schema] = reader } }
        var names: [String] { lock.withLock { readers.keys.sorted() } }
    }

    /// Adds a schema defined outside this module (a test's, a tool's).
    public static func register<P: MessagePayload>(_ type: P.Type) {
        registry.add(P.schema) { bytes in _ = try WireFormat.decode(P.self, from: bytes) }
    }

    private static let builtIn: [String: Reader] = {
        var readers: [String: Reader] = [:]
        func add<P: MessagePayload>(_ type: P.Type) {
            readers[P.schema] = { bytes in _ = try WireFormat.decode(P.self, from: bytes) }
        }
        add(Incident.self)
        add(IncidentRecorded.self)
        add(HistoricalIncident.self)
        add(ChildIdentified.self)
        add(ReviewDecision.self)
        add(NoticeRequested.self)
        add(NoticeCancelled.self)
        add(LocalAuthorityContacts.self)
        add(NoticeDue.self)
        add(NoticeEvent.self)
        add(SchoolFeedback.self)
        add(AccountPassword.self)
        add(DeadLetterEvent.self)
        return readers
    }()

    public static var names: [String] { registry.names }

    /// Checks an envelope of any known schema: JSON, header fields, version, payload shape and
    /// the payload's own validation. Returns the schema name.
    @discardableResult
    public static func validate(_ bytes: [UInt8]) throws(EnvelopeError) -> String {
        struct Header: Decodable { var schema: String? }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(bytes))
        } catch {
            throw .notJSON(WireFormat.describe(error))
        }
        guard let schema = header.schema else { throw .missingField("schema") }
        guard let read = registry.reader(schema) else {
            throw .invalidPayload("unknown schema '\(schema)'; known: \(names.joined(separator: ", "))")
        }
        do {
            try read(bytes)
        } catch let error as EnvelopeError {
            throw error
        } catch {
            throw .invalidPayload("\(error)")
        }
        return schema
    }
}
