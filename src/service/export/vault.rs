//! `omi-server export --format markdown`: an Obsidian-style vault of one user. One note per kept
//! conversation (front matter, summary, action items as task boxes, events, transcript with
//! speaker names), a daily note per day linking that day's conversations, a note per memory
//! category, and a goals note. A note is written only when its content changed, and notes of
//! objects that are gone are removed, so a vault kept in git shows real changes only. Files
//! the export does not manage (other notes, `.obsidian/`, `.git/`) are never touched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt as _;

use crate::domain::conversations::speaker_name;
use crate::domain::export::{ExportKind, ExportRecord, ExportedConversation};
use crate::domain::time::format as rfc3339;
use crate::service::export::{ExportPage, records};
use crate::store::Store;

pub const CONVERSATIONS_DIR: &str = "Conversations";
pub const DAILY_DIR: &str = "Daily";
pub const MEMORIES_DIR: &str = "Memories";
pub const GOALS_NOTE: &str = "Goals.md";

/// What a vault export did to the files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultReport {
    pub conversations: u64,
    pub daily_notes: u64,
    pub memory_notes: u64,
    pub memories: u64,
    pub goals: u64,
    /// Notes created or rewritten because their content changed.
    pub written: u64,
    pub unchanged: u64,
    /// Notes of objects that no longer exist.
    pub removed: u64,
}

/// Writes notes only when their content differs, remembering every note that should exist.
struct Notes {
    root: PathBuf,
    expected: HashSet<PathBuf>,
    report: VaultReport,
}

impl Notes {
    fn put(&mut self, relative: PathBuf, content: &str) -> std::io::Result<()> {
        let path = self.root.join(&relative);
        self.expected.insert(relative);
        if std::fs::read(&path).is_ok_and(|old| old == content.as_bytes()) {
            self.report.unchanged += 1;
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Written beside and renamed, so a note is never seen half written.
        let temporary = path.with_extension("md.tmp");
        std::fs::write(&temporary, content)?;
        std::fs::rename(&temporary, &path)?;
        self.report.written += 1;
        Ok(())
    }

    /// Removes managed notes that this run did not produce.
    fn prune(&mut self) -> std::io::Result<()> {
        for dir in [CONVERSATIONS_DIR, DAILY_DIR, MEMORIES_DIR] {
            let Ok(entries) = std::fs::read_dir(self.root.join(dir)) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let relative = Path::new(dir).join(entry.file_name());
                let is_note = relative.extension().is_some_and(|e| e == "md");
                if is_note && entry.file_type()?.is_file() && !self.expected.contains(&relative) {
                    std::fs::remove_file(entry.path())?;
                    self.report.removed += 1;
                }
            }
        }
        if !self.expected.contains(Path::new(GOALS_NOTE)) && self.root.join(GOALS_NOTE).is_file() {
            std::fs::remove_file(self.root.join(GOALS_NOTE))?;
            self.report.removed += 1;
        }
        Ok(())
    }
}

/// A file name Obsidian and every file system accept, from free text.
fn file_safe(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' | '#' | '^' | '[' | ']' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let joined = words.join(" ");
    let trimmed: String = joined.chars().take(max_chars).collect();
    trimmed
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .to_string()
}

