import EncompassKafka
import EncompassModels
import Foundation
import ServiceRuntime
import WebSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The whole pipeline on one machine, as separate processes: the embedded broker and one or
/// more instances of each service, each with its own store, log and HTTP port, all on one
/// simulated clock. Used by `encompass demo` and by the tests that kill processes.
///
/// Foundation starts each process in a process group of its own, so a Ctrl-C in the terminal
/// reaches only the supervisor, which stops the services before the broker.
public actor LocalPipeline {
    public struct Options: Sendable {
        /// Folder of the built executables (`encompass` and the five services).
        public var binDirectory: String
        /// Folder for logs, stores, the clock file and mail.
        public var directory: String
        public var apiToken: String
        public var intakeToken: String
        /// Instances per service (default 1).
        public var instances: [ServiceName: Int]
        /// Intake's HTTP port; the others follow as by default (8081…8085 from 8081), the console
        /// at +5, and instance i of a service listens 100 × (i − 1) above its first. Keep the ports
        /// below Linux's ephemeral range (32768 and up), where outgoing connections could take them.
        public var basePort: Int
        public var partitions: Int
        public var environment: [String: String]
        /// Starts the MASH console too (port basePort + 5), with one staff account.
        public var console: Bool
        public var consoleUser: String
        public var consolePassword: String
        /// Mock brokers in the embedded cluster (replication factor min(3, brokers)).
        public var brokers: Int
        /// Start the broker with its fault control port (`encompass broker --control-port`), for `broker(_:)`.
        public var brokerControl: Bool

        public init(
            binDirectory: String, directory: String, apiToken: String = "local-" + MessageID.fresh(),
            intakeToken: String = "local-intake-" + MessageID.fresh(), instances: [ServiceName: Int] = [:],
            basePort: Int = 8081, partitions: Int = 12, environment: [String: String] = [:],
            console: Bool = true, consoleUser: String = "mash.demo", consolePassword: String = "demo-" + UUID().uuidString.lowercased(),
            brokers: Int = 1, brokerControl: Bool = false
        ) {
            self.binDirectory = binDirectory
            self.directory = directory
            self.apiToken = apiToken
            self.intakeToken = intakeToken
            self.instances = instances
            self.basePort = basePort
            self.partitions = partitions
            self.environment = environment
            self.console = console
            self.consoleUser = consoleUser
            self.consolePassword = consolePassword
            self.brokers = brokers
            self.brokerControl = brokerControl
        }
    }

    public struct Instance: Sendable, Hashable {
        public var service: ServiceName
        public var number: Int
        public var name: String { "\(service.rawValue)-\(number)" }

        public init(service: ServiceName, number: Int) {
            self.service = service
            self.number = number
        }
    }

    struct Child {
        var name: String
        var process: Process
    }

    public nonisolated let options: Options
    private var broker: Child?
    private var services: [Instance: Child] = [:]
    private var order: [Instance] = []
    private var console: Child?

    public init(_ options: Options) {
        self.options = options
    }

    public nonisolated var clockFile: String { "\(options.directory)/clock.json" }
    public nonisolated var mailDirectory: String { "\(options.directory)/mail" }
    public nonisolated var bootstrapFile: String { "\(options.directory)/broker.bootstrap" }
    public nonisolated var brokerControlFile: String { "\(options.directory)/broker.control" }

    public nonisolated func port(_ service: ServiceName, instance: Int = 1) -> Int {
        options.basePort + (service.defaultHTTPPort - ServiceName.intake.defaultHTTPPort) + 100 * (instance - 1)
    }

    public nonisolated func url(_ service: ServiceName, instance: Int = 1) -> String { "http://127.0.0.1:\(port(service, instance: instance))" }

    /// Every instance's URL, comma-separated: the value of `ENCOMPASS_<SERVICE>_URLS` for the console and the CLI.
    public nonisolated func instanceURLs(_ service: ServiceName) -> String {
        instances(of: service).map { url(service, instance: $0) }.joined(separator: ",")
    }

    /// The MASH console's port: the one after the five services'.
    public nonisolated var consolePort: Int { options.basePort + 5 }
    public nonisolated var consoleURL: String { "http://127.0.0.1:\(consolePort)" }

    public nonisolated func client(_ service: ServiceName, instance: Int = 1) -> ServiceClient {
        ServiceClient(service: service, baseURL: url(service, instance: instance), token: service == .intake ? options.intakeToken : options.apiToken)
    }

    /// A client of a service's operations API (dead letters), which every service guards with
    /// `ENCOMPASS_API_TOKEN`, intake included.
    public nonisolated func operationsClient(_ service: ServiceName, instance: Int = 1) -> ServiceClient {
        ServiceClient(service: service, baseURL: url(service, instance: instance), token: options.apiToken)
    }

    public nonisolated func instances(of service: ServiceName) -> [Int] { Array(1...max(1, options.instances[service] ?? 1)) }

    public func setClock(_ simulated: Date, rate: Double) throws {
        try SimulatedClockFile(simulated: simulated, real: Date(), rate: rate).write(to: clockFile)
    }

    /// Starts the broker and every instance (`upTo`: only the first so many of each service; `scale`
    /// starts the others later), and waits until each answers /readyz.
    public func start(clock: Date, rate: Double = 0, upTo: Int? = nil) async throws {
        try FileManager.default.createDirectory(atPath: mailDirectory, withIntermediateDirectories: true)
        try setClock(clock, rate: rate)
        try? FileManager.default.removeItem(atPath: bootstrapFile)
        try? FileManager.default.removeItem(atPath: brokerControlFile)
        var arguments = ["broker", "--address-file", bootstrapFile, "--partitions", String(options.partitions), "--brokers", String(options.brokers)]
        if options.brokerControl { arguments += ["--control-port", "0", "--control-file", brokerControlFile] }
        broker = try launch("broker", executable: "encompass", arguments: arguments, environment: ProcessInfo.processInfo.environment)
        try await waitFor("the embedded broker", timeout: .seconds(30)) { FileManager.default.fileExists(atPath: self.bootstrapFile) }
        for service in ServiceName.allCases {
            for number in instances(of: service) where number <= (upTo ?? Int.max) {
                try startInstance(Instance(service: service, number: number))
            }
        }
        for instance in order {
            try await waitReady(instance)
        }
        if options.console { try await startConsole() }
    }

    /// The console, as its own process, reading every instance of each service.
    private func startConsole() async throws {
        var environment = ProcessInfo.processInfo.environment.merging(options.environment) { _, new in new }
        environment["ENCOMPASS_DATA_DIR"] = "\(options.directory)/console"
        environment["ENCOMPASS_HTTP_PORT"] = String(consolePort)
        environment["ENCOMPASS_API_TOKEN"] = options.apiToken
        environment["ENCOMPASS_CLOCK_FILE"] = clockFile
        environment["ENCOMPASS_CONSOLE_BOOTSTRAP_USER"] = "\(options.consoleUser):officer"
        environment["ENCOMPASS_CONSOLE_BOOTSTRAP_PASSWORD"] = options.consolePassword
        for service in ServiceName.allCases {
            environment[ServiceClient.variable(service)] = url(service)
            environment[ServiceClient.instancesVariable(service)] = instanceURLs(service)
        }
        if environment["ENCOMPASS_LOG_LEVEL"] == nil { environment["ENCOMPASS_LOG_LEVEL"] = "notice" }
        console = try launch("console", executable: "console", arguments: [], environment: environment)
        let url = consoleURL + "/readyz"
        try await waitFor("the console to be ready", timeout: .seconds(60)) { (try? await LocalPipeline.get(url).status) == 200 }
    }

    public func waitReady(_ instance: Instance, timeout: Duration = .seconds(90)) async throws {
        let url = self.url(instance.service, instance: instance.number) + "/readyz"
        try await waitFor("\(instance.name) to be ready", timeout: timeout) {
            (try? await LocalPipeline.get(url).status) == 200
        }
    }

    private func startInstance(_ instance: Instance) throws {
        var environment = ProcessInfo.processInfo.environment.merging(options.environment) { _, new in new }
        environment["ENCOMPASS_KAFKA_BOOTSTRAP_FILE"] = bootstrapFile
        environment["ENCOMPASS_DATA_DIR"] = "\(options.directory)/\(instance.name)"
        environment["ENCOMPASS_INSTANCE_ID"] = instance.name
        environment["ENCOMPASS_HTTP_PORT"] = String(port(instance.service, instance: instance.number))
        environment["ENCOMPASS_API_TOKEN"] = options.apiToken
        environment["ENCOMPASS_INTAKE_API_TOKEN"] = options.intakeToken
        environment["ENCOMPASS_CLOCK_FILE"] = clockFile
        environment["ENCOMPASS_MAIL_DIR"] = mailDirectory
        // A notice's page is on the dispatch instance that sent it: each instance links to its own address.
        environment["ENCOMPASS_PUBLIC_URL"] = url(.dispatch, instance: instance.service == .dispatch ? instance.number : 1)
        environment["ENCOMPASS_TOPIC_PARTITIONS"] = String(options.partitions)
        if environment["ENCOMPASS_LOG_LEVEL"] == nil { environment["ENCOMPASS_LOG_LEVEL"] = "notice" }
        // The embedded broker's fetch wait is not woken by new records, and it does not check an
        // idempotent producer's sequence numbers (MockKafkaCluster's consumer and producer properties).
        let embedded: [(ServiceConfiguration.KafkaClients, [String: String])] = [
            (.consumers, MockKafkaCluster.consumerProperties), (.producers, MockKafkaCluster.producerProperties),
        ]
        for (clients, properties) in embedded {
            for (name, value) in properties {
                let variable = ServiceConfiguration.kafkaPropertyVariable(name, for: clients)
                if environment[variable] == nil { environment[variable] = value }
            }
        }
        services[instance] = try launch(instance.name, executable: instance.service.rawValue, arguments: [], environment: environment)
        if !order.contains(instance) { order.append(instance) }
    }

    private func launch(_ name: String, executable: String, arguments: [String], environment: [String: String]) throws -> Child {
        let log = "\(options.directory)/\(name).log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(options.binDirectory)/\(executable)")
        process.arguments = arguments
        // The child stops itself if this process dies without stopping it (SIGKILL, crash).
        process.environment = environment.merging([ParentWatch.variable: String(getpid())]) { _, watch in watch }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return Child(name: name, process: process)
    }

    /// Sends a fault command to the embedded broker (`MockClusterControl` lists them) and returns
    /// its answer; throws when the broker refuses it. Needs `Options.brokerControl`.
    @discardableResult
    public nonisolated func broker(_ command: String) async throws -> String {
        guard let text = try? String(contentsOfFile: brokerControlFile, encoding: .utf8),
            let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw PipelineError("no broker control port in \(brokerControlFile); start the pipeline with Options.brokerControl")
        }
        let answer = try await MockClusterControlClient.send(command, port: port)
        guard answer.hasPrefix("ok") else { throw PipelineError("the broker refused `\(command)`: \(answer)") }
        return answer
    }

    /// Sends `signal` to one instance (SIGKILL: it dies mid-work, as a crashed machine would).
    public func signal(_ instance: Instance, _ signal: Int32) async {
        guard let child = services[instance] else { return }
        if signal == SIGKILL || signal == SIGTERM { downOnPurpose.insert(instance) }
        kill(child.process.processIdentifier, signal)
        while child.process.isRunning, downOnPurpose.contains(instance) { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// Instances stopped by `signal`, until `restart`: not reported by `exited()`.
    private var downOnPurpose = Set<Instance>()

    /// Starts a stopped instance again with the same store and name.
    public func restart(_ instance: Instance) async throws {
        if let child = services[instance], child.process.isRunning { return }
        downOnPurpose.remove(instance)
        try startInstance(instance)
        try await waitReady(instance)
    }

    /// Runs the first `count` instances of a service: starts those not running (each waited for
    /// until ready) and stops the others gracefully (SIGTERM: they leave the group at once).
    public func scale(_ service: ServiceName, to count: Int) async throws {
        for number in instances(of: service) {
            let instance = Instance(service: service, number: number)
            if number <= count { try await restart(instance) } else { await signal(instance, SIGTERM) }
        }
    }

    /// Whether an instance is not running on purpose: never started, or stopped by `signal`.
    public func isDown(_ instance: Instance) -> Bool { services[instance] == nil || downOnPurpose.contains(instance) }

    /// Process ids of the running instances (and `broker`), for resource figures.
    public func processIds() -> [String: Int32] {
        var ids: [String: Int32] = [:]
        if let broker, broker.process.isRunning { ids["broker"] = broker.process.processIdentifier }
        if let console, console.process.isRunning { ids["console"] = console.process.processIdentifier }
        for (instance, child) in services where child.process.isRunning { ids[instance.name] = child.process.processIdentifier }
        return ids
    }

    /// The first process that stopped without being asked to, if any.
    public func exited() -> String? {
        func describe(_ child: Child) -> String {
            let how = child.process.terminationReason == .uncaughtSignal ? "signal" : "exit status"
            return "\(child.name) (\(how) \(child.process.terminationStatus))"
        }
        if let broker, !broker.process.isRunning { return describe(broker) }
        if let console, !console.process.isRunning { return describe(console) }
        return order.filter { !downOnPurpose.contains($0) }.compactMap { services[$0] }.first { !$0.process.isRunning }.map(describe)
    }

    /// SIGTERM to each instance in reverse order of start (each waited for), then the broker.
    public func stopAll(report: (@Sendable (String) -> Void)? = nil) async {
        if let console {
            await stop(console)
            report?("stopped the console")
        }
        console = nil
        for instance in order.reversed() {
            guard let child = services[instance] else { continue }
            await stop(child)
            report?("stopped \(child.name)")
        }
        services = [:]
        if let broker {
            await stop(broker)
            report?("stopped the embedded broker")
        }
        broker = nil
    }

    private func stop(_ child: Child) async {
        guard child.process.isRunning else { return }
        kill(child.process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(70)
        while child.process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) }
    }

    // MARK: figures and waiting

    /// Every instance's /metrics text.
    public func figures() async -> PipelineFigures {
        var values: [ServiceName: [String]] = [:]
        for instance in order where services[instance]?.process.isRunning == true {
            if let body = try? await LocalPipeline.get(url(instance.service, instance: instance.number) + "/metrics").body {
                values[instance.service, default: []].append(body)
            }
        }
        return PipelineFigures(metrics: values)
    }

    /// Waits until no instance processes anything and every outbox is empty for `stable`.
    public func quiet(stable: Duration = .seconds(3), timeout: Duration = .seconds(300)) async throws {
        let deadline = ContinuousClock.now + timeout
        var previous = -1.0
        var stableSince = ContinuousClock.now
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            if let name = exited() { throw PipelineError("\(name) stopped; see its log in \(options.directory)/") }
            let figures = await figures()
            let processed = figures.total("encompass_messages_processed_total")
            let pending = figures.total("encompass_outbox_pending")
            if processed != previous || pending > 0 {
                previous = processed
                stableSince = ContinuousClock.now
            } else if ContinuousClock.now - stableSince >= stable {
                return
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw PipelineError("the pipeline did not settle in \(timeout); see \(options.directory)/*.log")
    }

    public func waitFor(_ what: String, timeout: Duration, _ condition: @escaping @Sendable () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            if await condition() { return }
            if let name = exited() { throw PipelineError("\(name) stopped while waiting for \(what); see its log in \(options.directory)/") }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw PipelineError("timed out waiting for \(what); see \(options.directory)/*.log")
    }

    /// GET over HTTP; status and body.
    public static func get(_ url: String) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}

public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Prometheus text of every instance, by service.
public struct PipelineFigures: Sendable {
    public var metrics: [ServiceName: [String]]

    /// Sum of a counter or gauge over a service's instances, over lines containing `containing`.
    public func sum(_ service: ServiceName, _ metric: String, containing: String = "") -> Double {
        var total = 0.0
        for text in metrics[service] ?? [] {
            for line in text.split(separator: "\n") where line.hasPrefix(metric + "{") || line.hasPrefix(metric + " ") {
                guard containing.isEmpty || line.contains(containing), let value = line.split(separator: " ").last.flatMap({ Double($0) }) else {
                    continue
                }
                total += value
            }
        }
        return total
    }

    public func total(_ metric: String) -> Double { ServiceName.allCases.reduce(0) { $0 + sum($1, metric) } }

    /// Records of `topic` a service has processed (applied, duplicate or dead-lettered).
    public func processed(_ service: ServiceName, topic: String) -> Double {
        sum(service, "encompass_messages_processed_total", containing: "topic=\"\(topic)\"")
    }

    public var line: String {
        let history = processed(.childResearch, topic: Topics.history.name)
        let research = processed(.childResearch, topic: Topics.incidents.name)
        let schools = processed(.schoolResolution, topic: Topics.children.name)
        let scheduled = processed(.scheduling, topic: Topics.noticeRequests.name)
        let released = processed(.dispatch, topic: Topics.noticesDue.name)
        return
            "history \(Int(history)) · incidents researched \(Int(research)) · children resolved \(Int(schools)) · notices scheduled \(Int(scheduled)) · released \(Int(released))"
    }
}

extension LocalPipeline {
    /// Gives each account (school URN, EY reference or `LA<code>`) the notice-page password
    /// `password` through dispatch's bulk API, as a MASH does before notices go out: dispatch
    /// holds mail to an account without one. Every dispatch instance gets them from
    /// `encompass.dispatch.accounts`.
    public nonisolated func setSchoolPasswords(_ accounts: [String], password: String) async throws {
        guard !accounts.isEmpty else { return }
        let rows = accounts.sorted().enumerated().map { SchoolPasswordsRequest.Row(row: $0.offset + 2, account: $0.element, password: password) }
        let (status, body) = try await client(.dispatch).call("PUT", "/v1/schools/passwords", json: SchoolPasswordsRequest(rows: rows, setBy: "demo"))
        let answer = try? WireFormat.decoder().decode(SchoolPasswordsAnswer.self, from: body)
        guard status == 200, let answer, answer.refused.isEmpty else {
            throw PipelineError("dispatch refused school passwords (\(status)): \(String(decoding: body.prefix(500), as: UTF8.self))")
        }
    }
}
