import ArgumentParser
import ConsoleService
import EncompassModels
import Foundation
import ServiceRuntime

/// `encompass console …`: the MASH console's staff accounts (docs/CONSOLE.md).
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "MASH console staff accounts (the console itself is the `console` executable, port 8086).",
        subcommands: [AddUser.self, Users.self, Unlock.self, Audit.self]
    )

    /// Who ran the command, as the audit records it.
    static var cliActor: String { ProcessInfo.processInfo.environment["USER"].map { "cli (\($0))" } ?? "cli" }

    struct Store: ParsableArguments {
        @Option(help: "The console's data folder (default: $ENCOMPASS_DATA_DIR or var/console), where console.sqlite is.")
        var dataDir: String?

        func directory() throws -> StaffDirectory {
            var settings = ConsoleService.Settings()
            settings.dataDirectory =
                dataDir ?? ProcessInfo.processInfo.environment["ENCOMPASS_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "var/console"
            return StaffDirectory(store: try StaffDirectory.openStore(settings), settings: settings, clock: .system)
        }
    }

    struct AddUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-user",
            abstract: "Create a staff account (or reset its password with --replace).",
            discussion:
                "Without --password-stdin a random password is generated and printed once. With it, the first line of standard input is the password (at least 12 characters), so it never appears in the process list: `printf '%s\\n' \"$PW\" | encompass console add-user --name j.smith --role officer --password-stdin`."
        )
        @Option(help: "Staff name (letters, digits, . - _), shown on every decision they make.") var name: String
        @Option(help: "officer (may confirm/reject, download/upload CSC sheets) or viewer (looks only).") var role: String = "officer"
        @Flag(help: "Read the password from standard input.") var passwordStdin = false
        @Flag(help: "Reset an existing account's password and role (ends its sessions).") var replace = false
        @OptionGroup var store: Store

        func run() async throws {
            let password: String
            if passwordStdin {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password on standard input") }
                password = line
            } else {
                password = try StaffDirectory.newPassword()
            }
            let creator = ConsoleCommand.cliActor
            do {
                try await store.directory().addUser(name: name, role: role, password: password, by: creator, replace: replace)
            } catch let error as StaffError {
                throw ValidationError(error.description)
            }
            print("staff account \(name) (\(role)) \(replace ? "reset" : "created")")
            if !passwordStdin { print("password: \(password)\n(shown once: give it to \(name) in person)") }
        }
    }

    struct Users: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the staff accounts.")
        @OptionGroup var store: Store

        func run() async throws {
            for user in try await store.directory().users() {
                print("\(user.name)  \(user.role)  created \(user.createdAt) by \(user.createdBy)")
            }
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End the sign-in locks on a staff name (from every address), e.g. after someone guessed its password; audited.")
        @Option(help: "Staff name whose locks end.") var name: String
        @OptionGroup var store: Store

        func run() async throws {
            let actor = ConsoleCommand.cliActor
            let ended: [SignInThrottle]
            do {
                ended = try await store.directory().unlock(name: name, by: actor)
            } catch let error as StaffError {
                throw ValidationError(error.description)
            }
            if ended.isEmpty {
                print("\(name) had no sign-in lock in force; any count of wrong passwords is cleared")
            } else {
                for lock in ended {
                    print("\(name): lock from \(lock.source) until \(Timestamp.format(lock.lockedUntil ?? Date())) ended")
                }
            }
        }
    }

    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The latest staff actions (sign-ins, decisions, downloads, uploads).")
        @Option(help: "How many entries.") var limit: Int = 50
        @OptionGroup var store: Store

        func run() async throws {
            for entry in try await store.directory().auditTrail(limit: limit).reversed() {
                print("\(entry.at)  \(entry.staffName)  \(entry.action)  \(entry.target)  \(entry.outcome)  \(entry.detail)")
            }
        }
    }
}
