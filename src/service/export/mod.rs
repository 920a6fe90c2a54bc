//! The portable export of one user: every object the caller may read, one typed record per
//! line, by type then id. Pages are read from the store one at a time, so memory stays bounded
//! whatever the user holds; a response page ends at a position found beforehand (without
//! reading the records), so its next cursor can be announced in the headers before the body.

pub mod restore;
pub mod vault;

use std::sync::Arc;

use futures::Stream;

use crate::domain::export::{ExportKind, ExportPosition, ExportRecord};
use crate::domain::scope::ScopeSet;
use crate::store::export::Nth;
use crate::store::{Store, StoreResult};

/// Records read from the store per query.
pub const STORE_PAGE: usize = 500;
/// Records in one response page, when the client does not say.
pub const DEFAULT_PAGE_RECORDS: u64 = 10_000;
/// The most records one response page holds.
pub const MAX_PAGE_RECORDS: u64 = 100_000;

/// The types a key with these scopes may read, in export order.
pub fn readable_kinds(scopes: ScopeSet) -> Vec<ExportKind> {
    ExportKind::ALL
        .into_iter()
        .filter(|kind| scopes.contains(kind.read_scope()))
        .collect()
}

/// One page of an export: the records after `start` up to and including `end` (to the last
/// record when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPage {
    pub kinds: Vec<ExportKind>,
    pub start: Option<ExportPosition>,
    pub end: Option<ExportPosition>,
    /// Whether records remained after `end` when the page was planned.
    pub more: bool,
}

impl ExportPage {
    /// The whole export of these types.
    pub fn everything(kinds: Vec<ExportKind>) -> Self {
        ExportPage {
            kinds,
            start: None,
            end: None,
            more: false,
        }
    }

    /// Where the next page starts, when records remain after this one.
    pub fn next_cursor(&self) -> Option<String> {
        self.end
            .as_ref()
            .filter(|_| self.more)
            .map(ExportPosition::to_cursor)
    }
}

/// Where the `kind` pass of a read starts: after the cursor's id in its own type, from the
/// beginning in later types; `None` when the type lies wholly before the cursor.
fn start_in(kind: ExportKind, start: Option<&ExportPosition>) -> Option<Option<&str>> {
    match start {
        None => Some(None),
        Some(position) if kind == position.kind => Some(Some(position.after_id.as_str())),
        Some(position) if kind > position.kind => Some(None),
        Some(_) => None,
    }
}

/// Plans a page of at most `limit` records from `start`: finds where it ends, and leaves the
/// end open when nothing remains after it.
pub async fn plan_page(
    store: &dyn Store,
    user_id: &str,
    kinds: Vec<ExportKind>,
    start: Option<ExportPosition>,
    limit: u64,
) -> StoreResult<ExportPage> {
    let mut remaining = limit.max(1);
    let mut end = None;
    for &kind in &kinds {
        let Some(after) = start_in(kind, start.as_ref()) else {
            continue;
        };
        match store.export_nth(user_id, kind, after, remaining).await? {
            Nth::Found(id) => {
                end = Some(ExportPosition { kind, after_id: id });
                break;
            }
            Nth::Short(count) => remaining -= count,
        }
    }
    let more = match &end {
        Some(position) => any_after(store, user_id, &kinds, position).await?,
        None => false,
    };
    Ok(ExportPage {
        kinds,
        start,
        end,
        more,
    })
}

async fn any_after(
    store: &dyn Store,
    user_id: &str,
    kinds: &[ExportKind],
    position: &ExportPosition,
) -> StoreResult<bool> {
    for &kind in kinds {
        let Some(after) = start_in(kind, Some(position)) else {
            continue;
        };
        if matches!(
            store.export_nth(user_id, kind, after, 1).await?,
            Nth::Found(_)
        ) {
            return Ok(true);
        }
    }
    Ok(false)
}

struct Reader {
    store: Arc<dyn Store>,
    user_id: String,
    page: ExportPage,
    /// Index into `page.kinds` of the type being read.
    kind_index: usize,
    after: Option<String>,
    buffered: std::vec::IntoIter<ExportRecord>,
    done: bool,
}

impl Reader {
    async fn next_record(&mut self) -> StoreResult<Option<ExportRecord>> {
        loop {
            if let Some(record) = self.buffered.next() {
                if self.page.end.as_ref() == Some(&record.position()) {
                    self.done = true;
                }
                return Ok(Some(record));
            }
            if self.done {
                return Ok(None);
            }
            let Some(&kind) = self.page.kinds.get(self.kind_index) else {
                return Ok(None);
            };
            let Some(start) = start_in(kind, self.page.start.as_ref()) else {
                self.kind_index += 1;
                continue;
            };
            let after = self.after.as_deref().or(start);
            let mut records = self
                .store
                .export_page(&self.user_id, kind, after, STORE_PAGE)
                .await?;
            // Never read past the page's end.
            if let Some(end) = self.page.end.as_ref().filter(|end| end.kind == kind) {
                records.retain(|record| record.id() <= end.after_id.as_str());
            }
            match records.last() {
                Some(last) if records.len() == STORE_PAGE => {
                    self.after = Some(last.id().to_string());
                }
                _ => {
                    // The page's end type is finished even if its end record went away since.
                    if self.page.end.as_ref().is_some_and(|end| end.kind == kind) {
                        self.done = true;
                    }
                    self.kind_index += 1;
                    self.after = None;
                }
            }
            self.buffered = records.into_iter();
        }
    }
}

/// The records of a planned page, read from the store a page at a time.
pub fn records(
    store: Arc<dyn Store>,
    user_id: String,
    page: ExportPage,
) -> impl Stream<Item = StoreResult<ExportRecord>> + Send + 'static {
    let reader = Reader {
        store,
        user_id,
        page,
        kind_index: 0,
        after: None,
        buffered: Vec::new().into_iter(),
        done: false,
    };
    futures::stream::try_unfold(reader, |mut reader| async move {
        Ok(reader.next_record().await?.map(|record| (record, reader)))
    })
}

/// How many records of each type an export or import handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindCounts(pub std::collections::BTreeMap<&'static str, u64>);

impl KindCounts {
    pub fn add(&mut self, kind: ExportKind) {
        *self.0.entry(kind.as_str()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

impl std::fmt::Display for KindCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{k} {n}")).collect();
        if parts.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", parts.join(", "))
        }
    }
}

/// Writes the user's whole export as NDJSON, calling `progress` with the running count now and
/// then. Answers the records written per type.
pub async fn write_ndjson(
    store: Arc<dyn Store>,
    user_id: &str,
    out: &mut (impl std::io::Write + Send),
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<KindCounts> {
    use futures::TryStreamExt as _;
    let page = ExportPage::everything(ExportKind::ALL.to_vec());
    let mut counts = KindCounts::default();
    let stream = records(store, user_id.to_string(), page);
    futures::pin_mut!(stream);
    while let Some(record) = stream.try_next().await? {
        let mut line = record.to_line();
        line.push('\n');
        out.write_all(line.as_bytes())?;
        counts.add(record.kind());
        if counts.total().is_multiple_of(10_000) {
            progress(counts.total());
        }
    }
    out.flush()?;
    progress(counts.total());
    Ok(counts)
}
