//! The OpenAPI document's shared parts: the schemas of the API's constrained strings (each the
//! exact rule the handlers enforce, so generated clients and fuzzers agree with the server),
//! and the error answers operations share (400, 401, 409, 413, 429, 503), added in one place
//! to every operation, so new routes get them too.

use serde_json::{json, Value};
use utoipa::openapi::{RefOr, Schema};

/// Declares a named schema component from its JSON Schema text.
macro_rules! json_schema {
    ($(#[$doc:meta])* $name:ident, $schema:tt) => {
        $(#[$doc])*
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                serde_json::from_value(json!($schema)).expect("a valid schema")
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

/// Whole part ≤ 10^12 with up to 6 decimals; leading zeros allowed (`Credits::parse`).
const POSITIVE: &str = concat!(
    r"^(?:0*[1-9][0-9]{0,11}(?:\.[0-9]{1,6})?",
    r"|0+\.(?:[1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}|0000[1-9][0-9]?|00000[1-9])",
    r"|0*1000000000000(?:\.0{1,6})?)$"
);
const NON_NEGATIVE: &str = concat!(
    r"^(?:-0+(?:\.0{1,6})?|0*[0-9]{1,12}(?:\.[0-9]{1,6})?",
    r"|0*1000000000000(?:\.0{1,6})?)$"
);
/// No control characters (Unicode category Cc), as `validate::text` requires.
const NO_CONTROLS: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
/// No control characters and at least one character that is not White_Space (not blank after
/// `str::trim`).
const NOT_BLANK: &str = concat!(
    r"^[^\u0000-\u001F\u007F-\u009F]*",
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^\u0000-\u001F\u007F-\u009F]*$"
);
pub const MAX_CREDITS_WHOLE: i64 = 1_000_000_000_000;

json_schema!(
    /// Credits greater than zero.
    PositiveCredits,
    {
        "description": "Credits greater than zero: a decimal string with up to 6 decimals (an integer is accepted too), at most 10^12.",
        "oneOf": [
            {"type": "string", "pattern": POSITIVE},
            {"type": "integer", "minimum": 1, "maximum": MAX_CREDITS_WHOLE}
        ],
        "example": "2.5"
    }
);

json_schema!(
    /// Credits, zero or more.
    NonNegativeCredits,
    {
        "description": "Credits, zero or more: a decimal string with up to 6 decimals (an integer is accepted too), at most 10^12.",
        "oneOf": [
            {"type": "string", "pattern": NON_NEGATIVE},
            {"type": "integer", "minimum": 0, "maximum": MAX_CREDITS_WHOLE}
        ],
        "example": "0.5"
    }
);

json_schema!(
    /// The app's own user id.
    CustomerId,
    {
        "type": "string",
        "description": "The app's own user id: 1–255 of `A–Z a–z 0–9 . _ - : @ + | =`.",
        "pattern": "^[A-Za-z0-9._:@+|=-]{1,255}$",
        "example": "user_123"
    }
);

json_schema!(
    /// What credits paid for: a feature id.
    FeatureId,
    {
        "type": "string",
        "description": "What the credits paid for: 1–100 of `A–Z a–z 0–9 . _ - : /`, e.g. `chat` or `image:gen`.",
        "pattern": "^[A-Za-z0-9._:/-]{1,100}$",
        "example": "chat"
    }
);

json_schema!(
    /// A JSON object of at most 8 KiB.
    Metadata,
    {
        "type": "object",
        "additionalProperties": true,
        "description": "Your own key-value data, a JSON object of at most 8 KiB; returned as given.",
        "example": {"tokens": 1250}
    }
);

json_schema!(
    /// Free text without control characters.
    Text,
    {"type": "string", "maxLength": 500, "pattern": NO_CONTROLS}
);

json_schema!(
    /// Free text that is not blank.
    Reason,
    {"type": "string", "minLength": 1, "maxLength": 500, "pattern": NOT_BLANK}
);

json_schema!(
    /// A display name.
    Name,
    {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NOT_BLANK}
);

json_schema!(
    /// Who grants credits through the API.
    GrantSourceIn,
    {"type": "string", "enum": ["promotion", "admin"], "description": "`promotion` (default) or `admin`; purchases are granted by creditd itself."}
);

json_schema!(
    /// How often a budget resets.
    BudgetPeriod,
    {"type": "string", "enum": ["day", "month", "total"]}
);

json_schema!(
    /// How usage is summed.
    UsageGroup,
    {"type": "string", "enum": ["day", "feature"]}
);

json_schema!(
    /// A Stripe event's status as creditd recorded it.
    EventStatus,
    {"type": "string", "enum": ["processing", "processed", "ignored", "failed"]}
);

json_schema!(
    /// How often a plan bills.
    PlanInterval,
    {"type": "string", "enum": ["day", "week", "month", "year"]}
);

json_schema!(
    /// A three-letter currency code.
    Currency,
    {"type": "string", "description": "A three-letter ISO currency code, e.g. `usd` (any case).", "pattern": "^[A-Za-z]{3}$", "example": "usd"}
);

json_schema!(
    /// Money in minor units.
    MinorUnits,
    {"type": "integer", "description": "Minor units of the currency (500 = 5.00 usd).", "minimum": 1, "maximum": creditd_domain::money::MAX_MINOR_UNITS, "example": 500}
);

json_schema!(
    /// An http(s) URL.
    HttpUrl,
    {"type": "string", "description": "An `http://` or `https://` URL of at most 2000 characters.", "pattern": "^https?://", "maxLength": 2000}
);

json_schema!(
    /// Where a webhook endpoint receives events: the rule `outbound::check_url` enforces.
    WebhookUrl,
    {
        "type": "string",
        "description": "An `http://` or `https://` URL with a host name or IPv4 address, at most 2048 characters.",
        "pattern": crate::outbound::URL_PATTERN,
        "maxLength": crate::outbound::MAX_URL_LEN,
        "example": "https://app.example.com/webhooks/creditd"
    }
);

json_schema!(
    /// A Stripe object id.
    StripeId,
    {"type": "string", "description": "A Stripe object id, e.g. `price_1Nx…`.", "pattern": "^[A-Za-z0-9_]{1,255}$"}
);

/// The finished document: the generated one, with what the derive cannot say added — the
/// error answers every operation of a kind can give, fields that exclude each other, and the
/// configured limits.
pub fn finish(api: &utoipa::openapi::OpenApi, max_hold_ttl_seconds: i64) -> Value {
    let mut doc = serde_json::to_value(api).expect("the document serializes");
    if let Some(paths) = doc["paths"].as_object_mut() {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            common_responses(operation);
        }
    }
    optional_bodies(&mut doc);
    let schemas = &mut doc["components"]["schemas"];
    // "Given" is present and not null: the handlers treat a null field as an absent one.
    schemas["PackageIn"]["oneOf"] = json!([
        {"allOf": [given("price"), given("currency"), {"not": given("stripe_price")}]},
        {"allOf": [given("stripe_price"), {"not": given("price")}, {"not": given("currency")}]}
    ]);
    schemas["CheckoutIn"]["oneOf"] = json!([
        {"allOf": [given("package"), {"not": given("plan")}]},
        {"allOf": [given("plan"), {"not": given("package")}, {"not": given("quantity")}]}
    ]);
    let amount_xor_units = json!([
        {"allOf": [given("amount"), {"not": given("units")}]},
        {"allOf": [given("units"), {"not": given("amount")}]}
    ]);
    schemas["UsageIn"]["oneOf"] = amount_xor_units.clone();
    schemas["UsageRecordIn"]["oneOf"] = amount_xor_units.clone();
    schemas["HoldIn"]["oneOf"] = amount_xor_units;
    schemas["HoldIn"]["oneOf"][1]["allOf"]
        .as_array_mut()
        .expect("allOf")
        .push(given("feature"));
    schemas["CaptureIn"]["not"] = json!({"allOf": [given("amount"), given("units")]});
    schemas["CheckIn"]["allOf"] = json!([
        {"not": {"allOf": [given("amount"), given("units")]}},
        {"not": {"allOf": [given("units"), {"not": given("feature")}]}}
    ]);
    // A rate card: 1–20 units (`pricing::unit_name`), each priced above zero.
    for name in ["FeatureIn", "FeatureUpdate"] {
        schemas[name]["properties"]["prices"] = json!({
            "type": ["object", "null"],
            "description": "Unit → credits per `per` units, exact decimals with up to 6 decimals.",
            "minProperties": 1,
            "maxProperties": creditd_domain::pricing::MAX_UNITS_PER_FEATURE,
            "propertyNames": {"pattern": "^[A-Za-z0-9_.-]{1,64}$"},
            "additionalProperties": {"$ref": "#/components/schemas/PositiveCredits"},
            "example": {"input_tokens": "2.5", "output_tokens": "10"}
        });
    }
    // An endpoint's event types: each known, or `*`.
    let mut types = vec![json!("*")];
    types.extend(
        creditd_domain::outbound::EventType::ALL
            .iter()
            .map(|t| json!(t.as_str())),
    );
    for name in ["EndpointIn", "EndpointUpdateIn"] {
        let events = &mut schemas[name]["properties"]["events"];
        events["minItems"] = json!(1);
        events["items"] = json!({"type": "string", "enum": types});
    }
    // Quantities of a rate card's units (`Priced::new`).
    let units = json!({
        "type": ["object", "null"],
        "minProperties": 1,
        "maxProperties": creditd_domain::pricing::MAX_UNITS_PER_FEATURE,
        "propertyNames": {"pattern": "^[A-Za-z0-9_.-]{1,64}$"},
        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": creditd_domain::pricing::MAX_QUANTITY},
        "example": {"input_tokens": 1200, "output_tokens": 350}
    });
    for name in ["UsageIn", "UsageRecordIn", "HoldIn", "CaptureIn", "CheckIn"] {
        let property = &mut schemas[name]["properties"]["units"];
        let description = property["description"].clone();
        *property = units.clone();
        property["description"] = description;
    }
    // `per` applies to `prices`.
    for name in ["FeatureIn", "FeatureUpdate"] {
        schemas[name]["not"] = json!({"allOf": [given("per"), {"not": given("prices")}]});
    }
    plans(schemas);
    // A batch's records are read one by one: an item that is not a record is refused alone,
    // inside the 200 (`usage_batch::record_request`), so the request takes any item.
    let records = &mut schemas["UsageBatchIn"]["properties"]["records"];
    let description = records["description"].clone();
    records["items"] =
        json!({"anyOf": [{"$ref": "#/components/schemas/UsageRecordIn"}, {}], "description": description});
    // The views' metadata is the same free-form object the requests take.
    for schema in schemas.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        let metadata = schema.get_mut("properties").and_then(|p| p.get_mut("metadata"));
        if let Some(metadata) = metadata.filter(|m| m.get("type") == Some(&json!("object"))) {
            *metadata = json!({"$ref": "#/components/schemas/Metadata"});
        }
    }
    let ttl = &mut schemas["HoldIn"]["properties"]["ttl_seconds"];
    ttl["minimum"] = json!(1);
    ttl["maximum"] = json!(max_hold_ttl_seconds);
    doc
}

/// A plan is free (monthly credits, zero allowed, no price) or paid (credits above zero, a
/// price and its currency); its features name feature ids.
fn plans(schemas: &mut Value) {
    let free = json!({"required": ["free"], "properties": {"free": {"const": true}}});
    schemas["PlanIn"]["oneOf"] = json!([
        {"allOf": [free, {"not": given("price")}, {"not": given("currency")},
                   {"properties": {"interval": {"enum": ["month", null]}}}]},
        {"allOf": [{"not": free}, given("price"), given("currency"),
                   {"properties": {"credits": {"$ref": "#/components/schemas/PositiveCredits"}}}]}
    ]);
    let features = json!({
        "description": "Feature id → `true` (included), `false` (left out), or `{\"limit\": 3, \"period\": \"day\" | \"month\"}`; each id an existing feature (else 404 `feature_not_found`).",
        "propertyNames": {"pattern": "^[A-Za-z0-9._:/-]{1,100}$"},
        "additionalProperties": {"oneOf": [
            {"type": "boolean"},
            {"type": "object", "additionalProperties": false, "required": ["limit", "period"], "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": creditd_domain::entitlement::MAX_LIMIT},
                "period": {"type": "string", "enum": ["day", "month"]}
            }}
        ]},
        "example": {"chat": true, "images": {"limit": 3, "period": "day"}}
    });
    schemas["PlanUpdate"]["properties"]["features"] = features.clone();
    schemas["PlanUpdate"]["properties"]["features"]["type"] = json!("object");
    schemas["PlanIn"]["properties"]["features"] = features;
    schemas["PlanIn"]["properties"]["features"]["type"] = json!(["object", "null"]);
}

