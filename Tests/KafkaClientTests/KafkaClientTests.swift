import EncompassKafka
import EncompassModels
import EncompassTestSupport
import Foundation
import Testing

@Suite("Kafka client over TCP against the mock cluster", .serialized, .tags(.kafka))
struct KafkaClientTests {
    let logger = TestLog.logger("kafka-test")

    @Test("produce and consume round trip with keys, headers and order per partition")
    func roundTrip() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic()
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        let records = (0..<200).map { i in
            ProducerRecord(
                topic: topic, key: "key-\(i % 7)", value: Array("value-\(i)".utf8),
                headers: [KafkaHeader(key: "seq", string: "\(i)"), KafkaHeader(key: "nullable", value: nil)])
        }
        let reports = try await producer.sendAll(records)
        #expect(reports.count == 200)
        let single = try await producer.send(ProducerRecord(topic: topic, key: "key-0", value: Array("last".utf8)))
        #expect(single.topic == topic && single.offset >= 0)
        await producer.close()

        let received = try await readRecords(kafka, topic: topic, count: 201)
        #expect(received.count == 201)
        #expect(Set(received.map { String(decoding: $0.value, as: UTF8.self) }).count == 201)
        // Same key, same partition, in send order.
        let byKey = Dictionary(grouping: received.filter { $0.header("seq") != nil }, by: { $0.keyString ?? "" })
        for (_, group) in byKey {
            #expect(Set(group.map(\.partition)).count == 1)
            let sequence = group.sorted { $0.offset < $1.offset }.compactMap { Int($0.header("seq")?.stringValue ?? "") }
            #expect(sequence == sequence.sorted())
        }
        let first = try #require(received.first { $0.header("seq") != nil })
        #expect(first.header("nullable")?.value == nil)
        #expect(first.timestamp != nil)
    }

    @Test("two members of one group split the partitions and together read everything")
    func groupSplitsPartitions() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic(partitions: 4)
        let group = "split-\(UUID().uuidString)"
        let seen = Locked<[String: [Int32]]>([:])
        func member(_ name: String) throws -> KafkaConsumer {
            try KafkaConsumer(configuration: .init(client: kafka.client(name), groupId: group, topics: [topic]), logger: logger)
        }
        let a = try member("a")
        let b = try member("b")
        let tasks = [("a", a), ("b", b)].map { name, consumer in
            Task {
                for try await record in consumer {
                    seen.withLock { $0[name, default: []].append(record.partition) }
                    consumer.storeOffsets([record])
                }
            }
        }
        try await eventually("both members assigned", timeout: .seconds(60)) {
            !a.assignment.isEmpty && !b.assignment.isEmpty && a.assignment.count + b.assignment.count == 4
        }
        #expect(a.assignment.isDisjoint(with: b.assignment))
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        _ = try await producer.sendAll((0..<400).map { ProducerRecord(topic: topic, key: "k\($0)", value: Array("\($0)".utf8)) })
        await producer.close()
        try await eventually("all records read") { seen.withLock { $0.values.map(\.count).reduce(0, +) } >= 400 }
        let result = seen.withLock { $0 }
        #expect(result["a"]?.isEmpty == false && result["b"]?.isEmpty == false)
        #expect(Set(result["a"] ?? []).isDisjoint(with: Set(result["b"] ?? [])))
        a.stopDelivery()
        b.stopDelivery()
        for task in tasks { _ = try? await task.value }
        await a.close()
        await b.close()
    }

    @Test("a consumer stopped mid-stream and restarted loses nothing")
    func atLeastOnceAcrossRestart() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic(partitions: 3)
        let group = "restart-\(UUID().uuidString)"
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        _ = try await producer.sendAll((0..<300).map { ProducerRecord(topic: topic, key: "k\($0)", value: Array("\($0)".utf8)) })

        // First run: process 120 records, store their offsets, stop without finishing.
        var processed = Set<String>()
        let first = try KafkaConsumer(configuration: .init(client: kafka.client("first"), groupId: group, topics: [topic]), logger: logger)
        var iterator = first.makeAsyncIterator()
        for _ in 0..<120 {
            let record = try #require(try await iterator.next())
            processed.insert(String(decoding: record.value, as: UTF8.self))
            first.storeOffsets([record])
        }
        // A record handed out but not processed (crash before storing): must come back.
        let unprocessed = try #require(try await iterator.next())
        first.stopDelivery()
        await first.close()

        // More arrive while nobody consumes.
        _ = try await producer.sendAll((300..<400).map { ProducerRecord(topic: topic, key: "k\($0)", value: Array("\($0)".utf8)) })
        await producer.close()

        let second = try KafkaConsumer(configuration: .init(client: kafka.client("second"), groupId: group, topics: [topic]), logger: logger)
        var secondSeen: [String] = []
        var iterator2 = second.makeAsyncIterator()
        while processed.count < 400 {
            let record = try #require(try await iterator2.next())
            let value = String(decoding: record.value, as: UTF8.self)
            secondSeen.append(value)
            processed.insert(value)
            second.storeOffsets([record])
        }
        #expect(processed.count == 400)
        #expect(secondSeen.contains(String(decoding: unprocessed.value, as: UTF8.self)))
        second.stopDelivery()
        await second.close()

        let committed = try await KafkaAdmin.committedOffsets(
            client: kafka.client(), group: group, partitions: (0..<3).map { TopicPartition(topic, $0) }, logger: logger)
        #expect(committed.values.reduce(0, +) == 400)
    }

    @Test("a member joining mid-stream takes partitions over without losing records")
    func rebalanceMidStream() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic(partitions: 4)
        let group = "rebalance-\(UUID().uuidString)"
        let processed = Locked<[String: Int]>([:])
        let revocations = Locked<[RebalanceEvent]>([])
        func member(_ name: String) throws -> (KafkaConsumer, Task<Void, any Error>) {
            let consumer = try KafkaConsumer(
                configuration: .init(client: kafka.client(name), groupId: group, topics: [topic], bufferCapacity: 50),
                logger: logger, onRebalance: { event in revocations.withLock { $0.append(event) } })
            let task = Task {
                for try await record in consumer {
                    try await Task.sleep(for: .microseconds(200)) // some work per record
                    processed.withLock { $0[String(decoding: record.value, as: UTF8.self), default: 0] += 1 }
                    consumer.storeOffsets([record])
                }
            }
            return (consumer, task)
        }
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        try await producer.sendBatch((0..<1_000).map { ProducerRecord(topic: topic, key: "k\($0)", value: Array("\($0)".utf8)) })
        let (a, taskA) = try member("a")
        try await eventually("a is processing") { processed.withLock { $0.count } > 100 }
        let (b, taskB) = try member("b")
        try await producer.sendBatch((1_000..<2_000).map { ProducerRecord(topic: topic, key: "k\($0)", value: Array("\($0)".utf8)) })
        await producer.close()
        try await eventually("b got partitions", timeout: .seconds(60)) { !b.assignment.isEmpty }
        #expect(revocations.withLock { $0.contains { if case .revoked = $0 { true } else { false } } })
        #expect(a.assignment.isDisjoint(with: b.assignment))
        #expect(a.assignment.union(b.assignment).count == 4)
        // After the hand-over both members process what was not committed and commit it.
        let partitions = (0..<4).map { TopicPartition(topic, $0) }
        try await eventually("all 2000 processed and committed", timeout: .seconds(120)) {
            do {
                try await a.commit()
                try await b.commit()
            } catch { return false }
            let committed = try await KafkaAdmin.committedOffsets(client: kafka.client(), group: group, partitions: partitions, logger: logger)
            return committed.values.reduce(0, +) == 2_000
        }
        #expect(processed.withLock { $0.count } == 2_000)
        a.stopDelivery()
        b.stopDelivery()
        _ = try? await taskA.value
        _ = try? await taskB.value
        await a.close()
        await b.close()
        let committed = try await KafkaAdmin.committedOffsets(client: kafka.client(), group: group, partitions: partitions, logger: logger)
        #expect(committed.values.reduce(0, +) == 2_000)
        // At least once: nothing is lost. Records processed since the last commit before the
        // hand-over come again (the mock broker refuses commits while the group rebalances);
        // services drop such repeats by message id.
        #expect(processed.withLock { $0.values.allSatisfy { $0 >= 1 } })
    }

    @Test("a tombstone goes out with a null value and comes back as one; an empty value is not a tombstone (kcat agrees)")
    func tombstones() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic(partitions: 1)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        _ = try await producer.sendAll([
            ProducerRecord(topic: topic, key: "n-1", value: Array("value".utf8)),
            ProducerRecord.tombstone(topic: topic, key: "t-1", headers: [KafkaHeader(key: "why", string: "purged")]),
            ProducerRecord(topic: topic, key: "e-1", value: []),
        ])
        await producer.close()
        let received = try await readRecords(kafka, topic: topic, count: 3).sorted { $0.offset < $1.offset }
        #expect(received.map(\.keyString) == ["n-1", "t-1", "e-1"])
        #expect(received.map(\.isTombstone) == [false, true, false])
        #expect(received[1].value.isEmpty && received[1].header("why")?.stringValue == "purged")
        #expect(received[2].value.isEmpty)
        guard let kcat = which("kcat") else {
            Issue.record("kcat is not installed (apt-get install kcat)")
            return
        }
        let output = try await run(kcat, ["-b", kafka.bootstrapServers, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"])
        let payloads = try output.split(separator: "\n").map { line -> (String?, Any?) in
            let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return (json["key"] as? String, json["payload"])
        }
        #expect(payloads.map(\.0) == ["n-1", "t-1", "e-1"])
        #expect(payloads[1].1 is NSNull)
        #expect(payloads[2].1 as? String == "")
    }

    @Test("kcat, an independent client, reads what the producer wrote")
    func kcatReadsProducerOutput() async throws {
        guard let kcat = which("kcat") else {
            Issue.record("kcat is not installed (apt-get install kcat)")
            return
        }
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic(partitions: 1)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        let note = TestNote(text: "hello from swift", sequence: 7)
        try await producer.send(
            ProducerRecord(
                topic: topic, key: "occ-1", value: try note.envelope(id: "m-1", key: "occ-1"),
                headers: [KafkaHeader(key: "encompass-schema", string: TestNote.schema)]))
        await producer.close()

        let output = try await run(kcat, ["-b", kafka.bootstrapServers, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"])
        let line = try #require(output.split(separator: "\n").first)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(json["key"] as? String == "occ-1")
        let payload = try #require(json["payload"] as? String)
        let envelope = try WireFormat.decode(TestNote.self, from: Array(payload.utf8))
        #expect(envelope.payload == note)
        #expect(envelope.id == "m-1")
        let headers = json["headers"] as? [String]
        #expect(headers == ["encompass-schema", TestNote.schema])
    }

    @Test("admin helpers fall back to metadata on the mock cluster, which has no CreateTopics")
    func adminOnMockCluster() async throws {
        let kafka = try TestKafka()
        let admin = try KafkaAdmin(client: kafka.client(), logger: logger)
        let existing = Topics.incidents.name
        let result = try await admin.ensureTopics([TopicSpec(name: existing, partitions: 4)])
        #expect(result[existing] == .alreadyExists)
        // A missing topic: CreateTopics is unanswerable on the mock, metadata auto-creates it.
        let fresh = "encompass.test.autocreated"
        let created = try await admin.ensureTopics([TopicSpec(name: fresh, partitions: 4)], timeout: .seconds(3))
        guard case .presentWithoutCreateTopics(let partitions)? = created[fresh] else {
            Issue.record("unexpected outcome \(String(describing: created[fresh]))")
            return
        }
        #expect(partitions > 0)
        #expect(try await admin.listTopics()[fresh] == partitions)
        let metadata = try await admin.metadata(topic: existing)
        #expect(metadata.partitions == [0, 1, 2, 3])
        let marks = try await admin.watermarks(TopicPartition(existing, 0))
        #expect(marks.low == 0 && marks.high == 0)
        await admin.close()
    }

    @Test("a full local queue applies backpressure instead of failing")
    func backpressureOnFullQueue() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic(partitions: 1)
        let producer = try KafkaProducer(
            configuration: .init(client: kafka.client(properties: ["queue.buffering.max.messages": "5", "linger.ms": "10"])),
            logger: logger)
        let reports = try await producer.sendAll(
            (0..<300).map { ProducerRecord(topic: topic, key: Optional<String>.none, value: Array("\($0)".utf8)) })
        #expect(reports.map(\.offset) == Array(0..<300))
        await producer.close()
    }

    @Test("a batch to two topics, with headers, is delivered whole while another batch and single sends run beside it")
    func batchesAcrossTopics() async throws {
        let kafka = try TestKafka()
        let first = try kafka.uniqueTopic("batch-a")
        let second = try kafka.uniqueTopic("batch-b")
        // A tiny local queue: both batches wait for room many times.
        let producer = try KafkaProducer(
            configuration: .init(client: kafka.client(properties: ["queue.buffering.max.messages": "7", "linger.ms": "2"])), logger: logger)
        func batch(_ name: String) -> [ProducerRecord] {
            (0..<150).map { i in
                ProducerRecord(
                    topic: i % 3 == 0 ? second : first, key: "\(name)-\(i % 5)", value: Array("\(name)-\(i)".utf8),
                    headers: [
                        KafkaHeader(key: "seq", string: "\(i)"), KafkaHeader(key: "empty", value: []), KafkaHeader(key: "null", value: nil),
                    ])
            }
        }
        async let one: Void = producer.sendBatch(batch("one"))
        async let two: Void = producer.sendBatch(batch("two"))
        let single = try await producer.send(ProducerRecord(topic: first, key: "single", value: Array("single".utf8)))
        _ = try await (one, two)
        #expect(single.topic == first && single.offset >= 0)
        await producer.close()

        let inFirst = try await readRecords(kafka, topic: first, count: 201)
        let inSecond = try await readRecords(kafka, topic: second, count: 100)
        #expect(inFirst.count == 201 && inSecond.count == 100)
        let values = Set((inFirst + inSecond).map { String(decoding: $0.value, as: UTF8.self) })
        let expected = Set(["one", "two"].flatMap { name in (0..<150).map { "\(name)-\($0)" } } + ["single"])
        #expect(values == expected)
        let record = try #require(inSecond.first)
        #expect(record.header("seq")?.stringValue.flatMap(Int.init).map { $0 % 3 == 0 } == true)
        #expect(record.header("empty")?.value == [])
        #expect(record.header("null") != nil && record.header("null")?.value == nil)
    }

    @Test("a record librdkafka refuses fails its batch with a typed error; the records before it are delivered")
    func batchWithRefusedRecord() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic(partitions: 1)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        let records = [
            ProducerRecord(topic: topic, key: "a", value: Array("before".utf8)),
            // Over message.max.bytes (1,000,000 by default): refused before it is queued.
            ProducerRecord(topic: topic, key: "b", value: [UInt8](repeating: 1, count: 2_000_000)),
            ProducerRecord(topic: topic, key: "c", value: Array("after".utf8)),
        ]
        let error = await #expect(throws: KafkaError.self) { try await producer.sendBatch(records) }
        #expect(error?.refusesRecord == true)
        // The producer still works, and a flush returns once nothing is queued.
        try await producer.sendBatch([ProducerRecord(topic: topic, key: "d", value: Array("later".utf8))])
        try await producer.flush()
        #expect(producer.queuedCount == 0)
        await producer.close()
        let received = try await readRecords(kafka, topic: topic, count: 2).map { String(decoding: $0.value, as: UTF8.self) }
        #expect(received == ["before", "later"])
    }

    @Test("flush waits for records handed over with enqueue until their delivery callbacks have run")
    func flushWaitsForCallbacks() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic()
        let producer = try KafkaProducer(configuration: .init(client: kafka.client(properties: ["linger.ms": "20"])), logger: logger)
        let delivered = Locked(0)
        for i in 0..<100 {
            try await producer.enqueue(ProducerRecord(topic: topic, key: "k\(i)", value: [UInt8(i)])) { result in
                if case .success = result { delivered.withLock { $0 += 1 } }
            }
        }
        try await producer.flush()
        #expect(delivered.withLock { $0 } == 100)
        await producer.close()
    }

    @Test("configuration mistakes are typed errors that say what to fix")
    func configurationErrors() throws {
        let error = #expect(throws: KafkaError.self) {
            _ = try KafkaProducer(configuration: .init(client: .init(bootstrapServers: "x", properties: ["no.such.property": "1"])), logger: logger)
        }
        #expect(error?.kind == .configuration)
        #expect(error?.description.contains("no.such.property") == true)
        #expect(error?.isRetriable == false)
    }

    @Test("statistics expose per-partition consumer lag")
    func lagFromStatistics() async throws {
        let kafka = try TestKafka()
        let topic = try kafka.uniqueTopic(partitions: 2)
        let producer = try KafkaProducer(configuration: .init(client: kafka.client()), logger: logger)
        _ = try await producer.sendAll((0..<50).map { ProducerRecord(topic: topic, key: "k\($0)", value: [1]) })
        await producer.close()
        let consumer = try KafkaConsumer(
            configuration: .init(
                client: kafka.client(), groupId: "lag-\(UUID().uuidString)", topics: [topic],
                bufferCapacity: 1, statisticsInterval: .milliseconds(200)),
            logger: logger)
        // Read and process 10, leave the rest: lag must settle at 40 in total.
        var iterator = consumer.makeAsyncIterator()
        for _ in 0..<10 {
            let record = try #require(try await iterator.next())
            consumer.storeOffsets([record])
        }
        try await consumer.commit()
        try await eventually("lag reported", timeout: .seconds(20)) {
            let lag = consumer.lag
            return lag.count == 2 && lag.values.map(\.lag).reduce(0, +) == 40
        }
        consumer.stopDelivery()
        await consumer.close()
    }
}

func which(_ tool: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

func run(_ executable: String, _ arguments: [String]) async throws -> String {
    try await offPool { try runProcess(executable, arguments, errors: .discarded).output }
}
