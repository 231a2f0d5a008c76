import Foundation

/// How the values of an identifier type are normalized before they are stored or looked up.
public enum Normalization: String, Codable, Sendable, CaseIterable {
    /// Trim, then Unicode lowercase (Swift's `lowercased()`).
    case email
    /// Keep the ASCII digits, plus a leading `+` when the first non-whitespace character is `+`.
    case phone
    /// Trim, then Unicode lowercase.
    case lower
    /// Strip ASCII whitespace at both ends.
    case trim
    /// Keep the value exactly as given.
    case none
}

/// What links of an identifier type do.
public enum Role: String, Codable, Sendable, CaseIterable {
    /// Links join entities; every identifier belongs to exactly one entity.
    case merge
    /// Links only relate entities (households, shared IPs); the identifier belongs to none.
    case relate
    /// Identifiers of the type are dropped on input.
    case ignore
}

/// The policy of one identifier type (SPEC.md, "Identifiers").
public struct TypePolicy: Codable, Sendable, Equatable {
    /// How values are normalized.
    public var normalize: Normalization
    /// What links do.
    public var role: Role
    /// Most distinct values of this type one entity may hold (`nil`: unlimited).
    public var limit: Int?
    /// Degree above which a value turns generic and stops merging (`nil`: never).
    public var genericAfter: Int?
    /// Regular expressions for values that are never identifiers (`^test@`, `^null$`), matched
    /// against the normalized value; a matching value is dropped and counted.
    public var blocked: [String]?

    /// Creates a policy; unspecified fields take SPEC.md's defaults.
    public init(normalize: Normalization = .trim, role: Role = .merge, limit: Int? = nil, genericAfter: Int? = nil, blocked: [String]? = nil) {
        self.normalize = normalize
        self.role = role
        self.limit = limit
        self.genericAfter = genericAfter
        self.blocked = blocked
    }

    enum CodingKeys: String, CodingKey {
        case normalize, role, limit, blocked
        case genericAfter = "generic_after"
    }

    /// Decodes a policy; missing fields take the defaults (`trim`, `merge`, unlimited).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        normalize = try c.decodeIfPresent(Normalization.self, forKey: .normalize) ?? .trim
        role = try c.decodeIfPresent(Role.self, forKey: .role) ?? .merge
        limit = try c.decodeIfPresent(Int.self, forKey: .limit)
        genericAfter = try c.decodeIfPresent(Int.self, forKey: .genericAfter)
        blocked = try c.decodeIfPresent([String].self, forKey: .blocked)
    }
}

/// The identifier types a database knows, with their policies.
///
/// File form (`idgraph init --schema FILE`), JSON:
/// ```json
/// {"types": {"email": {"normalize": "email"}, "kiosk": {"role": "relate"}},
///  "default": {"normalize": "trim", "role": "merge"}}
/// ```
/// Types named in the file replace the built-in policy of the same name; built-ins not named keep theirs.
public struct Schema: Codable, Sendable, Equatable {
    /// Policy per type name.
    public var types: [String: TypePolicy]
    /// The policy of types seen for the first time in the data.
    public var defaultPolicy: TypePolicy
    /// What profiles make of `props` and `traits` (golden record, orders, lifecycle).
    public var profile: ProfileSchema

    enum CodingKeys: String, CodingKey {
        case types, profile
        case defaultPolicy = "default"
    }

    /// Creates a schema.
    public init(types: [String: TypePolicy], defaultPolicy: TypePolicy = TypePolicy(), profile: ProfileSchema = ProfileSchema()) {
        self.types = types
        self.defaultPolicy = defaultPolicy
        self.profile = profile
    }

