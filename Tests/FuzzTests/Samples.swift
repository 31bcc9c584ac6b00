import EncompassModels
import EncompassTestSupport
import Foundation
import ServiceRuntime
import Spreadsheets
import ZIPFoundation

@testable import IntakeService
@testable import SchedulingService
@testable import SchoolResolutionService

/// Valid inputs of every parser, the seeds the mutations start from.
enum Samples {
    static let occurred = Timestamp.parse("2026-11-22T21:15:00Z")!
    static let reported = Timestamp.parse("2026-11-22T22:40:00Z")!
    static let now = Timestamp.parse("2026-11-23T10:00:00Z")!

    static func incident(_ occurrence: String = "43260001234", children: Int = 1) -> Incident {
        Incident(
            occurrenceNumber: occurrence, forceCode: "43", occurredAt: occurred, reportedAt: reported,
            incidentAddress: PostalAddress(lines: ["Flat 2", "14 Oxford Road"], town: "Reading", county: "Berkshire", postcode: "RG1 7LL"),
            localPolicingArea: "Reading", riskLevel: .medium, crime: true,
            parties: [
                Party(role: .victim, givenName: "Sarah", familyName: "Hughes", dateOfBirth: "1989-02-11"),
                Party(role: .suspect, givenName: "Mark", familyName: "Dolan"),
            ],
            children: (0..<children).map { i in
                RecordedChild(
                    givenName: "Amelia\(i)", familyName: "Hughes", dateOfBirth: "2016-05-0\(i + 1)",
                    school: RecordedSchool(name: "St Marys CE Prim, Reading", urn: i == 0 ? "110001" : nil))
            })
    }

    static func json<T: Encodable>(_ value: T) -> Data { (try? WireFormat.encoder().encode(value)) ?? Data() }

    static let incidentBodies: [Data] = [
        json(incident()),
        json([incident(), incident("43260009999", children: 2)]),
        Data("{\"incidents\": ".utf8) + json([incident("43260005555", children: 3)]) + Data("}".utf8),
    ]

    static let child = IdentifiedChild(
        childId: "c-0001", givenName: "Amelia", familyName: "Hughes", dateOfBirth: "2016-05-04",
        homeAddress: PostalAddress(lines: ["14 Oxford Road"], town: "Reading", postcode: "RG1 7LL"), presence: .witness,
        recordedSchool: RecordedSchool(name: "St Marys"), relationship: "child of victim")
    static let school = ResolvedSchool(
        urn: "110001", name: "Oakwood Primary School", localAuthorityCode: "870", localAuthorityName: "Reading", phase: "Primary",
        postcode: "RG1 5AQ", contacts: [SchoolContact(role: "dsl", name: "Ms Head", email: "dsl@school.example", phone: "0118 000 0000")])
    static var request: NoticeRequested {
        NoticeRequested(
            noticeId: NoticeID.make(forceCode: "43", occurrenceNumber: "43260001234", childId: child.childId),
            incident: incident(), incidentRevision: 1, child: child, childSource: .officer, school: school, resolution: ["URN given"])
    }

    static func envelope<P: MessagePayload>(_ payload: P) -> Data {
        Data(
            (try? WireFormat.encode(
                Envelope(id: MessageID.fresh(), key: "k-1", producer: "fuzz", createdAt: now, causationId: "c-0", payload: payload))) ?? [])
    }

    /// One envelope of every schema of the pipeline.
    static let envelopes: [Data] = [
        envelope(incident()),
        envelope(IncidentRecorded(kind: .amendment, revision: 2, changes: ["children added: 1"], source: "http", incident: incident())),
        envelope(HistoricalIncident(source: "history:niche.jsonl", incident: incident())),
        envelope(
            ChildIdentified(
                incident: incident(), incidentRevision: 1, child: child, source: .research,
                evidence: ResearchEvidence(score: 0.93, explanation: ["same name", "same DOB"], sourceOccurrences: ["43190001111"]))),
        envelope(
            ReviewDecision(
                forceCode: "43", occurrenceNumber: "43260001234", proposalId: "p-1", verdict: .confirm, reviewer: "PC Smith", decidedAt: now)),
        envelope(request),
        envelope(
            NoticeDue(
                request: request, releaseAt: now, escalation: true, escalationContact: SchoolContact(role: "esm", email: "esm@la.example"),
                rules: ["next school day 08:00"])),
        envelope(
            NoticeEvent(noticeId: "n-1", kind: .sent, at: now, forceCode: "43", occurrenceNumber: "43260001234", schoolURN: "110001", detail: "sent")),
        envelope(
            SchoolFeedback(childId: "c-0001", noticeId: "n-1", schoolURN: "110001", kind: .noLongerAttends, reportedAt: now, reportedBy: "Ms Head")),
        envelope(
            NoticeEvent(
                noticeId: "n-1", kind: .claimed, at: now, forceCode: "43", occurrenceNumber: "43260001234", schoolURN: "110001",
                detail: "taken by dispatch instance dispatch-1", claimant: "d-0123456789abcdef")),
        envelope(AccountPassword(account: "110001", hash: "pbkdf2-sha256$210000$c2FsdA==$aGFzaA==", setAt: now, setBy: "mash-officer-1")),
        envelope(
            DeadLetterEvent(
                service: "intake", originalTopic: "encompass.incidents.raw", originalPartition: 0, originalOffset: 7, originalKey: "k",
                originalValue: Array("{\"bad\":1}".utf8), originalMessageId: nil, errorClass: "payload.invalid",
                errorMessage: "occurrenceNumber: required field missing", attempts: 1, firstFailedAt: now, deadLetteredAt: now)),
    ]

