//! Memories: list (by category, or searched), edit, delete.

use axum::extract::{Path, Query, State};
use minijinja::context;
use serde::Deserialize;

use crate::console::form::CsrfForm;
use crate::console::pages::{Notice, PageResult, redirect_with};
use crate::console::session::Session;
use crate::console::view::{ConsoleError, page};
use crate::domain::ids::is_plausible_id;
use crate::domain::memories::{MemoryCategory, MemoryChanges, MemoryFieldError, memory_content};
use crate::domain::paging::Page;
use crate::domain::time::now;
use crate::search::LexicalQuery;
use crate::state::AppState;

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    category: Option<String>,
    q: Option<String>,
    page: Option<i64>,
    notice: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let category = query
        .category
        .as_deref()
        .filter(|name| !name.is_empty())
        .map(|name| {
            MemoryCategory::parse(name)
                .ok_or_else(|| ConsoleError::Invalid(format!("Unknown category: {name}")))
        })
        .transpose()?;
    let categories: Vec<MemoryCategory> = category.into_iter().collect();
    let page_number = query.page.unwrap_or(0).clamp(0, 10_000);
    let window = Page {
        limit: PAGE_SIZE + 1,
        offset: page_number * PAGE_SIZE,
    };
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut memories = match search {
        Some(text) => state
            .retrieval
            .memories(
                &*state.store,
                &session.user.id,
                text,
                &LexicalQuery::parse(text),
                &categories,
                window,
            )
            .await?
            .hits
            .into_iter()
            .map(|scored| scored.item)
            .collect(),
        None => {
            state
                .store
                .list_memories(&session.user.id, &categories, window)
                .await?
        }
    };
    let has_more = memories.len() as i64 > PAGE_SIZE;
    memories.truncate(PAGE_SIZE as usize);
    let notice = Notice {
        notice: query.notice,
    };
    page(
        &session,
        "memories",
        "memories.html",
        context! {
            memories,
            categories => MemoryCategory::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            category => category.map(MemoryCategory::as_str),
            q => search,
            page => page_number,
            has_more,
            notice => notice.text(),
        },
    )
}

pub async fn update(
    State(state): State<AppState>,
    Path(memory_id): Path<String>,
    CsrfForm { session, form }: CsrfForm,
) -> PageResult {
    let content = memory_content(form.get("content").unwrap_or_default()).map_err(|error| {
        ConsoleError::Invalid(match error {
            MemoryFieldError::ContentTooLong => "A memory has at most 500 characters.".into(),
            _ => "A memory cannot be empty.".into(),
        })
    })?;
    let category = match form.get("category").filter(|name| !name.is_empty()) {
        Some(name) => Some(
            MemoryCategory::parse(name)
                .ok_or_else(|| ConsoleError::Invalid(format!("Unknown category: {name}")))?,
        ),
        None => None,
    };
    let changes = MemoryChanges {
        content: Some(content),
        category,
        visibility: None,
        tags: None,
    };
    if !is_plausible_id(&memory_id)
        || state
            .store
            .update_memory(&session.user.id, &memory_id, changes, now())
            .await?
            .is_none()
    {
        return Err(ConsoleError::NotFound);
    }
    Ok(redirect_with("/console/memories", "memory-saved"))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(memory_id): Path<String>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    if !is_plausible_id(&memory_id)
        || !state
            .store
            .delete_memory(&session.user.id, &memory_id)
            .await?
    {
        return Err(ConsoleError::NotFound);
    }
    Ok(redirect_with("/console/memories", "memory-deleted"))
}
