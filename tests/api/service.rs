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
