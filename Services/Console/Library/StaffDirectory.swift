import EncompassModels
import EncompassSecrets
import Foundation
import GRDB
import ServiceRuntime

/// A staff account of the console.
public struct StaffUser: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "staffUser"
    public var name: String
    public var role: String
    /// `pbkdf2-sha256$iterations$salt$hash` (see `Secrets`).
    public var passwordHash: String
    public var createdAt: Date
    public var createdBy: String

    public var mayAct: Bool { role == "officer" }
}

/// A signed-in session: only the SHA-256 of the cookie's token is kept.
public struct StaffSession: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "staffSession"
    public var sessionHash: String
    public var staffName: String
    public var role: String
    /// The CSRF token every form of this session carries.
    public var csrfToken: String
    public var createdAt: Date
    public var expiresAt: Date
}

/// Wrong passwords per account name (known or not, so the answer does not reveal which names
/// exist) and source address: someone guessing from one address locks the name for that address
/// only, never for the staff member at their own desk.
public struct SignInThrottle: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "signInThrottle"
    /// Lower-cased.
    public var name: String
    /// The client's address (`ConsoleApp.clientAddress`).
    public var source: String
    public var failures: Int
    public var lastFailureAt: Date
    public var lockedUntil: Date?
}

/// One audited staff action.
public struct StaffAuditEntry: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "staffAudit"
    public var id: Int64?
    public var at: Date
    public var staffName: String
    /// `sign-in`, `sign-in-refused`, `sign-out`, `review-confirm`, `review-reject`, `csc-download`, `csc-upload`.
    public var action: String
    public var target: String
    /// `ok`, `refused` or `failed`, with the service's words in `detail`.
    public var outcome: String
    public var detail: String
}

/// Why staff sign-in or account creation was refused.
public enum StaffError: Error, Sendable, Equatable, CustomStringConvertible {
    case badCredentials
    case throttled(until: Date)
    case invalidName(String)
    case invalidRole(String)
    case exists(String)
    case weakPassword(String)

    public var description: String {
        switch self {
        case .badCredentials: "That name and password are not right."
        case .throttled: "Too many wrong passwords for this name: sign-in is paused for a while. Ask a supervisor if you are locked out."
        case .invalidName(let name): "staff name '\(name)' is not allowed: use 2 to 64 letters, digits, dots, hyphens or underscores"
        case .invalidRole(let role): "role '\(role)' is not one of \(ConsoleService.roles.joined(separator: ", "))"
        case .exists(let name): "staff member \(name) already exists (pass --replace to set a new password)"
        case .weakPassword(let why): why
        }
    }
}

/// Staff accounts, sessions, sign-in throttling and the audit of staff actions, in the console's store.
public struct StaffDirectory: Sendable {
    public let store: ServiceStore
    public let settings: ConsoleService.Settings
    public let clock: ServiceClock

    public init(store: ServiceStore, settings: ConsoleService.Settings, clock: ServiceClock) {
        self.store = store
        self.settings = settings
        self.clock = clock
    }

    public static let migration = StoreMigration("console-staff-v1") { db in
        try db.create(table: StaffUser.databaseTableName) { t in
            t.primaryKey("name", .text)
            t.column("role", .text).notNull()
            t.column("passwordHash", .text).notNull()
            t.column("createdAt", .datetime).notNull()
            t.column("createdBy", .text).notNull()
        }
        try db.create(table: StaffSession.databaseTableName) { t in
            t.primaryKey("sessionHash", .text)
            t.column("staffName", .text).notNull().indexed()
            t.column("role", .text).notNull()
            t.column("csrfToken", .text).notNull()
            t.column("createdAt", .datetime).notNull()
            t.column("expiresAt", .datetime).notNull().indexed()
        }
        try db.create(table: SignInThrottle.databaseTableName) { t in
            t.primaryKey("name", .text)
            t.column("failures", .integer).notNull()
            t.column("lastFailureAt", .datetime).notNull()
            t.column("lockedUntil", .datetime)
        }
        try db.create(table: StaffAuditEntry.databaseTableName) { t in
            t.autoIncrementedPrimaryKey("id")
            t.column("at", .datetime).notNull().indexed()
            t.column("staffName", .text).notNull().indexed()
            t.column("action", .text).notNull()
            t.column("target", .text).notNull()
            t.column("outcome", .text).notNull()
            t.column("detail", .text).notNull()
        }
    }

