import CCurl
import Dispatch
import Foundation

/// One email, ready to go: RFC 5322 text with CRLF line ends.
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var to: String
    public var messageId: String
    public var data: String

    /// Builds the message. `idempotencyKey` becomes the Message-ID, so a relay that
    /// de-duplicates by Message-ID also drops a repeat.
    public static func compose(
        fromAddress: String, fromName: String, to: String, subject: String, body: String,
        idempotencyKey: String, date: Date
    ) -> MailMessage {
        let messageId = "<\(idempotencyKey)@encompass.invalid>"
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let headers = [
            "From: \(encodeHeader(fromName)) <\(fromAddress)>",
            "To: <\(to)>",
            "Subject: \(encodeHeader(subject))",
            "Date: \(formatter.string(from: date))",
            "Message-ID: \(messageId)",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "Auto-Submitted: auto-generated",
        ]
        let text = body.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
            .joined(separator: "\r\n")
        return MailMessage(from: fromAddress, to: to, messageId: messageId, data: headers.joined(separator: "\r\n") + "\r\n\r\n" + text + "\r\n")
    }

    /// RFC 2047 for non-ASCII header text; CR and LF are removed (no header injection).
    static func encodeHeader(_ text: String) -> String {
        let clean = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        if clean.unicodeScalars.allSatisfy({ $0.isASCII }) { return clean }
        return "=?UTF-8?B?\(Data(clean.utf8).base64EncodedString())?="
    }
}

/// What became of one delivery attempt.
public enum DeliveryOutcome: Sendable, Equatable {
    /// The relay (or the mail folder) took the message; `reply` is its final answer.
    case accepted(reply: String)
    /// Worth trying again later (4xx, connection trouble).
    case temporary(reason: String)
    /// Will never work as it is (5xx); `reply` is the relay's answer.
    case permanent(reply: String)
    /// The whole message went to the relay but its answer never came (timeout, connection
    /// lost): the relay may have queued it. Not retried automatically (docs/DISPATCH.md, the
    /// at-most-once window); MASH checks with the school and resends if needed.
    case uncertain(reason: String)
}

/// Where mail goes: an SMTP relay, or a folder of .eml files.
public protocol MailTransport: Sendable {
    /// Blocking calls inside run on the transport's own queue, never on Swift's cooperative pool.
    func deliver(_ message: MailMessage) async -> DeliveryOutcome
    /// For logs and the audit, e.g. `smtp://relay:587` or `folder var/dispatch/mail`.
    var description: String { get }
}

/// Where notice mail goes, as configured (`ENCOMPASS_SMTP_URL`…, `ENCOMPASS_MAIL_DIR`): values
/// only. The mail sender makes its transport from it when the service starts.
public enum MailRoute: Sendable, Equatable, CustomStringConvertible {
    /// `.eml` files in a folder: no relay configured.
    case folder(directory: String)
    /// An SMTP relay, through libcurl.
    case smtp(
        url: String, username: String? = nil, password: String? = nil, tls: SMTPTransport.TLS = .required, caFile: String? = nil,
        timeoutSeconds: Int = 30)

    public func makeTransport() -> any MailTransport {
        switch self {
        case .folder(let directory):
            MailFolderTransport(directory: directory)
        case .smtp(let url, let username, let password, let tls, let caFile, let timeoutSeconds):
            SMTPTransport(url: url, username: username, password: password, tls: tls, caFile: caFile, timeoutSeconds: timeoutSeconds)
        }
    }

    /// As the transport names itself in logs and the audit (never the relay's password).
    public var description: String { makeTransport().description }
}

/// Writes each message as `<message id>.eml` into a folder (the default without a relay).
/// A message handed over again (a resend) is kept beside the first as `<message id>.2.eml`,
/// `.3.eml`…, as a relay would deliver it twice, so a duplicate is never hidden by an overwrite.
public struct MailFolderTransport: MailTransport {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var description: String { "mail folder \(directory)" }

    public func deliver(_ message: MailMessage) async -> DeliveryOutcome {
        let directory = self.directory
        return await withCheckedContinuation { continuation in
            SMTPTransport.queue.async {
                do {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    let base = message.messageId.trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
                        .replacingOccurrences(of: "/", with: "_")
                    var path = (directory as NSString).appendingPathComponent(base + ".eml")
                    var copy = 1
                    while FileManager.default.fileExists(atPath: path) {
                        copy += 1
                        path = (directory as NSString).appendingPathComponent("\(base).\(copy).eml")
                    }
                    try Data(message.data.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
                    continuation.resume(returning: .accepted(reply: "written to \(path)"))
                } catch {
                    continuation.resume(returning: .temporary(reason: "cannot write to the mail folder \(directory): \(error.localizedDescription)"))
                }
            }
        }
    }
}

/// SMTP through Debian's libcurl: STARTTLS (required unless `tls` is `.none`, for loopback
/// tests), AUTH with username and password, MAIL FROM / RCPT TO, the message uploaded from memory.
public struct SMTPTransport: MailTransport {
    public enum TLS: String, Sendable { case required, none }

    public var url: String
    public var username: String?
    public var password: String?
    public var tls: TLS
    public var caFile: String?
    public var timeoutSeconds: Int

    public init(url: String, username: String? = nil, password: String? = nil, tls: TLS = .required, caFile: String? = nil, timeoutSeconds: Int = 30)
    {
        self.url = url
        self.username = username
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.timeoutSeconds = timeoutSeconds
    }

