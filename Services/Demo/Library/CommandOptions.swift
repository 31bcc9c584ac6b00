import ArgumentParser
import Foundation
import Logging
import ServiceRuntime

// What the command-line executables (`encompass`, `encompass-bench`) share beside the local
// pipeline: log options and where the services' executables are.

/// Log settings shared by the subcommands.
public struct LogOptions: ParsableArguments {
    public init() {}

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: String = "warning"

    @Option(help: "Log format: text or json (one object per line, millisecond timestamps).")
    public var logFormat: String = "text"

    public func logger(_ label: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' is not a level; use trace, debug, info, notice, warning, error or critical")
        }
        guard let format = ServiceConfiguration.LogFormat(rawValue: logFormat) else {
            throw ValidationError("--log-format '\(logFormat)' is not a format; use text or json")
        }
        RuntimeLogging.bootstrap(format: format, level: level)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

/// Folder of this executable (the services are built beside it): `LocalPipeline.Options.binDirectory`
/// for a pipeline started by a command.
public func binDirectory() -> String {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
}
