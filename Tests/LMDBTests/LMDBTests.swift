import Foundation
import LMDB
import Testing

final class TemporaryEnvironment {
    let path = NSTemporaryDirectory() + "lmdb-test-" + UUID().uuidString
    let environment: Environment
    init(mapSize: Int = 1 << 20) throws {
        var options = EnvironmentOptions()
        options.initialMapSize = mapSize
        options.durability = .fast
        environment = try Environment(path: path, options: options)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct LMDBTests {
    @Test func putGetDeleteRoundTrip() throws {
        let t = try TemporaryEnvironment()
        let db = try t.environment.database("kv")
        try t.environment.write { txn throws in
            try txn.put(db, key: UInt64(7), value: Array("seven".utf8))
            try txn.put(db, key: "name", value: Array("value".utf8))
        }
        try t.environment.read { txn throws in
            #expect(try txn.value(db, key: UInt64(7)) == Array("seven".utf8))
            #expect(try txn.value(db, key: "name") == Array("value".utf8))
            #expect(try txn.value(db, key: UInt64(8)) == nil)
        }
        let deleted = try t.environment.write { try $0.delete(db, key: UInt64(7)) }
        let deletedAgain = try t.environment.write { try $0.delete(db, key: UInt64(7)) }
        #expect(deleted)
        #expect(!deletedAgain)
    }

    /// Dropping the data file's cached pages loses nothing: committed data read back after it,
    /// from an open read transaction's snapshot and from a new one, equal what was written.
    @Test func releasingCachedPagesKeepsEveryCommittedValue() throws {
        let t = try TemporaryEnvironment(mapSize: 1 << 24)
        let db = try t.environment.database("pages")
        let value = [UInt8](repeating: 0xAB, count: 3000)
        try t.environment.write { txn throws in
            for k: UInt64 in 0..<2_000 { try txn.put(db, key: k, value: value + [UInt8(k & 0xFF)]) }
        }
        try t.environment.sync()
        #expect(t.environment.releaseCachedPages())
        try t.environment.read { txn throws in
            for k: UInt64 in stride(from: 0, to: 2_000, by: 37) {
                #expect(try txn.value(db, key: k) == value + [UInt8(k & 0xFF)])
            }
            #expect(try txn.entryCount(db) == 2_000)
        }
    }

    /// The word-at-a-time comparator (`idgraph_compare_bytes`) keeps LMDB's own order: keys
    /// and sorted duplicates of random bytes, many sharing long prefixes and of every length
    /// from 0 to 40, come back in lexicographic byte order (a shorter one before its
    /// extensions), and each is found again by an exact search.
    @Test func keysAndDuplicatesKeepLexicographicByteOrder() throws {
        let t = try TemporaryEnvironment(mapSize: 1 << 24)
        let keys = try t.environment.database("bytes")
        let dups = try t.environment.database("dupbytes", flags: [.create, .dupSort])
        var rng = SystemRandomNumberGenerator()
        var stems: [[UInt8]] = []
        for _ in 0..<20 { stems.append((0..<Int.random(in: 0...24, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
        var samples: Set<[UInt8]> = []
        while samples.count < 3_000 {
            var bytes = stems.randomElement(using: &rng)!
            // Tails from a small alphabet, so that neighbours differ late, in any byte of a word.
            bytes += (0..<Int.random(in: 0...16, using: &rng)).map { _ in [0, 1, 0x7F, 0x80, 0xFF].randomElement(using: &rng)! }
            if !bytes.isEmpty && bytes.count <= 40 { samples.insert(bytes) }
        }
        try t.environment.write { txn throws in
            for bytes in samples {
                try txn.put(keys, key: bytes, value: [UInt8(1)])
                try txn.put(dups, key: UInt64(9), value: bytes)
            }
        }
        let expected = samples.sorted { $0.lexicographicallyPrecedes($1) }
        try t.environment.read { txn throws in
            var stored: [[UInt8]] = []
            try txn.forEach(keys) { key, _ in stored.append(Array(key)); return true }
            #expect(stored == expected)
            var duplicates: [[UInt8]] = []
            try txn.forEachDuplicate(dups, key: UInt64(9)) { duplicates.append(Array($0)); return true }
            #expect(duplicates == expected)
            for bytes in samples.prefix(500) { #expect(try txn.value(keys, key: bytes) == [1]) }
        }
    }

    @Test func integerKeysSortNumerically() throws {
        let t = try TemporaryEnvironment()
        let db = try t.environment.database("ints")
        try t.environment.write { txn throws in
            for k: UInt64 in [300, 2, 70_000, 1] { try txn.put(db, key: k, value: [UInt8(k & 0xFF)]) }
        }
        var keys: [UInt64] = []
        try t.environment.read { txn throws in
            try txn.forEach(db) { key, _ in keys.append(key.loadBigEndianUInt64(at: 0)); return true }
        }
        #expect(keys == [1, 2, 300, 70_000])
    }

    @Test func aThrowingClosureWritesNothing() throws {
        struct Boom: Error {}
        let t = try TemporaryEnvironment()
        let db = try t.environment.database("kv")
        #expect(throws: Boom.self) {
            try t.environment.write { txn throws in
                try txn.put(db, key: UInt64(1), value: [1])
                throw Boom()
            }
        }
        #expect(try t.environment.read { try $0.value(db, key: UInt64(1)) } == nil)
    }

    /// A full or failing disk names itself and says what to do; other errors add nothing.
    @Test func diskErrorsSayWhatToDo() {
        for code in [ENOSPC, EDQUOT, EIO] {
            let error = LMDBError(code: code, operation: "mdb_put in 'node_summary'")
            #expect(error.description.hasPrefix("mdb_put in 'node_summary': "))
            #expect(error.description.contains("df -h"))
            #expect(error.description.contains("run the command again"))
        }
        #expect(LMDBError.mapFull.advice == nil)
        #expect(!LMDBError(code: EACCES, operation: "opening").description.contains("df -h"))
    }

    @Test func aTransactionCannotBeUsedAfterItEnds() throws {
        let t = try TemporaryEnvironment()
        let db = try t.environment.database("kv")
        var escaped: WriteTransaction?
        try t.environment.write { txn in escaped = txn }
        #expect(throws: LMDBError.transactionFinished) { try escaped!.put(db, key: UInt64(1), value: [1]) }
        var escapedReader: ReadTransaction?
        try t.environment.read { escapedReader = $0 }
        #expect(throws: LMDBError.transactionFinished) { try escapedReader!.value(db, key: UInt64(1)) }
    }

    @Test func aCursorThatOutlivesItsWriteTransactionIsSafe() throws {
        let t = try TemporaryEnvironment()
        let db = try t.environment.database("kv")
        var escaped: Cursor?
        try t.environment.write { txn throws in
            try txn.put(db, key: UInt64(1), value: [1])
            escaped = try txn.cursor(db)  // left open: LMDB frees it at commit
        }
        #expect(throws: LMDBError.transactionFinished) { try escaped!.first() }
        escaped = nil  // releasing it must not free LMDB's memory a second time
        var escapedRead: Cursor?
        try t.environment.read { txn throws in escapedRead = try txn.cursor(db) }
        #expect(throws: LMDBError.transactionFinished) { try escapedRead!.first() }
        escapedRead = nil  // a read cursor is closed by us, after its transaction: allowed by LMDB
        #expect(try t.environment.read { try $0.value(db, key: UInt64(1)) } == [1])
    }

    @Test func sortedDuplicatesWithFixedSize() throws {
        let t = try TemporaryEnvironment()
        let db = try t.environment.database("dups", flags: [.create, .dupSort, .dupFixed])
        try t.environment.write { txn throws in
            for v: UInt64 in [9, 3, 5] { try txn.put(db, key: UInt64(1), value: UInt64Pair(v, v * 10)) }
            try txn.put(db, key: UInt64(2), value: UInt64Pair(1, 1))
        }
        var values: [UInt64] = []
        try t.environment.read { txn throws in
            try txn.forEachDuplicate(db, key: UInt64(1)) { values.append($0.loadBigEndianUInt64(at: 0)); return true }
            let cursor = try txn.cursor(db)
            #expect(try cursor.seek(key: UInt64(1), valueAtOrAfter: UInt64Pair(4, 0)))
            #expect(UInt64Pair(bytes: cursor.withCurrent { $1 }) == UInt64Pair(5, 50))
            #expect(try cursor.duplicateCount() == 3)
            #expect(try !cursor.seek(key: UInt64(1), value: UInt64Pair(4, 40)))
        }
        #expect(values == [3, 5, 9])
        // Replace a duplicate in place (same size, same position).
        try t.environment.write { txn throws in
            let cursor = try txn.cursor(db)
            #expect(try cursor.seek(key: UInt64(1), value: UInt64Pair(5, 50)))
            try cursor.put(key: UInt64(1), value: UInt64Pair(5, 51), flags: .current)
        }
        try t.environment.read { txn throws in
            let cursor = try txn.cursor(db)
            #expect(try cursor.seek(key: UInt64(1), value: UInt64Pair(5, 51)))
            #expect(try txn.entryCount(db) == 4)
        }
    }

    @Test func putIfAbsentReportsAnExistingKey() throws {
        let t = try TemporaryEnvironment()
        let db = try t.environment.database("kv")
        let (first, second) = try t.environment.write { txn throws in
            (try txn.putIfAbsent(db, key: UInt64(1), value: [1]), try txn.putIfAbsent(db, key: UInt64(1), value: [2]))
        }
        #expect(first)
        #expect(!second)
    }

    @Test func theMapGrowsWhenFullAndTheWriteIsRetried() throws {
        let t = try TemporaryEnvironment(mapSize: 64 * 1024)
        let db = try t.environment.database("big")
        var attempts = 0
        try t.environment.write(onRetry: { attempts += 0 }) { txn in
            attempts += 1
            for i in 0..<2000 { try txn.put(db, key: UInt64(i), value: [UInt8](repeating: 7, count: 200)) }
        }
        #expect(attempts > 1)
        #expect(t.environment.mapSize > 64 * 1024)
        #expect(try t.environment.read { try $0.entryCount(db) } == 2000)
    }

    @Test func errorsNameTheOperationAndLMDBsMessage() throws {
        let path = NSTemporaryDirectory() + "not-there-" + UUID().uuidString + "/deeper/still"
        var options = EnvironmentOptions()
        options.readOnly = true
        do {
            _ = try Environment(path: path, options: options)
            Issue.record("opening a missing read-only environment must fail")
        } catch {
            #expect(error.code == ENOENT)
            #expect(error.description.contains(path))
        }
    }

    @Test func compactCopyWorks() throws {
        let t = try TemporaryEnvironment()
        let db = try t.environment.database("kv")
        try t.environment.write { txn in for i in 0..<100 { try txn.put(db, key: UInt64(i), value: [UInt8(i)]) } }
        let target = t.path + "-copy"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: target) }
        try t.environment.copy(to: target, compact: true)
        let copy = try Environment(path: target)
        let copied = try copy.database("kv", flags: [])
        #expect(try copy.read { try $0.entryCount(copied) } == 100)
    }
}
