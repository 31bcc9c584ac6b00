import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@Suite("Fault control of the mock cluster (encompass broker --control-port)", .serialized, .tags(.kafka))
struct MockClusterControlTests {
    let logger = TestLog.logger("control-test")

    @Test(
        "commands over the loopback line protocol: pushed errors are served to a real producer, which still delivers every record once; bad commands say why"
    )
    func commands() async throws {
        let kafka = try TestKafka(brokers: 3, partitions: 2)
        let topic = try kafka.uniqueTopic(partitions: 2)
        let server = try MockClusterControlServer(control: MockClusterControl(cluster: kafka.cluster, topics: [topic: 2]), logger: logger)
        defer { server.stop() }
        func send(_ line: String) async throws -> String { try await MockClusterControlClient.send(line, port: server.port) }

        #expect(try await send("ping") == "ok 3 brokers")
        #expect(try await send("errors produce NOT_LEADER_OR_FOLLOWER*2,7 broker=1").hasPrefix("ok 3 errors pushed on broker(s) 1"))
        #expect(try await send("errors produce REQUEST_TIMED_OUT") == "ok 1 errors pushed on broker(s) 1,2,3")
        #expect(try await send("remaining produce") == "ok 6")
        #expect(try await send("remaining produce broker=1") == "ok 4")
        #expect(try await send("leader * * 1") == "ok 2 partition(s) led by broker 1")
        #expect(try await send("leader \(topic) 1 2") == "ok 1 partition(s) led by broker 2")
        #expect(try await send("rtt 2 50") == "ok broker 2 rtt 50 ms")

        // A producer meets the pushed errors (retriable) and still delivers each record exactly once.
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        let records = (0..<40).map { ProducerRecord(topic: topic, key: "k\($0)", value: Array("v\($0)".utf8), partition: Int32($0 % 2)) }
        let reports = try await producer.sendAll(records)
        await producer.close()
        #expect(reports.count == 40)
        #expect(try await send("remaining produce broker=1") == "ok 0", "broker 1 leads partition 0: its errors were served")
        let received = try await readRecords(kafka, topic: topic, count: 40, timeout: .seconds(30))
        #expect(received.count == 40)
        #expect(Set(received.map { String(decoding: $0.value, as: UTF8.self) }).count == 40)

        // Down and up: the broker refuses connections, then serves again.
        #expect(try await send("down 2") == "ok broker 2 down")
        #expect(try await send("up 2") == "ok broker 2 up")
        #expect(try await send("rtt 2 0") == "ok broker 2 rtt 0 ms")

        #expect(try await send("down 4").hasPrefix("error broker must be 1…3"))
        #expect(try await send("errors produce NO_SUCH_ERROR").hasPrefix("error unknown error NO_SUCH_ERROR"))
        #expect(try await send("errors teleport 6").hasPrefix("error unknown API teleport"))
        #expect(try await send("leader nowhere 0 1") == "error unknown topic nowhere")
        #expect(try await send("explode").hasPrefix("error unknown command explode"))
        #expect(MockClusterControl.errorCode("NOT_LEADER_OR_FOLLOWER") == 6)
        #expect(MockClusterControl.errorCode("rebalance_in_progress") == 27)
    }
}
