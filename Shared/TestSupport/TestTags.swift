import Testing

/// What a test needs beyond the test process, so a run can pick or leave out the slow kinds.
/// Swift 6.4's `swift test --filter tag:kafka` / `--skip tag:processes` select by these; on 6.3
/// the README lists the matching `--skip` pattern of suite names.
extension Tag {
    /// Starts the whole pipeline as processes (`encompass demo`, `encompass faults`): minutes
    /// each, several processes and an embedded broker.
    @Tag public static var processes: Self
    /// Drives Debian's chromium through selenium.
    @Tag public static var browser: Self
    /// Starts an in-process mock Kafka cluster and services or clients on it: seconds per test,
    /// most of them waiting for consumer groups to join and rebalance.
    @Tag public static var kafka: Self
    /// Runs a peer outside Swift: python3 (openpyxl, jsonschema, aiosmtpd), Prometheus or
    /// docker-compose.
    @Tag public static var peers: Self
    /// Sweeps a whole real data set (the 2018 school list, FEBRL, fuzz rounds): seconds of CPU.
    @Tag public static var slow: Self
}
