import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import GRDB
import ServiceRuntime
import Testing

@testable import DispatchService

#if canImport(Glibc)
import Glibc
#endif

/// A port nobody listens on (yet): bound to find it, then closed.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard ok else { throw TimeoutError(what: "a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Publishes notices due with one producer.
func publishAll(_ kafka: TestKafka, _ notices: [NoticeDue]) async throws {
    let producer = try KafkaProducer(configuration: .init(client: kafka.client("scheduling")), logger: TestLog.logger("scheduling"))
    _ = try await producer.sendAll(
        try notices.map { due in
            ProducerRecord(
                topic: Topics.noticesDue.name, key: due.noticeId,
                value: try WireFormat.encode(
                    Envelope(id: MessageID.fresh(), key: due.noticeId, producer: "scheduling", payload: due)))
        })
    await producer.close()
}

func allMail(_ store: ServiceStore) async throws -> [String: OutgoingMail] {
    let rows = try await store.pool.read { try OutgoingMail.fetchAll($0) }
    return Dictionary(uniqueKeysWithValues: rows.map { ($0.noticeId, $0) })
}

/// The Message-ID header of a received mail.
func messageID(_ mail: String) -> String? {
    mail.components(separatedBy: "\r\n").first { $0.hasPrefix("Message-ID: ") }.map { String($0.dropFirst(12)) }
}

/// The relay down, slow and refusing, with dispatch running as a service (ServiceHost on the
/// mock Kafka cluster, the sender as its background task) and a real SMTP server (aiosmtpd).
/// The simulated clock stands still, so the backoff is observed exactly and moved by hand.
@Suite("SMTP relay faults through a running dispatch", .serialized, .tags(.kafka, .peers))
struct SMTPFaultTests {
    let start = Timestamp.parse("2026-11-24T08:00:05Z")!
    let http = Browserless()

    @Test("relay down (connection refused), then up on its port: every notice waits, retries with a doubling backoff and is delivered exactly once")
    func relayDownThenUp() async throws {
        let kafka = try TestKafka()
        let port = try freePort()
        let dispatch = try await RunningDispatch(
            kafka, start: start, mail: .smtp(url: "smtp://127.0.0.1:\(port)", tls: .none, timeoutSeconds: 5),
            retryBase: 60)
        let notices = (0..<8).map { _ in Fixtures.due() }
        try await publishAll(kafka, notices)
        let store = dispatch.host.store

        try await eventually("every mail tried once and refused", timeout: .seconds(60)) {
            let rows = try await allMail(store)
            return rows.count == notices.count && rows.values.allSatisfy { $0.attempts == 1 && $0.state == .pending }
        }
        for row in try await allMail(store).values {
            #expect(row.nextAttemptAt == start.addingTimeInterval(60))
            #expect(row.lastError?.lowercased().contains("connect") == true, "\(row.lastError ?? "nil")")
        }
        // The clock stands still: the sender (polling every 100 ms) waits for the backoff.
        try await Task.sleep(for: .seconds(1))
        #expect(try await allMail(store).values.allSatisfy { $0.attempts == 1 && $0.state == .pending })

        try await dispatch.setClock(start.addingTimeInterval(61))
        try await eventually("the second attempt, refused again", timeout: .seconds(60)) {
            try await allMail(store).values.allSatisfy { $0.attempts == 2 && $0.state == .pending }
        }
        for row in try await allMail(store).values {
            #expect(row.nextAttemptAt == start.addingTimeInterval(61 + 120), "the delay doubles")
        }

        // The relay comes back where dispatch expects it.
        let peer = try await SMTPPeer(port: port)
        defer { peer.stop() }
        try await Task.sleep(for: .milliseconds(500))
        #expect(peer.messages().isEmpty, "nothing sent before the backoff ends")
        try await dispatch.setClock(start.addingTimeInterval(61 + 121))
        try await eventually("every mail delivered", timeout: .seconds(60)) {
            try await allMail(store).values.allSatisfy { $0.state == .sent }
        }
        var received = peer.messages()
        #expect(received.count == notices.count)
        #expect(Set(received.compactMap(messageID)).count == notices.count, "one mail per notice")
        for due in notices {
            let kinds = try await auditKinds(store, due.noticeId)
            #expect(kinds.filter { $0 == "retry-scheduled" }.count == 2, "\(kinds)")
            #expect(kinds.filter { $0 == "delivered-to-relay" }.count == 1, "\(kinds)")
            #expect(try await mail(store, due.noticeId)?.attempts == 3)
        }
        let events = try await readRecords(kafka, topic: Topics.noticeEvents.name, count: 3 * notices.count, timeout: .seconds(30))
            .map { try WireFormat.decode(NoticeEvent.self, from: $0.value).payload }
        for due in notices {
            #expect(
                events.filter { $0.noticeId == due.noticeId }.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [
                    .claimed, .deliveredToRelay, .sent,
                ])
        }

