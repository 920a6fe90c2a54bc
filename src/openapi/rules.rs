//! The request rules the server enforces, written into the generated document, so that a client
//! generator, a gateway or a contract fuzzer accepts exactly what the server accepts.
//!
//! The route list generates types and nullability from the Rust types; what it cannot know
//! (a text's bounds after trimming, the closed lists behind plain strings, how query values are
//! read) is added here in one pass, by parameter name for query parameters (so a new route's
//! `limit` or `start_date` is described like every other) and by schema property for bodies.

use serde_json::{Map, Value, json};

use crate::domain::categories::ConversationCategory;
use crate::domain::feed::TombstoneType;
use crate::domain::memories::MemoryCategory;
use crate::domain::scope::Scope;
use crate::domain::webhooks::EventType;

/// The characters Rust's `str::trim` removes (Unicode `White_Space`), as the inside of a regular
/// expression class. Spelled out because `\s` means a different set in each regex dialect.
pub const WHITESPACE: &str =
    r"\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// A text of 1..`max` characters once surrounding whitespace is trimmed. The bound is in the
/// pattern, not `maxLength`, since the server counts after trimming.
pub fn trimmed_text(max: usize) -> Value {
    let w = WHITESPACE;
    json!({
        "type": "string",
        "minLength": 1,
        "pattern": format!("^[{w}]*[^{w}]([\\s\\S]{{0,{}}}[^{w}])?[{w}]*$", max - 2),
    })
}

/// A text of at most `max` characters once trimmed, where blank means none.
pub fn optional_trimmed_text(max: usize) -> Value {
    let w = WHITESPACE;
    json!({
        "type": "string",
        "pattern": format!("^[{w}]*([^{w}]([\\s\\S]{{0,{}}}[^{w}])?)?[{w}]*$", max - 2),
    })
}

/// A comma-separated list of `values`, each item trimmed, empty items skipped.
pub fn comma_list<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    let w = WHITESPACE;
    let names: Vec<String> = values.into_iter().map(regex_escape).collect();
    let item = format!("[{w}]*({})?[{w}]*", names.join("|"));
    json!({"type": "string", "pattern": format!("^{item}(,{item})*$")})
}

fn regex_escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if ".^$*+?()[]{}|\\/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

/// A calendar date `YYYY-MM-DD` that exists (leap years included), as `chrono` reads it.
/// Years 0001..9998 only, so that no offset moves a time out of RFC 3339's years (the server
/// refuses those) and a bare end date's next midnight exists.
const DATE: &str = concat!(
    r"((000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-8]\d{3}|9[0-8]\d\d|99[0-8]\d|999[0-8])",
    r"-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)",
    r"|02-(0[1-9]|1\d|2[0-8]))",
    r"|(\d{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)-02-29)"
);

/// The date-times the server reads (`domain::time::parse_datetime`): RFC 3339 with `T` or a
/// space (`t` only before an offset), with an offset or none (UTC), and `YYYY-MM-DDTHH:MM`.
/// A few spellings it also reads (a one-digit hour, ten fraction digits) are left out.
fn date_time_pattern() -> String {
    let w = WHITESPACE;
    let time = r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?";
    let offset = r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)";
    let minutes = r"([01]\d|2[0-3]):[0-5]\d";
    format!("^[{w}]*{DATE}([T ]{time}{offset}?|t{time}{offset}|T{minutes})[{w}]*$")
}

fn date_pattern() -> String {
    let w = WHITESPACE;
    format!("^[{w}]*{DATE}[{w}]*$")
}

/// A bare date `YYYY-MM-DD`. No `format`: the server also reads the date with surrounding
/// whitespace, which `format: date` refuses.
fn date() -> Value {
    json!({"type": "string", "pattern": date_pattern()})
}

/// An RFC 3339 date-time; without an offset it is UTC. No `format`: `format: date-time` refuses
/// the offset-less form the server reads (API.md §1).
fn date_time() -> Value {
    json!({"type": "string", "pattern": date_time_pattern()})
}

