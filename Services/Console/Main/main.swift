import ConsoleService
import Foundation
import Logging
import ServiceRuntime

// The MASH console (docs/CONSOLE.md): reads its settings, serves the staff web pages.
let settings: ConsoleService.Settings
do {
    settings = try ConsoleService.Settings.fromEnvironment()
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(2)
}
RuntimeLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
let logger = Logger(label: "encompass.console")
ParentWatch.startIfRequested()
do {
    let app = try ConsoleApp(settings: settings, logger: logger)
    try await app.run()
} catch {
    logger.critical("console failed", metadata: ["error": "\(error)"])
    exit(1)
}
