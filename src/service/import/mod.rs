//! `omi-server import omi`: a user's whole history read from a server that speaks the Omi
//! Developer API (Omi's cloud or another omi-server) and written here faithfully.
//!
//! Each resource is read page by page until a page comes back empty (a short page is not the
//! end: the hosted API filters locked items after paging and clamps `limit`), the offset moving
//! by the number of items actually received. Items are de-duplicated by id within a run; after
//! the last page the first pages are read again until one holds nothing new, which picks up items
//! added at the top while the import ran. A page is written in one transaction: every object
//! with its mapping (source id, fingerprint), each behind its own savepoint, and the next offset
//! as the resource's checkpoint, so an interrupted import resumes after the last page written
//! and a repeated one reports unchanged objects as such.

pub mod source;
pub mod upstream;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::credentials::Secret;
use crate::domain::time::{self, Timestamp};
use crate::processing::Processor;
use crate::store::conversations::{ConversationUpdate, FolderChange};
use crate::store::import::{ImportKey, ImportOutcome, ImportRecord, PageCheckpoint};
use crate::store::{Store, StoreError};
use source::{Answer, Source};
pub use source::{RetryPolicy, SourceError, SourceStats};

/// What can be imported, in the order it is imported (folders before the conversations filed in
/// them, conversations before the action items that name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Folders,
    Conversations,
    ActionItems,
    Memories,
    Goals,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Folders,
        Resource::Conversations,
        Resource::ActionItems,
        Resource::Memories,
        Resource::Goals,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Folders => "folders",
            Resource::Conversations => "conversations",
            Resource::ActionItems => "action-items",
            Resource::Memories => "memories",
            Resource::Goals => "goals",
        }
    }

    pub fn parse(text: &str) -> Option<Resource> {
        let text = text.trim().to_ascii_lowercase().replace('_', "-");
        Resource::ALL.into_iter().find(|r| r.name() == text)
    }

    fn path(self) -> &'static str {
        match self {
            Resource::Folders => "/v1/dev/user/folders",
            Resource::Conversations => "/v1/dev/user/conversations",
            Resource::ActionItems => "/v1/dev/user/action-items",
            Resource::Memories => "/v1/dev/user/memories",
            Resource::Goals => "/v1/dev/user/goals",
        }
    }

    /// The scope a key needs to read it.
    fn scope(self) -> &'static str {
        match self {
            Resource::Folders | Resource::Conversations => "conversations:read",
            Resource::ActionItems => "action_items:read",
            Resource::Memories => "memories:read",
            Resource::Goals => "goals:read",
        }
    }

    /// The page size asked for; the source may clamp it (100, 25 with transcripts upstream),
    /// which paging copes with.
    fn limit(self) -> i64 {
        match self {
            Resource::Conversations => 25,
            _ => 100,
        }
    }

    /// Whether the source pages it (`limit`/`offset`); folders come as one list.
    fn paged(self) -> bool {
        self != Resource::Folders
    }

    fn query(self, limit: i64, offset: i64) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if self.paged() {
            query.push(("limit", limit.to_string()));
            query.push(("offset", offset.to_string()));
        }
        match self {
            Resource::Conversations => query.push(("include_transcript", "true".into())),
            Resource::Goals => query.push(("include_inactive", "true".into())),
            _ => {}
        }
        query
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The source's base URL (`https://api.omi.me`).
    pub source: String,
    pub key: Secret,
    /// The user (id or name) of this server who receives the history.
    pub user: String,
    pub only: Vec<Resource>,
    /// Objects created before this are skipped.
    pub since: Option<Timestamp>,
    /// Process imported conversations again here instead of keeping the source's summaries.
    pub reprocess: bool,
    /// Read and report only; nothing is written.
    pub dry_run: bool,
    pub retry: RetryPolicy,
    /// The shared outgoing HTTPS setup (trusted roots, `OMI_EXTRA_CA_FILE`) the source is read
    /// through.
    pub outbound: std::sync::Arc<crate::outbound::Outbound>,
}