/// A YAML scalar: JSON's double-quoted strings are valid YAML.
fn yaml(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

/// The note name of a conversation (without `.md`): its day, title and the start of its id, so
/// names stay unique and readable.
fn note_name(conversation: &ExportedConversation) -> String {
    let title = match file_safe(&conversation.title, 80) {
        title if title.is_empty() => "Untitled".to_string(),
        title => title,
    };
    let short_id: String = file_safe(&conversation.id, 8);
    format!(
        "{} {title} {short_id}",
        conversation.started_at.format("%Y-%m-%d")
    )
}

fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn conversation_note(
    conversation: &ExportedConversation,
    folder: Option<&str>,
    items: &[(bool, String)],
    user_display_name: &str,
) -> String {
    let c = conversation;
    let mut note = String::new();
    let _ = writeln!(note, "---");
    let _ = writeln!(note, "id: {}", yaml(&c.id));
    let _ = writeln!(note, "title: {}", yaml(&c.title));
    let _ = writeln!(note, "created: {}", rfc3339(&c.created_at));
    let _ = writeln!(note, "started: {}", rfc3339(&c.started_at));
    let _ = writeln!(note, "finished: {}", rfc3339(&c.finished_at));
    let _ = writeln!(note, "updated: {}", rfc3339(&c.updated_at));
    let _ = writeln!(note, "category: {}", yaml(&c.category));
    match folder {
        Some(folder) => {
            let _ = writeln!(note, "folder: {}", yaml(folder));
        }
        None => {
            let _ = writeln!(note, "folder: null");
        }
    }
    let _ = writeln!(note, "source: {}", yaml(&c.source));
    let _ = writeln!(note, "language: {}", yaml(&c.language));
    let _ = writeln!(note, "starred: {}", c.starred);
    let _ = writeln!(note, "daily: \"[[{}]]\"", c.started_at.format("%Y-%m-%d"));
    let _ = writeln!(note, "---");
    let _ = writeln!(note);
    let heading = if c.emoji.is_empty() {
        one_line(&c.title)
    } else {
        format!("{} {}", c.emoji, one_line(&c.title))
    };
    let _ = writeln!(note, "# {heading}");
    let _ = writeln!(note);
    let _ = writeln!(note, "## Summary");
    let _ = writeln!(note);
    let _ = writeln!(note, "{}", c.overview.trim());
    if !items.is_empty() {
        let _ = writeln!(note);
        let _ = writeln!(note, "## Action items");
        let _ = writeln!(note);
        for (completed, description) in items {
            let mark = if *completed { "x" } else { " " };
            let _ = writeln!(note, "- [{mark}] {}", one_line(description));
        }
    }
    if !c.events.is_empty() {
        let _ = writeln!(note);
        let _ = writeln!(note, "## Events");
        let _ = writeln!(note);
        for event in &c.events {
            let _ = write!(
                note,
                "- **{}**, {} ({} min)",
                one_line(&event.title),
                rfc3339(&event.start),
                event.duration
            );
            if !event.description.trim().is_empty() {
                let _ = write!(note, ": {}", one_line(&event.description));
            }
            let _ = writeln!(note);
        }
    }
    let from_segments = !c.transcript_segments.is_empty();
    if from_segments || c.text.is_some() {
        let _ = writeln!(note);
        let _ = writeln!(note, "## Transcript");
        let _ = writeln!(note);
    }
    for segment in &c.transcript_segments {
        let name = speaker_name(
            &segment.speaker,
            segment.speaker_id,
            segment.is_user,
            user_display_name,
        );
        let _ = writeln!(
            note,
            "**{name}** ({}): {}",
            clock(segment.start),
            one_line(&segment.text)
        );
        let _ = writeln!(note);
    }
    if let (false, Some(text)) = (from_segments, &c.text) {
        let _ = writeln!(note, "{}", text.trim());
    }
    note
}

struct DayEntry {
    started: String,
    link: String,
    title: String,
}

fn daily_note(day: &str, summary: Option<&(String, String)>, entries: &[DayEntry]) -> String {
    let mut note = String::new();
    let _ = writeln!(note, "---");
    let _ = writeln!(note, "date: {day}");
    let _ = writeln!(note, "---");
    let _ = writeln!(note);
    let _ = writeln!(note, "# {day}");
    if let Some((headline, overview)) = summary {
        let _ = writeln!(note);
        let _ = writeln!(note, "## {}", one_line(headline));
        let _ = writeln!(note);
        let _ = writeln!(note, "{}", overview.trim());
    }
    if !entries.is_empty() {
        let _ = writeln!(note);
        let _ = writeln!(note, "## Conversations");
        let _ = writeln!(note);
        for entry in entries {
            let _ = writeln!(
                note,
                "- {} [[{}|{}]]",
                entry.started,
                entry.link,
                one_line(&entry.title).replace('|', "/")
            );
        }
    }
    note
}

/// Reads one type of the user's export.
fn of_kind(
    store: &Arc<dyn Store>,
    user_id: &str,
    kind: ExportKind,
) -> impl futures::Stream<Item = crate::store::StoreResult<ExportRecord>> + Send + 'static {
    records(
        store.clone(),
        user_id.to_string(),
        ExportPage::everything(vec![kind]),
    )
}

