//! The MCP tools: each one is a REST route (API.md §3-7) with the scope that route requires.
//! Arguments are forwarded to the route as they came (path id taken out, the rest as query or
//! body), so the REST stack validates them and its `detail` strings reach the assistant.

use std::sync::{Arc, LazyLock};

use axum::http::Method;
use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use crate::domain::scope::Scope;

/// How the arguments other than the path id travel to the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    /// As query parameters (lists joined with commas).
    Query,
    /// As the JSON body.
    Body,
    /// Not at all: the path id is the whole request.
    Nothing,
    /// A fixed body `{"completed": true}`.
    MarkCompleted,
}

/// What kind of change a tool makes, for the assistant's confirmation prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Reads,
    Adds,
    Changes,
    Deletes,
}

/// An integer argument and its bounds: a value outside them is an `invalid_arguments` error,
/// not clamped (upstream's MCP parsing).
#[derive(Debug, Clone, Copy)]
pub struct IntArg {
    pub name: &'static str,
    pub min: i64,
    pub max: i64,
}

impl IntArg {
    pub const fn new(name: &'static str, min: i64, max: i64) -> Self {
        IntArg { name, min, max }
    }
}

/// The largest `offset` an MCP list tool takes.
pub const MAX_OFFSET: i64 = 100_000;
const PAGING_1000: &[IntArg] = &[
    IntArg::new("limit", 1, 1000),
    IntArg::new("offset", 0, MAX_OFFSET),
];
const PAGING_100: &[IntArg] = &[
    IntArg::new("limit", 1, 100),
    IntArg::new("offset", 0, MAX_OFFSET),
];
const ASK_BOUNDS: &[IntArg] = &[IntArg::new("limit", 1, 10)];
const BY_IDS_BOUNDS: &[IntArg] = &[
    IntArg::new("max_segments", 1, 500),
    IntArg::new("max_chars", 1, 100_000),
];

/// How a list tool's result is shaped and paged.
#[derive(Debug, Clone, Copy)]
pub struct ListShape {
    /// The key of the list in the tool's result.
    pub name: &'static str,
    /// The key of the list in the REST answer; `None` when the answer is the list itself.
    pub rest_key: Option<&'static str>,
    /// The route's default page size, for `next_cursor`.
    pub default_limit: i64,
}

impl ListShape {
    const fn array(name: &'static str, default_limit: i64) -> Self {
        ListShape {
            name,
            rest_key: None,
            default_limit,
        }
    }
}

/// Who answers a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// One REST request (a list tool may send a second one, to see whether more exist).
    Rest,
    /// `create_memories`: one REST creation per item.
    CreateMemories,
    /// `get_conversations_by_ids`: one REST read per id.
    ConversationsByIds,
}

pub struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    description: &'static str,
    pub int_args: &'static [IntArg],
    pub handler: Handler,
    pub scope: Scope,
    effect: Effect,
    pub method: Method,
    /// The route's path; `{id}` is filled from `id_argument`.
    pub path: &'static str,
    pub id_argument: Option<&'static str>,
    pub carry: Carry,
    /// A list tool: its result is an object holding the list (MCP structured content is an
    /// object) and `next_cursor` when more exist.
    pub list: Option<ListShape>,
    schema: fn() -> Arc<rmcp::model::JsonObject>,
    /// How the route's answer becomes the tool's result.
    pub reshape: Reshape,
}

/// A tool whose result is not the route's answer as it is (upstream's search tool shapes,
/// API.md §13.H.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reshape {
    AsIs,
    /// `[{memory, score}]` -> `{"memories": [memory + relevance_score]}`.
    SearchMemories,
    /// `[{conversation, score}]` -> `{"conversations": [card + match_snippets]}`.
    SearchConversations,
    /// `[{action_item, score}]` -> `{"action_items": [item]}`.
    SearchActionItems,
}

impl ToolSpec {
    pub fn tool(&self) -> Tool {
        let annotations = ToolAnnotations::new()
            .read_only(self.effect == Effect::Reads)
            .destructive(self.effect == Effect::Deletes)
            .idempotent(matches!(
                self.effect,
                Effect::Reads | Effect::Changes | Effect::Deletes
            ))
            .open_world(false);
        let mut annotations = annotations;
        annotations.title = Some(self.title.to_string());
        let mut tool =
            Tool::new(self.name, self.description, (self.schema)()).annotate(annotations);
        tool.title = Some(self.title.to_string());
        let output = json!({"type": "object", "anyOf": [self.success_schema(), error_schema()]});
        if let Value::Object(output) = output {
            tool.output_schema = Some(Arc::new(output));
        }
        tool
    }

