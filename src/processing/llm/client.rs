//! A minimal client for OpenAI-compatible `POST {base}/chat/completions`.
//!
//! Servers differ in how they constrain output: OpenAI, vLLM, llama.cpp and recent Ollama take a
//! JSON schema, older ones only JSON mode, some neither. The client asks for the strongest form
//! first and steps down when the server refuses the request (HTTP 400), remembering the form that
//! worked so that later calls skip the ones that fail.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::credentials::Secret;

/// How the answer's shape is requested, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutputMode {
    /// `response_format: {type: "json_schema", ...}`: the server enforces the schema.
    JsonSchema = 0,
    /// `response_format: {type: "json_object"}`: valid JSON, shape given in the prompt.
    JsonObject = 1,
    /// No `response_format`: the prompt asks for JSON and the answer is parsed leniently.
    Instructions = 2,
}

impl OutputMode {
    fn from_u8(value: u8) -> OutputMode {
        match value {
            0 => OutputMode::JsonSchema,
            1 => OutputMode::JsonObject,
            _ => OutputMode::Instructions,
        }
    }

    fn weaker(self) -> Option<OutputMode> {
        match self {
            OutputMode::JsonSchema => Some(OutputMode::JsonObject),
            OutputMode::JsonObject => Some(OutputMode::Instructions),
            OutputMode::Instructions => None,
        }
    }
}

/// One question to the model.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    pub system: &'a str,
    pub user: &'a str,
    /// Names the schema in `response_format`; letters, digits and `_` only.
    pub schema_name: &'a str,
    pub schema: &'a Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the model server: {0}")]
    Unreachable(String),
    #[error("the model server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the model server's answer is not a chat completion: {0}")]
    Malformed(String),
}

#[derive(Debug, Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

/// Characters of an error body kept in an error message.
const ERROR_BODY_CHARS: usize = 300;

pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<Secret>,
    /// The strongest [`OutputMode`] known to work with this server.
    mode: AtomicU8,
}

impl ChatClient {
    pub fn new(base_url: &str, model: &str, api_key: Option<Secret>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|error| anyhow::anyhow!("building the HTTP client: {error}"))?;
        Ok(ChatClient {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model: model.to_string(),
            api_key,
            mode: AtomicU8::new(OutputMode::JsonSchema as u8),
        })
    }

    pub fn mode(&self) -> OutputMode {
        OutputMode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// Sends the request and returns the answer's text. A 400 is read as "this server does not
    /// take that `response_format`": the same question is asked in the next weaker mode, and a
    /// weaker mode that then works is remembered. A 400 in every mode (a prompt too long for the
    /// model, say) changes nothing.
    pub async fn complete(&self, request: &ChatRequest<'_>) -> Result<String, ClientError> {
        let first = self.mode();
        let mut mode = first;
        loop {
            match self.send(request, mode).await {
                Err(ClientError::Status { status: 400, .. }) if mode.weaker().is_some() => {
                    mode = mode.weaker().expect("checked above");
                }
                Ok(answer) => {
                    if mode > first {
                        tracing::info!(mode = ?mode, "the model server refused a stronger output mode; using this one from now on");
                        self.mode.fetch_max(mode as u8, Ordering::Relaxed);
                    }
                    return Ok(answer);
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn send(
        &self,
        request: &ChatRequest<'_>,
        mode: OutputMode,
    ) -> Result<String, ClientError> {
        let mut builder = self
            .http
            .post(&self.url)
            .json(&body(&self.model, request, mode));
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        let response = builder
            .send()
            .await
            .map_err(|error| ClientError::Unreachable(error.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(ClientError::Status {
                status: status.as_u16(),
                body: text.chars().take(ERROR_BODY_CHARS).collect(),
            });
        }
        let completion: Completion = response
            .json()
            .await
            .map_err(|error| ClientError::Malformed(error.to_string()))?;
        completion
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .ok_or_else(|| ClientError::Malformed("no message content".to_string()))
    }
}

/// The request body. Temperature 0 keeps answers as repeatable as the server allows.
fn body(model: &str, request: &ChatRequest<'_>, mode: OutputMode) -> Value {
    let system = match mode {
        OutputMode::JsonSchema => request.system.to_string(),
        OutputMode::JsonObject | OutputMode::Instructions => format!(
            "{}\n\nAnswer with one JSON object and nothing else. It must match this JSON Schema:\n{}",
            request.system, request.schema
        ),
    };
    let mut body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": request.user},
        ],
        "temperature": 0,
        "stream": false,
    });
    match mode {
        OutputMode::JsonSchema => {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "strict": true, "schema": request.schema},
            });
        }
        OutputMode::JsonObject => body["response_format"] = json!({"type": "json_object"}),
        OutputMode::Instructions => {}
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(schema: &Value) -> ChatRequest<'_> {
        ChatRequest {
            system: "Summarise.",
            user: "Transcript",
            schema_name: "summary_v1",
            schema,
        }
    }

    #[test]
    fn each_mode_asks_for_the_shape_its_own_way() {
        let schema = json!({"type": "object"});
        let strict = body("m", &request(&schema), OutputMode::JsonSchema);
        assert_eq!(strict["response_format"]["type"], "json_schema");
        assert_eq!(strict["response_format"]["json_schema"]["schema"], schema);
        assert_eq!(strict["messages"][0]["content"], "Summarise.");
        let json_mode = body("m", &request(&schema), OutputMode::JsonObject);
        assert_eq!(json_mode["response_format"], json!({"type": "json_object"}));
        let plain = body("m", &request(&schema), OutputMode::Instructions);
        assert!(plain.get("response_format").is_none());
        let system = plain["messages"][0]["content"].as_str().unwrap();
        assert!(system.starts_with("Summarise.") && system.contains(r#"{"type":"object"}"#));
    }

    #[test]
    fn the_url_is_joined_without_a_double_slash() {
        let client = ChatClient::new("http://127.0.0.1:11434/v1/", "m", None).unwrap();
        assert_eq!(client.url, "http://127.0.0.1:11434/v1/chat/completions");
        assert_eq!(client.mode(), OutputMode::JsonSchema);
    }
}
