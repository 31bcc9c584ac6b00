import Foundation

/// Hands records from the consumer's poll thread to one async reader.
///
/// The poll thread never blocks here: when the buffer reaches capacity the consumer pauses
/// fetching (librdkafka keeps serving rebalances and heartbeats) and resumes it once the
/// reader has drained half of it.
final class RecordBuffer: @unchecked Sendable {
    enum Item: Sendable {
        case record(KafkaRecord)
        case end
        case failure(KafkaError)
    }

    private let lock = NSLock()
    private var items: [KafkaRecord] = []
    private var head = 0
    private var waiter: CheckedContinuation<Item, Never>?
    private var terminal: Item?
    let capacity: Int

    init(capacity: Int) { self.capacity = max(capacity, 1) }

    var count: Int { lock.withLock { items.count - head } }

    func push(_ record: KafkaRecord) {
        lock.lock()
        if terminal != nil { lock.unlock(); return }
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: .record(record))
            return
        }
        items.append(record)
        lock.unlock()
    }

    /// Appends several records under one lock (the first may go straight to a waiting reader).
    func push(contentsOf records: [KafkaRecord]) {
        guard let first = records.first else { return }
        lock.lock()
        if terminal != nil { lock.unlock(); return }
        if let waiter {
            self.waiter = nil
            items.append(contentsOf: records.dropFirst())
            lock.unlock()
            waiter.resume(returning: .record(first))
            return
        }
        items.append(contentsOf: records)
        lock.unlock()
    }

    /// Drops buffered records of partitions this member no longer owns; their new owner
    /// re-reads them from the committed offset.
    @discardableResult
    func purge(_ partitions: Set<TopicPartition>) -> Int {
        lock.withLock {
            let before = items.count - head
            items = items[head...].filter { !partitions.contains($0.topicPartition) }
            head = 0
            return before - items.count
        }
    }

    func finish(_ error: KafkaError? = nil, discardBuffered: Bool = false) {
        lock.lock()
        if discardBuffered { items.removeAll(); head = 0 }
        if terminal == nil { terminal = error.map { .failure($0) } ?? .end }
        let waiter = self.waiter
        self.waiter = nil
        let item = terminal!
        lock.unlock()
        waiter?.resume(returning: item)
    }

    func next() async -> Item {
        await withCheckedContinuation { continuation in
            lock.lock()
            if head < items.count {
                let record = items[head]
                head += 1
                if head > 1_024 && head * 2 > items.count {
                    items.removeFirst(head)
                    head = 0
                }
                lock.unlock()
                continuation.resume(returning: .record(record))
            } else if let terminal {
                lock.unlock()
                continuation.resume(returning: terminal)
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }

    /// Records available now without waiting, up to `limit`.
    func takeAvailable(limit: Int) -> [KafkaRecord] {
        lock.withLock {
            let n = min(limit, items.count - head)
            guard n > 0 else { return [] }
            let slice = Array(items[head..<(head + n)])
            head += n
            if head == items.count { items.removeAll(keepingCapacity: true); head = 0 }
            return slice
        }
    }
}
