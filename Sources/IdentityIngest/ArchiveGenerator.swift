import CZlib
import IdentityGraph
import Foundation

/// A small, fast, seeded random number generator (SplitMix64): the same seed gives the same archive.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// Creates a generator from a seed.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Writes synthetic archives: people with several emails, phones, cookies and devices,
/// anonymous sessions that later log in, households sharing an address, shared IPs, optional
/// shared kiosk devices, orders with amounts, and optional control records.
///
/// The ground truth (`identifier,person`) says which person each identifier really belongs to;
/// kiosk devices, IPs and addresses belong to no single person and are left out of it.
public struct ArchiveGenerator {
    /// What to generate.
    public struct Options: Sendable {
        /// Events (and control records) to write.
        public var events = 10_000
        /// People behind them (default: events / 10).
        public var persons: Int?
        /// Seed of the random choices.
        public var seed: UInt64 = 42
        /// native or segment.
        public var format: InputFormat = .native
        /// Shared kiosk devices that strangers use (they weld people together without a policy).
        public var kiosks = 0
        /// Share of lines that are control records (unlink, forget, retract, link), 0…0.5.
        public var controlShare = 0.0
        /// Share of events repeated later with the same event id (replays), 0…0.5.
        public var duplicateShare = 0.0
        /// What event ids start with (`e-` in native lines, `m-` as Segment `messageId`s when
        /// `nil`): an archive generated again with another prefix holds the same people and
        /// journeys as new events, to load on top of the first.
        public var eventIDPrefix: String?

        /// Whether `prefix` can start event ids: it goes into JSON strings as it is, so no
        /// quotes, backslashes or line breaks.
        public static func isValidEventIDPrefix(_ prefix: String) -> Bool {
            !prefix.contains { $0 == "\"" || $0 == "\\" || $0.isNewline }
        }
        /// Defaults: 10,000 native events, seed 42, no kiosks, no control records.
        public init() {}
    }

    /// Counts of what was written.
    public struct Written: Sendable {
        /// Lines written.
        public var lines = 0
        /// Events among them.
        public var events = 0
        /// Control records among them.
        public var controlRecords = 0
        /// People.
        public var persons = 0
    }

    private struct Person {
        var emails: [String]
        var phones: [String]
        var cookies: [String]
        var devices: [String]
        var userID: String?
        var crm: String?
        var loyalty: String?
        var household: Int
        var loggedIn = false
    }

    private let options: Options
    private var rng: SeededGenerator

    /// A generator with these options.
    public init(options: Options) {
        self.options = options
        self.rng = SeededGenerator(seed: options.seed)
    }

    /// Writes the archive to `path` (gzip when `gzip`) and the ground truth to `truthPath` if given.
    public mutating func write(to path: String, gzip: Bool = false, truthPath: String? = nil) throws -> Written {
        let sink = try ArchiveSink(path: path, gzip: gzip)
        let truth = try truthPath.map { try ArchiveSink(path: $0, gzip: false) }
        defer { sink.close(); truth?.close() }
        return try generate(sink: sink, truth: truth)
    }