/// Writes (or brings up to date) the vault of the user in `root`.
pub async fn write_vault(
    store: Arc<dyn Store>,
    user_id: &str,
    user_display_name: &str,
    root: &Path,
) -> anyhow::Result<VaultReport> {
    std::fs::create_dir_all(root)?;
    let mut notes = Notes {
        root: root.to_path_buf(),
        expected: HashSet::new(),
        report: VaultReport::default(),
    };

    let mut folders: HashMap<String, String> = HashMap::new();
    let stream = of_kind(&store, user_id, ExportKind::Folder);
    futures::pin_mut!(stream);
    while let Some(record) = stream.try_next().await? {
        if let ExportRecord::Folder(folder) = record {
            folders.insert(folder.id, folder.name);
        }
    }

    // A conversation's items, in id order, for its task list.
    let mut items: HashMap<String, Vec<(bool, String)>> = HashMap::new();
    let stream = of_kind(&store, user_id, ExportKind::ActionItem);
    futures::pin_mut!(stream);
    while let Some(record) = stream.try_next().await? {
        if let ExportRecord::ActionItem(item) = record
            && let Some(conversation_id) = item.conversation_id
        {
            items
                .entry(conversation_id)
                .or_default()
                .push((item.completed, item.description));
        }
    }

    let mut summaries: BTreeMap<String, (String, String)> = BTreeMap::new();
    let stream = of_kind(&store, user_id, ExportKind::DailySummary);
    futures::pin_mut!(stream);
    while let Some(record) = stream.try_next().await? {
        if let ExportRecord::DailySummary(summary) = record {
            let text = |field: &str| {
                summary.body[field]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_default()
            };
            summaries.insert(summary.date.clone(), (text("headline"), text("overview")));
        }
    }

    let mut days: BTreeMap<String, Vec<DayEntry>> = BTreeMap::new();
    let stream = of_kind(&store, user_id, ExportKind::Conversation);
    futures::pin_mut!(stream);
    while let Some(record) = stream.try_next().await? {
        let ExportRecord::Conversation(conversation) = record else {
            continue;
        };
        if conversation.discarded {
            continue;
        }
        let name = note_name(&conversation);
        let folder = conversation
            .folder_id
            .as_ref()
            .and_then(|id| folders.get(id))
            .map(String::as_str);
        let no_items = Vec::new();
        let content = conversation_note(
            &conversation,
            folder,
            items.get(&conversation.id).unwrap_or(&no_items),
            user_display_name,
        );
        notes.put(
            Path::new(CONVERSATIONS_DIR).join(format!("{name}.md")),
            &content,
        )?;
        notes.report.conversations += 1;
        days.entry(conversation.started_at.format("%Y-%m-%d").to_string())
            .or_default()
            .push(DayEntry {
                started: conversation.started_at.format("%H:%M").to_string(),
                link: name,
                title: conversation.title.clone(),
            });
    }
    for day in summaries.keys() {
        days.entry(day.clone()).or_default();
    }
    for (day, mut entries) in days {
        entries.sort_by(|a, b| (&a.started, &a.link).cmp(&(&b.started, &b.link)));
        let content = daily_note(&day, summaries.get(&day), &entries);
        notes.put(Path::new(DAILY_DIR).join(format!("{day}.md")), &content)?;
        notes.report.daily_notes += 1;
    }

    let mut categories: BTreeMap<&'static str, String> = BTreeMap::new();
    let stream = of_kind(&store, user_id, ExportKind::Memory);
    futures::pin_mut!(stream);
    while let Some(record) = stream.try_next().await? {
        let ExportRecord::Memory(memory) = record else {
            continue;
        };
        let body = categories.entry(memory.category.as_str()).or_default();
        let _ = write!(body, "- {}", one_line(&memory.content));
        for tag in &memory.tags {
            let tag = file_safe(tag, 100).replace(' ', "-");
            if !tag.is_empty() {
                let _ = write!(body, " #{tag}");
            }
        }
        let _ = writeln!(body);
        notes.report.memories += 1;
    }
    for (category, body) in categories {
        let count = body.lines().count();
        let mut content = String::new();
        let _ = writeln!(content, "---");
        let _ = writeln!(content, "category: {category}");
        let _ = writeln!(content, "memories: {count}");
        let _ = writeln!(content, "---");
        let _ = writeln!(content);
        let _ = writeln!(content, "# Memories: {category}");
        let _ = writeln!(content);
        content.push_str(&body);
        notes.put(
            Path::new(MEMORIES_DIR).join(format!("{category}.md")),
            &content,
        )?;
        notes.report.memory_notes += 1;
    }

    let mut goals = String::new();
    let stream = of_kind(&store, user_id, ExportKind::Goal);
    futures::pin_mut!(stream);
    while let Some(record) = stream.try_next().await? {
        let ExportRecord::Goal(goal) = record else {
            continue;
        };
        let g = &goal.goal;
        let _ = write!(
            goals,
            "- **{}** ({})",
            one_line(&g.title),
            g.status.as_str()
        );
        if let Some(metric) = &g.metric {
            let unit = metric.unit.as_deref().unwrap_or("");
            let _ = write!(goals, ": {} / {} {unit}", metric.current, metric.target);
        }
        let _ = writeln!(goals);
        notes.report.goals += 1;
    }
    if !goals.is_empty() {
        notes.put(PathBuf::from(GOALS_NOTE), &format!("# Goals\n\n{goals}"))?;
    }

    notes.prune()?;
    Ok(notes.report)
}