/// A query bound or a due date: a bare date or a date-time (API.md §1, §11.3).
fn date_or_date_time() -> Value {
    json!({"anyOf": [date(), date_time()]})
}

/// An absolute `http(s)` URL with a host name or an IPv4 address, as a subscription needs (its
/// length is counted after trimming; `maxLength` bounds the whole text). IPv6 literals, which
/// the server also takes, are left out.
fn web_url() -> Value {
    let w = WHITESPACE;
    let label = "[A-Za-z0-9_-]+";
    let last = "[A-Za-z_-][A-Za-z0-9_-]*";
    let byte = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)";
    let host = format!("(({label}\\.)*{last}\\.?|({byte}\\.){{3}}{byte})");
    let port = r"(:(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|\d{1,4}))?";
    json!({
        "type": "string",
        "maxLength": crate::domain::webhooks::MAX_URL_CHARS,
        "pattern": format!(
            "^[{w}]*[Hh][Tt][Tt][Pp][Ss]?://{host}{port}([/?#][\\s\\S]*)?[{w}]*$"
        ),
    })
}

/// The IANA names `chrono-tz` knows, with variable names for generators (`GMT+0`, `GMT-0` and
/// `GMT0` would otherwise all become `GMT0`).
fn time_zones() -> Value {
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    let var_names: Vec<String> = names
        .iter()
        .map(|name| {
            name.chars()
                .map(|c| match c {
                    '+' => "_PLUS_".to_string(),
                    '-' => "_MINUS_".to_string(),
                    c if c.is_ascii_alphanumeric() => c.to_ascii_uppercase().to_string(),
                    _ => "_".to_string(),
                })
                .collect()
        })
        .collect();
    json!({"type": "string", "enum": names, "x-enum-varnames": var_names})
}

fn enumeration<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    json!({"type": "string", "enum": values.into_iter().collect::<Vec<_>>()})
}

fn memory_categories() -> impl Iterator<Item = &'static str> {
    MemoryCategory::ALL.into_iter().map(MemoryCategory::as_str)
}

fn conversation_categories() -> impl Iterator<Item = &'static str> {
    ConversationCategory::ALL
        .into_iter()
        .map(ConversationCategory::as_str)
}

/// What a query parameter accepts, from its name (and, for lists of categories, its path).
fn query_parameter(path: &str, name: &str, schema: &Value) -> Option<Value> {
    let types = schema_types(schema);
    if types.contains(&"integer") {
        // Any integer is read, saturated and clamped into the route's range (API.md §11.1),
        // which the description states; a bound here would call a clamped value invalid.
        return Some(json!({"type": "integer"}));
    }
    if types.contains(&"boolean") {
        return Some(json!({"type": "boolean"}));
    }
    match name {
        // Daily summaries are whole days: their bounds are bare dates.
        "start_date" | "end_date" if path.starts_with("/v1/dev/user/daily-summaries") => {
            Some(date())
        }
        "start_date" | "end_date" => Some(date_or_date_time()),
        "updated_since" | "since" => Some(date_time()),
        "categories" if path.starts_with("/v1/dev/user/memories") => {
            Some(comma_list(memory_categories()))
        }
        "categories" => Some(comma_list(conversation_categories())),
        "types" => Some(comma_list(
            TombstoneType::ALL.into_iter().map(TombstoneType::as_str),
        )),
        "query" => Some(trimmed_text(500)),
        "folder_id" => Some(json!({"type": "string", "minLength": 1})),
        _ => None,
    }
}