/// A body whose schema requires no field may be left out: the handlers read an empty body as
/// `{}`.
fn optional_bodies(doc: &mut Value) {
    let schemas = doc["components"]["schemas"].clone();
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|i| i.values_mut())
    {
        let Some(body) = operation.get_mut("requestBody") else {
            continue;
        };
        let reference = body["content"]["application/json"]["schema"]["$ref"].as_str();
        let name = reference.and_then(|r| r.strip_prefix("#/components/schemas/"));
        let schema = name.map(|n| &schemas[n]);
        if schema.is_some_and(|s| s["type"] == "object" && s.get("required").is_none()) {
            body["required"] = json!(false);
        }
    }
}

fn given(field: &str) -> Value {
    json!({"required": [field], "properties": {field: {"not": {"type": "null"}}}})
}

/// The error answers operations share, added where the handler's own list lacks them: 401
/// where a credential is required, 400 and 413 where a JSON body is read, 400 where a query
/// string is, 400 and 409 (`idempotency_key_reused`) where an `Idempotency-Key` is honoured,
/// 429 `rate_limited` where a credential is taken, and 503 everywhere (the database out of
/// reach, or the write queue full).
fn common_responses(operation: &mut Value) {
    // `security: []` takes no credential; no `security` takes the document's (a secret key).
    let public = operation["security"].as_array().is_some_and(Vec::is_empty);
    let has_param = |place: &str, name: Option<&str>| {
        operation["parameters"].as_array().is_some_and(|ps| {
            ps.iter().any(|p| {
                p["in"] == place && name.is_none_or(|n| p["name"].as_str().is_some_and(|m| m.eq_ignore_ascii_case(n)))
            })
        })
    };
    let mut add = Vec::new();
    if !public {
        add.push((
            "401",
            error_response("missing or invalid credentials (`unauthorized`, `invalid_token`)"),
        ));
    }
    if operation.get("requestBody").is_some() {
        add.push((
            "400",
            error_response("invalid JSON or an invalid field, named in `param`"),
        ));
        add.push((
            "413",
            error_response("the body is larger than `max_body_bytes` (`payload_too_large`)"),
        ));
    }
    if has_param("query", None) {
        add.push(("400", error_response("an invalid query parameter, named in `param`")));
    }
    if has_param("header", Some("Idempotency-Key")) {
        add.push(("400", error_response("an invalid `Idempotency-Key`")));
        add.push((
            "409",
            error_response("`idempotency_key_reused`: the key was used with another request"),
        ));
    }
    if !public {
        let mut limited = error_response(
            "`rate_limited`: this credential (or, for purchases, this customer) is over its limit on this replica",
        );
        limited["headers"] = json!({
            "Retry-After": seconds_header("Seconds to wait before retrying"),
            "RateLimit-Limit": seconds_header("Requests the bucket holds"),
            "RateLimit-Remaining": seconds_header("Requests left in the bucket now"),
            "RateLimit-Reset": seconds_header("Seconds until the bucket is full again"),
        });
        add.push(("429", limited));
    }
    let mut unavailable = error_response(
        "`database_unavailable` (the database cannot be reached) or `overloaded` (too many writes waiting); \
         retry after `Retry-After` seconds",
    );
    unavailable["headers"] = json!({"Retry-After": seconds_header("Seconds to wait before retrying")});
    add.push(("503", unavailable));
    let responses = operation["responses"]
        .as_object_mut()
        .expect("operations have responses");
    for (status, response) in add {
        responses.entry(status).or_insert(response);
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn seconds_header(description: &str) -> Value {
    json!({"description": description, "schema": {"type": "integer", "minimum": 0}})
}