/// The outcome of one object that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceReport {
    /// Distinct objects read from the source.
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: Vec<Note>,
    pub failed: Vec<Note>,
    /// Set when the resource could not be read at all (the source has no such route).
    pub unavailable: Option<String>,
    /// Where a resumed run started.
    pub resumed_at: Option<i64>,
    /// With `--reprocess`: conversations the source holds no transcript for (notes written as
    /// text), which keep the source's summary because there is nothing to process again.
    pub kept_without_transcript: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub resources: Vec<(Resource, ResourceReport)>,
    pub source: SourceStats,
    pub elapsed: Duration,
    pub dry_run: bool,
}

impl Report {
    pub fn failed(&self) -> u64 {
        self.resources
            .iter()
            .map(|(_, r)| r.failed.len() as u64)
            .sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no user '{0}' on this server (create it with `omi-server users create`)")]
    UnknownUser(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
}

/// Told how the import goes, for a progress display.
pub trait Progress: Send + Sync {
    fn started(&self, resource: Resource, resumed_at: Option<i64>);
    fn advanced(&self, resource: Resource, report: &ResourceReport);
    fn finished(&self, resource: Resource, report: &ResourceReport);
}

/// A display that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn started(&self, _: Resource, _: Option<i64>) {}
    fn advanced(&self, _: Resource, _: &ResourceReport) {}
    fn finished(&self, _: Resource, _: &ResourceReport) {}
}

/// At most this many pages per resource: a source that never answers an empty page cannot keep
/// the import going for ever.
const MAX_PAGES: i64 = 1_000_000;
/// Pages re-read from the top after the end to pick up items added during the run.
const MAX_TOP_UP_PAGES: i64 = 20;

/// An object mapped and ready to write.
struct Prepared {
    key: ImportKey,
    record: ImportRecord,
}

/// Whether `--reprocess` applies to an imported object.
enum Reprocess {
    Yes,
    /// A conversation the source holds no transcript for.
    NoTranscript,
    NotAConversation,
}

struct Run<'a> {
    store: &'a dyn Store,
    processor: Option<&'a Arc<dyn Processor>>,
    source: Source,
    options: &'a ImportOptions,
    user_id: String,
    source_name: String,
}

