import EncompassModels
import Foundation
import ServiceRuntime

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
    /// DfE local authority code → the LPA covering all of it. Authorities split between
    /// several LPAs are left out: no LPA is guessed for them.
    public var lpaByLocalAuthority: [String: String]

    public init(
        code: String, name: String, occurrencePattern: String, occurrenceFormat: String,
        localPolicingAreas: [String], lpaByLocalAuthority: [String: String] = [:]
    ) {
        self.code = code
        self.name = name
        self.occurrencePattern = occurrencePattern
        self.occurrenceFormat = occurrenceFormat
        self.localPolicingAreas = localPolicingAreas
        self.lpaByLocalAuthority = lpaByLocalAuthority
    }

    enum CodingKeys: String, CodingKey {
        case code, name, occurrencePattern, occurrenceFormat, localPolicingAreas, lpaByLocalAuthority
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            code: try c.decode(String.self, forKey: .code), name: try c.decode(String.self, forKey: .name),
            occurrencePattern: try c.decode(String.self, forKey: .occurrencePattern),
            occurrenceFormat: try c.decode(String.self, forKey: .occurrenceFormat),
            localPolicingAreas: try c.decodeIfPresent([String].self, forKey: .localPolicingAreas) ?? [],
            lpaByLocalAuthority: try c.decodeIfPresent([String: String].self, forKey: .lpaByLocalAuthority) ?? [:])
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
            ],
            lpaByLocalAuthority: [
                "867": "Bracknell and Wokingham", "872": "Bracknell and Wokingham", "870": "Reading", "871": "Slough",
                "869": "West Berkshire", "868": "Windsor and Maidenhead", "826": "Milton Keynes",
            ]),
        ForceDefinition(
            code: "05", name: "Cambridgeshire Constabulary", occurrencePattern: "CC-[0-9]{8}-[0-9]{4}",
            occurrenceFormat: "CC-YYYYMMDD-NNNN",
            localPolicingAreas: ["Cambridge City", "East Cambridgeshire", "Fenland", "Huntingdonshire", "Peterborough", "South Cambridgeshire"],
            lpaByLocalAuthority: ["874": "Peterborough"]),
    ]

    /// The forces of the file at `path` (`ENCOMPASS_FORCES_FILE`), or the built-in ones.
    public static func load(path: String?) throws(ConfigurationError) -> ForceRegistry {
        func refused(_ problem: String) -> ConfigurationError { ConfigurationError(variable: "ENCOMPASS_FORCES_FILE", problem: problem) }
        guard let path else {
            do { return try ForceRegistry(builtIn) } catch { throw refused("is not set, and the built-in forces are unusable: \(error)") }
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw refused("names \(path), which cannot be read; fix the path, or unset it for the built-in forces")
        }
        do {
            return try ForceRegistry(JSONDecoder().decode([ForceDefinition].self, from: data))
        } catch let problem as ConfigurationProblem {
            throw refused("names \(path): \(problem); fix the file")
        } catch {
            throw refused("names \(path), which is not a JSON list of forces: \(WireFormat.describe(error)); fix the file")
        }
    }

    /// The LPA of an incident address, when its postcode district lies in a local authority
    /// the force maps to a single LPA.
    public func derivedLPA(for incident: Incident) -> String? {
        guard let force = forces[incident.forceCode], let postcode = UKPostcode.normalise(incident.incidentAddress.postcode),
            let district = postcode.split(separator: " ").first,
            let authority = PostcodeDistricts.localAuthority[String(district)]
        else { return nil }
        return force.lpaByLocalAuthority[authority]
    }

    /// Normalises an incident and fills a missing LPA where it can be derived.
    public func prepare(_ incident: Incident) -> Incident {
        var prepared = incident.normalised()
        if prepared.localPolicingArea == nil { prepared.localPolicingArea = derivedLPA(for: prepared) }
        return prepared
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
