import Foundation

/// The fields of the incident format (docs/schemas/incident.schema.json, which says
/// `additionalProperties: false` at every level), to find the ones a submission has beyond it:
/// decoding alone would drop them silently. `SchemaTests` checks these lists against the schema.
public enum IncidentShape {
    static let incident: Set<String> = [
        "occurrenceNumber", "forceCode", "occurredAt", "reportedAt", "incidentAddress", "localPolicingArea", "riskLevel",
        "crime", "parties", "children", "circumstances", "safeguardingInformation",
    ]
    static let party: Set<String> = ["role", "givenName", "familyName", "dateOfBirth", "address"]
    static let child: Set<String> = ["givenName", "familyName", "dateOfBirth", "ageYears", "homeAddress", "presence", "school"]
    static let school: Set<String> = ["name", "urn"]
    static let address: Set<String> = ["lines", "town", "county", "postcode"]

    /// The paths of the fields beyond the format in a JSON incident (e.g. `notes`,
    /// `children[0].nickname`, `parties[1].address.flat`), in document order of the levels;
    /// empty when the JSON is not an object (decoding reports that).
    public static func unknownFields(in json: Data) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: json) else { return [] }
        return unknownFields(inObject: object)
    }

    /// The same, for an already parsed JSON value.
    public static func unknownFields(inObject json: Any) -> [String] {
        guard let object = json as? [String: Any] else { return [] }
        var found = extra(object, known: incident, path: "")
        found += addressFields(object["incidentAddress"], path: "incidentAddress")
        for (i, party) in ((object["parties"] as? [Any]) ?? []).enumerated() {
            guard let party = party as? [String: Any] else { continue }
            found += extra(party, known: Self.party, path: "parties[\(i)]")
            found += addressFields(party["address"], path: "parties[\(i)].address")
        }
        for (i, child) in ((object["children"] as? [Any]) ?? []).enumerated() {
            guard let child = child as? [String: Any] else { continue }
            found += extra(child, known: Self.child, path: "children[\(i)]")
            found += addressFields(child["homeAddress"], path: "children[\(i)].homeAddress")
            if let school = child["school"] as? [String: Any] {
                found += extra(school, known: Self.school, path: "children[\(i)].school")
            }
        }
        return found
    }

    private static func addressFields(_ value: Any?, path: String) -> [String] {
        guard let address = value as? [String: Any] else { return [] }
        return extra(address, known: Self.address, path: path)
    }

    /// Unknown keys of one object, sorted; a hostile key is cut to 64 characters in the path.
    private static func extra(_ object: [String: Any], known: Set<String>, path: String) -> [String] {
        object.keys.filter { !known.contains($0) }.sorted().map { key in
            let name = key.unicodeScalars.count > 64 ? String(String.UnicodeScalarView(key.unicodeScalars.prefix(64))) + "…" : key
            return path.isEmpty ? name : "\(path).\(name)"
        }
    }
}
