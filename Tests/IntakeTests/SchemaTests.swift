import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@testable import IntakeService

/// Validates JSON documents against docs/schemas/incident.schema.json with Python's jsonschema.
func schemaErrors(_ documents: [Data]) async throws -> [String] {
    let directory = TestPaths.temporaryDirectory("schema")
    var paths: [String] = []
    for (i, document) in documents.enumerated() {
        let path = "\(directory)/doc\(i).json"
        try document.write(to: URL(fileURLWithPath: path))
        paths.append(path)
    }
    let script = """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        v = jsonschema.Draft202012Validator(schema)
        for p in sys.argv[2:]:
            errors = sorted(e.message for e in v.iter_errors(json.load(open(p))))
            print(json.dumps(errors))
        """
    let arguments = ["\(TestPaths.packageRoot)/docs/schemas/incident.schema.json"] + paths
    let run = try await offPool { try runPython(script, arguments, errors: .separate) }
    #expect(run.status == 0, "python3 with jsonschema is needed (pip install jsonschema): \(run.error)")
    return run.output.split(separator: "\n").map(String.init)
}

@Suite("Incident JSON Schema", .tags(.peers))
struct SchemaTests {
    @Test("what the Swift types write validates against the published schema, and broken documents do not")
    func schemaMatchesCode() async throws {
        var full = incident()
        full.children.append(
            RecordedChild(
                givenName: "Oliver", familyName: "Hughes", ageYears: 7,
                homeAddress: PostalAddress(lines: ["1 High St"], postcode: "OX1 1AA"),
                presence: .witness, school: RecordedSchool(urn: "110123")))
        full.parties[0].address = PostalAddress(lines: ["1 High St"], town: "Oxford", county: "Oxfordshire", postcode: "OX1 1AA")
        let noChildren = incident(children: [])
        var missing = try JSONSerialization.jsonObject(with: WireFormat.encoder().encode(incident())) as! [String: Any]
        missing["children"] = nil
        missing["riskLevel"] = "severe"
        let results = try await schemaErrors([
            try WireFormat.encoder().encode(full),
            try WireFormat.encoder().encode(noChildren),
            try JSONSerialization.data(withJSONObject: missing),
        ])
        #expect(results.count == 3)
        #expect(results[0] == "[]")
        #expect(results[1] == "[]")
        #expect(results[2].contains("'children' is a required property"))
        #expect(results[2].contains("'severe' is not one of"))
    }
}