    public var description: String { url }

    /// libcurl's easy interface blocks: every transfer runs on this queue.
    static let queue = DispatchQueue(label: "encompass.dispatch.smtp", attributes: .concurrent)
    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public func deliver(_ message: MailMessage) async -> DeliveryOutcome {
        await withCheckedContinuation { continuation in
            SMTPTransport.queue.async {
                continuation.resume(returning: self.deliverBlocking(message))
            }
        }
    }

    /// State shared with libcurl's C callbacks through their userdata pointer.
    final class Transfer {
        let payload: [UInt8]
        var offset = 0
        /// Every line the server sent (libcurl's CURLINFO_HEADER_IN), for the relay's reply.
        var serverLines: [String] = []

        init(payload: [UInt8]) { self.payload = payload }
    }

    func deliverBlocking(_ message: MailMessage) -> DeliveryOutcome {
        _ = SMTPTransport.globalInit
        guard let handle = curl_easy_init() else { return .temporary(reason: "libcurl could not start a transfer (curl_easy_init)") }
        defer { curl_easy_cleanup(handle) }
        let transfer = Transfer(payload: Array(message.data.utf8))
        let userdata = Unmanaged.passRetained(transfer)
        defer { userdata.release() }
        var recipients: UnsafeMutablePointer<curl_slist>? = nil
        recipients = curl_slist_append(recipients, "<\(message.to)>")
        defer { curl_slist_free_all(recipients) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            _ = encompass_curl_setopt_string(handle, CURLOPT_URL, url)
            _ = encompass_curl_setopt_string(handle, CURLOPT_MAIL_FROM, "<\(message.from)>")
            _ = encompass_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, recipients)
            _ = encompass_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
            _ = encompass_curl_setopt_long(handle, CURLOPT_INFILESIZE, transfer.payload.count)
            _ = encompass_curl_setopt_read_function(handle) { buffer, size, count, context in
                guard let buffer, let context else { return 0 }
                let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                let room = size * count
                let left = transfer.payload.count - transfer.offset
                let n = min(room, left)
                guard n > 0 else { return 0 }
                transfer.payload.withUnsafeBufferPointer { source in
                    UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + transfer.offset, byteCount: n)
                }
                transfer.offset += n
                return n
            }
            _ = encompass_curl_setopt_pointer(handle, CURLOPT_READDATA, userdata.toOpaque())
            _ = encompass_curl_setopt_long(handle, CURLOPT_VERBOSE, 1)
            _ = encompass_curl_setopt_debug_function(handle) { _, type, data, size, context in
                guard type == CURLINFO_HEADER_IN, let data, let context else { return 0 }
                let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                let bytes = UnsafeRawBufferPointer(start: data, count: size)
                let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                if !text.isEmpty { transfer.serverLines.append(contentsOf: text.components(separatedBy: "\r\n")) }
                return 0
            }
            _ = encompass_curl_setopt_pointer(handle, CURLOPT_DEBUGDATA, userdata.toOpaque())
            _ = encompass_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress)
            _ = encompass_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, 15)
            _ = encompass_curl_setopt_long(handle, CURLOPT_TIMEOUT, timeoutSeconds)
            _ = encompass_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            if tls == .required {
                _ = encompass_curl_setopt_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
                _ = encompass_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
                _ = encompass_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
                if let caFile { _ = encompass_curl_setopt_string(handle, CURLOPT_CAINFO, caFile) }
            }
            if let username { _ = encompass_curl_setopt_string(handle, CURLOPT_USERNAME, username) }
            if let password { _ = encompass_curl_setopt_string(handle, CURLOPT_PASSWORD, password) }
            return curl_easy_perform(handle)
        }
        var response = 0
        _ = encompass_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &response)
        let errorText = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // The reply that decided the outcome: the last line with the final response code (not QUIT's 221).
        let replies = transfer.serverLines.filter { $0.count >= 3 && Int($0.prefix(3)) != nil && !$0.hasPrefix("221") }
        let lastReply = replies.last(where: { $0.hasPrefix(String(response)) }) ?? replies.last ?? ""
        return SMTPTransport.classify(
            code: code, responseCode: response, lastReply: lastReply,
            error: errorText.isEmpty ? String(cString: curl_easy_strerror(code)) : errorText,
            messageSent: transfer.offset >= transfer.payload.count)
    }

    /// 2xx accepted; 5xx permanent; 4xx and connection or TLS trouble temporary; trouble after
    /// the whole message was handed to libcurl without a 4xx/5xx answer uncertain (`messageSent`:
    /// the read callback gave the last byte, so the relay may have the message).
    static func classify(code: CURLcode, responseCode: Int, lastReply: String, error: String, messageSent: Bool = false) -> DeliveryOutcome {
        if code == CURLE_OK { return .accepted(reply: lastReply.isEmpty ? "\(responseCode)" : lastReply) }
        let reply = lastReply.isEmpty ? (responseCode > 0 ? "\(responseCode) (\(error))" : error) : "\(lastReply) (\(error))"
        switch responseCode {
        case 500...599: return .permanent(reply: reply)
        case 400...499: return .temporary(reason: reply)
        default:
            if code == CURLE_LOGIN_DENIED { return .permanent(reply: reply) }
            if messageSent {
                return .uncertain(reason: "the relay did not answer after the whole message was sent (\(error)); it may have queued it")
            }
            return .temporary(reason: reply)
        }
    }
}