    /// Decodes a schema; a missing `default` is SPEC.md's default policy, a missing `profile`
    /// the documented profile defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        types = try c.decodeIfPresent([String: TypePolicy].self, forKey: .types) ?? [:]
        defaultPolicy = try c.decodeIfPresent(TypePolicy.self, forKey: .defaultPolicy) ?? TypePolicy()
        profile = try c.decodeIfPresent(ProfileSchema.self, forKey: .profile) ?? ProfileSchema()
    }

    /// SPEC.md's built-in types: `email` and `phone` with their normalizers, the usual ids as
    /// `merge`, and `ip` and `address` as `relate`.
    public static let builtIn = Schema(types: [
        "email": TypePolicy(normalize: .email),
        "phone": TypePolicy(normalize: .phone),
        "user_id": TypePolicy(),
        "anonymous_id": TypePolicy(),
        "cookie": TypePolicy(),
        "device": TypePolicy(),
        "crm": TypePolicy(),
        "loyalty": TypePolicy(),
        "ip": TypePolicy(role: .relate),
        "address": TypePolicy(role: .relate),
    ])

    /// The built-in schema with `overrides` laid over it (types replaced by name, default replaced).
    public static func builtIn(overriddenBy overrides: Schema) -> Schema {
        var schema = builtIn
        for (name, policy) in overrides.types { schema.types[name] = policy }
        schema.defaultPolicy = overrides.defaultPolicy
        schema.profile = overrides.profile
        return schema
    }

    /// The policy of `typeName` (the default policy for unknown types).
    public func policy(for typeName: String) -> TypePolicy {
        types[typeName] ?? defaultPolicy
    }

    /// Parses a schema file, validating every type name.
    public static func parse(json data: Data) throws(SchemaError) -> Schema {
        let schema: Schema
        do {
            schema = try JSONDecoder().decode(Schema.self, from: data)
        } catch {
            throw SchemaError.malformed(String(describing: error))
        }
        for name in schema.types.keys where !IdentifierType.isValidName(Array(name.utf8)) {
            throw SchemaError.badTypeName(name)
        }
        for (name, policy) in schema.types {
            if let limit = policy.limit, limit < 1 { throw SchemaError.badPolicy(name, "limit must be at least 1") }
            if let g = policy.genericAfter, g < 1 { throw SchemaError.badPolicy(name, "generic_after must be at least 1") }
            for pattern in policy.blocked ?? [] where BlockedPatterns.compiled(pattern) == nil {
                throw SchemaError.badPolicy(name, "blocked pattern '\(pattern)' is not a valid regular expression")
            }
        }
        let l = schema.profile.lifecycle
        if l.activeDays < 1 || l.lostDays < l.activeDays || l.heroOrders < 1 || l.heroRevenue < 0 {
            throw SchemaError.badProfile("lifecycle needs 1 <= active_days <= lost_days, hero_orders >= 1 and hero_revenue >= 0")
        }
        for name in schema.profile.attributes.keys where name.isEmpty || name.utf8.count > 64 {
            throw SchemaError.badProfile("attribute names are 1 to 64 bytes ('\(name)')")
        }
        return schema
    }

    /// The schema as pretty JSON with sorted keys (what `idgraph schema show` prints).
    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// A schema file that cannot be used.
public enum SchemaError: Error, CustomStringConvertible, Equatable {
    /// The file is not a JSON schema object.
    case malformed(String)
    /// A type name does not match `[a-z][a-z0-9_]*`.
    case badTypeName(String)
    /// A policy value is out of range.
    case badPolicy(String, String)
    /// The `profile` section is not usable.
    case badProfile(String)

    public var description: String {
        switch self {
        case .malformed(let why):
            return "schema file is not valid: \(why). Expected {\"types\": {\"email\": {\"normalize\": \"email\", \"role\": \"merge\"}}, \"default\": {...}}"
        case .badTypeName(let name):
            return "schema type name '\(name)' is not valid: it must match [a-z][a-z0-9_]*"
        case .badPolicy(let name, let why):
            return "schema type '\(name)': \(why)"
        case .badProfile(let why):
            return "schema profile: \(why)"
        }
    }
}