    static let sheetHeader =
        "occurrence_number,force_code,occurred_at,reported_at,incident_address,incident_town,incident_postcode,lpa,risk_level,crime,victim_given_name,victim_family_name,child_given_name,child_family_name,child_dob,child_age,child_presence,child_school,child_school_urn"

    static func sheetRow(_ occurrence: String, given: String = "Amelia", dob: String = "2016-05-04", school: String = "St Marys, Reading") -> String {
        "\(occurrence),43,2026-11-22 21:15,2026-11-22 22:40,\"Flat 2, 14 Oxford Road\",Reading,RG1 7LL,Reading,medium,Y,Sarah,Hughes,\(given),Hughes,\(dob),,present,\"\(school)\","
    }

    static let incidentCSV: String =
        ([
            sheetHeader, sheetRow("43260001234"), sheetRow("43260001234", given: "Ben", dob: "2018-01-02"),
            sheetRow("43260004321", given: "Zoë \"Zo\" O'Neil", school: "Line one\nline two"),
        ]).joined(separator: "\r\n") + "\r\n"

    /// The same sheet in every encoding the reader accepts.
    static let csvFiles: [Data] = [
        Data(incidentCSV.utf8),
        Data([0xEF, 0xBB, 0xBF]) + Data(incidentCSV.utf8),
        incidentCSV.data(using: .utf16) ?? Data(), // with BOM
        incidentCSV.data(using: .windowsCP1252) ?? Data(),
        Data((sheetHeader + "\n" + sheetRow("43260001234") + "\n;;\n\"unterminated").utf8),
    ]

    static let historyFiles: [Data] = [
        [incident(), incident("43190001111", children: 2), incident("43200002222")].map { json($0) }.reduce(Data()) { $0 + $1 + Data("\n".utf8) },
        Data(incidentCSV.utf8),
    ]

