//! People seen in a user's transcripts, and the user's profile (API.md §13.D).

use chrono::Duration;

use crate::domain::paging::Page;
use crate::domain::people::{Person, Profile};
use crate::domain::time::Timestamp;
use crate::processing::Processor;
use crate::processing::insights::{PROFILE_MEMORIES, extractive_profile, people_from};
use crate::store::insights::StoredProfile;
use crate::store::{Store, StoreResult};

/// A profile is rebuilt on read when the memories changed since it was built, at most this
/// often.
pub const PROFILE_REBUILD_AFTER: Duration = Duration::hours(1);

/// One person per `person_id` in the user's transcripts, by name.
pub async fn people(store: &dyn Store, user_id: &str) -> StoreResult<Vec<Person>> {
    let sightings = store.person_sightings(user_id).await?;
    Ok(people_from(&sightings))
}

/// The user's profile, built from the top memories on first read (written by the model when
/// one is configured) and rebuilt when the memories
/// changed and the last build is more than an hour old. `None` for a user who has never had a
/// memory.
pub async fn profile(
    store: &dyn Store,
    processor: &dyn Processor,
    user_id: &str,
    now: Timestamp,
) -> StoreResult<Option<Profile>> {
    let state = store.memory_state(user_id).await?;
    let existing = store.get_profile(user_id).await?;
    match &existing {
        None if state.count == 0 => return Ok(None),
        Some(stored)
            if stored.built_from == state || now - stored.generated_at < PROFILE_REBUILD_AFTER =>
        {
            return Ok(Some(stored.profile.clone()));
        }
        _ => {}
    }
    let display_name = store
        .find_user(user_id)
        .await?
        .map(|user| user.display_name)
        .unwrap_or_default();
    let memories = store
        .list_memories(
            user_id,
            &[],
            Page {
                limit: PROFILE_MEMORIES as i64,
                offset: 0,
            },
        )
        .await?;
    let extractive = extractive_profile(&display_name, &memories);
    let profile = Profile {
        profile_text: processor
            .write_profile(&display_name, &memories, extractive)
            .await,
        generated_at: Some(now),
        data_sources_used: memories.len() as i64,
    };
    store
        .save_profile(
            user_id,
            StoredProfile {
                profile: profile.clone(),
                generated_at: now,
                built_from: state,
            },
        )
        .await?;
    Ok(Some(profile))
}
