import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Ends a child process when the process that started it is gone. The demo and the process
/// tests start the broker, the services and the console as children (`LocalPipeline`) and pass
/// `ENCOMPASS_PARENT_PID`; a parent killed with SIGKILL cannot stop them itself, and they would
/// run on, holding their ports. When the parent has gone, the child sends itself SIGTERM (the
/// usual graceful shutdown) and, should that not finish within `grace`, exits.
public enum ParentWatch {
    public static let variable = "ENCOMPASS_PARENT_PID"

    /// Starts watching, on a thread of its own, when the variable names a parent; otherwise
    /// does nothing (a service started by a supervisor or by hand).
    public static func startIfRequested(
        _ environment: [String: String] = ProcessInfo.processInfo.environment, grace: TimeInterval = 30
    ) {
        guard let text = environment[variable]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return }
        guard let parent = Int32(text), parent > 1 else {
            FileHandle.standardError.write(Data("\(variable) is '\(text)'; expected the parent's process id; not watching the parent\n".utf8))
            return
        }
        let thread = Thread {
            // Orphans are re-parented (to init or a subreaper), so the parent id changes.
            while getppid() == parent { usleep(250_000) }
            FileHandle.standardError.write(Data("parent process \(parent) has gone; shutting down\n".utf8))
            kill(getpid(), SIGTERM)
            Thread.sleep(forTimeInterval: grace)
            _exit(1)
        }
        thread.name = "parent-watch"
        thread.start()
    }
}
