import EncompassModels
import EncompassSecrets
import Foundation
import Logging
import ServiceRuntime
import WebSupport

/// The MASH console: a small web app for MASH staff over the five services' HTTP APIs. It
/// consumes no topic; its own SQLite store holds only staff accounts, sessions and the audit
/// of staff actions. docs/CONSOLE.md describes it.
public enum ConsoleService {
    /// Beside the five services' 8081…8085.
    public static let defaultHTTPPort = 8086
    /// Staff roles: `officer` may act (confirm/reject, download/upload CSC sheets); `viewer` only looks.
    public static let roles = ["officer", "viewer"]

    /// The console's settings, from the environment (docs/CONSOLE.md lists them).
    public struct Settings: Sendable {
        public var httpHost = "127.0.0.1"
        /// 0 asks the system for a free port (tests).
        public var httpPort = ConsoleService.defaultHTTPPort
        public var dataDirectory = "var/console"
        /// Bearer token of the services' APIs (`ENCOMPASS_API_TOKEN`); without it every page
        /// shows the services as refusing.
        public var apiToken: String?
        /// Each service's base URL (`ENCOMPASS_<SERVICE>_URL`, else 127.0.0.1 and its default port).
        public var serviceURLs: [ServiceName: String] = Dictionary(
            uniqueKeysWithValues: ServiceName.allCases.map { ($0, "http://127.0.0.1:\($0.defaultHTTPPort)") })
        /// Every instance of each service (`ENCOMPASS_<SERVICE>_URLS`, else the one URL): the
        /// console gathers what each instance keeps for its own partitions (CSC requests, held
        /// answers, notices, dead letters) from all of them.
        public var serviceInstances: [ServiceName: [String]] = [:]
        /// Seconds a page waits for a service before showing it as unreachable.
        public var serviceTimeout: TimeInterval = 5
        /// How long a session lasts after sign-in (not extended by use).
        public var sessionLifetime: TimeInterval = 8 * 3600
        /// Wrong passwords in a row (per account name and source address) before sign-in from that
        /// address is refused for `lockout`.
        public var maxFailedSignIns = 5
        public var lockout: TimeInterval = 15 * 60
        /// PBKDF2 iterations for new passwords.
        public var passwordIterations = Secrets.defaultIterations
        /// Count sign-in failures by the last `X-Forwarded-For` address (only behind a proxy that
        /// sets it; `ENCOMPASS_CONSOLE_TRUST_FORWARDED_FOR`), else by the TCP peer's address.
        public var trustForwardedFor = false
        /// Adds `Secure` to the cookies (set when the console is served over HTTPS).
        public var secureCookies = false
        /// A staff account created at start when missing (`ENCOMPASS_CONSOLE_BOOTSTRAP_USER=name:role`
        /// and `ENCOMPASS_CONSOLE_BOOTSTRAP_PASSWORD`): the demo's way in.
        public var bootstrapUser: (name: String, role: String, password: String)?
        public var clockFile: String?
        /// The retention purge of the staff audit's free text (`ENCOMPASS_RETENTION_*`, as the services').
        public var retention = RetentionSettings()
        /// The forces whose items this console shows and acts on (`ENCOMPASS_CONSOLE_FORCES`,
        /// force codes separated by commas, e.g. `05`): a force's MASH runs its own console over a
        /// pipeline that serves several forces, and its staff see only their own force's review
        /// queue, CSC requests, held answers and notices. nil (unset): every force's.
        public var forces: Set<String>?
        public var logLevel: Logger.Level = .info
        public var logFormat: ServiceConfiguration.LogFormat = .json

        public init() {}

