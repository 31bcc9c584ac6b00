"""Summarises perf samples per process: the share of samples whose stack holds each part of the
runtime and of the service's own work (inclusive), and the top functions, inclusive and self.

Usage: python3 bench/profile_summary.py STACKS PIDS [TOP]
STACKS: `perf script -F pid,tid,comm,ip,sym | swift demangle --simplified`; PIDS: lines "name pid".

SQLite and librdkafka come from Debian without frame pointers: a sample inside them is counted
for the function it is in (the SQLite line is that leaf share), not for its Swift callers.
"""

import collections
import re
import sys

PARTS = [
    ("SQLite (sample inside libsqlite3)", re.compile(r"^(sqlite3|pager|wal|btree|vdbe|unixWrite|unixRead|unixSync|balance)")),
    ("WAL writes and syncs (pwrite, fdatasync)", re.compile(r"^(__libc_pwrite|fdatasync)$")),
    ("MessageWorker.process (a batch applied, handlers included)", re.compile(r"MessageWorker\.(process|apply)")),
    ("envelope decode (WireDecoder)", re.compile(r"WireDecoder|init\(wire:")),
    ("envelope encode (WireEncoder)", re.compile(r"WireEncoder|WireWriter")),
    ("outbox insert (Outbox.publish)", re.compile(r"Outbox\.(publish|queue|tombstone)")),
    ("outbox relay (OutboxRelay)", re.compile(r"OutboxRelay\.")),
    ("Foundation JSON (JSONDecoder, JSONEncoder, JSONSerialization)", re.compile(r"JSONDecoder|JSONEncoder|JSONSerialization|JSONParser|JSONWriter")),
    ("GRDB statement API (arguments, rows, record fetches)", re.compile(r"StatementArguments|GRDB\.Row|Row\.decode|cachedStatement|FetchableRecord|DatabaseValue|insertOrReplace")),
    ("RawStatement", re.compile(r"RawStatement")),
    ("timestamps (Timestamp)", re.compile(r"\bTimestamp\.")),
    ("Kafka client, Swift side (KafkaConsumer, KafkaProducer)", re.compile(r"KafkaConsumer|KafkaProducer|RecordBuffer")),
    ("metrics (ServiceMetrics, Prometheus)", re.compile(r"ServiceMetrics|Prometheus")),
    ("malloc/free, retain/release (self)", None),
    ("librdkafka's threads (rdk:*)", None),
    ("kernel (system calls)", re.compile(r"^(entry_SYSCALL|do_syscall_64)")),
]
ALLOC = re.compile(r"^(malloc|free|cfree|_int_malloc|_int_free|malloc_consolidate|unlink_chunk.*|swift_retain|swift_release|swift_allocObject|swift_deallocObject|_swift_release_dealloc)$")
NOISE = re.compile(r"start_thread|_dispatch|swift_job_run|runJobInEstablished|thunk for|DispatchQueueActor|SerializedDatabase|DatabaseWriter|"
                   r"entry_SYSCALL|do_syscall|partial apply|Database\.inTransaction|closure #1 in DatabasePool")


def main() -> None:
    stacks = sys.argv[1]
    names = {}
    if len(sys.argv) > 2:
        for line in open(sys.argv[2]):
            name, pid = line.split()
            names[pid] = name
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    procs = collections.defaultdict(lambda: {"n": 0, "part": collections.Counter(), "fn": collections.Counter(), "self": collections.Counter()})

    def flush(pid, comm, frames):
        if pid is None:
            return
        p = procs[pid]
        p["n"] += 1
        for name, rx in PARTS:
            if name.startswith("librdkafka"):
                hit = comm.startswith("rdk:")
            elif name.startswith("malloc"):
                hit = bool(frames) and bool(ALLOC.match(frames[0]))
            else:
                hit = any(rx.search(f) for f in frames)
            if hit:
                p["part"][name] += 1
        seen = set()
        for f in frames:
            key = re.sub(r"\(.*", "", f)[:110]
            if key not in seen:
                seen.add(key)
                p["fn"][key] += 1
        if frames:
            p["self"][re.sub(r"\(.*", "", frames[0])[:110]] += 1

    pid = comm = None
    frames = []
    for line in open(stacks, errors="replace"):
        if line.startswith("\t"):
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and parts[1] != "[unknown]":
                frames.append(parts[1])
        elif line.strip():
            flush(pid, comm, frames)
            match = re.match(r"(.*?)\s+(\d+)/(\d+)", line.rstrip())
            comm, pid, frames = match.group(1), match.group(2), []
    flush(pid, comm, frames)

    for pid, p in sorted(procs.items(), key=lambda item: -item[1]["n"]):
        if p["n"] < 20:
            continue
        print(f"=== {names.get(pid, pid)} ({pid}): {p['n']} samples")
        for name, _ in PARTS:
            if p["part"][name]:
                print(f"  {100 * p['part'][name] / p['n']:5.1f}%  {name}")
        print("  -- top inclusive")
        for key, count in [(k, c) for k, c in p["fn"].most_common() if not NOISE.search(k)][:top]:
            print(f"  {100 * count / p['n']:5.1f}%  {key}")
        print("  -- top self")
        for key, count in p["self"].most_common(12):
            print(f"  {100 * count / p['n']:5.1f}%  {key}")


if __name__ == "__main__":
    main()
