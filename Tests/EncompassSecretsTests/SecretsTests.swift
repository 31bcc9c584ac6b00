import EncompassSecrets
import Foundation
import Testing

@Suite("Passwords and tokens")
struct SecretsTests {
    @Test("PBKDF2-SHA256 with 210,000 iterations and a fresh salt: the right password verifies, a wrong one does not")
    func passwords() async throws {
        let hash = try await Secrets.hashPassword("correct horse battery")
        let parts = hash.split(separator: "$")
        #expect(parts.count == 4)
        #expect(parts[0] == "pbkdf2-sha256")
        #expect(Int(parts[1]) ?? 0 >= 210_000)
        #expect(Data(base64Encoded: String(parts[2]))?.count == 16)
        #expect(Data(base64Encoded: String(parts[3]))?.count == 32)
        #expect(try await Secrets.verifyPassword("correct horse battery", stored: hash))
        #expect(try await !Secrets.verifyPassword("correct horse batterz", stored: hash))
        #expect(try await !Secrets.verifyPassword("", stored: hash))
        // Salted: the same password hashes differently.
        #expect(try await Secrets.hashPassword("correct horse battery") != hash)
        #expect(throws: Secrets.Failure.self) { try Secrets.verifyPasswordBlocking("x", stored: "md5$abc") }
        #expect(throws: Secrets.Failure.self) { try Secrets.checkStrength("short") }
    }

    @Test("known PBKDF2-HMAC-SHA256 vector (RFC 7914 section 11)")
    func vector() throws {
        let derived = try Secrets.pbkdf2("passwd", salt: Array("salt".utf8), iterations: 1, length: 64)
        #expect(Secrets.hex(derived).hasPrefix("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"))
        #expect(Secrets.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("link tokens: 32 random bytes, URL-safe, never repeated")
    func tokens() throws {
        let tokens = try (0..<200).map { _ in try Secrets.newToken() }
        #expect(Set(tokens).count == 200)
        #expect(tokens.allSatisfy { $0.count == 43 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } })
    }
}