        public var databasePath: String { (dataDirectory as NSString).appendingPathComponent("console.sqlite") }
        public var clock: ServiceClock { clockFile.map(ServiceClock.file) ?? .system }

        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError)
            -> Settings
        {
            let env = EnvironmentReader(environment)
            var settings = Settings()
            settings.httpHost = env.string("ENCOMPASS_HTTP_HOST") ?? settings.httpHost
            settings.httpPort = try env.int("ENCOMPASS_HTTP_PORT", in: 0...65535) ?? settings.httpPort
            settings.dataDirectory = env.string("ENCOMPASS_DATA_DIR") ?? settings.dataDirectory
            settings.apiToken = env.string("ENCOMPASS_API_TOKEN")
            for service in ServiceName.allCases {
                settings.serviceURLs[service] = ServiceClient.defaultBaseURL(service, environment: environment)
                settings.serviceInstances[service] = ServiceClient.instanceBaseURLs(service, environment: environment)
                for url in settings.serviceInstances[service] ?? [] where URL(string: url)?.host == nil {
                    throw ConfigurationError(
                        variable: ServiceClient.instancesVariable(service),
                        problem: "lists '\(url)'; expected URLs such as http://127.0.0.1:\(service.defaultHTTPPort), comma-separated")
                }
                if let url = settings.serviceURLs[service], URL(string: url)?.host == nil {
                    throw ConfigurationError(
                        variable: ServiceClient.variable(service),
                        problem: "is '\(url)'; expected a URL such as http://127.0.0.1:\(service.defaultHTTPPort)")
                }
            }
            if let seconds = try env.int("ENCOMPASS_CONSOLE_SERVICE_TIMEOUT_SECONDS", in: 1...300) { settings.serviceTimeout = TimeInterval(seconds) }
            if let hours = try env.int("ENCOMPASS_CONSOLE_SESSION_HOURS", in: 1...24) { settings.sessionLifetime = TimeInterval(hours * 3600) }
            settings.maxFailedSignIns = try env.int("ENCOMPASS_CONSOLE_MAX_FAILED_SIGN_INS", in: 1...100) ?? settings.maxFailedSignIns
            if let minutes = try env.int("ENCOMPASS_CONSOLE_LOCKOUT_MINUTES", in: 1...1440) { settings.lockout = TimeInterval(minutes * 60) }
            settings.secureCookies = try env.bool("ENCOMPASS_CONSOLE_SECURE_COOKIE") ?? false
            if let text = env.string("ENCOMPASS_CONSOLE_FORCES") {
                let codes = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard !codes.isEmpty, codes.allSatisfy({ (1...8).contains($0.count) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } })
                else {
                    throw ConfigurationError(
                        variable: "ENCOMPASS_CONSOLE_FORCES", problem: "is '\(text)'; expected force codes separated by commas, e.g. 05 or 43,05")
                }
                settings.forces = Set(codes)
            }
            settings.trustForwardedFor = try env.bool("ENCOMPASS_CONSOLE_TRUST_FORWARDED_FOR") ?? false
            if let user = env.string("ENCOMPASS_CONSOLE_BOOTSTRAP_USER") {
                let parts = user.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, StaffDirectory.validName(parts[0]), roles.contains(parts[1]) else {
                    throw ConfigurationError(
                        variable: "ENCOMPASS_CONSOLE_BOOTSTRAP_USER",
                        problem: "is '\(user)'; expected NAME:ROLE with ROLE one of \(roles.joined(separator: ", "))")
                }
                guard let password = env.string("ENCOMPASS_CONSOLE_BOOTSTRAP_PASSWORD") else {
                    throw ConfigurationError(
                        variable: "ENCOMPASS_CONSOLE_BOOTSTRAP_PASSWORD", problem: "is missing; ENCOMPASS_CONSOLE_BOOTSTRAP_USER needs it")
                }
                do { try Secrets.checkStrength(password) } catch {
                    throw ConfigurationError(variable: "ENCOMPASS_CONSOLE_BOOTSTRAP_PASSWORD", problem: "is too weak: \(error.description)")
                }
                settings.bootstrapUser = (parts[0], parts[1], password)
            }
            settings.clockFile = env.string("ENCOMPASS_CLOCK_FILE")
            settings.retention = try RetentionSettings.fromEnvironment(environment)
            let levelText = env.string("ENCOMPASS_LOG_LEVEL") ?? "info"
            guard let level = Logger.Level(rawValue: levelText) else {
                throw ConfigurationError(
                    variable: "ENCOMPASS_LOG_LEVEL", problem: "is '\(levelText)'; use trace, debug, info, notice, warning, error or critical")
            }
            settings.logLevel = level
            let formatText = env.string("ENCOMPASS_LOG_FORMAT") ?? "json"
            guard let format = ServiceConfiguration.LogFormat(rawValue: formatText) else {
                throw ConfigurationError(variable: "ENCOMPASS_LOG_FORMAT", problem: "is '\(formatText)'; use json or text")
            }
            settings.logFormat = format
            return settings
        }
    }
}