pub async fn run(
    store: &dyn Store,
    processor: Option<&Arc<dyn Processor>>,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Report, ImportError> {
    let started = Instant::now();
    let user = store
        .find_user(&options.user)
        .await?
        .ok_or_else(|| ImportError::UnknownUser(options.user.clone()))?;
    let source = Source::new(
        &options.source,
        options.key.clone(),
        options.retry.clone(),
        options.outbound.http_client(),
    )?;
    let source_name = source.base().to_string();
    let mut run = Run {
        store,
        processor,
        source,
        options,
        user_id: user.id,
        source_name,
    };
    let mut only = options.only.clone();
    if only.is_empty() {
        only = Resource::ALL.to_vec();
    }
    only.sort();
    only.dedup();
    // Every resource is tried once before anything is written: a wrong URL, a revoked key or a
    // missing scope stops the import with nothing half done.
    let mut available = Vec::new();
    for resource in &only {
        let answer = run
            .source
            .get(resource.path(), &resource.query(1, 0), resource.scope())
            .await?;
        match answer {
            Answer::Json(Value::Array(_)) => available.push((*resource, None)),
            Answer::NotFound if *resource == Resource::Folders => available.push((
                *resource,
                Some("the source has no folders route".to_string()),
            )),
            Answer::NotFound => {
                return Err(SourceError::NotOmi {
                    url: run.source_name.clone(),
                    why: format!("GET {} answered 404", resource.path()),
                }
                .into());
            }
            Answer::Json(_) => {
                return Err(SourceError::NotOmi {
                    url: run.source_name.clone(),
                    why: format!("GET {} did not answer a JSON list", resource.path()),
                }
                .into());
            }
        }
    }
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    for (resource, unavailable) in available {
        let mut resource_report = ResourceReport::default();
        if let Some(why) = unavailable {
            resource_report.unavailable = Some(why);
            progress.finished(resource, &resource_report);
        } else {
            run.resource(resource, &mut resource_report, progress)
                .await?;
            progress.finished(resource, &resource_report);
        }
        report.resources.push((resource, resource_report));
    }
    report.source = run.source.stats.clone();
    report.elapsed = started.elapsed();
    Ok(report)
}

impl Run<'_> {
    async fn resource(
        &mut self,
        resource: Resource,
        report: &mut ResourceReport,
        progress: &dyn Progress,
    ) -> Result<(), ImportError> {
        let name = resource.name();
        let resumed = if self.options.dry_run || !resource.paged() {
            None
        } else {
            self.store
                .import_checkpoint(&self.user_id, &self.source_name, name)
                .await?
        };
        report.resumed_at = resumed;
        progress.started(resource, resumed);
        let mut seen: HashSet<String> = HashSet::new();
        let mut offset = resumed.unwrap_or(0);
        let limit = resource.limit();
        let mut pages = 0;
        // The main pass, then the top-up pass from offset 0.
        let mut topping_up = false;
        loop {
            pages += 1;
            if pages > MAX_PAGES || (topping_up && pages > MAX_TOP_UP_PAGES) {
                break;
            }
            let items = match self
                .source
                .get(
                    resource.path(),
                    &resource.query(limit, offset),
                    resource.scope(),
                )
                .await?
            {
                Answer::Json(Value::Array(items)) => items,
                Answer::Json(_) | Answer::NotFound => {
                    return Err(SourceError::NotOmi {
                        url: self.source_name.clone(),
                        why: format!("GET {} stopped answering a JSON list", resource.path()),
                    }
                    .into());
                }
            };
            let received = items.len() as i64;
            let mut new_items = 0;
            let mut page = Vec::new();
            for item in items {
                let Some(id) = upstream::source_id(&item) else {
                    report.failed.push(Note {
                        id: "?".into(),
                        reason: "an object without an id".into(),
                    });
                    continue;
                };
                if !seen.insert(id.clone()) {
                    continue;
                }
                new_items += 1;
                report.read += 1;
                if let Some(prepared) = self.prepare(resource, &id, &item, report).await? {
                    page.push(prepared);
                }
            }
            // The page's objects and the offset after it commit together: a resumed import
            // starts after the last page written, never inside one.
            let checkpoint =
                (received > 0 && resource.paged() && !topping_up).then(|| PageCheckpoint {
                    source: self.source_name.clone(),
                    resource: name.to_string(),
                    next_offset: offset + received,
                });
            if !self.options.dry_run {
                self.write_page(page, checkpoint, report).await?;
            }
            if received == 0 || !resource.paged() {
                if !topping_up && resource.paged() && offset > 0 {
                    topping_up = true;
                    offset = 0;
                    pages = 0;
                    continue;
                }
                break;
            }
            offset += received;
            progress.advanced(resource, report);
            if new_items == 0 {
                // Everything on the page was seen: the source ignores the offset (or the top-up
                // pass reached what this run already read).
                if topping_up {
                    break;
                }
                topping_up = true;
                offset = 0;
                pages = 0;
            }
        }
        if !self.options.dry_run && resource.paged() {
            self.store
                .save_import_checkpoint(&self.user_id, &self.source_name, name, None, time::now())
                .await?;
        }
        Ok(())
    }

    /// Reads what else the object needs (a goal's history), maps it and applies `--since`.
    /// `None` when it is not to be written: it failed to map, is skipped, or this is a dry run
    /// (which only counts what would happen).
    async fn prepare(
        &mut self,
        resource: Resource,
        id: &str,
        item: &Value,
        report: &mut ResourceReport,
    ) -> Result<Option<Prepared>, ImportError> {
        let mut history = Value::Null;
        if resource == Resource::Goals {
            let path = format!("{}/{}/history", resource.path(), urlencode(id));
            if let Answer::Json(value) = self
                .source
                .get(&path, &[("days", "365".to_string())], resource.scope())
                .await?
            {
                history = value;
            }
        }
        let mapped = match resource {
            Resource::Folders => upstream::folder(item, time::now()),
            Resource::Conversations => upstream::conversation(id, item),
            Resource::ActionItems => upstream::action_item(id, item),
            Resource::Memories => upstream::memory(item),
            Resource::Goals => upstream::goal(id, item, &history),
        };
        let record = match mapped {
            Ok(record) => record,
            Err(why) => {
                report.failed.push(Note {
                    id: id.to_string(),
                    reason: why.0,
                });
                return Ok(None);
            }
        };
        if let (Some(since), Some(created)) = (self.options.since, created_at(&record))
            && created < since
        {
            report.skipped.push(Note {
                id: id.to_string(),
                reason: "created before --since".into(),
            });
            return Ok(None);
        }
        let key = ImportKey {
            source: self.source_name.clone(),
            source_id: id.to_string(),
            fingerprint: upstream::fingerprint(&[item, &history]),
        };
        if self.options.dry_run {
            match self
                .store
                .import_status(&self.user_id, record.kind(), &key)
                .await?
            {
                None => report.created += 1,
                Some(true) => report.unchanged += 1,
                Some(false) => report.updated += 1,
            }
            return Ok(None);
        }
        Ok(Some(Prepared { key, record }))
    }

    /// Writes a page in one transaction with its checkpoint, counts what each object did, and
    /// with `--reprocess` processes the conversations that changed once they are committed.
    async fn write_page(
        &self,
        page: Vec<Prepared>,
        checkpoint: Option<PageCheckpoint>,
        report: &mut ResourceReport,
    ) -> Result<(), ImportError> {
        if page.is_empty() && checkpoint.is_none() {
            return Ok(());
        }
        let meta: Vec<(String, Reprocess)> = page
            .iter()
            .map(|p| {
                let reprocess = match &p.record {
                    ImportRecord::Conversation(c) if c.segments.is_empty() => {
                        Reprocess::NoTranscript
                    }
                    ImportRecord::Conversation(_) => Reprocess::Yes,
                    _ => Reprocess::NotAConversation,
                };
                (p.key.source_id.clone(), reprocess)
            })
            .collect();
        let records = page.into_iter().map(|p| (p.key, p.record)).collect();
        let outcomes = self
            .store
            .import_page(&self.user_id, records, checkpoint, time::now())
            .await?;
        for ((id, reprocess), outcome) in meta.into_iter().zip(outcomes) {
            let imported = match outcome {
                Ok(imported) => imported,
                Err(error) => {
                    report.failed.push(Note {
                        id,
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            match imported.outcome {
                ImportOutcome::Created => report.created += 1,
                ImportOutcome::Updated => report.updated += 1,
                ImportOutcome::Unchanged => report.unchanged += 1,
            }
            if !self.options.reprocess || imported.outcome == ImportOutcome::Unchanged {
                continue;
            }
            match reprocess {
                Reprocess::NotAConversation => {}
                // Processing an empty transcript would replace a real summary with "Untitled".
                Reprocess::NoTranscript => report.kept_without_transcript += 1,
                Reprocess::Yes => {
                    if let Err(reason) = self.reprocess(&imported.local_id).await {
                        report.failed.push(Note {
                            id,
                            reason: format!("imported, but processing it again failed: {reason}"),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    async fn reprocess(&self, conversation_id: &str) -> Result<(), String> {
        let Some(processor) = self.processor else {
            return Err("no processor".into());
        };
        let processed = crate::service::conversations::reprocess(
            self.store,
            processor,
            &self.user_id,
            conversation_id,
        )
        .await
        .map_err(|error| error.to_string())?;
        let folder = match processed.folder {
            Some(spec) => FolderChange::File(spec),
            None => FolderChange::Keep,
        };
        self.store
            .update_conversation(
                &self.user_id,
                conversation_id,
                ConversationUpdate {
                    title: None,
                    discarded: None,
                    starred: None,
                    folder,
                    reprocessed: Some(processed),
                    updated_at: time::now(),
                },
            )
            .await
            .map_err(|error| error.to_string())?;
        Ok(())
    }
}

fn created_at(record: &ImportRecord) -> Option<Timestamp> {
    match record {
        ImportRecord::Folder(_) => None,
        ImportRecord::Conversation(c) => Some(c.created_at),
        ImportRecord::ActionItem(a) => Some(a.created_at),
        ImportRecord::Memory(m) => Some(m.created_at),
        ImportRecord::Goal(g, _) => Some(g.created_at),
    }
}

/// Percent-encodes an id for a path segment.
fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