        // A day later nothing more goes out.
        try await dispatch.setClock(start.addingTimeInterval(86_400))
        try await Task.sleep(for: .seconds(1))
        received = peer.messages()
        #expect(received.count == notices.count)
        try await dispatch.stop()
    }

    @Test(
        "relay slow: late before the message → retried and delivered once; late near the limit → delivered; late after the whole message → uncertain and flagged, never re-sent"
    )
    func slowRelay() async throws {
        let kafka = try TestKafka()
        let peer = try await SMTPPeer(mode: "slow-rcpt:4")
        defer { peer.stop() }
        let dispatch = try await RunningDispatch(kafka, start: start, mail: .smtp(url: peer.url, tls: .none, timeoutSeconds: 2), retryBase: 60)
        let store = dispatch.host.store

        // 1. The relay answers RCPT after 4 s; dispatch gives up after 2 s, before any message data.
        let early = Fixtures.due()
        try await publishAll(kafka, [early])
        try await eventually("the first attempt timed out", timeout: .seconds(60)) {
            let row = try await mail(store, early.noticeId)
            return row?.attempts == 1 && row?.state == .pending
        }
        let timedOut = try #require(try await mail(store, early.noticeId))
        #expect(timedOut.lastError?.lowercased().contains("time") == true, "\(timedOut.lastError ?? "nil")")
        #expect(peer.messages().isEmpty, "the relay got no message")

        // 2. Slow, but within the limit (1 s of 2 s): the retry is accepted.
        try peer.setMode("slow-rcpt:1")
        try await dispatch.setClock(start.addingTimeInterval(61))
        try await eventually("delivered on the retry", timeout: .seconds(60)) { try await mail(store, early.noticeId)?.state == .sent }
        #expect(try await mail(store, early.noticeId)?.attempts == 2)
        #expect(peer.messages().count == 1)

        // 3. The relay keeps the message, then answers 4 s late: dispatch cannot know it arrived.
        try peer.setMode("slow-data:4")
        let late = Fixtures.due()
        try await publishAll(kafka, [late])
        try await eventually("delivery uncertain", timeout: .seconds(60)) { try await mail(store, late.noticeId)?.state == .uncertain }
        let flagged = try #require(try await notice(store, late.noticeId))
        #expect(flagged.state == .uncertain)
        #expect(flagged.flaggedAt != nil)
        #expect(flagged.flagReason?.contains("check with the school") == true)
        try await eventually("the relay has it once") { peer.messages().count == 2 }
        let events = try await readRecords(kafka, topic: Topics.noticeEvents.name, count: 6, timeout: .seconds(30))
            .map { try WireFormat.decode(NoticeEvent.self, from: $0.value).payload }
        #expect(events.filter { $0.noticeId == late.noticeId }.map(\.kind).contains(.flagged), "\(events.map(\.kind))")
        try peer.setMode("ok")
        try await dispatch.setClock(start.addingTimeInterval(86_400))
        try await Task.sleep(for: .seconds(1))
        #expect(peer.messages().count == 2, "not re-sent: at most once")
        #expect(try await mail(store, late.noticeId)?.attempts == 1)
        let list = try await http.send("GET", dispatch.base + "/v1/notifications?date=2026-11-24", token: RunningDispatch.token).json
        let listed = (list["notifications"] as? [[String: Any]] ?? []).first { $0["noticeId"] as? String == late.noticeId }
        #expect(listed?["flagged"] as? Bool == true)
        #expect(listed?["state"] as? String == "uncertain")
        try await dispatch.stop()
    }

    @Test(
        "relay refusing: 550 → dead letter with the relay's reply at once, 452 every time → dead letter after the last attempt; both on the dead-letter API; the other notices delivered once"
    )
    func relayRefusing() async throws {
        let kafka = try TestKafka()
        let peer = try await SMTPPeer(mode: "picky")
        defer { peer.stop() }
        let dispatch = try await RunningDispatch(kafka, start: start, mail: .smtp(url: peer.url, tls: .none), retryBase: 60, maxAttempts: 3)
        let store = dispatch.host.store
        let good = (0..<4).map { _ in Fixtures.due() }
        let refused = (0..<2).map { _ in Fixtures.due(email: "unknown.dsl@school.example") }
        let full = Fixtures.due(email: "full.dsl@school.example")
        try await publishAll(kafka, good + refused + [full])

        try await eventually("good ones sent, refused ones failed, the full mailbox waiting", timeout: .seconds(60)) {
            let rows = try await allMail(store)
            return good.allSatisfy { rows[$0.noticeId]?.state == .sent } && refused.allSatisfy { rows[$0.noticeId]?.state == .failed }
                && rows[full.noticeId]?.attempts == 1 && rows[full.noticeId]?.state == .pending
        }
        try await dispatch.setClock(start.addingTimeInterval(61))
        try await eventually("second try of the full mailbox") { try await mail(store, full.noticeId)?.attempts == 2 }
        try await dispatch.setClock(start.addingTimeInterval(61 + 121))
        try await eventually("the full mailbox given up after 3 attempts") { try await mail(store, full.noticeId)?.state == .failed }

        // The dead-letter API (what `encompass dlq list` shows).
        #expect(try await http.send("GET", dispatch.base + "/v1/dead-letters").status == 401)
        let answer = try await http.send("GET", dispatch.base + "/v1/dead-letters", token: RunningDispatch.token)
        #expect(answer.status == 200)
        let letters = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [[String: Any]])
        #expect(letters.count == 3)
        for due in refused {
            let letter = letters.first { $0["originalTopic"] as? String == "smtp:\(due.noticeId)" }
            #expect(letter?["errorClass"] as? String == "smtp.permanent")
            #expect((letter?["errorMessage"] as? String)?.contains("550 5.1.1") == true, "\(letter ?? [:])")
            #expect(try await notice(store, due.noticeId)?.state == .failed)
        }
        let gaveUp = letters.first { $0["originalTopic"] as? String == "smtp:\(full.noticeId)" }
        #expect(gaveUp?["errorClass"] as? String == "smtp.retries-exhausted")
        #expect((gaveUp?["errorMessage"] as? String)?.contains("452") == true, "\(gaveUp ?? [:])")

        let events = try await readRecords(kafka, topic: Topics.noticeEvents.name, count: 3 * good.count + 3 * 3, timeout: .seconds(30))
            .map { try WireFormat.decode(NoticeEvent.self, from: $0.value).payload }
        #expect(events.filter { $0.kind == .failed }.count == 3)
        #expect(events.filter { $0.kind == .deliveredToRelay }.count == good.count)

        // Nothing else lost, nothing twice, no more tries (a day later, after the 10:00 follow-up flags).
        try await dispatch.setClock(start.addingTimeInterval(86_400))
        try await Task.sleep(for: .seconds(1))
        let received = peer.messages()
        #expect(received.count == good.count)
        #expect(Set(received.compactMap(messageID)).count == good.count)
        #expect(received.allSatisfy { $0.contains("X-Envelope-To: dsl@school.example") })
        #expect(try await mail(store, refused[0].noticeId)?.attempts == 1, "a permanent refusal is not retried")
        #expect(try await mail(store, full.noticeId)?.attempts == 3)
        try await dispatch.stop()
    }

    @Test(
        "dispatch SIGKILLed between its claim and the relay's answer (the relay has the mail): after the restart the mail is uncertain and flagged, not re-sent, and the redelivered notice is not mailed again"
    )
    func killedWhileSending() async throws {
        let kafka = try TestKafka()
        let peer = try await SMTPPeer(mode: "slow-data:15")
        defer { peer.stop() }
        let dir = TestPaths.temporaryDirectory("dispatch-process")
        let clockFile = dir + "/clock.json"
        try SimulatedClockFile(simulated: start, real: Date(), rate: 0).write(to: clockFile)
        let port = try freePort()
        let base = "http://127.0.0.1:\(port)"
        var environment: [String: String] = [:]
        for (key, value) in [
            "ENCOMPASS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrapServers, "ENCOMPASS_DATA_DIR": dir, "ENCOMPASS_HTTP_PORT": String(port),
            "ENCOMPASS_INSTANCE_ID": "dispatch-kill-test", "ENCOMPASS_GROUP_ID": "dispatch-kill-\(UUID())",
            "ENCOMPASS_API_TOKEN": RunningDispatch.token,
            "ENCOMPASS_CLOCK_FILE": clockFile, "ENCOMPASS_SMTP_URL": peer.url, "ENCOMPASS_SMTP_TLS": "none",
            "ENCOMPASS_SMTP_FROM": "mash@police.example",
            "ENCOMPASS_DISPATCH_POLL_MS": "100", "ENCOMPASS_PUBLIC_URL": base, "ENCOMPASS_TOPIC_PARTITIONS": String(kafka.partitions),
            "ENCOMPASS_LOG_LEVEL": "notice",
        ] { environment[key] = value }
        let binary = try executable("dispatch")
        func launch() async throws -> TestProcess {
            let process = try TestProcess(binary, [], environment: environment, log: dir + "/dispatch.log")
            try await process.ready("dispatch ready", timeout: .seconds(90), interval: .milliseconds(200)) {
                (try? await http.send("GET", base + "/readyz").status) == 200
            }
            return process
        }
        var process = try await launch()
        // The school's notice password (mail to a school without one is held).
        let password = try JSONSerialization.data(withJSONObject: ["password": "Oakwood-DSL-2026!"])
        #expect(try await http.send("PUT", base + "/v1/schools/110001/password", json: password, token: RunningDispatch.token).status == 200)
        let due = Fixtures.due()
        try await publishAll(kafka, [due])
        // The relay has the whole message; its answer is 15 s away. Dispatch dies now.
        try await eventually("the relay holds the message", timeout: .seconds(60)) { peer.messages().count == 1 }
        try await process.signal(SIGKILL)

        process = try await launch()
        var listed: [String: Any] = [:]
        try await eventually("the notice flagged uncertain after the restart", timeout: .seconds(60)) {
            let list = try await http.send("GET", base + "/v1/notifications?date=2026-11-24", token: RunningDispatch.token).json
            listed = (list["notifications"] as? [[String: Any]] ?? []).first { $0["noticeId"] as? String == due.noticeId } ?? [:]
            return (listed["mail"] as? [String: Any])?["state"] as? String == "uncertain"
        }
        #expect(listed["flagged"] as? Bool == true)
        #expect((listed["flagReason"] as? String)?.contains("check with the school") == true)
        #expect((listed["mail"] as? [String: Any])?["attempts"] as? Int == 1)
        // Not re-sent: neither by the sender nor because Kafka redelivered the uncommitted notice.
        try peer.setMode("ok")
        try await Task.sleep(for: .seconds(2))
        #expect(peer.messages().count == 1)
        let events = try await readRecords(kafka, topic: Topics.noticeEvents.name, count: 3, timeout: .seconds(30))
            .map { try WireFormat.decode(NoticeEvent.self, from: $0.value).payload }
        #expect(events.map(\.kind) == [.claimed, .sent, .flagged])
        process.stop()
    }
}
