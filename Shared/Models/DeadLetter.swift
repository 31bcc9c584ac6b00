import Foundation

/// Published on a service's dead-letter topic (`encompass.dlq.<service>`) when a record fails
/// validation or exhausts its retries. The same facts are kept durably in the service's SQLite
/// `deadLetter` table, because the broker may drop old records.
public struct DeadLetterEvent: MessagePayload {
    public static let schema = "encompass.dead-letter"
    public static let schemaVersion = 1

    public var service: String
    public var originalTopic: String
    public var originalPartition: Int32
    public var originalOffset: Int64
    public var originalKey: String?
    /// The original value when it is UTF-8 text, else nil and `originalValueBase64` is set.
    public var originalValue: String?
    public var originalValueBase64: String?
    public var originalMessageId: String?
    /// Stable category, e.g. `envelope.not-json`, `payload.validation`, `retries-exhausted`.
    public var errorClass: String
    public var errorMessage: String
    public var attempts: Int
    public var firstFailedAt: Date
    public var deadLetteredAt: Date

    public init(
        service: String, originalTopic: String, originalPartition: Int32, originalOffset: Int64,
        originalKey: String?, originalValue: [UInt8], originalMessageId: String?, errorClass: String,
        errorMessage: String, attempts: Int, firstFailedAt: Date, deadLetteredAt: Date
    ) {
        self.service = service
        self.originalTopic = originalTopic
        self.originalPartition = originalPartition
        self.originalOffset = originalOffset
        self.originalKey = originalKey
        if let text = String(validating: originalValue, as: UTF8.self), !text.contains("\u{0}") {
            self.originalValue = text
        } else {
            self.originalValueBase64 = Data(originalValue).base64EncodedString()
        }
        self.originalMessageId = originalMessageId
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.attempts = attempts
        self.firstFailedAt = firstFailedAt
        self.deadLetteredAt = deadLetteredAt
    }

    /// The original bytes, whichever way they were carried.
    public var originalBytes: [UInt8] {
        if let originalValue { return Array(originalValue.utf8) }
        return originalValueBase64.flatMap { Data(base64Encoded: $0) }.map { Array($0) } ?? []
    }
}