    fn success_schema(&self) -> Value {
        let object = json!({"type": "object"});
        let array_of = |items: Value| json!({"type": "array", "items": items});
        match (self.handler, self.list) {
            (Handler::CreateMemories, _) => json!({
                "type": "object",
                "required": ["results"],
                "properties": {"results": array_of(json!({
                    "type": "object",
                    "required": ["index", "status"],
                    "properties": {
                        "index": {"type": "integer"},
                        "status": {"type": "string", "enum": ["created", "duplicate", "error"]},
                        "memory_id": {"type": "string"},
                        "error": error_object_schema(),
                    }
                }))}
            }),
            (Handler::ConversationsByIds, _) => json!({
                "type": "object",
                "required": ["conversations", "not_found", "truncated"],
                "properties": {
                    "conversations": array_of(json!({
                        "type": "object",
                        "required": ["id", "conversation", "truncated"],
                        "properties": {
                            "id": {"type": "string"},
                            "conversation": object,
                            "truncated": {"type": "boolean"},
                        }
                    })),
                    "not_found": array_of(json!({"type": "string"})),
                    "truncated": {"type": "boolean"},
                }
            }),
            (Handler::Rest, Some(list)) => json!({
                "type": "object",
                "required": [list.name],
                "properties": {
                    list.name: array_of(object),
                    "next_cursor": {"type": "string"},
                }
            }),
            (Handler::Rest, None) => object,
        }
    }

