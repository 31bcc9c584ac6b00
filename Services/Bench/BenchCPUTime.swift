import Foundation

/// CPU time (user plus system) of this process, of some of its threads, and of a child process,
/// to the microsecond: on a machine shared with other work, CPU per record moves far less from
/// run to run than records per second.
enum CPUTime {
    /// This process so far (getrusage).
    static func process() -> Duration {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return total(usage)
    }

    /// The ids of this process's threads now (/proc/self/task).
    static func threadIds() -> Set<Int32> {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return Set(names.compactMap { Int32($0) })
    }

    /// Time on the CPU of these threads of this process so far (/proc/self/task/ID/schedstat, in
    /// nanoseconds; a thread that has ended counts nothing).
    static func threads(_ ids: Set<Int32>) -> Duration {
        var nanoseconds: Int64 = 0
        for id in ids {
            guard let text = try? String(contentsOfFile: "/proc/self/task/\(id)/schedstat", encoding: .utf8),
                let first = text.split(separator: " ").first, let value = Int64(first)
            else { continue }
            nanoseconds += value
        }
        return .nanoseconds(nanoseconds)
    }

    /// Runs a program to its end with standard output discarded, and returns its wall time and
    /// its CPU time (wait4's resource usage). Throws if it cannot start or exits with a failure.
    static func run(_ executable: String, _ arguments: [String]) throws -> (wall: Duration, cpu: Duration) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let start = ContinuousClock.now
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw CPUTimeError(message: "could not start \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw CPUTimeError(message: "wait4 for \(executable): \(String(cString: strerror(errno)))") }
        }
        let wall = ContinuousClock.now - start
        // Exited normally (no signal) with status 0.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw CPUTimeError(
                message: "\(executable) \(arguments.joined(separator: " ")) failed (wait status \(status)); run it by hand to see its error")
        }
        return (wall, total(usage))
    }

    private static func total(_ usage: rusage) -> Duration {
        func duration(_ time: timeval) -> Duration { .seconds(Int64(time.tv_sec)) + .microseconds(Int64(time.tv_usec)) }
        return duration(usage.ru_utime) + duration(usage.ru_stime)
    }
}

struct CPUTimeError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