    static let registerFiles: [Data] = {
        var files: [Data] = []
        let gias = """
            URN,LA (code),LA (name),EstablishmentNumber,EstablishmentName,TypeOfEstablishment (name),EstablishmentStatus (name),OpenDate,CloseDate,PhaseOfEducation (name),StatutoryLowAge,StatutoryHighAge,Street,Locality,Address3,Town,County (name),Postcode\r
            109778,870,Reading,2011,Caversham Primary School,Community school,Open,,,Primary,5,11,Hemdean Road,Caversham,,Reading,Berkshire,RG4 7RA\r
            110002,870,Reading,3301,St Mary and All Saints Primary School,Voluntary aided school,Closed,,31-10-2018,Primary,3,11,Wensley Road,,,Reading,Berkshire,RG1 6DU\r
            123456,873,Cambridgeshire,1000,"Crèche ""Little Stars"", Histon",Local authority nursery school,Open,01-09-2020,,Nursery,2,5,,,,Cambridge,,CB24 9JE\r

            """
        files.append(gias.data(using: .windowsCP1252) ?? Data(gias.utf8))
        if let url = RegisterImporter.bundledListURL, let data = try? Data(contentsOf: url) {
            // The first 40 lines of the shipped 2018 list.
            let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).prefix(40)
            files.append(Data(lines.joined(separator: [0x0A])))
        }
        return files
    }()

    static let contactsFiles: [Data] = [
        Data(
            "urn,role,name,email,phone\n110001,dsl,Ms Head,dsl@school.example,0118 000 0000\n110001,deputy,\"Mr Deputy, Jr\",deputy@school.example,\n109778,dsl,,dsl@caversham.example,\n"
                .utf8)
    ]

    static var bankHolidays: Data {
        (try? Data(contentsOf: URL(fileURLWithPath: BankHolidays.bundledPath))) ?? Data()
    }

    static var termDates: [Data] {
        let folder = SchoolCalendars.bundledTermDatesDirectory
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.sorted().prefix(2)
        return names.compactMap { FileManager.default.contents(atPath: folder + "/" + $0) }
    }

    static var protocols: [Data] {
        let folder = ForceProtocols.bundledDirectory
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        return names.compactMap { FileManager.default.contents(atPath: folder + "/" + $0) }
    }

    static var forces: Data { json(ForceRegistry.builtIn) }

    /// A workbook written by openpyxl (an independent writer) with strings, numbers, a date
    /// and a boolean; and one written by our own SheetWriter.
    static let workbooks: [Data] = {
        var books: [Data] = []
        let dir = TestPaths.temporaryDirectory("fuzz-xlsx")
        let path = dir + "/seed.xlsx"
        let script = """
            import sys, datetime, openpyxl
            wb = openpyxl.Workbook()
            ws = wb.active
            ws.title = "Incidents"
            header = sys.argv[2].split(",")
            ws.append(header)
            for i in range(3):
                row = ["4326000123%d" % i, "43", datetime.datetime(2026, 11, 22, 21, 15), "2026-11-22 22:40", "Flat 2, 14 Oxford Road", "Reading",
                       "RG1 7LL", "Reading", "medium", True, "Sarah", "Hughes", "Amelia", "Hughes", datetime.date(2016, 5, 4), 10 + i, "present",
                       "St Marys, Reading", 110001]
                ws.append(row)
            ws["Z1"] = "notes"
            ws["Z2"] = "=1+1"
            wb.save(sys.argv[1])
            """
        if let run = try? runPython(script, [path, sheetHeader]), run.status == 0, let data = FileManager.default.contents(atPath: path) {
            books.append(data)
        }
        let rows = [sheetRow("43260001234"), sheetRow("43260004321", given: "Ben")].map { line in
            line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        if let data = try? SheetWriter.xlsx(sheetName: "Requests", header: sheetHeader.split(separator: ",").map(String.init), rows: rows) {
            books.append(data)
        }
        return books
    }()

    /// The parts of a workbook, by path.
    static func entries(of workbook: Data) -> [(path: String, data: Data)] {
        let archive: Archive
        do { archive = try Archive(data: workbook, accessMode: .read, pathEncoding: nil) } catch { return [] }
        var parts: [(String, Data)] = []
        for entry in archive where entry.type == .file {
            var out = Data()
            _ = try? archive.extract(entry, skipCRC32: true) { out.append($0) }
            parts.append((entry.path, out))
        }
        return parts
    }

    /// A ZIP of `parts` (valid container, possibly broken content).
    static func zip(_ parts: [(path: String, data: Data)]) -> Data {
        let archive: Archive
        do { archive = try Archive(data: Data(), accessMode: .create, pathEncoding: nil) } catch { return Data() }
        for part in parts {
            let data = part.data
            try? archive.addEntry(with: part.path, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        return archive.data ?? Data()
    }
}

/// Mutations that keep JSON well-formed but put odd values where the schema expects others.
enum JSONMutator {
    static var oddValues: [Any] {
        [
            NSNull(), "", " ", "\u{0}", "\u{202E}evil", String(repeating: "x", count: 70_000), "<script>alert(1)</script>", "=cmd|'/c calc'!A1",
            "2026-02-30", "2026-13-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1899-12-31", "not a date",
            0, -1, 1.5, Int.max, Int.min, 1e308, -1e308, true, false, [Any](), [String: Any](), [[[[[[[[1]]]]]]]], ["a": ["b": ["c": NSNull()]]],
            "RG1 7LL", "ZZ99 9ZZ", "43260001234", "43", "05", "medium", "high", "present", "witness",
        ]
    }

    /// Replaces, removes or duplicates one value somewhere in a JSON document.
    static func mutate(_ data: Data, _ random: inout FuzzRandom) -> Data {
        guard let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return data }
        let changed = change(root, &random, depth: 0)
        return (try? JSONSerialization.data(withJSONObject: changed, options: [.fragmentsAllowed])) ?? data
    }

    private static func change(_ value: Any, _ random: inout FuzzRandom, depth: Int) -> Any {
        let descend = depth < 12 && random.chance(75)
        if var object = value as? [String: Any], !object.isEmpty {
            let keys = object.keys.sorted()
            let key = random.pick(keys)
            if descend, let inner = object[key] {
                object[key] = change(inner, &random, depth: depth + 1)
                return object
            }
            switch random.below(4) {
            case 0: object[key] = nil
            case 1: object[key + random.pick(["", "X", "\u{0}"])] = random.pick(oddValues)
            default: object[key] = random.pick(oddValues)
            }
            return object
        }
        if var array = value as? [Any], !array.isEmpty {
            let index = random.below(array.count)
            if descend {
                array[index] = change(array[index], &random, depth: depth + 1)
                return array
            }
            switch random.below(4) {
            case 0: array.remove(at: index)
            case 1: array.append(contentsOf: Array(repeating: array[index], count: 1 + random.below(50)))
            default: array[index] = random.pick(oddValues)
            }
            return array
        }
        return random.pick(oddValues)
    }
}