    /// Checks the integer arguments against their bounds.
    pub fn check_integers(&self, arguments: &Map<String, Value>) -> Result<(), String> {
        for arg in self.int_args {
            match arguments.get(arg.name) {
                None | Some(Value::Null) => {}
                Some(value) => {
                    if !value
                        .as_i64()
                        .is_some_and(|n| (arg.min..=arg.max).contains(&n))
                    {
                        return Err(format!(
                            "{} must be an integer between {} and {}",
                            arg.name, arg.min, arg.max
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn error_object_schema() -> Value {
    json!({
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
    })
}

/// The failure half of every tool's output schema (upstream's shape).
fn error_schema() -> Value {
    json!({"type": "object", "required": ["error"], "properties": {"error": error_object_schema()}})
}

fn schema<T: JsonSchema + 'static>() -> Arc<rmcp::model::JsonObject> {
    rmcp::handler::server::tool::schema_for_input::<T>()
        .unwrap_or_else(|error| panic!("tool input schema is not an object: {error}"))
}

pub fn find(name: &str) -> Option<&'static ToolSpec> {
    TOOLS.iter().find(|spec| spec.name == name)
}

pub fn all() -> &'static [ToolSpec] {
    &TOOLS
}

const MEMORIES: &str = "/v1/dev/user/memories";
const MEMORY: &str = "/v1/dev/user/memories/{id}";
const CONVERSATIONS: &str = "/v1/dev/user/conversations";
const CONVERSATION: &str = "/v1/dev/user/conversations/{id}";
const ACTION_ITEMS: &str = "/v1/dev/user/action-items";
const ACTION_ITEM: &str = "/v1/dev/user/action-items/{id}";
const GOALS: &str = "/v1/dev/user/goals";
const GOAL_PROGRESS: &str = "/v1/dev/user/goals/{id}/progress";
const PEOPLE: &str = "/v1/dev/user/people";
const PROFILE: &str = "/v1/dev/user/profile";
const DAILY_SUMMARIES: &str = "/v1/dev/user/daily-summaries";
/// `get_conversations_by_ids` reads each id here.
pub const CONVERSATION_PATH: &str = CONVERSATION;
pub const MEMORIES_PATH: &str = MEMORIES;
const MEMORY_SEARCH: &str = "/v1/dev/user/memories/search";
const CONVERSATION_SEARCH: &str = "/v1/dev/user/conversations/search";
const ACTION_ITEM_SEARCH: &str = "/v1/dev/user/action-items/search";
const ASK: &str = "/v1/dev/user/ask";

static TOOLS: LazyLock<Vec<ToolSpec>> = LazyLock::new(|| {
    vec![
        ToolSpec {
            name: "get_user_profile",
            title: "Get user profile",
            int_args: &[],
            handler: Handler::Rest,
            description: "Get the user's profile: a text built from their most important memories.",
            scope: Scope::MemoriesRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: PROFILE,
            id_argument: None,
            carry: Carry::Nothing,
            list: None,
            schema: schema::<args::NoArguments>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "get_memories",
            title: "Get memories",
            int_args: PAGING_1000,
            handler: Handler::Rest,
            description: "List the user's memories (facts about them and insights), most relevant first.",
            scope: Scope::MemoriesRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: MEMORIES,
            id_argument: None,
            carry: Carry::Query,
            list: Some(ListShape::array("memories", 25)),
            schema: schema::<args::GetMemories>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "create_memory",
            title: "Create memory",
            int_args: &[],
            handler: Handler::Rest,
            description: "Save a memory about the user. The same content again updates the existing memory.",
            scope: Scope::MemoriesWrite,
            effect: Effect::Adds,
            method: Method::POST,
            path: MEMORIES,
            id_argument: None,
            carry: Carry::Body,
            list: None,
            schema: schema::<args::CreateMemory>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "create_memories",
            title: "Create memories",
            int_args: &[],
            handler: Handler::CreateMemories,
            description: "Save up to 25 memories about the user at once; each item reports whether it was created, a duplicate of an earlier item, or an error.",
            scope: Scope::MemoriesWrite,
            effect: Effect::Adds,
            method: Method::POST,
            path: MEMORIES,
            id_argument: None,
            carry: Carry::Body,
            list: None,
            schema: schema::<args::CreateMemories>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "edit_memory",
            title: "Edit memory",
            int_args: &[],
            handler: Handler::Rest,
            description: "Change a memory's content, category, visibility or tags.",
            scope: Scope::MemoriesWrite,
            effect: Effect::Changes,
            method: Method::PATCH,
            path: MEMORY,
            id_argument: Some("memory_id"),
            carry: Carry::Body,
            list: None,
            schema: schema::<args::EditMemory>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "delete_memory",
            title: "Delete memory",
            int_args: &[],
            handler: Handler::Rest,
            description: "Delete a memory.",
            scope: Scope::MemoriesWrite,
            effect: Effect::Deletes,
            method: Method::DELETE,
            path: MEMORY,
            id_argument: Some("memory_id"),
            carry: Carry::Nothing,
            list: None,
            schema: schema::<args::MemoryId>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "search_memories",
            title: "Search memories",
            int_args: &[],
            handler: Handler::Rest,
            description: "Search the user's memories by words, most relevant first.",
            scope: Scope::MemoriesRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: MEMORY_SEARCH,
            id_argument: None,
            carry: Carry::Query,
            list: None,
            schema: schema::<args::SearchMemories>,
            reshape: Reshape::SearchMemories,
        },
        ToolSpec {
            name: "get_conversations",
            title: "Get conversations",
            int_args: PAGING_100,
            handler: Handler::Rest,
            description: "List the user's conversations, newest first, with their summaries.",
            scope: Scope::ConversationsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: CONVERSATIONS,
            id_argument: None,
            carry: Carry::Query,
            list: Some(ListShape::array("conversations", 25)),
            schema: schema::<args::GetConversations>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "get_conversation_by_id",
            title: "Get conversation",
            int_args: &[],
            handler: Handler::Rest,
            description: "Get one conversation, optionally with its transcript.",
            scope: Scope::ConversationsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: CONVERSATION,
            id_argument: Some("conversation_id"),
            carry: Carry::Query,
            list: None,
            schema: schema::<args::GetConversation>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "search_conversations",
            title: "Search conversations",
            int_args: &[],
            handler: Handler::Rest,
            description: "Search the user's conversations (titles, summaries and transcripts), most relevant first, with the matching transcript passages.",
            scope: Scope::ConversationsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: CONVERSATION_SEARCH,
            id_argument: None,
            carry: Carry::Query,
            list: None,
            schema: schema::<args::SearchConversations>,
            reshape: Reshape::SearchConversations,
        },
        ToolSpec {
            name: "ask",
            title: "Ask",
            int_args: ASK_BOUNDS,
            handler: Handler::Rest,
            description: "Answer a question from the user's own conversations, with [n] citations of the returned sources (relative dates such as \"last week\" are read in the given time zone).",
            scope: Scope::ConversationsRead,
            effect: Effect::Reads,
            method: Method::POST,
            path: ASK,
            id_argument: None,
            carry: Carry::Body,
            list: None,
            schema: schema::<args::Ask>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "get_conversations_by_ids",
            title: "Get conversations by ids",
            int_args: BY_IDS_BOUNDS,
            handler: Handler::ConversationsByIds,
            description: "Get up to 20 conversations by id with their transcripts (discarded ones included), bounded in segments and characters.",
            scope: Scope::ConversationsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: CONVERSATION,
            id_argument: None,
            carry: Carry::Nothing,
            list: None,
            schema: schema::<args::GetConversationsByIds>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "create_conversation",
            title: "Create conversation",
            int_args: &[],
            handler: Handler::Rest,
            description: "Create a conversation from text; it is summarized and its action items and memories are extracted.",
            scope: Scope::ConversationsWrite,
            effect: Effect::Adds,
            method: Method::POST,
            path: CONVERSATIONS,
            id_argument: None,
            carry: Carry::Body,
            list: None,
            schema: schema::<args::CreateConversation>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "get_action_items",
            title: "Get action items",
            int_args: PAGING_1000,
            handler: Handler::Rest,
            description: "List the user's action items: open ones first, by due date.",
            scope: Scope::ActionItemsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: ACTION_ITEMS,
            id_argument: None,
            carry: Carry::Query,
            list: Some(ListShape::array("action_items", 100)),
            schema: schema::<args::GetActionItems>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "search_action_items",
            title: "Search action items",
            int_args: &[],
            handler: Handler::Rest,
            description: "Search the user's action items by words in their descriptions, most relevant first.",
            scope: Scope::ActionItemsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: ACTION_ITEM_SEARCH,
            id_argument: None,
            carry: Carry::Query,
            list: None,
            schema: schema::<args::SearchActionItems>,
            reshape: Reshape::SearchActionItems,
        },
        ToolSpec {
            name: "create_action_item",
            title: "Create action item",
            int_args: &[],
            handler: Handler::Rest,
            description: "Add an action item (a task) for the user.",
            scope: Scope::ActionItemsWrite,
            effect: Effect::Adds,
            method: Method::POST,
            path: ACTION_ITEMS,
            id_argument: None,
            carry: Carry::Body,
            list: None,
            schema: schema::<args::CreateActionItem>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "update_action_item",
            title: "Update action item",
            int_args: &[],
            handler: Handler::Rest,
            description: "Change an action item's description, completion or due date.",
            scope: Scope::ActionItemsWrite,
            effect: Effect::Changes,
            method: Method::PATCH,
            path: ACTION_ITEM,
            id_argument: Some("action_item_id"),
            carry: Carry::Body,
            list: None,
            schema: schema::<args::UpdateActionItem>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "complete_action_item",
            title: "Complete action item",
            int_args: &[],
            handler: Handler::Rest,
            description: "Mark an action item as done.",
            scope: Scope::ActionItemsWrite,
            effect: Effect::Changes,
            method: Method::PATCH,
            path: ACTION_ITEM,
            id_argument: Some("action_item_id"),
            carry: Carry::MarkCompleted,
            list: None,
            schema: schema::<args::ActionItemId>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "delete_action_item",
            title: "Delete action item",
            int_args: &[],
            handler: Handler::Rest,
            description: "Delete an action item.",
            scope: Scope::ActionItemsWrite,
            effect: Effect::Deletes,
            method: Method::DELETE,
            path: ACTION_ITEM,
            id_argument: Some("action_item_id"),
            carry: Carry::Nothing,
            list: None,
            schema: schema::<args::ActionItemId>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "get_goals",
            title: "Get goals",
            int_args: PAGING_1000,
            handler: Handler::Rest,
            description: "List the user's goals with their progress (active ones unless asked otherwise).",
            scope: Scope::GoalsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: GOALS,
            id_argument: None,
            carry: Carry::Query,
            list: Some(ListShape::array("goals", 10)),
            schema: schema::<args::GetGoals>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "update_goal_progress",
            title: "Update goal progress",
            int_args: &[],
            handler: Handler::Rest,
            description: "Record a goal's current value (kept in the goal's daily history).",
            scope: Scope::GoalsWrite,
            effect: Effect::Changes,
            method: Method::PATCH,
            path: GOAL_PROGRESS,
            id_argument: Some("goal_id"),
            carry: Carry::Query,
            list: None,
            schema: schema::<args::UpdateGoalProgress>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "get_people",
            title: "Get people",
            int_args: &[],
            handler: Handler::Rest,
            description: "List the people heard in the user's conversations, with sample sentences of each.",
            scope: Scope::ConversationsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: PEOPLE,
            id_argument: None,
            carry: Carry::Nothing,
            list: Some(ListShape::array("people", i64::MAX)),
            schema: schema::<args::NoArguments>,
            reshape: Reshape::AsIs,
        },
        ToolSpec {
            name: "get_daily_summaries",
            title: "Get daily summaries",
            int_args: PAGING_100,
            handler: Handler::Rest,
            description: "List the user's daily summaries (a recap of each day's conversations), newest day first.",
            scope: Scope::ConversationsRead,
            effect: Effect::Reads,
            method: Method::GET,
            path: DAILY_SUMMARIES,
            id_argument: None,
            carry: Carry::Query,
            list: Some(ListShape {
                name: "daily_summaries",
                rest_key: Some("summaries"),
                default_limit: 30,
            }),
            schema: schema::<args::GetDailySummaries>,
            reshape: Reshape::AsIs,
        },
    ]
});

/// A request for the REST stack, built from a tool's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct RestCall {
    pub method: Method,
    pub path_and_query: String,
    pub body: Option<Value>,
}

impl ToolSpec {
    /// The route's request for these arguments. Only a missing or non-text path id is refused
    /// here (in the REST stack's wording); every other value is the route's to judge.
    pub fn rest_call(&self, arguments: Option<Map<String, Value>>) -> Result<RestCall, String> {
        let mut arguments = arguments.unwrap_or_default();
        self.check_search_arguments(&mut arguments)?;
        let mut path = self.path.to_string();
        if let Some(name) = self.id_argument {
            let id = match arguments.remove(name) {
                Some(Value::String(id)) => id,
                None | Some(Value::Null) => {
                    return Err(format!("Validation error: {name} is required"));
                }
                Some(_) => return Err(format!("Validation error: {name} must be a string")),
            };
            path = path.replace("{id}", &encode_path_segment(&id));
        }
        let body = match self.carry {
            Carry::Body => Some(Value::Object(arguments.clone())),
            Carry::MarkCompleted => Some(json!({"completed": true})),
            Carry::Query | Carry::Nothing => None,
        };
        if self.carry == Carry::Query {
            let query = query_string(&arguments);
            if !query.is_empty() {
                path = format!("{path}?{query}");
            }
        }
        Ok(RestCall {
            method: self.method.clone(),
            path_and_query: path,
            body,
        })
    }
}

impl ToolSpec {
    /// Upstream's argument rules for the search tools (API.md §13.H.1): an integer out of range
    /// is an error, except for `search_action_items`, which clamps; a blank `query` of
    /// `search_action_items` is "query is required".
    fn check_search_arguments(&self, arguments: &mut Map<String, Value>) -> Result<(), String> {
        let limit = |arguments: &Map<String, Value>, max: i64| -> Result<Option<i64>, String> {
            match arguments.get("limit") {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| "Validation error: limit must be an integer".to_string())
                    .and_then(|limit| match limit {
                        Some(n) if !(1..=max).contains(&n) => Err(format!(
                            "Validation error: limit must be between 1 and {max}"
                        )),
                        other => Ok(other),
                    }),
            }
        };
        match self.reshape {
            Reshape::AsIs => {}
            Reshape::SearchMemories => {
                limit(arguments, 20)?;
            }
            Reshape::SearchConversations => {
                limit(arguments, 100)?;
                arguments.insert("include_transcript".to_string(), Value::Bool(true));
            }
            Reshape::SearchActionItems => {
                let blank = arguments
                    .get("query")
                    .and_then(Value::as_str)
                    .is_none_or(|query| query.trim().is_empty());
                if blank {
                    return Err("query is required".to_string());
                }
                if let Some(Value::Number(number)) = arguments.get("limit")
                    && let Some(n) = number.as_i64()
                {
                    arguments.insert("limit".to_string(), json!(n.clamp(1, 50)));
                }
            }
        }
        Ok(())
    }
}

/// The tool result of a search route's answer, in upstream's shape; `query` is the tool's
/// `query` argument (for transcript snippets).
pub fn reshape(kind: Reshape, body: Value, query: &str) -> Value {
    let hits = match body {
        Value::Array(hits) => hits,
        other => return other,
    };
    match kind {
        Reshape::AsIs => Value::Array(hits),
        Reshape::SearchMemories => {
            let memories: Vec<Value> = hits
                .into_iter()
                .map(|mut hit| {
                    let score = hit["score"].take();
                    let mut memory = hit["memory"].take();
                    if let Value::Object(fields) = &mut memory {
                        fields.insert("relevance_score".to_string(), score);
                    }
                    memory
                })
                .collect();
            json!({ "memories": memories })
        }
        Reshape::SearchActionItems => {
            let items: Vec<Value> = hits
                .into_iter()
                .map(|mut hit| {
                    let item = hit["action_item"].take();
                    let mut card = Map::new();
                    for key in [
                        "id",
                        "description",
                        "completed",
                        "created_at",
                        "updated_at",
                        "due_at",
                        "completed_at",
                        "conversation_id",
                    ] {
                        card.insert(key.to_string(), item[key].clone());
                    }
                    Value::Object(card)
                })
                .collect();
            json!({ "action_items": items })
        }
        Reshape::SearchConversations => {
            let conversations: Vec<Value> = hits
                .into_iter()
                .map(|mut hit| conversation_card(hit["conversation"].take(), query))
                .collect();
            json!({ "conversations": conversations })
        }
    }
}

/// Upstream's conversation card (keys present only when stored) with the matching snippets.
fn conversation_card(conversation: Value, query: &str) -> Value {
    let mut card = Map::new();
    for key in ["id", "created_at", "started_at", "finished_at", "language"] {
        if !conversation[key].is_null() {
            card.insert(key.to_string(), conversation[key].clone());
        }
    }
    let mut structured = Map::new();
    for key in ["title", "overview", "category", "emoji"] {
        if !conversation["structured"][key].is_null() {
            structured.insert(key.to_string(), conversation["structured"][key].clone());
        }
    }
    card.insert("structured".to_string(), Value::Object(structured));
    let lines: Vec<crate::search::snippets::Line> = conversation["transcript_segments"]
        .as_array()
        .map(|segments| {
            segments
                .iter()
                .map(|segment| crate::search::snippets::Line {
                    id: segment["id"].as_str().unwrap_or_default().to_string(),
                    text: segment["text"].as_str().unwrap_or_default().to_string(),
                    is_user: segment["is_user"].as_bool().unwrap_or(false),
                    speaker_id: segment["speaker_id"].as_i64().unwrap_or(0),
                    start: segment["start"].as_f64().unwrap_or(0.0),
                    end: segment["end"].as_f64().unwrap_or(0.0),
                })
                .collect()
        })
        .unwrap_or_default();
    let snippets: Vec<Value> = crate::search::snippets::find(&lines, query)
        .into_iter()
        .map(|snippet| {
            json!({
                "text": snippet.text,
                "segment_id": snippet.segment_id,
                "start": snippet.start,
                "end": snippet.end,
                "start_ms": (snippet.start * 1000.0).round() as i64,
                "end_ms": (snippet.end * 1000.0).round() as i64,
                "speaker_id": snippet.speaker_id,
            })
        })
        .collect();
    card.insert("match_snippets".to_string(), Value::Array(snippets));
    Value::Object(card)
}

/// Keeps an id inside its path segment: everything but letters, digits, `-` and `_` is
/// percent-encoded, so `../keys` cannot reach another route.
fn encode_path_segment(id: &str) -> String {
    id.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn query_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(query_value)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

fn query_string(arguments: &Map<String, Value>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in arguments {
        if let Some(value) = query_value(value) {
            query.append_pair(name, &value);
        }
    }
    query.finish()
}

/// The tools' input schemas. The types exist for their schemas alone: the arguments themselves
/// go to the REST route unparsed, so that the route's validation and messages apply.
#[allow(dead_code)]
mod args {
    use schemars::JsonSchema;

    #[derive(JsonSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Visibility {
        Private,
        Public,
    }

    #[derive(JsonSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TextSource {
        AudioTranscript,
        Message,
        OtherText,
    }

    #[derive(JsonSchema)]
    pub struct NoArguments {}

    #[derive(JsonSchema)]
    pub struct NewMemoryItem {
        /// The fact or insight, 1..500 characters.
        pub content: String,
        /// A memory category such as `system` or `interesting`; omit to let the server decide.
        pub category: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct CreateMemories {
        /// 1..25 memories, saved in order.
        #[schemars(length(min = 1, max = 25))]
        pub items: Vec<NewMemoryItem>,
    }

    #[derive(JsonSchema)]
    pub struct GetConversationsByIds {
        /// 1..20 conversation ids; repeats are read once.
        #[schemars(length(min = 1, max = 20))]
        pub conversation_ids: Vec<String>,
        /// Transcript segments per conversation (1..500, default 120).
        #[schemars(range(min = 1, max = 500))]
        pub max_segments: Option<i64>,
        /// Transcript characters per conversation (1..100000, default 24000).
        #[schemars(range(min = 1, max = 100000))]
        pub max_chars: Option<i64>,
    }

    #[derive(JsonSchema)]
    pub struct GetDailySummaries {
        /// Summaries of this day (`YYYY-MM-DD`) or later.
        pub start_date: Option<String>,
        /// Summaries of this day (`YYYY-MM-DD`) or earlier.
        pub end_date: Option<String>,
        /// How many to return (1..100, default 30).
        #[schemars(range(min = 1, max = 100))]
        pub limit: Option<i64>,
        /// How many to skip (0..100000, default 0); not with a cursor.
        #[schemars(range(min = 0, max = 100000))]
        pub offset: Option<i64>,
        /// The `next_cursor` of the previous page.
        pub cursor: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct GetMemories {
        /// How many memories to return (1..1000, default 25).
        pub limit: Option<i64>,
        /// How many to skip, for paging (default 0).
        pub offset: Option<i64>,
        /// Only these categories, comma-separated (e.g. `system,interesting`).
        pub categories: Option<String>,
        /// Change feed: only memories changed at or after this RFC 3339 time, oldest change
        /// first; `next_cursor` then continues the feed (`offset` is not used).
        pub updated_since: Option<String>,
        /// The `next_cursor` of the previous page (instead of `offset`).
        pub cursor: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct Ask {
        /// The question (1..1000 characters).
        pub question: String,
        /// How many of the most relevant conversations to ground the answer on (1..10, default 5).
        pub limit: Option<i64>,
        /// The IANA time zone relative dates in the question are read in (default `UTC`).
        pub timezone: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct SearchMemories {
        /// What to look for (words; "quoted words" must appear as written).
        pub query: String,
        /// How many memories to return (1..20, default 10).
        pub limit: Option<i64>,
    }

    #[derive(JsonSchema)]
    pub struct SearchConversations {
        /// What to look for in titles, summaries and transcripts.
        pub query: String,
        /// Only conversations created on or after this day (`YYYY-MM-DD`, UTC).
        pub start_date: Option<String>,
        /// Only conversations created on or before this day (`YYYY-MM-DD`, the whole day, UTC).
        pub end_date: Option<String>,
        /// How many conversations to return (1..100, default 10).
        pub limit: Option<i64>,
    }

    #[derive(JsonSchema)]
    pub struct SearchActionItems {
        /// What to look for in descriptions.
        pub query: String,
        /// How many items to return (default 10; clamped into 1..50).
        pub limit: Option<i64>,
    }

    #[derive(JsonSchema)]
    pub struct CreateMemory {
        /// The fact or insight, 1..500 characters.
        pub content: String,
        /// `system` (a fact about the user) or `interesting` (an insight from others); omit to let the server decide.
        pub category: Option<String>,
        /// Default `private`.
        pub visibility: Option<Visibility>,
        /// Up to 50 tags of 1..100 characters.
        pub tags: Option<Vec<String>>,
    }

    #[derive(JsonSchema)]
    pub struct EditMemory {
        /// The memory's id.
        pub memory_id: String,
        /// New content, 1..500 characters.
        pub content: Option<String>,
        /// New category.
        pub category: Option<String>,
        /// New visibility.
        pub visibility: Option<Visibility>,
        /// New tags (replace the old ones).
        pub tags: Option<Vec<String>>,
    }

    #[derive(JsonSchema)]
    pub struct MemoryId {
        /// The memory's id.
        pub memory_id: String,
    }

    #[derive(JsonSchema)]
    pub struct GetConversations {
        /// Only conversations created on or after this date or time (`YYYY-MM-DD` or RFC 3339).
        pub start_date: Option<String>,
        /// Only conversations created on or before this date or time (a bare date includes the whole day).
        pub end_date: Option<String>,
        /// Only these categories, comma-separated (e.g. `work,health`).
        pub categories: Option<String>,
        /// Only conversations in this folder.
        pub folder_id: Option<String>,
        /// How many to return (1..100, at most 25 with transcripts; default 25).
        pub limit: Option<i64>,
        /// How many to skip, for paging (default 0).
        pub offset: Option<i64>,
        /// Include the transcript segments (default false).
        pub include_transcript: Option<bool>,
        /// Change feed: only conversations (discarded ones included) changed at or after this RFC 3339 time, oldest change
        /// first; `next_cursor` then continues the feed (`offset` is not used).
        pub updated_since: Option<String>,
        /// The `next_cursor` of the previous page (instead of `offset`).
        pub cursor: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct GetConversation {
        /// The conversation's id.
        pub conversation_id: String,
        /// Include the transcript segments (default false).
        pub include_transcript: Option<bool>,
    }

    #[derive(JsonSchema)]
    pub struct CreateConversation {
        /// The conversation's text, 1..100000 characters.
        pub text: String,
        /// What the text is (default `other_text`).
        pub text_source: Option<TextSource>,
        /// A free-form refinement of the source (e.g. `email`).
        pub text_source_spec: Option<String>,
        /// When it started (RFC 3339; default now).
        pub started_at: Option<String>,
        /// When it ended (RFC 3339; default 5 minutes after the start).
        pub finished_at: Option<String>,
        /// Language code (default `en`).
        pub language: Option<String>,
        /// Where it happened.
        pub geolocation: Option<Geolocation>,
    }

    #[derive(JsonSchema)]
    pub struct Geolocation {
        /// -90..90.
        pub latitude: f64,
        /// -180..180.
        pub longitude: f64,
        pub address: Option<String>,
        pub google_place_id: Option<String>,
        pub location_type: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct GetActionItems {
        /// Only items extracted from this conversation.
        pub conversation_id: Option<String>,
        /// Only completed (true) or open (false) items.
        pub completed: Option<bool>,
        /// Only items created on or after this date or time.
        pub start_date: Option<String>,
        /// Only items created on or before this date or time (a bare date includes the whole day).
        pub end_date: Option<String>,
        /// How many to return (1..1000, default 100).
        pub limit: Option<i64>,
        /// How many to skip, for paging (default 0).
        pub offset: Option<i64>,
        /// Change feed: only items changed at or after this RFC 3339 time, oldest change
        /// first; `next_cursor` then continues the feed (`offset` is not used).
        pub updated_since: Option<String>,
        /// The `next_cursor` of the previous page (instead of `offset`).
        pub cursor: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct CreateActionItem {
        /// What to do, 1..500 characters.
        pub description: String,
        /// Already done (default false).
        pub completed: Option<bool>,
        /// Due date or time (`YYYY-MM-DD` means 23:59 UTC that day, or RFC 3339).
        pub due_at: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct UpdateActionItem {
        /// The action item's id.
        pub action_item_id: String,
        /// New description, 1..500 characters.
        pub description: Option<String>,
        /// Done (true) or open again (false).
        pub completed: Option<bool>,
        /// New due date or time; null clears it.
        pub due_at: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct ActionItemId {
        /// The action item's id.
        pub action_item_id: String,
    }

    #[derive(JsonSchema)]
    pub struct GetGoals {
        /// How many to return (1..1000, default 10).
        pub limit: Option<i64>,
        /// How many to skip, for paging (default 0).
        pub offset: Option<i64>,
        /// Include goals that are no longer active (default false).
        pub include_inactive: Option<bool>,
        /// The `next_cursor` of the previous page (instead of `offset`).
        pub cursor: Option<String>,
    }

    #[derive(JsonSchema)]
    pub struct UpdateGoalProgress {
        /// The goal's id.
        pub goal_id: String,
        /// The goal's value now.
        pub current_value: f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(value: Value) -> Option<Map<String, Value>> {
        value.as_object().cloned()
    }

    #[test]
    fn there_are_twenty_three_tools_with_unique_names_and_object_schemas() {
        let names: std::collections::HashSet<_> = all().iter().map(|spec| spec.name).collect();
        assert_eq!(names.len(), 23);
        for spec in all() {
            let tool = spec.tool();
            assert_eq!(
                tool.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn a_path_id_fills_the_route_and_the_rest_is_the_body() {
        let call = find("edit_memory")
            .unwrap()
            .rest_call(arguments(json!({"memory_id": "abc", "content": "x"})))
            .unwrap();
        assert_eq!(call.method, Method::PATCH);
        assert_eq!(call.path_and_query, "/v1/dev/user/memories/abc");
        assert_eq!(call.body, Some(json!({"content": "x"})));
    }

    #[test]
    fn query_tools_send_their_arguments_as_query_parameters() {
        let call = find("get_memories")
            .unwrap()
            .rest_call(arguments(
                json!({"limit": 5, "categories": ["system", "interesting"], "offset": null}),
            ))
            .unwrap();
        assert_eq!(
            call.path_and_query,
            "/v1/dev/user/memories?categories=system%2Cinteresting&limit=5"
        );
        assert_eq!(call.body, None);
        let call = find("update_goal_progress")
            .unwrap()
            .rest_call(arguments(
                json!({"goal_id": "goal_0123456789ab", "current_value": 2.5}),
            ))
            .unwrap();
        assert_eq!(
            call.path_and_query,
            "/v1/dev/user/goals/goal_0123456789ab/progress?current_value=2.5"
        );
    }

    #[test]
    fn search_tools_follow_upstreams_argument_rules() {
        let memories = find("search_memories").unwrap();
        assert_eq!(
            memories.rest_call(arguments(json!({"query": "x", "limit": 21}))),
            Err("Validation error: limit must be between 1 and 20".to_string())
        );
        assert_eq!(
            memories
                .rest_call(arguments(json!({"query": "peanut allergy", "limit": 20})))
                .unwrap()
                .path_and_query,
            "/v1/dev/user/memories/search?limit=20&query=peanut+allergy"
        );
        let conversations = find("search_conversations").unwrap();
        assert!(
            conversations
                .rest_call(arguments(json!({"query": "x"})))
                .unwrap()
                .path_and_query
                .contains("include_transcript=true")
        );
        let items = find("search_action_items").unwrap();
        assert_eq!(
            items.rest_call(arguments(json!({"query": "  "}))),
            Err("query is required".to_string())
        );
        assert_eq!(
            items
                .rest_call(arguments(json!({"query": "x", "limit": 500})))
                .unwrap()
                .path_and_query,
            "/v1/dev/user/action-items/search?limit=50&query=x"
        );
    }

    #[test]
    fn search_answers_take_upstreams_result_shapes() {
        let memories = reshape(
            Reshape::SearchMemories,
            json!([{"memory": {"id": "m", "content": "c"}, "score": 0.5}]),
            "c",
        );
        assert_eq!(
            memories,
            json!({"memories": [{"id": "m", "content": "c", "relevance_score": 0.5}]})
        );
        let conversations = reshape(
            Reshape::SearchConversations,
            json!([{"score": 1.0, "conversation": {
                "id": "c", "created_at": "t", "started_at": "t", "finished_at": "t",
                "language": "en", "folder_name": "Work",
                "structured": {"title": "T", "overview": "O", "category": "work", "emoji": "x",
                               "action_items": []},
                "transcript_segments": [
                    {"id": "s1", "text": "The budget is due", "is_user": true, "speaker_id": 0,
                     "start": 1.5, "end": 3.0}]}}]),
            "budget",
        );
        assert_eq!(
            conversations,
            json!({"conversations": [{
                "id": "c", "created_at": "t", "started_at": "t", "finished_at": "t",
                "language": "en",
                "structured": {"title": "T", "overview": "O", "category": "work", "emoji": "x"},
                "match_snippets": [{"text": "User: The budget is due", "segment_id": "s1",
                    "start": 1.5, "end": 3.0, "start_ms": 1500, "end_ms": 3000, "speaker_id": 0}]
            }]})
        );
    }

    #[test]
    fn an_id_cannot_leave_its_path_segment() {
        let call = find("delete_memory")
            .unwrap()
            .rest_call(arguments(json!({"memory_id": "../../keys?x=1"})))
            .unwrap();
        assert_eq!(
            call.path_and_query,
            "/v1/dev/user/memories/%2E%2E%2F%2E%2E%2Fkeys%3Fx%3D1"
        );
    }

    #[test]
    fn a_missing_or_non_text_id_is_refused_in_the_rest_wording() {
        let spec = find("complete_action_item").unwrap();
        assert_eq!(
            spec.rest_call(None),
            Err("Validation error: action_item_id is required".to_string())
        );
        assert_eq!(
            spec.rest_call(arguments(json!({"action_item_id": 7}))),
            Err("Validation error: action_item_id must be a string".to_string())
        );
        let call = spec
            .rest_call(arguments(json!({"action_item_id": "a"})))
            .unwrap();
        assert_eq!(call.body, Some(json!({"completed": true})));
    }
}
