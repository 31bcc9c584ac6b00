import Testing

extension Tag {
    /// Starts the whole pipeline as processes (`encompass demo`, `encompass faults`): minutes
    /// each, several processes and an embedded broker.
    @Tag public static var processes: Self
    /// Drives Debian's chromium through selenium.
    @Tag public static var browser: Self
}
