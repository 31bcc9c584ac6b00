import EncompassModels
import Foundation
import Hummingbird
import NIOCore
import Spreadsheets

/// An upload's body read as it arrives, once: each chunk is hashed, appended to a spool file
/// (the file as sent, which a refused upload's dead letter keeps) and, for CSV, parsed by the
/// incremental reader, which stops at the row limit while the rest of the body is only spooled.
/// Memory is a chunk and the rows kept (at most the row limit), whatever the file's size.
///
/// XLSX is read whole from the spool once the body has arrived: a ZIP's directory is at its end.
struct SpreadsheetReceiver {
    /// What arrived.
    struct Received {
        /// The spooled body, deleted by `discard()`.
        var file: URL
        var bytes: Int
        /// `StableHash` of the bytes as sent (hex, 32 digits).
        var hash: String
        /// The sheet, or why the file cannot be read (including more rows than the limit).
        var sheet: Result<Sheet, SheetError>

        func discard() { try? FileManager.default.removeItem(at: file) }
    }

    /// Removes the spool files in `directory` (at start, those a crash left behind).
    static func removeSpools(in directory: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix(spoolPrefix) && name.hasSuffix(spoolSuffix) {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    static let spoolPrefix = "upload-"
    static let spoolSuffix = ".spool"

    /// The body is larger than the limit: nothing was kept.
    struct TooLarge: Error {}

    private enum Kind { case undecided, csv, whole }

    private let maximumBytes: Int
    private let maximumRows: Int
    private var csv: CSVStreamReader
    private var csvFailure: SheetError?
    private var kind = Kind.undecided
    /// The first bytes, held until they show whether the file is a ZIP (XLSX) or text (CSV).
    private var head: [UInt8] = []
    private var lanes = StableHash.Lanes()
    private var bytes = 0

    init(maximumBytes: Int, maximumRows: Int) {
        self.maximumBytes = maximumBytes
        self.maximumRows = maximumRows
        self.csv = CSVStreamReader(maximumRows: maximumRows)
    }

    /// Reads `body` to its end into a new spool file in `directory` (readable by the service's
    /// user only). Throws `TooLarge` (and removes the spool) past `maximumBytes`.
    static func receive<Body: AsyncSequence>(
        _ body: Body, into directory: URL, maximumBytes: Int, maximumRows: Int
    ) async throws -> Received where Body.Element == ByteBuffer {
        let file = directory.appendingPathComponent("\(spoolPrefix)\(UUID().uuidString)\(spoolSuffix)")
        guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            var receiver = SpreadsheetReceiver(maximumBytes: maximumBytes, maximumRows: maximumRows)
            for try await buffer in body {
                try receiver.take(buffer, spool: handle)
            }
            let sheet = receiver.finish { () throws(SheetError) -> Data in
                do { return try Data(contentsOf: file) } catch { throw SheetError("the upload could not be read back from its spool file: \(error)") }
            }
            let (a, b) = receiver.lanes.finish()
            let hash = String(format: "%016llx%016llx", a, b)
            return Received(file: file, bytes: receiver.bytes, hash: hash, sheet: sheet)
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw error
        }
    }

    private mutating func take(_ buffer: ByteBuffer, spool: FileHandle) throws {
        bytes += buffer.readableBytes
        guard bytes <= maximumBytes else { throw TooLarge() }
        try buffer.withUnsafeReadableBytes { raw in
            try spool.write(contentsOf: raw)
            for byte in raw { lanes.add(byte) }
            consume(raw)
        }
    }

    private mutating func consume(_ raw: UnsafeRawBufferPointer) {
        switch kind {
        case .whole:
            return
        case .csv:
            feedCSV(raw)
        case .undecided:
            head.append(contentsOf: raw)
            if head.count >= 4 { decide() }
        }
    }

    /// A ZIP's signature (or the start of one) is read whole, as `SpreadsheetReader.read` does;
    /// anything else is CSV.
    private mutating func decide() {
        kind = head.starts(with: [0x50, 0x4B]) ? .whole : .csv
        let held = head
        head = []
        if kind == .csv { held.withUnsafeBytes { feedCSV($0) } }
    }

    private mutating func feedCSV(_ raw: UnsafeRawBufferPointer) {
        guard csvFailure == nil else { return }
        do throws(SheetError) { try csv.feed(raw) } catch {
            csvFailure = error
            csv = CSVStreamReader() // the rows read so far are not needed any more
        }
    }

    private mutating func finish(whole: () throws(SheetError) -> Data) -> Result<Sheet, SheetError> {
        if kind == .undecided { decide() }
        if let csvFailure { return .failure(csvFailure) }
        do throws(SheetError) {
            switch kind {
            case .csv, .undecided: return .success(try csv.finish())
            case .whole: return .success(try SpreadsheetReader.read(try whole(), maximumRows: maximumRows))
            }
        } catch {
            return .failure(error)
        }
    }
}