fn schema_types(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// How a body property is constrained beyond its Rust type.
enum Rule {
    /// The whole schema of the property (its description is kept).
    Schema(Value),
    /// An array whose items follow a schema, with bounds on the count.
    Items {
        items: Value,
        min: Option<usize>,
        max: Option<usize>,
    },
    /// A number's inclusive range.
    Range(f64, f64),
    /// The generated schema as it is, apart from `null`.
    Same,
}

/// The rules of request-body properties: (schema, property, nullable, rule). `nullable` says
/// whether `null` is accepted (API.md §11.4: on PATCH only the clearable fields).
fn body_rules() -> Vec<(&'static str, &'static str, bool, Rule)> {
    use Rule::*;
    let scopes = || Scope::ALL.into_iter().map(Scope::as_str);
    let events = || EventType::SUBSCRIBABLE.into_iter().map(EventType::as_str);
    let due = date_or_date_time;
    vec![
        // Memories (API.md §3).
        (
            "CreateMemoryRequest",
            "content",
            false,
            Schema(trimmed_text(500)),
        ),
        (
            "CreateMemoryRequest",
            "tags",
            true,
            Items {
                items: trimmed_text(100),
                min: None,
                max: Some(50),
            },
        ),
        (
            "UpdateMemoryRequest",
            "content",
            false,
            Schema(trimmed_text(500)),
        ),
        (
            "UpdateMemoryRequest",
            "tags",
            false,
            Items {
                items: trimmed_text(100),
                min: None,
                max: Some(50),
            },
        ),
        // Action items (§4).
        (
            "CreateActionItem",
            "description",
            false,
            Schema(trimmed_text(500)),
        ),
        ("CreateActionItem", "due_at", true, Schema(due())),
        (
            "UpdateActionItem",
            "description",
            false,
            Schema(trimmed_text(500)),
        ),
        ("UpdateActionItem", "due_at", true, Schema(due())),
        // Conversations (§5).
        (
            "CreateConversationRequest",
            "text",
            false,
            Schema(trimmed_text(100_000)),
        ),
        (
            "CreateConversationRequest",
            "language",
            true,
            Schema(trimmed_text(16)),
        ),
        (
            "CreateConversationRequest",
            "client_session_id",
            true,
            Schema(trimmed_text(200)),
        ),
        (
            "CreateConversationRequest",
            "started_at",
            true,
            Schema(date_time()),
        ),
        (
            "CreateConversationRequest",
            "finished_at",
            true,
            Schema(date_time()),
        ),
        (
            "CreateFromSegmentsRequest",
            "started_at",
            true,
            Schema(date_time()),
        ),
        (
            "CreateFromSegmentsRequest",
            "finished_at",
            true,
            Schema(date_time()),
        ),
        (
            "CreateFromSegmentsRequest",
            "transcript_segments",
            false,
            Items {
                items: json!({"$ref": "#/components/schemas/SegmentRequest"}),
                min: Some(1),
                max: Some(500),
            },
        ),
        (
            "CreateFromSegmentsRequest",
            "language",
            true,
            Schema(trimmed_text(16)),
        ),
        (
            "CreateFromSegmentsRequest",
            "client_session_id",
            true,
            Schema(trimmed_text(200)),
        ),
        (
            "SegmentRequest",
            "text",
            false,
            Schema(json!({"type": "string", "pattern": format!("[^{WHITESPACE}]")})),
        ),
        ("SegmentRequest", "start", false, Range(0.0, f64::MAX)),
        (
            "UpdateConversationRequest",
            "title",
            false,
            Schema(trimmed_text(500)),
        ),
        ("Geolocation", "latitude", false, Range(-90.0, 90.0)),
        ("Geolocation", "longitude", false, Range(-180.0, 180.0)),
        // Goals (§7, §13.F).
        ("CreateGoal", "title", false, Schema(trimmed_text(500))),
        // Blank is the title's default on create (§13.F).
        (
            "CreateGoal",
            "desired_outcome",
            true,
            Schema(optional_trimmed_text(2000)),
        ),
        (
            "CreateGoal",
            "description",
            true,
            Schema(optional_trimmed_text(2000)),
        ),
        (
            "CreateGoal",
            "why_it_matters",
            true,
            Schema(optional_trimmed_text(2000)),
        ),
        (
            "CreateGoal",
            "unit",
            true,
            Schema(optional_trimmed_text(100)),
        ),
        ("CreateGoal", "horizon_at", true, Schema(date_time())),
        (
            "CreateGoal",
            "success_criteria",
            true,
            Items {
                items: optional_trimmed_text(500),
                min: None,
                max: None,
            },
        ),
        (
            "MetricRequest",
            "unit",
            true,
            Schema(optional_trimmed_text(100)),
        ),
        (
            "CreateGoal",
            "status",
            true,
            Schema(enumeration(["background", "paused"])),
        ),
        (
            "UpdateGoal",
            "status",
            false,
            Schema(enumeration([
                "background",
                "paused",
                "achieved",
                "abandoned",
            ])),
        ),
        ("UpdateGoal", "title", false, Schema(trimmed_text(500))),
        (
            "UpdateGoal",
            "desired_outcome",
            false,
            Schema(trimmed_text(2000)),
        ),
        (
            "UpdateGoal",
            "why_it_matters",
            true,
            Schema(optional_trimmed_text(2000)),
        ),
        (
            "UpdateGoal",
            "unit",
            true,
            Schema(optional_trimmed_text(100)),
        ),
        ("UpdateGoal", "horizon_at", true, Schema(date_time())),
        (
            "UpdateGoal",
            "success_criteria",
            false,
            Items {
                items: optional_trimmed_text(500),
                min: None,
                max: None,
            },
        ),
        // Keys (§2.3).
        ("CreateKeyRequest", "name", false, Schema(trimmed_text(100))),
        (
            "CreateKeyRequest",
            "scopes",
            true,
            Items {
                items: enumeration(scopes()),
                min: None,
                max: None,
            },
        ),
        // Webhooks.
        ("CreateWebhookRequest", "url", false, Schema(web_url())),
        ("UpdateWebhookRequest", "url", false, Schema(web_url())),
        (
            "CreateWebhookRequest",
            "events",
            false,
            Items {
                items: enumeration(events()),
                min: Some(1),
                max: None,
            },
        ),
        (
            "UpdateWebhookRequest",
            "events",
            false,
            Items {
                items: enumeration(events()),
                min: Some(1),
                max: None,
            },
        ),
        // Ask (§13.B).
        // PATCH fields that cannot be cleared refuse `null` (§11.4).
        ("UpdateActionItem", "completed", false, Same),
        ("UpdateConversationRequest", "discarded", false, Same),
        ("UpdateConversationRequest", "starred", false, Same),
        ("UpdateGoal", "target_value", false, Same),
        ("UpdateGoal", "current_value", false, Same),
        ("UpdateGoal", "min_value", false, Same),
        ("UpdateGoal", "max_value", false, Same),
        ("UpdateWebhookRequest", "url", false, Same),
        ("UpdateWebhookRequest", "active", false, Same),
        ("AskRequest", "question", false, Schema(trimmed_text(1000))),
        (
            "AskRequest",
            "limit",
            true,
            Schema(json!({"type": "integer", "minimum": 1, "maximum": 10})),
        ),
        ("AskRequest", "timezone", true, Schema(time_zones())),
    ]
}

/// PATCH bodies that must carry at least one of their fields.
const AT_LEAST_ONE_FIELD: [&str; 4] = [
    "UpdateActionItem",
    "UpdateMemoryRequest",
    "UpdateConversationRequest",
    "UpdateGoal",
];

/// A transcript segment as the Omi app sends it (API.md §13.G.3).
fn app_segment() -> Value {
    json!({
        "type": "object",
        "required": ["text"],
        "properties": {
            "id": {"type": ["string", "null"]},
            "text": {"type": "string"},
            "speaker": {"type": ["string", "null"]},
            "speaker_id": {"type": ["integer", "null"], "minimum": i64::MIN, "maximum": i64::MAX},
            "is_user": {"type": "boolean"},
            "person_id": {"type": ["string", "null"]},
            "start": {"type": "number"},
            "end": {"type": "number"},
        },
    })
}

/// The bodies of the Omi app's webhooks, as far as the receivers read them before accepting.
fn ingest_body(path: &str) -> Option<Value> {
    match path {
        "/v1/ingest/omi/button" => Some(json!({
            "type": "object",
            "required": ["button_event"],
            "properties": {"button_event": {"type": "string"}},
        })),
        "/v1/ingest/omi/transcript" => Some(json!({"anyOf": [
            {"type": "array", "items": app_segment()},
            {
                "type": "object",
                "required": ["segments"],
                "properties": {"segments": {"type": "array", "items": app_segment()}},
            },
        ]})),
        "/v1/ingest/omi/conversations" => Some(json!({"type": "object"})),
        "/v1/ingest/omi/day-summary" => Some(json!({
            "type": "object",
            "required": ["summary_json"],
            "properties": {"summary_json": {"type": "object"}},
        })),
        _ => None,
    }
}

/// Writes the rules into `document` (the completed document of [`super::complete`]).
pub fn apply(document: &mut Value) {
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for operation in item
                .as_object_mut()
                .into_iter()
                .flat_map(|i| i.values_mut())
            {
                if let (Some(schema), Some(slot)) = (
                    ingest_body(path),
                    operation.pointer_mut("/requestBody/content/application~1json/schema"),
                ) {
                    *slot = schema;
                }
                let parameters = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut);
                for parameter in parameters.into_iter().flatten() {
                    if parameter["in"] != "query" {
                        continue;
                    }
                    let name = parameter["name"].as_str().unwrap_or_default().to_owned();
                    if let Some(schema) = query_parameter(path, &name, &parameter["schema"]) {
                        parameter["schema"] = schema;
                    }
                }
            }
        }
    }
    let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (schema, property, nullable, rule) in body_rules() {
        let Some(slot) = schemas
            .get_mut(schema)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(property))
        else {
            panic!("the rule for {schema}.{property} names no property of the document");
        };
        *slot = constrained(slot, rule, nullable);
    }
    let at_least_one: Vec<(String, Value)> = AT_LEAST_ONE_FIELD
        .iter()
        .map(|name| {
            let fields: Vec<Value> = schemas
                .get(*name)
                .and_then(|schema| schema["properties"].as_object())
                .unwrap_or_else(|| panic!("{name} is not in the document"))
                .keys()
                .map(|field| json!({"required": [field]}))
                .collect();
            (
                format!("#/components/schemas/{name}"),
                json!({"anyOf": fields}),
            )
        })
        .collect();
    // On the operation, not the component: generators read `allOf` with a `$ref` as that
    // type, while an `anyOf` on the component itself makes some of them give up on the type.
    for operation in operations(document) {
        let Some(schema) = operation.pointer_mut("/requestBody/content/application~1json/schema")
        else {
            continue;
        };
        let reference = schema["$ref"].as_str().unwrap_or_default().to_owned();
        if let Some((_, rule)) = at_least_one.iter().find(|(r, _)| *r == reference) {
            *schema = json!({"allOf": [{"$ref": reference}, rule]});
        }
    }
}

