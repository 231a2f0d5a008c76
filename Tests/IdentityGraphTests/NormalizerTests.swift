import IdentityGraph
import Testing

@Suite struct NormalizerTests {
    func normalized(_ type: String, _ value: String, schema: Schema = .builtIn) throws -> String? {
        try Normalizer.identifier(RawIdentifier(type: type, value: value), schema: schema)?.valueText
    }

    @Test func emailTrimsAndLowercasesUnicode() throws {
        #expect(try normalized("email", "  Alice@Example.COM\t") == "alice@example.com")
        #expect(try normalized("email", "ÉLODIE@Example.fr") == "élodie@example.fr")
        #expect(try normalized("email", "名前@例え.jp") == "名前@例え.jp")
    }

    @Test func phoneKeepsDigitsAndALeadingPlus() throws {
        #expect(try normalized("phone", "+1 (415) 555-0123") == "+14155550123")
        #expect(try normalized("phone", "  +44 20 7946 0958 ") == "+442079460958")
        #expect(try normalized("phone", "(+1) 415 555 0123") == "14155550123")
        #expect(try normalized("phone", "415.555.0123") == "4155550123")
        #expect(throws: IdentifierError.phoneWithoutDigits("call me")) { try normalized("phone", "call me") }
        #expect(throws: IdentifierError.phoneWithoutDigits("+")) { try normalized("phone", "+") }
    }

    @Test func trimIsTheDefaultAndKeepsCase() throws {
        #expect(try normalized("cookie", "  C-1 \r\n") == "C-1")
        #expect(try normalized("ga_cid", " GA1.2.3 ") == "GA1.2.3")
        #expect(try normalized("device", "ios:ABCD") == "ios:ABCD")
    }

    @Test func lowerAndNone() throws {
        let schema = Schema.builtIn(overriddenBy: Schema(types: ["handle": TypePolicy(normalize: .lower), "raw": TypePolicy(normalize: .none)]))
        #expect(try normalized("handle", " @Ärger ", schema: schema) == "@ärger")
        #expect(try normalized("raw", " As Is ", schema: schema) == " As Is ")
    }

    @Test func typeNamesAreCaseFoldedAndValidated() throws {
        #expect(try Normalizer.identifier(RawIdentifier(type: "EMAIL", value: "A@X.COM"), schema: .builtIn)?.description == "email:a@x.com")
        #expect(throws: IdentifierError.badTypeName("9lives")) { try normalized("9lives", "v") }
        #expect(throws: IdentifierError.badTypeName("e-mail")) { try normalized("e-mail", "v") }
        #expect(throws: IdentifierError.badTypeName("")) { try normalized("", "v") }
        #expect(try normalized("a_1", "v") == "v")
    }

    @Test func emptyAfterNormalizationIsRefused() {
        #expect(throws: IdentifierError.emptyValue(type: "email")) { try normalized("email", "   ") }
        #expect(throws: IdentifierError.emptyValue(type: "cookie")) { try normalized("cookie", "") }
    }

    @Test func valuesAtTheLimitPassAndOverItFail() throws {
        let atLimit = String(repeating: "x", count: 1024)
        #expect(try normalized("cookie", atLimit) == atLimit)
        #expect(throws: IdentifierError.valueTooLong(type: "cookie", bytes: 1025)) { try normalized("cookie", atLimit + "y") }
        // Multi-byte: 512 × "é" is 1,024 bytes.
        let accents = String(repeating: "é", count: 512)
        #expect(try normalized("cookie", accents) == accents)
        // Trimming happens before the length check.
        #expect(try normalized("cookie", "  " + atLimit + "  ") == atLimit)
    }

    @Test func ignoredTypesVanish() throws {
        let schema = Schema.builtIn(overriddenBy: Schema(types: ["session": TypePolicy(role: .ignore)]))
        #expect(try normalized("session", "s-1", schema: schema) == nil)
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: IdentifierError.invalidUTF8(type: "cookie")) {
            try Normalizer.identifier(RawIdentifier(type: Array("cookie".utf8), value: [0x63, 0xFF]), schema: .builtIn)
        }
    }

    @Test func textFormSplitsAtTheFirstColon() throws {
        let raw = try RawIdentifier(text: "device:ios:ABCD")
        #expect(raw.type == Array("device".utf8))
        #expect(raw.value == Array("ios:ABCD".utf8))
        #expect(throws: IdentifierError.missingColon("nocolon")) { try RawIdentifier(text: "nocolon") }
    }

    @Test func schemaFilesAreValidated() throws {
        let good = try Schema.parse(json: Array(#"{"types":{"kiosk":{"role":"relate","generic_after":50}},"default":{"normalize":"lower"}}"#.utf8).withUnsafeBytes { .init($0) })
        #expect(good.types["kiosk"] == TypePolicy(role: .relate, genericAfter: 50))
        #expect(good.defaultPolicy.normalize == .lower)
        #expect(throws: SchemaError.badTypeName("Bad-Name")) {
            try Schema.parse(json: .init(#"{"types":{"Bad-Name":{}}}"#.utf8))
        }
        #expect(throws: SchemaError.self) { try Schema.parse(json: .init(#"{"types":{"x":{"role":"sometimes"}}}"#.utf8)) }
        #expect(throws: SchemaError.badPolicy("x", "limit must be at least 1")) { try Schema.parse(json: .init(#"{"types":{"x":{"limit":0}}}"#.utf8)) }
    }
}
