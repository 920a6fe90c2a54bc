//! The OpenAPI document and the reference page (API.md §9).

use reqwest::Method;
use serde_json::Value;

use crate::common::TestServer;

fn snapshot_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json")
}

/// An accidental contract change shows up here. After an intended change, refresh the file with
/// `UPDATE_SNAPSHOTS=1 cargo test --test api openapi_document_matches_the_snapshot`.
#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let server = TestServer::start().await;
    let reply = server
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let actual = serde_json::to_string_pretty(&reply.body).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snapshot_path().parent().unwrap()).unwrap();
        std::fs::write(snapshot_path(), &actual).unwrap();
    }
    let expected = std::fs::read_to_string(snapshot_path())
        .expect("snapshot missing: run with UPDATE_SNAPSHOTS=1 once");
    assert!(
        expected == actual,
        "the OpenAPI document changed; review the diff and refresh the snapshot with UPDATE_SNAPSHOTS=1"
    );
}

#[tokio::test]
async fn every_operation_lists_its_error_statuses_with_the_detail_schema() {
    let server = TestServer::start().await;
    let document = server
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await
        .body;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/dev/keys"));
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            let secured = operation.get("security").is_some();
            for status in ["401", "429"] {
                assert_eq!(
                    responses.contains_key(status),
                    secured,
                    "{method} {path} {status}"
                );
            }
            if secured {
                assert!(responses.contains_key("503"), "{method} {path}");
            }
            if operation.get("requestBody").is_some() {
                for status in ["413", "415", "422"] {
                    assert!(responses.contains_key(status), "{method} {path} {status}");
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        Value::from("#/components/schemas/ErrorResponse"),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_reference_page_is_served_from_the_binary() {
    let server = TestServer::start().await;
    let reply = server.call(Method::GET, "/docs", None, None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(reply.text.contains("/v1/openapi.json"));
    for external in ["src=\"http", "href=\"http", "@import", "cdn."] {
        assert!(
            !reply.text.contains(external),
            "no CDN or external resource: {external}"
        );
    }
}

#[tokio::test]
async fn the_openapi_command_prints_the_served_document() {
    let server = TestServer::start().await;
    let served = server
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await
        .body;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_omi-server"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, served);
}

fn matches(schema: &Value, text: &str) -> bool {
    let pattern = schema["pattern"].as_str().expect("a pattern");
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 26)
        .build()
        .unwrap()
        .is_match(text)
}

fn query_parameter<'a>(document: &'a Value, path: &str, name: &str) -> &'a Value {
    document["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{path} has no parameter {name}"))
}

/// The request rules the server enforces are in the document (issue: a client generator, a
/// gateway or a fuzzer must accept exactly what the server accepts).
#[tokio::test]
async fn the_document_states_the_rules_the_server_enforces() {
    let server = TestServer::start().await;
    let document = server
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await
        .body;
    let schemas = &document["components"]["schemas"];

    // Query integers: any integer is valid (clamped), on every route.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if ["limit", "offset", "days"].contains(&parameter["name"].as_str().unwrap())
                    && parameter["in"] == "query"
                {
                    assert_eq!(
                        parameter["schema"],
                        serde_json::json!({"type": "integer"}),
                        "{method} {path} {}",
                        parameter["name"]
                    );
                }
            }
        }
    }

    // Texts: blank refused, the bound counted after trimming.
    let content = &schemas["CreateMemoryRequest"]["properties"]["content"];
    assert_eq!(content["minLength"], 1);
    for (text, valid) in [
        ("", false),
        ("   ", false),
        ("\u{3000}\t", false),
        (" a ", true),
        (&"x".repeat(500), true),
        (&format!("  {}  ", "x".repeat(500)), true),
        (&"x".repeat(501), false),
    ] {
        assert_eq!(matches(content, text), valid, "{text:?}");
    }

    // Category filters: comma lists of known categories only.
    let categories = &query_parameter(&document, "/v1/dev/user/memories", "categories")["schema"];
    assert!(matches(categories, "system, interesting,,"));
    assert!(!matches(categories, "system,cooking"));
    let categories =
        &query_parameter(&document, "/v1/dev/user/conversations", "categories")["schema"];
    assert!(matches(categories, "work,health"));
    assert!(!matches(categories, "system"));

    // Dates in queries: a bare date or a date-time; daily summaries take bare dates only.
    let start = &query_parameter(&document, "/v1/dev/user/action-items", "start_date")["schema"];
    let forms = start["anyOf"].as_array().unwrap();
    assert!(forms.iter().any(|s| matches(s, "2025-12-10")));
    assert!(
        forms
            .iter()
            .any(|s| matches(s, "2025-12-10T17:00:00+02:00"))
    );
    assert!(!forms.iter().any(|s| matches(s, "")));
    assert!(!forms.iter().any(|s| matches(s, "2025-02-30")));
    let day = &query_parameter(&document, "/v1/dev/user/daily-summaries", "end_date")["schema"];
    assert!(matches(day, "2025-12-10") && !matches(day, "2025-12-10T00:00:00Z"));

    // Enums and batch sizes.
    assert_eq!(
        schemas["CreateKeyRequest"]["properties"]["scopes"]["items"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        11
    );
    assert_eq!(
        schemas["CreateMemoriesBatchRequest"]["properties"]["memories"]["maxItems"],
        25
    );
    assert_eq!(
        schemas["BatchCreateActionItems"]["properties"]["action_items"]["maxItems"],
        50
    );

    // Nullability on PATCH (API.md §11.4): only clearable fields take null.
    let update = &schemas["UpdateActionItem"]["properties"];
    assert_eq!(update["completed"]["type"], "boolean");
    assert_eq!(update["description"]["type"], "string");
    assert!(
        update["due_at"]["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["type"] == "null")
    );
    assert_eq!(
        schemas["UpdateConversationRequest"]["properties"]["title"]["type"],
        "string"
    );
    // ... and at least one field.
    let body = &document["paths"]["/v1/dev/user/action-items/{action_item_id}"]["patch"]["requestBody"]
        ["content"]["application/json"]["schema"];
    assert_eq!(
        body["allOf"][0]["$ref"],
        "#/components/schemas/UpdateActionItem"
    );
    assert_eq!(body["allOf"][1]["anyOf"].as_array().unwrap().len(), 3);

    // Responses: every field is always sent.
    let memory = &schemas["Memory"];
    let mut properties: Vec<&String> = memory["properties"].as_object().unwrap().keys().collect();
    let mut required: Vec<&str> = memory["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    properties.sort();
    required.sort();
    assert_eq!(
        properties.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        required
    );
}
