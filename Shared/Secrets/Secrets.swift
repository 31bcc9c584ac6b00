import COpenSSLCrypto
import Dispatch
import Foundation

/// Secrets of the notice page and the MASH console: passwords (salted PBKDF2-HMAC-SHA256), link
/// and session tokens (32 random bytes, stored only as their SHA-256), all through OpenSSL's libcrypto.
public enum Secrets {
    /// OWASP's 2023 minimum for PBKDF2-HMAC-SHA256.
    public static let minimumIterations = 210_000
    public static let defaultIterations = 210_000
    /// Shortest school password MASH may set.
    public static let minimumPasswordLength = 12

    /// The CPU-heavy hashing runs here, never on Swift's cooperative pool.
    static let queue = DispatchQueue(label: "encompass.crypto", qos: .userInitiated, attributes: .concurrent)

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case randomUnavailable
        case hashFailed
        case malformedHash(String)
        case weakPassword(String)

        public var description: String {
            switch self {
            case .randomUnavailable: "OpenSSL could not produce random bytes (RAND_bytes failed); check the system's entropy source"
            case .hashFailed: "OpenSSL PKCS5_PBKDF2_HMAC failed"
            case .malformedHash(let why): "stored password hash is malformed (\(why)); set the password again"
            case .weakPassword(let why): why
            }
        }
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    public static func randomBytes(_ count: Int) throws(Failure) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        guard ok == 1 else { throw .randomUnavailable }
        return bytes
    }

    /// A fresh URL-safe token of 32 random bytes (43 characters).
    public static func newToken() throws(Failure) -> String {
        base64URL(try randomBytes(32))
    }

    /// SHA-256 of `text`, lower-case hex: how link and session tokens are stored.
    public static func sha256Hex(_ text: String) -> String {
        hex(sha256(Array(text.utf8)))
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = bytes.withUnsafeBufferPointer { input in
            digest.withUnsafeMutableBufferPointer { output in
                EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, EVP_sha256(), nil)
            }
        }
        return Array(digest.prefix(Int(length)))
    }

    /// `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>` of `password` with a fresh
    /// 16-byte salt. Blocking (about a tenth of a second): call `hashPassword` from async code.
    public static func hashPasswordBlocking(_ password: String, iterations: Int = defaultIterations) throws(Failure) -> String {
        let salt = try randomBytes(16)
        let derived = try pbkdf2(password, salt: salt, iterations: iterations, length: 32)
        return "pbkdf2-sha256$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(derived).base64EncodedString())"
    }

    /// Whether `password` matches `stored`, compared in constant time. Blocking.
    public static func verifyPasswordBlocking(_ password: String, stored: String) throws(Failure) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2-sha256" else { throw .malformedHash("expected pbkdf2-sha256$iter$salt$hash") }
        guard let iterations = Int(parts[1]), iterations >= 1 else { throw .malformedHash("iteration count") }
        guard let salt = Data(base64Encoded: String(parts[2])), let expected = Data(base64Encoded: String(parts[3])), !expected.isEmpty else {
            throw .malformedHash("salt or hash is not base64")
        }
        let derived = try pbkdf2(password, salt: Array(salt), iterations: iterations, length: expected.count)
        return constantTimeEqual(derived, Array(expected))
    }

    public static func hashPassword(_ password: String, iterations: Int = defaultIterations) async throws -> String {
        try await offPool { try hashPasswordBlocking(password, iterations: iterations) }
    }

    public static func verifyPassword(_ password: String, stored: String) async throws -> Bool {
        try await offPool { try verifyPasswordBlocking(password, stored: stored) }
    }

    /// Refuses passwords too short to resist guessing.
    public static func checkStrength(_ password: String) throws(Failure) {
        guard password.count >= minimumPasswordLength else {
            throw .weakPassword("password must have at least \(minimumPasswordLength) characters")
        }
        guard Set(password).count >= 4 else { throw .weakPassword("password must not repeat the same few characters") }
    }

    public static func pbkdf2(_ password: String, salt: [UInt8], iterations: Int, length: Int) throws(Failure) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: length)
        let passwordLength = Int32(password.utf8.count)
        let ok = password.withCString { pw in
            salt.withUnsafeBufferPointer { s in
                output.withUnsafeMutableBufferPointer { out in
                    PKCS5_PBKDF2_HMAC(
                        pw, passwordLength, s.baseAddress, Int32(s.count), Int32(iterations),
                        EVP_sha256(), Int32(length), out.baseAddress)
                }
            }
        }
        guard ok == 1 else { throw .hashFailed }
        return output
    }

    private static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}

/// Compares secrets without leaking their common prefix length through timing.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in 0..<a.count { difference |= a[i] ^ b[i] }
    return difference == 0
}
