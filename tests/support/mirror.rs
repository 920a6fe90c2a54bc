//! A sync client as an integrator would write one: it mirrors one user through each list's
//! change feed (`updated_since`, `cursor`, `X-Next-Cursor`) and the deletions feed, while a
//! writer creates, edits and deletes at random. Used on both backends (tests/api/sync.rs) and
//! through two replicas (tests/replicas.rs). Every loop is bounded.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use reqwest::{Client, Method};
use serde_json::{Value, json};

const EPOCH: &str = "1970-01-01T00:00:00Z";
/// Small pages, so that paging (and a change landing between two pages) happens often.
const PAGE: usize = 7;
const MAX_PAGES_PER_PASS: usize = 10_000;

/// The lists a mirror follows: (type in the deletions feed, path, extra query).
pub const FEEDS: [(&str, &str, &str); 5] = [
    ("memory", "/v1/dev/user/memories", ""),
    ("action_item", "/v1/dev/user/action-items", ""),
    ("conversation", "/v1/dev/user/conversations", ""),
    ("goal", "/v1/dev/user/goals", ""),
    ("folder", "/v1/dev/user/folders", ""),
];

/// Where to read next: within a paging (`cursor`) or after the last change seen
/// (`updated_since`, inclusive, so the last object comes again and is simply rewritten).
#[derive(Debug, Clone)]
enum Resume {
    Cursor(String),
    Since(String),
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

/// `(status, headers, body)` of a GET.
async fn get(
    http: &Client,
    base: &str,
    path: &str,
    key: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = http
        .request(Method::GET, format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// The copy: every object by `(type, id)`.
#[derive(Default)]
pub struct Mirror {
    pub objects: BTreeMap<(String, String), Value>,
    positions: HashMap<String, Resume>,
    pub pages_read: usize,
    pub next_cursors_followed: usize,
}

impl Mirror {
    /// One pass over every feed and then the deletions, each read to its current end. `bases`
    /// are the replicas; pages alternate between them.
    pub async fn sync(&mut self, http: &Client, bases: &[String], key: &str) {
        for (kind, path, extra) in FEEDS {
            self.follow(http, bases, key, kind, path, extra).await;
        }
        self.follow_deletions(http, bases, key).await;
    }

    fn base<'a>(&mut self, bases: &'a [String]) -> &'a str {
        self.pages_read += 1;
        &bases[self.pages_read % bases.len()]
    }

    async fn follow(
        &mut self,
        http: &Client,
        bases: &[String],
        key: &str,
        kind: &str,
        path: &str,
        extra: &str,
    ) {
        for _ in 0..MAX_PAGES_PER_PASS {
            let resume = self
                .positions
                .get(kind)
                .cloned()
                .unwrap_or(Resume::Since(EPOCH.to_string()));
            let position = match &resume {
                Resume::Cursor(cursor) => format!("cursor={cursor}"),
                Resume::Since(since) => format!("updated_since={}", since.replace('+', "%2B")),
            };
            let url = format!("{path}?limit={PAGE}&{position}{extra}");
            let base = self.base(bases);
            let (status, headers, body) = get(http, base, &url, key).await;
            assert_eq!(status, 200, "{url}: {body}");
            let items = body.as_array().expect("a feed page is a bare array");
            assert!(items.len() <= PAGE, "{url}: {} items", items.len());
            let mut last: Option<&str> = None;
            for item in items {
                let id = item["id"].as_str().expect("id").to_string();
                let updated_at = item["updated_at"].as_str().expect("updated_at");
                if let Some(previous) = last {
                    assert!(
                        instant(previous) <= instant(updated_at),
                        "{url}: out of order"
                    );
                }
                last = Some(updated_at);
                self.objects.insert((kind.to_string(), id), item.clone());
            }
            let next = headers
                .get("x-next-cursor")
                .map(|value| value.to_str().unwrap().to_string());
            match next {
                Some(cursor) => {
                    let link = headers
                        .get("link")
                        .expect("a next page has a Link header")
                        .to_str()
                        .unwrap();
                    assert!(
                        link.starts_with(&format!("<{path}?"))
                            && link.contains(&format!("cursor={cursor}"))
                            && link.ends_with(">; rel=\"next\""),
                        "{link}"
                    );
                    self.next_cursors_followed += 1;
                    self.positions
                        .insert(kind.to_string(), Resume::Cursor(cursor));
                }
                None => {
                    assert!(headers.get("link").is_none(), "no Link on the last page");
                    if let Some(last) = last {
                        self.positions
                            .insert(kind.to_string(), Resume::Since(last.to_string()));
                    }
                    return;
                }
            }
        }
        panic!("{kind}: the feed did not end within {MAX_PAGES_PER_PASS} pages");
    }

    async fn follow_deletions(&mut self, http: &Client, bases: &[String], key: &str) {
        for _ in 0..MAX_PAGES_PER_PASS {
            let resume = self
                .positions
                .get("deletions")
                .cloned()
                .unwrap_or(Resume::Since(EPOCH.to_string()));
            let position = match &resume {
                Resume::Cursor(cursor) => format!("cursor={cursor}"),
                Resume::Since(since) => format!("since={}", since.replace('+', "%2B")),
            };
            let url = format!("/v1/dev/user/deletions?limit={PAGE}&{position}");
            let base = self.base(bases);
            let (status, headers, body) = get(http, base, &url, key).await;
            assert_eq!(status, 200, "{url}: {body}");
            let mut last: Option<String> = None;
            for tombstone in body.as_array().expect("a bare array") {
                let kind = tombstone["type"].as_str().unwrap().to_string();
                let id = tombstone["id"].as_str().unwrap().to_string();
                let deleted_at = tombstone["deleted_at"].as_str().unwrap();
                let entry = (kind, id);
                // A copy changed after this deletion is a newer life of the object: kept.
                let older = self.objects.get(&entry).is_some_and(|copy| {
                    instant(copy["updated_at"].as_str().unwrap()) <= instant(deleted_at)
                });
                if older {
                    self.objects.remove(&entry);
                }
                last = Some(deleted_at.to_string());
            }
            match headers.get("x-next-cursor") {
                Some(cursor) => {
                    self.positions.insert(
                        "deletions".to_string(),
                        Resume::Cursor(cursor.to_str().unwrap().to_string()),
                    );
                }
                None => {
                    if let Some(last) = last {
                        self.positions
                            .insert("deletions".to_string(), Resume::Since(last));
                    }
                    return;
                }
            }
        }
        panic!("deletions: the feed did not end within {MAX_PAGES_PER_PASS} pages");
    }
}

/// A small deterministic generator, so a failure can be replayed.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Dice(
            seed.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

const TEXTS: [&str; 3] = [
    "I need to call the dentist tomorrow about my crown and remember to buy milk.",
    "The quarterly budget review with the finance team covered revenue, invoices and the investor pitch. We must send the report by Friday.",
    "Dinner with Sam and Alex at the new Thai place; Sam is vegetarian and Alex is allergic to peanuts.",
];

/// What the writer created, so the final check can ask for each by id.
#[derive(Default)]
pub struct Written {
    pub conversations: Vec<String>,
    pub goals: Vec<String>,
}

async fn send(
    http: &Client,
    base: &str,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An id from the user's current list at `path`, if there is one.
async fn pick(http: &Client, base: &str, key: &str, path: &str, dice: &mut Dice) -> Option<String> {
    let (status, _, body) = get(http, base, path, key).await;
    assert_eq!(status, 200, "{path}: {body}");
    let items = body.as_array()?;
    if items.is_empty() {
        return None;
    }
    items[dice.below(items.len())]["id"]
        .as_str()
        .map(str::to_string)
}

/// `operations` random creations, edits and deletions of every kind, spread over `bases`.
pub async fn write_at_random(
    http: &Client,
    bases: &[String],
    key: &str,
    operations: usize,
    seed: u64,
) -> Written {
    let mut dice = Dice::new(seed);
    let mut written = Written::default();
    for step in 0..operations {
        let base = bases[step % bases.len()].as_str();
        let ok = |status: u16, body: &Value, what: &str| {
            assert!(matches!(status, 200 | 404), "{what}: {status} {body}");
        };
        match dice.below(12) {
            0 => {
                // A small pool of contents: saving one again updates it; after a deletion it
                // comes back with the same id.
                let content = format!("Fact number {}", dice.below(6));
                let (status, body) = send(
                    http,
                    base,
                    key,
                    Method::POST,
                    "/v1/dev/user/memories",
                    Some(json!({"content": content})),
                )
                .await;
                assert_eq!(status, 200, "{body}");
            }
            1 => {
                if let Some(id) = pick(
                    http,
                    base,
                    key,
                    "/v1/dev/user/memories?limit=1000",
                    &mut dice,
                )
                .await
                {
                    let tags = json!({"tags": [format!("t{step}")]});
                    let (status, body) = send(
                        http,
                        base,
                        key,
                        Method::PATCH,
                        &format!("/v1/dev/user/memories/{id}"),
                        Some(tags),
                    )
                    .await;
                    ok(status, &body, "patch memory");
                }
            }
            2 => {
                if let Some(id) = pick(
                    http,
                    base,
                    key,
                    "/v1/dev/user/memories?limit=1000",
                    &mut dice,
                )
                .await
                {
                    let (status, body) = send(
                        http,
                        base,
                        key,
                        Method::DELETE,
                        &format!("/v1/dev/user/memories/{id}"),
                        None,
                    )
                    .await;
                    ok(status, &body, "delete memory");
                }
            }
            3 => {
                let (status, body) = send(
                    http,
                    base,
                    key,
                    Method::POST,
                    "/v1/dev/user/action-items",
                    Some(json!({"description": format!("Task {step}")})),
                )
                .await;
                assert_eq!(status, 200, "{body}");
            }
            4 => {
                if let Some(id) = pick(
                    http,
                    base,
                    key,
                    "/v1/dev/user/action-items?limit=1000",
                    &mut dice,
                )
                .await
                {
                    let completed = dice.below(2) == 0;
                    let (status, body) = send(
                        http,
                        base,
                        key,
                        Method::PATCH,
                        &format!("/v1/dev/user/action-items/{id}"),
                        Some(json!({"completed": completed})),
                    )
                    .await;
                    ok(status, &body, "patch action item");
                }
            }
            5 => {
                if let Some(id) = pick(
                    http,
                    base,
                    key,
                    "/v1/dev/user/action-items?limit=1000",
                    &mut dice,
                )
                .await
                {
                    let (status, body) = send(
                        http,
                        base,
                        key,
                        Method::DELETE,
                        &format!("/v1/dev/user/action-items/{id}"),
                        None,
                    )
                    .await;
                    ok(status, &body, "delete action item");
                }
            }
            6 => {
                let text = format!("{} ({step})", TEXTS[dice.below(TEXTS.len())]);
                let (status, body) = send(
                    http,
                    base,
                    key,
                    Method::POST,
                    "/v1/dev/user/conversations",
                    Some(json!({"text": text})),
                )
                .await;
                assert_eq!(status, 200, "{body}");
                written
                    .conversations
                    .push(body["id"].as_str().unwrap().to_string());
            }
            7 => {
                if !written.conversations.is_empty() {
                    let id = written.conversations[dice.below(written.conversations.len())].clone();
                    let change = match dice.below(3) {
                        0 => json!({"title": format!("Renamed {step}")}),
                        1 => json!({"discarded": dice.below(2) == 0}),
                        _ => json!({"starred": dice.below(2) == 0}),
                    };
                    let (status, body) = send(
                        http,
                        base,
                        key,
                        Method::PATCH,
                        &format!("/v1/dev/user/conversations/{id}"),
                        Some(change),
                    )
                    .await;
                    ok(status, &body, "patch conversation");
                }
            }
            8 => {
                if !written.conversations.is_empty() {
                    let id = written.conversations[dice.below(written.conversations.len())].clone();
                    let (status, body) = send(
                        http,
                        base,
                        key,
                        Method::DELETE,
                        &format!("/v1/dev/user/conversations/{id}"),
                        None,
                    )
                    .await;
                    ok(status, &body, "delete conversation");
                }
            }
            9 => {
                let (status, body) = send(
                    http,
                    base,
                    key,
                    Method::POST,
                    "/v1/dev/user/goals",
                    Some(json!({"title": format!("Goal {step}")})),
                )
                .await;
                assert_eq!(status, 200, "{body}");
                written.goals.push(body["id"].as_str().unwrap().to_string());
            }
            10 => {
                if !written.goals.is_empty() {
                    let id = written.goals[dice.below(written.goals.len())].clone();
                    let (status, body) = send(
                        http,
                        base,
                        key,
                        Method::PATCH,
                        &format!("/v1/dev/user/goals/{id}"),
                        Some(json!({"title": format!("Goal {step} again")})),
                    )
                    .await;
                    ok(status, &body, "patch goal");
                }
            }
            _ => {
                if !written.goals.is_empty() {
                    let id = written.goals[dice.below(written.goals.len())].clone();
                    let (status, body) = send(
                        http,
                        base,
                        key,
                        Method::DELETE,
                        &format!("/v1/dev/user/goals/{id}"),
                        None,
                    )
                    .await;
                    ok(status, &body, "delete goal");
                }
            }
        }
    }
    written
}

/// Everything the server holds for the user now, read without the feed: the full lists, and
/// each conversation the writer created by id (discarded ones are not in the list).
pub async fn server_objects(
    http: &Client,
    base: &str,
    key: &str,
    written: &Written,
) -> BTreeMap<(String, String), Value> {
    let mut objects = BTreeMap::new();
    for (kind, path) in [
        ("memory", "/v1/dev/user/memories?limit=1000"),
        ("action_item", "/v1/dev/user/action-items?limit=1000"),
        (
            "goal",
            "/v1/dev/user/goals?include_inactive=true&limit=1000",
        ),
        ("folder", "/v1/dev/user/folders"),
    ] {
        let (status, _, body) = get(http, base, path, key).await;
        assert_eq!(status, 200, "{path}: {body}");
        for item in body.as_array().unwrap() {
            let id = item["id"].as_str().unwrap().to_string();
            objects.insert((kind.to_string(), id), item.clone());
        }
    }
    for id in &written.conversations {
        let path = format!("/v1/dev/user/conversations/{id}");
        let (status, _, body) = get(http, base, &path, key).await;
        match status {
            200 => {
                objects.insert(("conversation".to_string(), id.clone()), body);
            }
            404 => {}
            other => panic!("{path}: {other} {body}"),
        }
    }
    objects
}

/// Panics with the first difference, object by object.
pub fn assert_same(
    mirror: &BTreeMap<(String, String), Value>,
    server: &BTreeMap<(String, String), Value>,
) {
    for (entry, copy) in mirror {
        match server.get(entry) {
            None => panic!("the mirror still holds {entry:?}, which the server no longer has"),
            Some(truth) => assert_eq!(copy, truth, "{entry:?} differs"),
        }
    }
    for entry in server.keys() {
        assert!(mirror.contains_key(entry), "the mirror misses {entry:?}");
    }
}