fn operations(document: &mut Value) -> impl Iterator<Item = &mut Value> {
    document
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
}

/// `current` with `rule` applied; `null` allowed or not, the description kept.
fn constrained(current: &Value, rule: Rule, nullable: bool) -> Value {
    let mut schema = match rule {
        Rule::Schema(schema) => schema,
        Rule::Items { items, min, max } => {
            let mut array = json!({"type": "array", "items": items});
            if let Some(min) = min {
                array["minItems"] = json!(min);
            }
            if let Some(max) = max {
                array["maxItems"] = json!(max);
            }
            array
        }
        Rule::Same => without_null(current),
        Rule::Range(min, max) => {
            let mut number = json!({"type": "number", "format": "double", "minimum": min});
            if max < f64::MAX {
                number["maximum"] = json!(max);
            }
            number
        }
    };
    if nullable {
        schema = with_null(schema);
    }
    if let (Some(description), Some(object)) = (current.get("description"), schema.as_object_mut())
    {
        object.insert("description".into(), description.clone());
    }
    schema
}

/// `schema` with `null` taken out of its types or its `oneOf`/`anyOf` alternatives.
fn without_null(schema: &Value) -> Value {
    let mut schema = schema.clone();
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            object.insert("type".into(), only);
        }
    }
    for key in ["oneOf", "anyOf"] {
        let Some(Value::Array(alternatives)) = object.get(key) else {
            continue;
        };
        let kept: Vec<Value> = alternatives
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .cloned()
            .collect();
        if let [only] = kept.as_slice() {
            object.remove(key);
            if let Some(fields) = only.as_object() {
                for (name, value) in fields {
                    object.entry(name.clone()).or_insert_with(|| value.clone());
                }
            }
        } else {
            object.insert(key.into(), Value::Array(kept));
        }
    }
    schema
}

