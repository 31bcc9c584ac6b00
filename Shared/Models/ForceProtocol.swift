import Foundation

/// A force's Operation Encompass protocol: one JSON file per force, with a section per service
/// (`research`, `schools`, `scheduling`, `dispatch`). Each service decodes its own section
/// into its own type, so a force is fitted by editing its file, not the code.
///
/// The files ship in `Shared/Models/Resources/protocols/` (Thames Valley `43`, Cambridgeshire
/// `05`); `ENCOMPASS_PROTOCOLS_DIR` names another folder of such files.
public struct ForceProtocol: Sendable {
    public let forceCode: String
    public let name: String
    /// The file it was read from (named in errors).
    public let path: String
    private let data: Data

    /// Decodes one section, e.g. `try force.section("scheduling", as: SchedulingProtocol.self)`.
    public func section<T: Decodable>(_ key: String, as type: T.Type) throws(ForceProtocolError) -> T {
        let decoder = JSONDecoder()
        decoder.userInfo[SectionKey.userInfoKey] = key
        do {
            return try decoder.decode(Section<T>.self, from: data).value
        } catch let error as ForceProtocolError {
            throw error
        } catch {
            throw ForceProtocolError(path: path, problem: "section \"\(key)\": \(WireFormat.describe(error))")
        }
    }

    /// Whether the file has the section.
    public func hasSection(_ key: String) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object[key] != nil
    }

    init(path: String, data: Data) throws(ForceProtocolError) {
        struct Header: Decodable {
            var forceCode: String
            var name: String
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: data)
        } catch {
            throw ForceProtocolError(path: path, problem: "needs \"forceCode\" and \"name\": \(WireFormat.describe(error))")
        }
        self.forceCode = header.forceCode
        self.name = header.name
        self.path = path
        self.data = data
    }

    private struct SectionKey: CodingKey {
        static let userInfoKey = CodingUserInfoKey(rawValue: "encompass.protocol.section")!
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private struct Section<T: Decodable>: Decodable {
        let value: T
        init(from decoder: any Decoder) throws {
            let key = SectionKey(stringValue: decoder.userInfo[SectionKey.userInfoKey] as? String ?? "")
            let container = try decoder.container(keyedBy: SectionKey.self)
            guard container.contains(key) else {
                throw ForceProtocolError(path: "", problem: "has no \"\(key.stringValue)\" section")
            }
            value = try container.decode(T.self, forKey: key)
        }
    }
}

/// A protocol file that cannot be used, with what to fix.
public struct ForceProtocolError: Error, Sendable, CustomStringConvertible, Equatable {
    public var path: String
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "force protocol \(path.isEmpty ? "" : "\(path) ")\(problem); fix the file or ENCOMPASS_PROTOCOLS_DIR" }
}

/// The force protocols in a folder, by force code.
public struct ForceProtocols: Sendable {
    public let byCode: [String: ForceProtocol]

    public subscript(forceCode: String) -> ForceProtocol? { byCode[forceCode] }

    /// The shipped protocols folder.
    public static var bundledDirectory: String {
        Bundle.module.resourceURL!.appendingPathComponent("protocols").path
    }

    /// Reads every `*.json` in `directory` (default: `ENCOMPASS_PROTOCOLS_DIR`, else the shipped folder).
    public static func load(directory: String? = nil) throws(ForceProtocolError) -> ForceProtocols {
        let folder = directory ?? ProcessInfo.processInfo.environment["ENCOMPASS_PROTOCOLS_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? bundledDirectory
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw ForceProtocolError(path: folder, problem: "is not a readable folder")
        }
        var byCode: [String: ForceProtocol] = [:]
        for name in names.sorted() where name.hasSuffix(".json") {
            let path = (folder as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ForceProtocolError(path: path, problem: "cannot be read")
            }
            let force = try ForceProtocol(path: path, data: data)
            if let other = byCode[force.forceCode] {
                throw ForceProtocolError(path: path, problem: "repeats force \(force.forceCode) of \(other.path)")
            }
            byCode[force.forceCode] = force
        }
        guard !byCode.isEmpty else { throw ForceProtocolError(path: folder, problem: "holds no protocol (*.json)") }
        return ForceProtocols(byCode: byCode)
    }
}
