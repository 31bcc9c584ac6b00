import EncompassSecrets
import Testing

@Suite("Constant-time comparison of secrets")
struct ConstantTimeEqualTests {
    @Test("equal only when the lengths and every byte are equal")
    func comparison() {
        #expect(constantTimeEqual(Array("token".utf8), Array("token".utf8)))
        #expect(constantTimeEqual([], []))
        #expect(!constantTimeEqual(Array("token".utf8), Array("tokeN".utf8)))
        #expect(!constantTimeEqual(Array("Token".utf8), Array("token".utf8)))
        #expect(!constantTimeEqual(Array("token".utf8), Array("token2".utf8)))
        #expect(!constantTimeEqual(Array("token2".utf8), Array("token".utf8)))
        #expect(!constantTimeEqual([], [0]))
    }
}
