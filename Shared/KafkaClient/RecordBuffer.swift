import Foundation

/// Hands records from the consumer's poll thread to one async reader.
///
/// When the buffer is full the poll thread waits (up to a second) for the reader to make room;
/// only a reader that stays stuck makes the consumer pause fetching, which costs a re-fetch of
/// everything librdkafka had prefetched.
final class RecordBuffer: @unchecked Sendable {
    enum Item: Sendable {
        case record(KafkaRecord)
        case end
        case failure(KafkaError)
    }

    private let lock = NSCondition()
    private var items: [KafkaRecord] = []
    private var head = 0
    private var waiter: CheckedContinuation<Item, Never>?
    private var terminal: Item?
    let capacity: Int

    init(capacity: Int) { self.capacity = max(capacity, 1) }

    var count: Int { lock.withLock { items.count - head } }

    func push(_ record: KafkaRecord) {
        lock.lock()
        if terminal != nil {
            lock.unlock()
            return
        }
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
        if terminal != nil {
            lock.unlock()
            return
        }
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

    /// Waits until fewer than `capacity` records are buffered (or the buffer is finished).
    /// Returns false if there is still no room after `timeout`.
    func waitForSpace(timeout: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        lock.lock()
        defer { lock.unlock() }
        while items.count - head >= capacity && terminal == nil {
            if !lock.wait(until: deadline) { return items.count - head < capacity || terminal != nil }
        }
        return true
    }

    func finish(_ error: KafkaError? = nil, discardBuffered: Bool = false) {
        lock.lock()
        lock.broadcast()
        if discardBuffered {
            items.removeAll()
            head = 0
        }
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
                lock.signal()
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
            if n == items.count - head {
                // Everything buffered: hand the array itself over (records moved, not copied).
                items.removeFirst(head)
                head = 0
                var all: [KafkaRecord] = []
                swap(&all, &items)
                lock.signal()
                return all
            }
            let slice = Array(items[head..<(head + n)])
            head += n
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            }
            lock.signal()
            return slice
        }
    }
}
