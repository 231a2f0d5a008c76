import IdentityGraph
import IdentityQuery
import PropertyBased
import Testing

@Suite struct ParserTests {
    let alice = RawIdentifier(type: "email", value: "alice@example.com")

    @Test func everyStatementParses() throws {
        #expect(try Parser.parse("RESOLVE email:alice@example.com") == .resolve(alice))
        #expect(try Parser.parse("resolve email:alice@example.com;") == .resolve(alice))
        #expect(try Parser.parse("ENTITY 42") == .entity(.entity(42)))
        #expect(try Parser.parse("ENTITY OF email:alice@example.com") == .entity(.identifier(alice)))
        #expect(try Parser.parse("IDENTIFIERS OF 7 TYPE EMAIL") == .identifiers(.entity(7), type: "email"))
        #expect(try Parser.parse("EVENTS OF email:alice@example.com TYPE order SINCE '2024-01-02' UNTIL 1704300000000 LIMIT 5")
                == .events(.identifier(alice), type: "order", since: 1_704_153_600_000, until: 1_704_300_000_000, limit: 5))
        #expect(try Parser.parse("NEIGHBORS cookie:c-1 DEPTH 3") == .neighbors(RawIdentifier(type: "cookie", value: "c-1"), depth: 3))
        #expect(try Parser.parse("PATH cookie:c-1 TO 'address:1 Main St'") == .path(RawIdentifier(type: "cookie", value: "c-1"), RawIdentifier(type: "address", value: "1 Main St")))
        #expect(try Parser.parse("HISTORY 3") == .history(.entity(3)))
        #expect(try Parser.parse("lineage 3") == .lineage(.entity(3)))
        #expect(try Parser.parse("LINEAGE email:alice@example.com") == .lineage(.identifier(alice)))
        #expect(try Parser.parse("RELATED email:alice@example.com") == .related(.identifier(alice)))
        #expect(try Parser.parse("FIND ENTITIES WHERE revenue > 10 AND NOT (size = 1 OR HAS phone) ORDER BY events.order DESC LIMIT 3")
                == .find(.and(.compare(.revenue, .greater, 10), .not(.or(.compare(.size, .equal, 1), .has("phone")))), orderBy: .eventsOfType("order"), descending: true, limit: 3))
        #expect(try Parser.parse("COUNT ENTITIES WHERE email >= 2") == .count(.compare(.identifiersOfType("email"), .greaterOrEqual, 2)))
        #expect(try Parser.parse("COUNT ENTITIES WHERE last_seen < '2024-01-02'") == .count(.compare(.lastSeen, .less, 1_704_153_600_000)))
        #expect(try Parser.parse("LINK crm:42 TO loyalty:L-7") == .link(RawIdentifier(type: "crm", value: "42"), RawIdentifier(type: "loyalty", value: "L-7")))
        #expect(try Parser.parse("UNLINK crm:42 loyalty:L-7") == .unlink(RawIdentifier(type: "crm", value: "42"), RawIdentifier(type: "loyalty", value: "L-7")))
        #expect(try Parser.parse("FORGET email:alice@example.com") == .forget(alice))
        #expect(try Parser.parse("RETRACT 'e-1'") == .retract("e-1"))
        #expect(try Parser.parse("STATS") == .stats)
        #expect(try Parser.parse("SCHEMA") == .schema)
        #expect(try Parser.parse("EXPLAIN RESOLVE email:alice@example.com") == .explain(.resolve(alice)))
        // Values keep colons and case; a value may contain characters that are symbols elsewhere.
        #expect(try Parser.parse("RESOLVE device:ios:ABCD=1") == .resolve(RawIdentifier(type: "device", value: "ios:ABCD=1")))
    }

    @Test func errorsPointAtTheOffendingToken() throws {
        func error(_ text: String) -> QueryError? {
            do { _ = try Parser.parse(text); return nil } catch { return error }
        }
        #expect(error("RESOLV email:a@x.com")?.range == 0..<6)
        #expect(error("RESOLV email:a@x.com")?.message.contains("unknown statement") == true)
        #expect(error("ENTITY OF 42")?.message == "expected an identifier type:value (e.g. email:alice@example.com), found 42")
        #expect(error("EVENTS OF 1 LIMIT x")?.range == 18..<19)
        #expect(error("FIND ENTITIES WHERE revenue >")?.message == "expected a number, found the end of the statement")
        #expect(error("FIND ENTITIES WHERE (size = 1")?.message == "expected ')', found the end of the statement")
        #expect(error("NEIGHBORS cookie:c DEPTH 9")?.message == "DEPTH must be between 1 and 6")
        #expect(error("RESOLVE 'unterminated")?.message.contains("unterminated") == true)
        #expect(error("STATS extra")?.message == "unexpected 'extra' after the end of the statement")
        #expect(error("EVENTS OF 1 SINCE 'soon'")?.message.contains("is not a time") == true)
        // Profile fields: what each compares with, said plainly.
        #expect(error("FIND ENTITIES WHERE lifecycle = 'vip'")?.message == "'vip' is not a lifecycle stage: use lead, first_order, active, hero, waiting, lost")
        #expect(error("FIND ENTITIES WHERE lifecycle = 3")?.message == "lifecycle compares with text ('hero')")
        #expect(error("FIND ENTITIES WHERE orders = 'many'")?.message == "orders compares with a number")
        #expect(error("FIND ENTITIES WHERE product > 'A-1'")?.message.contains("product is a set") == true)
        #expect(error("FIND ENTITIES ORDER BY campaign")?.message.contains("cannot ORDER BY campaign") == true)
        #expect(error("CREATE SEGMENT a b AS FIND ENTITIES WHERE orders > 1")?.message == "expected AS, found 'b'")
        #expect(error("CREATE SEGMENT 'no spaces' AS FIND ENTITIES WHERE orders > 1")?.message.contains("segment name") == true)
        #expect(try Parser.parse("FIND ENTITIES WHERE email = 'a@x.com'") == .find(.compareText(.attribute("email"), .equal, "a@x.com"), orderBy: nil, descending: false, limit: nil))
        #expect(try Parser.parse("FIND ENTITIES WHERE email > 1") == .find(.compare(.identifiersOfType("email"), .greater, 1), orderBy: nil, descending: false, limit: nil))
        #expect(try Parser.parse("CREATE SEGMENT vip AS FIND ENTITIES WHERE  orders >= 5 AND lifecycle = 'HERO' ;")
                == .createSegment("vip", .and(.compare(.orders, .greaterOrEqual, 5), .compareText(.lifecycle, .equal, "hero")), definition: "orders >= 5 AND lifecycle = 'HERO'"))
        let rendered = error("ENTITY OF 42")!.rendered(statement: "ENTITY OF 42")
        #expect(rendered == "  ENTITY OF 42\n            ^^\nerror: expected an identifier type:value (e.g. email:alice@example.com), found 42")
    }

    @Test func randomTextNeverCrashesTheParser() async {
        await propertyCheck(count: 3000, input: Gen.ascii.string(of: 0...60)) { text in
            _ = try? Parser.parse(text)
        }
    }

    @Test func randomTokenSequencesNeverCrashTheParser() async {
        let pieces = Parser.keywords + ["email:a@x.com", "'e-1'", "42", "-1", "3.5", "(", ")", "=", "<=", "!=", ";", "size", "events.order", "'2024-01-01'", "revenue"]
        await propertyCheck(count: 5000, input: Gen.int(in: 0..<pieces.count).array(of: 0...12)) { indexes in
            let text = indexes.map { pieces[$0] }.joined(separator: " ")
            if let statement = try? Parser.parse(text) {
                // Whatever parses must parse the same way again.
                #expect((try? Parser.parse(text)) == statement)
            }
        }
    }
}