    /// The throttle counts per name and source address (it counted per name, so anyone could
    /// lock a staff member out). Throttles last minutes; the old ones are dropped.
    public static let throttlePerSource = StoreMigration("console-staff-v2-throttle-per-source") { db in
        try db.drop(table: SignInThrottle.databaseTableName)
        try db.create(table: SignInThrottle.databaseTableName) { t in
            t.column("name", .text).notNull()
            t.column("source", .text).notNull()
            t.column("failures", .integer).notNull()
            t.column("lastFailureAt", .datetime).notNull().indexed()
            t.column("lockedUntil", .datetime)
            t.primaryKey(["name", "source"])
        }
    }

    public static let migrations = [migration, throttlePerSource]

    public static func openStore(_ settings: ConsoleService.Settings) throws -> ServiceStore {
        try ServiceStore(path: settings.databasePath, migrations: migrations)
    }

    public static func validName(_ name: String) -> Bool {
        (2...64).contains(name.count) && name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "." || $0 == "-" || $0 == "_" }
    }

    /// A fresh password of 20 URL-safe characters (about 120 bits).
    public static func newPassword() throws -> String { String(try Secrets.newToken().prefix(20)) }

    /// Creates (or with `replace`, resets) a staff account.
    public func addUser(name: String, role: String, password: String, by creator: String, replace: Bool = false) async throws {
        guard Self.validName(name) else { throw StaffError.invalidName(name) }
        guard ConsoleService.roles.contains(role) else { throw StaffError.invalidRole(role) }
        do { try Secrets.checkStrength(password) } catch { throw StaffError.weakPassword(error.description) }
        let hash = try await Secrets.hashPassword(password, iterations: settings.passwordIterations)
        let now = clock.now()
        try await store.pool.write { db in
            if try StaffUser.fetchOne(db, key: name) != nil {
                guard replace else { throw StaffError.exists(name) }
                // A new password ends the account's sessions and lockout.
                try StaffSession.filter(Column("staffName") == name).deleteAll(db)
                try SignInThrottle.filter(Column("name") == name.lowercased()).deleteAll(db)
            }
            try StaffUser(name: name, role: role, passwordHash: hash, createdAt: now, createdBy: creator).save(db)
            try StaffAuditEntry(
                at: now, staffName: creator, action: replace ? "account-reset" : "account-added", target: name,
                outcome: "ok", detail: "role \(role)"
            ).insert(db)
        }
    }

    /// Creates the bootstrap account when it does not exist yet.
    public func bootstrap() async throws -> Bool {
        guard let user = settings.bootstrapUser else { return false }
        if try await store.pool.read({ try StaffUser.fetchOne($0, key: user.name) }) != nil { return false }
        try await addUser(name: user.name, role: user.role, password: user.password, by: "bootstrap (ENCOMPASS_CONSOLE_BOOTSTRAP_USER)")
        return true
    }

    public func users() async throws -> [StaffUser] {
        try await store.pool.read { try StaffUser.order(Column("name")).fetchAll($0) }
    }

    /// Checks the password; on success starts a session and returns it with the cookie's token.
    /// Wrong passwords count per name and `source` (the client's address); past
    /// `maxFailedSignIns` in a row the name is locked for `lockout` from that address only.
    public func signIn(name: String, password: String, source: String) async throws -> (session: StaffSession, token: String) {
        let now = clock.now()
        let key: [String: String] = ["name": name.lowercased(), "source": source]
        if let throttle = try await store.pool.read({ try SignInThrottle.fetchOne($0, key: key) }),
            let until = throttle.lockedUntil, until > now
        {
            try await audit(
                name, "sign-in-refused", target: name, outcome: "refused", detail: "locked until \(Timestamp.format(until)) from \(source)")
            throw StaffError.throttled(until: until)
        }
        let user = try await store.pool.read { try StaffUser.fetchOne($0, key: name) }
        let matches: Bool
        if let user {
            matches = (try? await Secrets.verifyPassword(password, stored: user.passwordHash)) ?? false
        } else {
            // The same PBKDF2 work for an unknown name, so the answer takes as long either way.
            _ = try? await Secrets.hashPassword(password, iterations: settings.passwordIterations)
            matches = false
        }
        guard let user, matches else {
            let maxFailures = settings.maxFailedSignIns
            let lockout = settings.lockout
            try await store.pool.write { db in
                var throttle =
                    try SignInThrottle.fetchOne(db, key: key)
                    ?? SignInThrottle(name: name.lowercased(), source: source, failures: 0, lastFailureAt: now, lockedUntil: nil)
                // A lock that has run out starts a new count.
                if let until = throttle.lockedUntil, until <= now {
                    throttle.failures = 0
                    throttle.lockedUntil = nil
                }
                throttle.failures += 1
                throttle.lastFailureAt = now
                if throttle.failures >= maxFailures { throttle.lockedUntil = now.addingTimeInterval(lockout) }
                try throttle.save(db)
                try StaffAuditEntry(
                    at: now, staffName: name, action: "sign-in-refused", target: name, outcome: "refused",
                    detail: "wrong name or password (\(throttle.failures) in a row from \(source))"
                ).insert(db)
            }
            throw StaffError.badCredentials
        }
        let token = try Secrets.newToken()
        let session = StaffSession(
            sessionHash: Secrets.sha256Hex(token), staffName: user.name, role: user.role,
            csrfToken: try Secrets.newToken(), createdAt: now, expiresAt: now.addingTimeInterval(settings.sessionLifetime))
        try await store.pool.write { db in
            try SignInThrottle.deleteOne(db, key: key)
            try SignInThrottle.filter(Column("lastFailureAt") <= now.addingTimeInterval(-86_400)).deleteAll(db)
            try StaffSession.filter(Column("expiresAt") <= now).deleteAll(db)
            try session.insert(db)
            try StaffAuditEntry(at: now, staffName: user.name, action: "sign-in", target: user.name, outcome: "ok", detail: "role \(user.role)")
                .insert(db)
        }
        return (session, token)
    }

    /// The sign-in locks in force on a name (every source address), ended by `unlock`.
    public func locks(name: String) async throws -> [SignInThrottle] {
        let now = clock.now()
        return try await store.pool.read { db in
            try SignInThrottle.filter(Column("name") == name.lowercased() && Column("lockedUntil") > now).order(Column("source")).fetchAll(db)
        }
    }

    /// Ends every lock and count of wrong passwords on a name, from every address; audited
    /// (`account-unlocked`, by `actor`). Returns the locks that were in force.
    @discardableResult
    public func unlock(name: String, by actor: String) async throws -> [SignInThrottle] {
        guard Self.validName(name) else { throw StaffError.invalidName(name) }
        let now = clock.now()
        return try await store.pool.write { db in
            let rows = try SignInThrottle.filter(Column("name") == name.lowercased()).fetchAll(db)
            try SignInThrottle.filter(Column("name") == name.lowercased()).deleteAll(db)
            let locked = rows.filter { ($0.lockedUntil ?? .distantPast) > now }
            let detail = locked.isEmpty ? "no lock in force" : "ended locks from " + locked.map(\.source).joined(separator: ", ")
            try StaffAuditEntry(at: now, staffName: actor, action: "account-unlocked", target: name, outcome: "ok", detail: detail).insert(db)
            return locked
        }
    }

    /// The live session of a cookie token, if any.
    public func session(token: String) async throws -> StaffSession? {
        guard (32...64).contains(token.count) else { return nil }
        let hash = Secrets.sha256Hex(token)
        let now = clock.now()
        return try await store.pool.read { db in
            try StaffSession.filter(Column("sessionHash") == hash && Column("expiresAt") > now).fetchOne(db)
        }
    }

    public func signOut(_ session: StaffSession) async throws {
        let now = clock.now()
        try await store.pool.write { db in
            _ = try StaffSession.deleteOne(db, key: session.sessionHash)
            try StaffAuditEntry(at: now, staffName: session.staffName, action: "sign-out", target: session.staffName, outcome: "ok", detail: "")
                .insert(db)
        }
    }

    /// Records a staff action.
    public func audit(_ staff: String, _ action: String, target: String, outcome: String, detail: String) async throws {
        let now = clock.now()
        try await store.pool.write { db in
            try StaffAuditEntry(at: now, staffName: staff, action: action, target: target, outcome: outcome, detail: String(detail.prefix(2000)))
                .insert(db)
        }
    }

    public func auditTrail(limit: Int = 200) async throws -> [StaffAuditEntry] {
        try await store.pool.read { try StaffAuditEntry.order(Column("id").desc).limit(limit).fetchAll($0) }
    }
}