fn with_null(schema: Value) -> Value {
    match schema {
        Value::Object(mut object) if object.get("type").is_some_and(Value::is_string) => {
            let kind = object.remove("type").unwrap_or_default();
            object.insert("type".into(), json!([kind, "null"]));
            Value::Object(object)
        }
        Value::Object(mut object) if object.get("anyOf").is_some_and(Value::is_array) => {
            if let Some(Value::Array(alternatives)) = object.get_mut("anyOf") {
                alternatives.push(json!({"type": "null"}));
            }
            Value::Object(object)
        }
        other => json!({"anyOf": [other, {"type": "null"}]}),
    }
}

/// Every property of a response object is always sent (`null` when unset, API.md §1), so each
/// is required; schemas that requests use too are left as the request reads them.
pub fn require_response_fields(document: &mut Value) {
    let mut request_refs = Vec::new();
    let mut response_refs = Vec::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for operation in paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(Map::values)
        {
            collect_refs(&operation["requestBody"], &mut request_refs);
            collect_refs(&operation["parameters"], &mut request_refs);
            collect_refs(&operation["responses"], &mut response_refs);
        }
    }
    let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let request = closure(&schemas, request_refs);
    let response = closure(&schemas, response_refs);
    for name in response.iter().filter(|name| !request.contains(name)) {
        let Some(schema) = document
            .pointer_mut(&format!("/components/schemas/{name}"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let all: Vec<Value> = properties.keys().map(|k| json!(k)).collect();
        schema.insert("required".into(), Value::Array(all));
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(name) = object
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(name.to_owned());
            }
            object.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The schemas `start` names and every schema they name in turn.
fn closure(schemas: &Map<String, Value>, mut pending: Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    while let Some(name) = pending.pop() {
        if seen.contains(&name) {
            continue;
        }
        if let Some(schema) = schemas.get(&name) {
            collect_refs(schema, &mut pending);
        }
        seen.push(name);
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::RegexBuilder;

    fn matches(schema: &Value, text: &str) -> bool {
        let pattern = schema["pattern"].as_str().unwrap();
        RegexBuilder::new(pattern)
            .size_limit(1 << 26)
            .build()
            .unwrap()
            .is_match(text)
    }

    /// The server's own rule: 1..max characters after `str::trim`.
    fn server_accepts(text: &str, max: usize) -> bool {
        let trimmed = text.trim();
        !trimmed.is_empty() && trimmed.chars().count() <= max
    }

    fn samples() -> Vec<String> {
        let mut texts: Vec<String> = [
            "",
            " ",
            "a",
            " a ",
            "\u{85}",
            "\u{85}x",
            "\u{1c}",
            "\u{feff}",
            "\u{3000}b\u{3000}",
            "\t\n",
            "ab",
            "a b",
            "\u{a0}\u{a0}",
            "é",
            "x\u{2028}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.push("a".repeat(10));
        texts.push(format!(" {} ", "a".repeat(10)));
        texts.push("a".repeat(11));
        texts.push(format!("\u{3000}{}\n", "é".repeat(10)));
        texts.push(format!("a{}a", " ".repeat(9)));
        texts
    }

    #[test]
    fn the_text_pattern_accepts_exactly_what_trimming_and_counting_accept() {
        let schema = trimmed_text(10);
        for text in samples() {
            assert_eq!(
                matches(&schema, &text),
                server_accepts(&text, 10),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_optional_text_pattern_also_accepts_blank() {
        let schema = optional_trimmed_text(10);
        for text in samples() {
            let expected = text.trim().chars().count() <= 10;
            assert_eq!(matches(&schema, &text), expected, "{text:?}");
        }
    }

    #[test]
    fn the_date_time_pattern_accepts_what_the_server_reads() {
        use crate::domain::time::{parse_date, parse_datetime};
        let date_time = json!({"pattern": date_time_pattern()});
        let date = json!({"pattern": date_pattern()});
        let mut texts = Vec::new();
        for day in [
            "2025-12-10",
            "2024-02-29",
            "2023-02-29",
            "2000-02-29",
            "1900-02-29",
            "2025-04-31",
            "2025-13-01",
            "0001-01-01",
            "9998-12-31",
            "0400-02-29",
            "0004-02-29",
            "2025-1-01",
        ] {
            texts.push(day.to_string());
            for sep in ["T", "t", " ", "_"] {
                for time in [
                    "17:00:00",
                    "17:00",
                    "23:59:59.123456",
                    "00:00:00.123456789",
                    "24:00:00",
                    "17:60:00",
                    "17:00:60",
                ] {
                    for offset in ["", "Z", "z", "+02:00", "-23:59", "+24:00", " Z"] {
                        texts.push(format!("{day}{sep}{time}{offset}"));
                    }
                }
            }
        }
        texts.extend([
            " 2025-12-10T17:00:00Z ".to_string(),
            "".to_string(),
            "\u{85}2025-12-10".to_string(),
        ]);
        // `chrono` also reads a one-digit month without an offset; the pattern leaves that out.
        let lenient = |text: &str| text.starts_with("2025-1-01");
        let mut wrong = Vec::new();
        for text in texts.iter().filter(|text| !lenient(text)) {
            if matches(&date_time, text) != parse_datetime(text).is_some() {
                wrong.push(format!(
                    "date-time {text:?} server {}",
                    parse_datetime(text).is_some()
                ));
            }
            if matches(&date, text) != parse_date(text).is_some() {
                wrong.push(format!(
                    "date {text:?} server {}",
                    parse_date(text).is_some()
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_url_pattern_accepts_what_a_subscription_takes() {
        use crate::domain::webhooks::validate_url;
        let schema = web_url();
        let wrong = [
            "https://hooks.example.net/b",
            "http://a",
            "HTTP://A.b:8080/x?y#z",
            " https://x.io ",
            "https://x.io/a b",
            "https://x.io:65535",
            "https://x.io:65536",
            "ftp://x.io",
            "https://",
            "https://user@x.io",
            "https://1.2.3.4",
            "https://a.0",
            "https://-a.io",
            "https://x.io.",
            "",
            "x.io",
            "https://x_y.io",
            "https://x.io:0",
            "https://1.2.3.256",
            "https://a.b1",
            "https://a.1",
        ]
        .into_iter()
        .filter(|text| matches(&schema, text) != validate_url(text).is_ok())
        .map(|text| format!("{text:?} server {}", validate_url(text).is_ok()))
        .collect::<Vec<_>>();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_list_pattern_accepts_the_lists_the_server_reads() {
        let schema = comma_list(["work", "health"]);
        for good in ["", "work", "work, health", " work,,health ,", ","] {
            assert!(matches(&schema, good), "{good:?}");
        }
        for bad in ["cooking", "work,cooking", "workhealth", "work;health"] {
            assert!(!matches(&schema, bad), "{bad:?}");
        }
    }
}
