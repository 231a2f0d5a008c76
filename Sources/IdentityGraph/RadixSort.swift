/// Sorts 64-bit integers in place by their bytes, most significant first (American flag sort:
/// each pass counts one byte's values, moves every element to its bucket by swaps, and sorts
/// each bucket by the next byte), without a second buffer.
///
/// For the bulk writer's large arrays of packed keys (link evidence, memberships): 15M pieces
/// of link evidence took the sorter ~1 s with `Array.sort()`, at the moment the writer waits
/// for the degrees they give.
enum RadixSort {
    /// Buckets below this size are finished by insertion sort.
    private static let smallBucket = 48

    /// Sorts `values` ascending.
    static func sort(_ values: inout [UInt64]) {
        guard values.count > 1 else { return }
        var highest: UInt64 = 0
        for v in values { highest |= v }
        // The first byte that is not zero in every value.
        let shift = highest == 0 ? 0 : (63 - highest.leadingZeroBitCount) / 8 * 8
        values.withUnsafeMutableBufferPointer { sort($0, shift: shift) }
    }

    /// Sorts `values` by their top `bytes` bytes only (the order among values that agree there
    /// is left as it falls): for keys packed above a payload, such as ``ByteKeyTable``'s four
    /// key bytes above an entry offset.
    static func sort(_ values: UnsafeMutableBufferPointer<UInt64>, byTopBytes bytes: Int) {
        precondition((1...8).contains(bytes))
        guard values.count > 1 else { return }
        sort(values, shift: 56, lowest: 64 - 8 * bytes)
    }

    private static func sort(_ values: UnsafeMutableBufferPointer<UInt64>, shift: Int, lowest: Int = 0) {
        if values.count <= smallBucket {
            insertionSort(values)
            return
        }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 512) { space in
            let next = UnsafeMutableBufferPointer(rebasing: space[0..<256])
            let end = UnsafeMutableBufferPointer(rebasing: space[256..<512])
            for b in 0..<256 { next[b] = 0 }
            for v in values { next[Int(truncatingIfNeeded: v >> UInt64(shift)) & 0xFF] += 1 }
            var start = 0
            for b in 0..<256 {
                let count = next[b]
                next[b] = start
                start += count
                end[b] = start
            }
            // Every element to its bucket: take the first misplaced one of bucket b, and swap it
            // along the buckets it belongs to until one that belongs to b comes back.
            for b in 0..<256 {
                while next[b] < end[b] {
                    var v = values[next[b]]
                    var d = Int(truncatingIfNeeded: v >> UInt64(shift)) & 0xFF
                    while d != b {
                        swap(&v, &values[next[d]])
                        next[d] += 1
                        d = Int(truncatingIfNeeded: v >> UInt64(shift)) & 0xFF
                    }
                    values[next[b]] = v
                    next[b] += 1
                }
            }
            guard shift > lowest else { return }
            var lower = 0
            for b in 0..<256 {
                let upper = end[b]
                if upper - lower > 1 { sort(UnsafeMutableBufferPointer(rebasing: values[lower..<upper]), shift: shift - 8, lowest: lowest) }
                lower = upper
            }
        }
    }

    private static func insertionSort(_ values: UnsafeMutableBufferPointer<UInt64>) {
        guard values.count > 1 else { return }
        for i in 1..<values.count {
            let v = values[i]
            var j = i
            while j > 0 && values[j - 1] > v {
                values[j] = values[j - 1]
                j -= 1
            }
            values[j] = v
        }
    }
}
