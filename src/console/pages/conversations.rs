//! Conversations: listed by day; one with its summary, action items, events and transcript;
//! star, move to a folder, delete.

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use minijinja::{Value, context};
use serde::Deserialize;

use crate::console::form::CsrfForm;
use crate::console::pages::{Notice, PageResult, redirect_with};
use crate::console::session::Session;
use crate::console::view::{ConsoleError, page};
use crate::domain::categories::SystemFolder;
use crate::domain::conversations::Conversation;
use crate::domain::folders::SystemFolderSpec;
use crate::domain::ids::is_plausible_id;
use crate::domain::paging::Page;
use crate::domain::time;
use crate::state::AppState;
use crate::store::conversations::{ConversationFilter, ConversationUpdate, FolderChange};

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<i64>,
    starred: Option<String>,
    notice: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let page_number = query.page.unwrap_or(0).clamp(0, 10_000);
    let starred_only = query.starred.as_deref() == Some("1");
    let filter = ConversationFilter {
        starred: starred_only.then_some(true),
        ..ConversationFilter::default()
    };
    let mut conversations = state
        .store
        .list_conversations(
            &session.user.id,
            &filter,
            Page {
                limit: PAGE_SIZE + 1,
                offset: page_number * PAGE_SIZE,
            },
            false,
        )
        .await?;
    let has_more = conversations.len() as i64 > PAGE_SIZE;
    conversations.truncate(PAGE_SIZE as usize);
    let notice = Notice {
        notice: query.notice,
    };
    page(
        &session,
        "conversations",
        "conversations.html",
        context! {
            days => by_day(conversations),
            page => page_number,
            has_more,
            starred_only,
            notice => notice.text(),
        },
    )
}

/// Newest day first, each day's conversations in the order listed (newest first).
fn by_day(conversations: Vec<Conversation>) -> Vec<Value> {
    let mut days: Vec<(String, Vec<Conversation>)> = Vec::new();
    for conversation in conversations {
        let day = conversation.created_at.format("%A %-d %B %Y").to_string();
        match days.last_mut() {
            Some((last, list)) if *last == day => list.push(conversation),
            _ => days.push((day, vec![conversation])),
        }
    }
    days.into_iter()
        .map(|(day, conversations)| context! { day, conversations })
        .collect()
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(conversation_id): Path<String>,
    Query(notice): Query<Notice>,
) -> PageResult {
    if !is_plausible_id(&conversation_id) {
        return Err(ConsoleError::NotFound);
    }
    let conversation = state
        .store
        .get_conversation(&session.user.id, &conversation_id, true)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let folders: Vec<Value> = SystemFolder::ALL
        .iter()
        .map(|folder| {
            context! {
                key => folder_key(*folder),
                name => folder.name(),
                current => conversation.folder_name.as_deref() == Some(folder.name()),
            }
        })
        .collect();
    let has_audio = state
        .store
        .has_conversation_audio(&session.user.id, &conversation_id)
        .await?;
    page(
        &session,
        "conversations",
        "conversation.html",
        context! { conversation, folders, has_audio, notice => notice.text() },
    )
}

/// The conversation's audio as WAV, for the page's player: only the signed-in user's.
pub async fn audio(
    State(state): State<AppState>,
    session: Session,
    Path(conversation_id): Path<String>,
) -> PageResult {
    if !is_plausible_id(&conversation_id) {
        return Err(ConsoleError::NotFound);
    }
    let audio = state
        .store
        .conversation_audio(&session.user.id, &conversation_id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "audio/wav"),
            (axum::http::header::CACHE_CONTROL, "private, no-store"),
        ],
        crate::domain::audio::wav(&audio.pcm, audio.sample_rate),
    )
        .into_response())
}

fn folder_key(folder: SystemFolder) -> &'static str {
    SystemFolderSpec::of(folder).key
}

pub async fn star(
    State(state): State<AppState>,
    Path(conversation_id): Path<String>,
    CsrfForm { session, form }: CsrfForm,
) -> PageResult {
    let starred = form.get("starred") == Some("true");
    update(&state, &session, &conversation_id, |update| {
        update.starred = Some(starred)
    })
    .await
}

pub async fn move_to_folder(
    State(state): State<AppState>,
    Path(conversation_id): Path<String>,
    CsrfForm { session, form }: CsrfForm,
) -> PageResult {
    let wanted = form.get("folder").unwrap_or_default();
    let folder = SystemFolder::ALL
        .into_iter()
        .find(|folder| folder_key(*folder) == wanted)
        .ok_or_else(|| ConsoleError::Invalid("Pick one of the folders.".into()))?;
    update(&state, &session, &conversation_id, |update| {
        update.folder = FolderChange::File(SystemFolderSpec::of(folder))
    })
    .await
}

async fn update(
    state: &AppState,
    session: &Session,
    conversation_id: &str,
    change: impl FnOnce(&mut ConversationUpdate),
) -> PageResult {
    let mut update = ConversationUpdate {
        title: None,
        discarded: None,
        starred: None,
        folder: FolderChange::Keep,
        reprocessed: None,
        updated_at: time::now(),
    };
    change(&mut update);
    if !is_plausible_id(conversation_id)
        || !state
            .store
            .update_conversation(&session.user.id, conversation_id, update)
            .await?
    {
        return Err(ConsoleError::NotFound);
    }
    Ok(redirect_with(
        &format!("/console/conversations/{conversation_id}"),
        "conversation-saved",
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(conversation_id): Path<String>,
    CsrfForm { session, .. }: CsrfForm,
) -> PageResult {
    if !is_plausible_id(&conversation_id)
        || !state
            .store
            .delete_conversation(&session.user.id, &conversation_id)
            .await?
    {
        return Err(ConsoleError::NotFound);
    }
    Ok(redirect_with(
        "/console/conversations",
        "conversation-deleted",
    ))
}
