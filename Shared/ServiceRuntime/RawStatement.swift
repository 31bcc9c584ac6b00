import EncompassModels
import Foundation
import GRDB
import GRDBSQLite

/// A GRDB cached statement bound and stepped straight through SQLite, for statements that run
/// for every message (the inbox and the outbox) and child research's history index: GRDB's
/// `StatementArguments` box every value and check it on every call. Binds parameters in order;
/// `run` steps an insert to completion, `rows` each result row. Always leaves the statement
/// reset with its bindings cleared.
public struct RawStatement {
    public let handle: OpaquePointer
    let db: Database
    var index: Int32 = 0

    public init(_ statement: Statement, db: Database) {
        handle = statement.sqliteStatement
        self.db = db
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// SQLite copies the bytes (SQLITE_TRANSIENT).
    private static var transient: sqlite3_destructor_type { unsafeBitCast(-1, to: sqlite3_destructor_type.self) }

    public mutating func bind(_ text: String?) {
        index += 1
        guard var text else {
            sqlite3_bind_null(handle, index)
            return
        }
        let index = self.index, handle = self.handle
        text.withUTF8 { (bytes: UnsafeBufferPointer<UInt8>) -> Void in
            if bytes.isEmpty {
                _ = sqlite3_bind_text(handle, index, "", 0, Self.transient)
            } else {
                bytes.withMemoryRebound(to: CChar.self) { (chars: UnsafeBufferPointer<CChar>) -> Void in
                    _ = sqlite3_bind_text(handle, index, chars.baseAddress, Int32(chars.count), Self.transient)
                }
            }
        }
    }

    public mutating func bind(_ value: Int64?) {
        index += 1
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    /// The date as GRDB stores it (`Date.stored`).
    public mutating func bind(_ date: Date) {
        if let text = Timestamp.databaseText(date) {
            bind(text)
            return
        }
        switch date.databaseValue.storage {
        case .string(let text): bind(text)
        case .int64(let value): bind(value)
        case .double(let value):
            index += 1
            sqlite3_bind_double(handle, index, value)
        case .blob(let bytes): bind(bytes)
        case .null: bind(nil as String?)
        }
    }

    public mutating func bind(_ bytes: Data) {
        index += 1
        let index = self.index, handle = self.handle
        bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Void in
            // Empty: a zero-length blob, not NULL (an empty buffer has no base address).
            if let base = buffer.baseAddress, !buffer.isEmpty {
                _ = sqlite3_bind_blob(handle, index, base, Int32(buffer.count), Self.transient)
            } else {
                _ = sqlite3_bind_zeroblob(handle, index, 0)
            }
        }
    }

    public func run() throws {
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else { throw failure(code) }
        sqlite3_reset(handle)
    }

    public func rows(_ body: (OpaquePointer) throws -> Void) throws {
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else { throw failure(code) }
            try body(handle)
        }
        sqlite3_reset(handle)
    }

    private func failure(_ code: Int32) -> DatabaseError {
        let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
        sqlite3_reset(handle)
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
    }
}
