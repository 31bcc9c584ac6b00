import Foundation

/// What a test does with a child's standard error.
public enum StandardErrorHandling: Sendable {
    /// Into the same output as standard output, in the order written.
    case merged
    /// Kept apart, in `ProcessResult.error`.
    case separate
    /// Thrown away.
    case discarded
}

/// A finished child process: its exit status and what it printed.
public struct ProcessResult: Sendable {
    public let status: Int32
    /// Standard output (with standard error when merged).
    public let output: String
    /// Standard error when kept apart, else empty.
    public let error: String
}

/// A process a test started: output to a pipe or a log file, waited for with a timeout, and
/// killed (SIGTERM, then SIGKILL) when the test lets go of it, so that a failing test leaves no
/// process behind holding ports.
public final class TestProcess: @unchecked Sendable {
    public let process: Process
    /// The path of the executable, for messages.
    public let path: String
    private let outputPipe: Pipe?
    private let errorPipe: Pipe?
    /// Standard input kept open while the test holds the process (`holdsInput`).
    private let heldInput: Pipe?

    /// Starts `path` with `arguments`; `environment` is added to the test's own environment (or
    /// replaces it when `inheritEnvironment` is false). Output goes to `log` when given (appended),
    /// else to a pipe that `waitForOutput` reads (a long-running process that prints more than a
    /// pipe holds wants `log`, `/dev/null` if nobody reads it). `holdsInput` keeps standard input
    /// open until `stop`: a peer that ends at the end of its input then ends with the test
    /// process, even one that crashes.
    public init(
        _ path: String, _ arguments: [String], environment: [String: String] = [:], inheritEnvironment: Bool = true,
        directory: String? = nil, log: String? = nil, errors: StandardErrorHandling = .merged, input: String? = nil,
        holdsInput: Bool = false
    ) throws {
        self.path = path
        process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment =
            inheritEnvironment
            ? ProcessInfo.processInfo.environment.merging(environment) { _, new in new } : environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let log {
            if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = errors == .discarded ? FileHandle.nullDevice : handle
            outputPipe = nil
            errorPipe = nil
        } else {
            let out = Pipe()
            outputPipe = out
            process.standardOutput = out
            switch errors {
            case .merged:
                process.standardError = out
                errorPipe = nil
            case .separate:
                let err = Pipe()
                process.standardError = err
                errorPipe = err
            case .discarded:
                process.standardError = FileHandle.nullDevice
                errorPipe = nil
            }
        }
        let stdin = input != nil || holdsInput ? Pipe() : nil
        if let stdin { process.standardInput = stdin }
        heldInput = holdsInput ? stdin : nil
        try process.run()
        if let stdin, let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            if !holdsInput { try stdin.fileHandleForWriting.close() }
        }
    }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Reads the output to its end and waits for the exit, blocking the calling thread; after
    /// `timeout` the process is killed and `TimeoutError` thrown with what it printed so far.
    public func waitForOutput(timeout: Duration = .seconds(900)) throws -> ProcessResult {
        let timedOut = Flag()
        let timer = DispatchWorkItem { [process] in
            guard process.isRunning else { return }
            timedOut.set()
            process.terminate()
            Thread.sleep(forTimeInterval: 5)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout.timeInterval, execute: timer)
        // Standard error is read on a thread of its own so that neither pipe fills while the other is read.
        let errorText = Box()
        let errorReader = errorPipe.map { pipe in
            let thread = Thread { errorText.set(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)) }
            thread.start()
            return thread
        }
        let output = outputPipe.map { String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        process.waitUntilExit()
        timer.cancel()
        if errorReader != nil { errorText.wait() }
        if timedOut.isSet {
            throw TimeoutError(what: "\(path) to finish within \(timeout) (killed); its output:\n\(output)\(errorText.value)")
        }
        return ProcessResult(status: process.terminationStatus, output: output, error: errorText.value)
    }

    /// Waits, without blocking a thread of the concurrency pool, for the process to exit; its status.
    public func exit(timeout: Duration) async throws -> Int32 {
        try await eventually("\(path) (pid \(processIdentifier)) to exit", timeout: timeout) { !process.isRunning }
        return process.terminationStatus
    }

    /// Polls `condition` (a port answering, a file written) until it holds; throws at once, with
    /// the exit status, if the process ends first, and `TimeoutError` after `timeout`.
    public func ready(
        _ what: String, timeout: Duration = .seconds(30), interval: Duration = .milliseconds(50),
        _ condition: () async throws -> Bool
    ) async throws {
        try await eventually(what, timeout: timeout, interval: interval) {
            if try await condition() { return true }
            guard process.isRunning else {
                throw TimeoutError(what: "\(what): \(path) exited with status \(process.terminationStatus) first")
            }
            return false
        }
    }

    /// Sends `signal` (SIGKILL: a crash) and waits for the exit; the exit status.
    @discardableResult
    public func signal(_ number: Int32, timeout: Duration = .seconds(30)) async throws -> Int32 {
        if process.isRunning { _ = kill(process.processIdentifier, number) }
        return try await exit(timeout: timeout)
    }

    /// Closes held input, then SIGTERM, then SIGKILL if it is still running after `grace`.
    public func stop(grace: Duration = .seconds(5)) {
        try? heldInput?.fileHandleForWriting.close()
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    deinit { stop(grace: .seconds(2)) }
}