    private mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }
    private mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    private mutating func makePerson(_ i: Int, households: Int) -> Person {
        let emailCount = chance(0.3) ? 2 : 1
        let emails = (0..<emailCount).map { k in k == 0 ? "person\(i)@example.com" : "p\(i).alt\(k)@mail.example" }
        let phones = chance(0.6) ? ["+1555\(String(format: "%07d", i % 10_000_000))"] : []
        let cookies = (0..<Int.random(in: 1...4, using: &rng)).map { k in "ck-\(i)-\(k)" }
        let devices = (0..<Int.random(in: 0...2, using: &rng)).map { k in "dev-\(i)-\(k)" }
        return Person(
            emails: emails, phones: phones, cookies: cookies, devices: devices,
            userID: chance(0.7) ? "u-\(i)" : nil, crm: chance(0.3) ? "crm-\(i)" : nil,
            loyalty: chance(0.2) ? "L\(100_000 + i)" : nil, household: Int.random(in: 0..<max(1, households), using: &rng))
    }

    /// Renders an email with random case and padding, so normalization has work to do.
    private mutating func messy(_ email: String) -> String {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: return email.uppercased()
        case 1: return " " + email + " "
        case 2: return email.prefix(1).uppercased() + email.dropFirst()
        default: return email
        }
    }

    private mutating func messyPhone(_ phone: String) -> String {
        guard Int.random(in: 0..<3, using: &rng) == 0 else { return phone }
        let digits = Array(phone.dropFirst(2))
        return "+1 (\(String(digits[0..<3]))) \(String(digits[3..<6]))-\(String(digits[6...]))"
    }

    private mutating func generate(sink: ArchiveSink, truth: ArchiveSink?) throws -> Written {
        let personCount = max(1, options.persons ?? max(1, options.events / 10))
        let households = max(1, personCount * 2 / 3)
        var persons: [Person] = []
        persons.reserveCapacity(personCount)
        for i in 0..<personCount { persons.append(makePerson(i, households: households)) }
        let kiosks = (0..<options.kiosks).map { "kiosk-\($0)" }

        if let truth {
            truth.write("identifier,person\n")
            for (i, p) in persons.enumerated() {
                var ids = p.emails.map { "email:\($0)" } + p.phones.map { "phone:\($0)" }
                ids += p.cookies.map { "cookie:\($0)" } + p.devices.map { "device:\($0)" }
                if let u = p.userID { ids.append("user_id:\(u)") }
                if let c = p.crm { ids.append("crm:\(c)") }
                if let l = p.loyalty { ids.append("loyalty:\(l)") }
                for id in ids { truth.write("\(id),p\(i)\n") }
            }
        }

        var written = Written()
        written.persons = personCount
        var time: Int64 = 1_704_067_200_000  // 2024-01-01T00:00:00Z
        let step = max(1, Int64(365 * 86_400_000) / Int64(max(1, options.events)))
        var recentEvents: [Int] = []
        var recentLines: [String] = []
        var nextEventNumber = 0
        let skus = ["A-1", "A-2", "B-7", "C-3", "D-9", "E-5"]
        let sources = ["web", "app", "shop", "call_centre"]

        while written.lines < options.events {
            time += Int64.random(in: 1...(2 * step), using: &rng)
            // Control records and replays.
            if options.controlShare > 0 && nextEventNumber > 10 && chance(options.controlShare) {
                let p = persons[Int.random(in: 0..<personCount, using: &rng)]
                let line: String
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: line = #"{"op":"unlink","a":"email:\#(p.emails[0])","b":"cookie:\#(p.cookies[0])"}"#
                case 1: line = #"{"op":"forget","id":"cookie:\#(pick(p.cookies))"}"#
                case 2: line = #"{"op":"retract","event_id":"\#(options.eventIDPrefix ?? "e-")\#(pick(recentEvents.isEmpty ? [0] : recentEvents))"}"#
                default:
                    if let crm = p.crm { line = #"{"op":"link","a":"crm:\#(crm)","b":"email:\#(p.emails[0])"}"# }
                    else { line = #"{"op":"link","a":"email:\#(p.emails[0])","b":"cookie:\#(p.cookies[0])"}"# }
                }
                sink.write(line + "\n")
                written.lines += 1
                written.controlRecords += 1
                continue
            }
            if options.duplicateShare > 0 && !recentLines.isEmpty && chance(options.duplicateShare) {
                sink.write(pick(recentLines) + "\n")
                written.lines += 1
                written.events += 1
                continue
            }

            let pi = Int.random(in: 0..<personCount, using: &rng)
            var p = persons[pi]
            let number = nextEventNumber
            nextEventNumber += 1
            var ids: [(String, String)] = []
            var type = "page_view"
            var amount: Double?
            var sku: String?
            let cookie = pick(p.cookies)
            let roll = Double.random(in: 0..<1, using: &rng)
            if !p.loggedIn && roll < 0.5 {
                ids = [("cookie", cookie)]  // an anonymous session
                if chance(0.3) { p.loggedIn = true }
            } else if roll < 0.35 {
                ids = [("cookie", cookie)]
                if let u = p.userID, chance(0.5) { ids.append(("user_id", u)) }
            } else if roll < 0.5 {
                type = "login"
                ids = [("cookie", cookie), ("email", messy(pick(p.emails)))]
                if let u = p.userID { ids.append(("user_id", u)) }
                p.loggedIn = true
            } else if roll < 0.65, !p.devices.isEmpty {
                type = "app_open"
                ids = [("device", pick(p.devices))]
                if let u = p.userID { ids.append(("user_id", u)) } else { ids.append(("email", messy(p.emails[0]))) }
            } else if roll < 0.8 {
                type = "order"
                ids = [("email", messy(pick(p.emails))), ("cookie", cookie), ("address", "\(p.household) Main St")]
                amount = Double(Int.random(in: 500...25_000, using: &rng)) / 100
                sku = pick(skus)
            } else if roll < 0.9 {
                type = "store_visit"
                if let l = p.loyalty { ids.append(("loyalty", l)) }
                if let ph = p.phones.first { ids.append(("phone", messyPhone(ph))) }
                if ids.isEmpty { ids = [("email", messy(p.emails[0]))] }
            } else if roll < 0.95 {
                type = "support_call"
                if let ph = p.phones.first { ids.append(("phone", messyPhone(ph))) }
                if let c = p.crm { ids.append(("crm", c)) }
                if ids.isEmpty { ids = [("email", messy(p.emails[0]))] }
            } else {
                type = "crm_update"
                ids = [("email", messy(p.emails[0]))]
                if let c = p.crm { ids.append(("crm", c)) }
                if let ph = p.phones.first { ids.append(("phone", ph)) }
            }
            // Profile fields, derived from the person and the event number (no random draws, so
            // the identifiers and times of an archive do not depend on them).
            var profile: [(String, String)] = []
            switch type {
            case "login", "crm_update":
                profile = Self.profileFields(of: pi, household: p.household)
                if type == "crm_update" && number % 4 == 0 { type = "subscribe"; profile.append(("list", "newsletter")) }
                else if type == "crm_update" && number % 16 == 1 { type = "unsubscribe"; profile.append(("list", "newsletter")) }
            case "page_view":
                if number % 3 == 0 { profile.append(("sku", skus[number % skus.count])) }
                if number % 10 == 0 { profile.append(("utm_campaign", number % 20 == 0 ? "spring-sale" : "black-friday")) }
            default: break
            }
            if chance(0.4) { ids.append(("ip", "10.\(p.household % 256).\(pi % 256).\(Int.random(in: 1...254, using: &rng))")) }
            if !kiosks.isEmpty && chance(0.05) { ids.append(("device", pick(kiosks))) }
            persons[pi] = p

            let line: String
            if options.format == .segment {
                line = segmentLine(number: number, time: time, type: type, ids: ids, amount: amount, sku: sku, profile: profile)
            } else {
                var grouped: [(String, [String])] = []
                for (t, v) in ids {
                    if let k = grouped.firstIndex(where: { $0.0 == t }) { grouped[k].1.append(v) } else { grouped.append((t, [v])) }
                }
                let idsJSON = grouped.map { t, vs in
                    vs.count == 1 ? "\"\(t)\":\(TextEncoding.jsonString(vs[0]))" : "\"\(t)\":[" + vs.map(TextEncoding.jsonString).joined(separator: ",") + "]"
                }.joined(separator: ",")
                var props = ""
                if let amount, let sku { props = #","props":{"amount":\#(String(format: "%.2f", amount)),"sku":"\#(sku)"}"# }
                else if !profile.isEmpty { props = #","props":{"# + profile.map { "\"\($0.0)\":\(TextEncoding.jsonString($0.1))" }.joined(separator: ",") + "}" }
                let source = pick(sources)
                line = #"{"event_id":"\#(options.eventIDPrefix ?? "e-")\#(number)","ts":\#(time),"type":"\#(type)","source":"\#(source)","ids":{\#(idsJSON)}\#(props)}"#
            }
            sink.write(line + "\n")
            written.lines += 1
            written.events += 1
            if recentEvents.count < 1000 { recentEvents.append(number) } else { recentEvents[number % 1000] = number }
            if options.duplicateShare > 0 {
                if recentLines.count < 1000 { recentLines.append(line) } else { recentLines[number % 1000] = line }
            }
        }
        return written
    }

    private static let firstNames = ["Ada", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam"]
    private static let lastNames = ["Martin", "Okafor", "Schmidt", "Rossi", "Nguyen", "García", "Smith", "Kowalski", "Dubois"]
    private static let places = [("FR", "Paris"), ("FR", "Lyon"), ("DE", "Berlin"), ("GB", "London"), ("US", "Boston"), ("ES", "Madrid")]

    /// Name, country and city of person `i` (the city of the household).
    static func profileFields(of i: Int, household: Int) -> [(String, String)] {
        let place = places[household % places.count]
        return [("name", "\(firstNames[i % firstNames.count]) \(lastNames[(i / firstNames.count) % lastNames.count])"),
                ("country", place.0), ("city", place.1)]
    }

    private func segmentLine(number: Int, time: Int64, type: String, ids: [(String, String)], amount: Double?, sku: String?, profile: [(String, String)]) -> String {
        var fields: [String] = []
        let messageType: String
        switch type {
        case "login", "crm_update": messageType = "identify"
        case "page_view": messageType = "page"
        case "app_open": messageType = "screen"
        default: messageType = "track"
        }
        fields.append(#""type":"\#(messageType)""#)
        fields.append(#""messageId":"\#(options.eventIDPrefix ?? "m-")\#(number)""#)
        fields.append(#""timestamp":"\#(isoTime(time))""#)
        if messageType == "track" { fields.append(#""event":"\#(type)""#) }
        var traits: [String] = []
        var context: [String] = []
        for (t, v) in ids {
            switch t {
            case "user_id": fields.append(#""userId":\#(TextEncoding.jsonString(v))"#)
            case "cookie": if !fields.contains(where: { $0.hasPrefix("\"anonymousId\"") }) { fields.append(#""anonymousId":\#(TextEncoding.jsonString(v))"#) }
            case "email": if !traits.contains(where: { $0.hasPrefix("\"email\"") }) { traits.append(#""email":\#(TextEncoding.jsonString(v))"#) }
            case "phone": if !traits.contains(where: { $0.hasPrefix("\"phone\"") }) { traits.append(#""phone":\#(TextEncoding.jsonString(v))"#) }
            case "device": if !context.contains(where: { $0.hasPrefix("\"device\"") }) { context.append(#""device":{"id":\#(TextEncoding.jsonString(v))}"#) }
            case "ip": context.append(#""ip":\#(TextEncoding.jsonString(v))"#)
            default: break  // crm, loyalty, address have no Segment field
            }
        }
        var properties: [String] = []
        for (k, v) in profile where messageType == "identify" && k != "list" { traits.append("\"\(k)\":\(TextEncoding.jsonString(v))") }
        for (k, v) in profile where messageType != "identify" || k == "list" { properties.append("\"\(k)\":\(TextEncoding.jsonString(v))") }
        if !traits.isEmpty {
            if messageType == "identify" { fields.append(#""traits":{\#(traits.joined(separator: ","))}"#) }
            else { context.append(#""traits":{\#(traits.joined(separator: ","))}"#) }
        }
        if !context.isEmpty { fields.append(#""context":{\#(context.joined(separator: ","))}"#) }
        if let amount, let sku { fields.append(#""properties":{"amount":\#(String(format: "%.2f", amount)),"sku":"\#(sku)"}"#) }
        else if !properties.isEmpty { fields.append(#""properties":{"# + properties.joined(separator: ",") + "}") }
        if !fields.contains(where: { $0.hasPrefix("\"userId\"") || $0.hasPrefix("\"anonymousId\"") }) {
            fields.append(#""anonymousId":"anon-\#(number)""#)
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    private func isoTime(_ ms: Int64) -> String { Timestamp.format(ms) }
}

/// A buffered output file, optionally gzip-compressed through zlib.
final class ArchiveSink {
    private var buffer: [UInt8] = []
    private let file: FileHandle?
    private let gz: gzFile?

    init(path: String, gzip: Bool) throws {
        if gzip {
            guard let g = gzopen(path, "wb6") else { throw InputError.cannotOpen(path: path, reason: "cannot create gzip file") }
            gz = g
            file = nil
        } else if path == "-" {
            file = FileHandle.standardOutput
            gz = nil
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw InputError.cannotOpen(path: path, reason: "cannot create file")
            }
            file = h
            gz = nil
        }
        buffer.reserveCapacity(1 << 20)
    }

    func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 20 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        if let gz {
            _ = buffer.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        } else {
            file?.write(Data(buffer))
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() {
        flush()
        if let gz { gzclose(gz) } else if file !== FileHandle.standardOutput { try? file?.close() }
    }
}
