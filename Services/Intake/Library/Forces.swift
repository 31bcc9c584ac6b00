import EncompassModels
import Foundation

/// A police force's intake rules: its code, how its occurrence numbers look and its local
/// policing areas. Loaded from a JSON file (ENCOMPASS_FORCES_FILE) or the built-in defaults.
public struct ForceDefinition: Codable, Sendable, Equatable {
    public var code: String
    public var name: String
    /// Regular expression a whole occurrence number must match.
    public var occurrencePattern: String
    /// Human description of the format for error messages, e.g. "11 digits".
    public var occurrenceFormat: String
    /// Local policing areas; an incident's LPA must be one of them when given.
    public var localPolicingAreas: [String]

    public init(code: String, name: String, occurrencePattern: String, occurrenceFormat: String, localPolicingAreas: [String]) {
        self.code = code
        self.name = name
        self.occurrencePattern = occurrencePattern
        self.occurrenceFormat = occurrenceFormat
        self.localPolicingAreas = localPolicingAreas
    }
}

public struct ForceRegistry: Sendable {
    public let forces: [String: ForceDefinition]
    private let patterns: [String: NSRegularExpression]

    public init(_ definitions: [ForceDefinition]) throws {
        var forces: [String: ForceDefinition] = [:]
        var patterns: [String: NSRegularExpression] = [:]
        for force in definitions {
            forces[force.code] = force
            do {
                patterns[force.code] = try NSRegularExpression(pattern: "^(?:\(force.occurrencePattern))$")
            } catch {
                throw ConfigurationProblem("force \(force.code): occurrencePattern '\(force.occurrencePattern)' is not a valid regular expression")
            }
        }
        self.forces = forces
        self.patterns = patterns
    }

    /// Thames Valley (43) and Cambridgeshire (05), Home Office force codes.
    public static let builtIn: [ForceDefinition] = [
        ForceDefinition(
            code: "43", name: "Thames Valley Police", occurrencePattern: "[0-9]{11}", occurrenceFormat: "11 digits",
            localPolicingAreas: [
                "Bracknell and Wokingham", "Reading", "Slough", "West Berkshire", "Windsor and Maidenhead",
                "Aylesbury Vale", "Chiltern and South Bucks", "Milton Keynes", "Wycombe",
                "Cherwell and West Oxfordshire", "Oxford", "South and Vale",
            ]),
        ForceDefinition(
            code: "05", name: "Cambridgeshire Constabulary", occurrencePattern: "CC-[0-9]{8}-[0-9]{4}",
            occurrenceFormat: "CC-YYYYMMDD-NNNN",
            localPolicingAreas: ["Cambridge City", "East Cambridgeshire", "Fenland", "Huntingdonshire", "Peterborough", "South Cambridgeshire"]),
    ]

    public static func load(path: String?) throws -> ForceRegistry {
        guard let path else { return try ForceRegistry(builtIn) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationProblem("ENCOMPASS_FORCES_FILE names \(path), which cannot be read")
        }
        do {
            return try ForceRegistry(JSONDecoder().decode([ForceDefinition].self, from: data))
        } catch let problem as ConfigurationProblem {
            throw problem
        } catch {
            throw ConfigurationProblem("ENCOMPASS_FORCES_FILE \(path) is not a JSON list of forces: \(WireFormat.describe(error))")
        }
    }

    public func matchesOccurrence(_ number: String, force: String) -> Bool {
        guard let pattern = patterns[force] else { return false }
        return pattern.firstMatch(in: number, range: NSRange(number.startIndex..., in: number)) != nil
    }
}

public struct ConfigurationProblem: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