/// Runs `path` to its end (blocking the calling thread): its exit status and output. Standard
/// error is merged into the output unless `errors` says otherwise; killed after `timeout`.
public func runProcess(
    _ path: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
    input: String? = nil, errors: StandardErrorHandling = .merged,
    timeout: Duration = .seconds(900)
) throws -> ProcessResult {
    try TestProcess(path, arguments, environment: environment, directory: directory, errors: errors, input: input)
        .waitForOutput(timeout: timeout)
}

/// Runs a built executable of this package (e.g. `encompass`) to its end.
public func runBuilt(
    _ name: String, _ arguments: [String], environment: [String: String] = [:],
    input: String? = nil, timeout: Duration = .seconds(900)
) throws -> ProcessResult {
    try runProcess(try executable(name), arguments, environment: environment, input: input, timeout: timeout)
}

/// Runs `python3 -c script arguments…` (a test peer: openpyxl, jsonschema, selenium) to its end.
public func runPython(
    _ script: String, _ arguments: [String] = [], errors: StandardErrorHandling = .merged,
    timeout: Duration = .seconds(300)
) throws -> ProcessResult {
    try runProcess("/usr/bin/env", ["python3", "-c", script] + arguments, errors: errors, timeout: timeout)
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

/// A flag set once from another thread.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// A string handed over from a reader thread.
private final class Box: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var text = ""
    func set(_ value: String) {
        lock.withLock { text = value }
        done.signal()
    }
    func wait() { done.wait() }
    var value: String { lock.withLock { text } }
}

/// Ports for the tests that start a whole pipeline as processes (`encompass demo`, `encompass
/// faults`), which take `base`…`base + 5` and the same a hundred and two hundred above for a
/// second and third instance. Suites run concurrently, so each base is handed out once per test
/// run, never within 300 of another, and only when those ports are free now.
public enum TestPorts {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handedOut: [Int] = []

    /// A free base port between 21,000 and 28,000.
    public static func pipelineBase() -> Int {
        lock.withLock {
            for _ in 0..<500 {
                let base = 21_000 + Int.random(in: 0..<700) * 10 + 1
                guard handedOut.allSatisfy({ abs($0 - base) >= 300 }),
                    (0..<3).allSatisfy({ instance in (0...5).allSatisfy { isFree(base + 100 * instance + $0) } })
                else { continue }
                handedOut.append(base)
                return base
            }
            return 21_000 + Int.random(in: 0..<700) * 10 + 1
        }
    }

    /// Whether nothing listens on `port` of 127.0.0.1 (binding it succeeds).
    public static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
