//! Creating, rotating and revoking developer keys, shared by the HTTP routes and the CLI.

use crate::domain::credentials::generate_dev_key;
use crate::domain::ids::{is_plausible_id, new_id};
use crate::domain::keys::{
    CreatedDevApiKey, DevApiKey, KeyFieldError, MAX_KEYS_PER_USER, parse_key_name, parse_scopes,
};
use crate::domain::time;
use crate::store::{NewApiKey, Store, StoreError};

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key request: {0:?}")]
    Field(KeyFieldError),
    #[error("the user already has {MAX_KEYS_PER_USER} API keys")]
    LimitReached,
    /// Missing, or owned by another user: never reveal which.
    #[error("API key not found")]
    NotFound,
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
}

impl From<KeyFieldError> for KeyError {
    fn from(error: KeyFieldError) -> Self {
        KeyError::Field(error)
    }
}

pub type KeyResult<T> = Result<T, KeyError>;

pub async fn create_key(
    store: &dyn Store,
    user_id: &str,
    name: &str,
    scopes: Option<&[String]>,
) -> KeyResult<CreatedDevApiKey> {
    let name = parse_key_name(name)?;
    let scopes = parse_scopes(scopes)?;
    let generated = generate_dev_key();
    let new_key = NewApiKey {
        id: new_id(),
        user_id: user_id.to_string(),
        name,
        key_hash: generated.hash,
        key_prefix: generated.display_prefix,
        scopes,
        created_at: time::now(),
    };
    match store.create_key(new_key, MAX_KEYS_PER_USER).await {
        Ok(info) => Ok(CreatedDevApiKey {
            info,
            raw_key: generated.raw,
        }),
        Err(StoreError::LimitReached) => Err(KeyError::LimitReached),
        Err(other) => Err(other.into()),
    }
}

pub async fn rotate_key(
    store: &dyn Store,
    user_id: &str,
    key_id: &str,
) -> KeyResult<CreatedDevApiKey> {
    if !is_plausible_id(key_id) {
        return Err(KeyError::NotFound);
    }
    let generated = generate_dev_key();
    let info = store
        .rotate_key(user_id, key_id, &generated.hash, &generated.display_prefix)
        .await?
        .ok_or(KeyError::NotFound)?;
    Ok(CreatedDevApiKey {
        info,
        raw_key: generated.raw,
    })
}

pub async fn revoke_key(store: &dyn Store, user_id: &str, key_id: &str) -> KeyResult<()> {
    if is_plausible_id(key_id) && store.delete_key(user_id, key_id).await? {
        Ok(())
    } else {
        Err(KeyError::NotFound)
    }
}

pub async fn list_keys(store: &dyn Store, user_id: &str) -> KeyResult<Vec<DevApiKey>> {
    Ok(store.list_keys(user_id).await?)
}
