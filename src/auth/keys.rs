//! Creating, rotating and revoking developer keys, shared by the HTTP routes and the CLI.

use crate::domain::credentials::generate_dev_key;
use crate::domain::ids::{is_plausible_id, new_id};
use crate::domain::keys::{
    CreatedDevApiKey, DevApiKey, MAX_KEYS_PER_USER, parse_key_name, parse_scopes,
};
use crate::domain::time;
use crate::error::{ApiError, ApiResult};
use crate::store::{NewApiKey, Store, StoreError};

const KEY_RESOURCE: &str = "API key";

pub async fn create_key(
    store: &dyn Store,
    user_id: &str,
    name: &str,
    scopes: Option<&[String]>,
) -> ApiResult<CreatedDevApiKey> {
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
        Err(StoreError::LimitReached) => Err(ApiError::unprocessable(format!(
            "Maximum {MAX_KEYS_PER_USER} API keys per user"
        ))),
        Err(other) => Err(other.into()),
    }
}

pub async fn rotate_key(
    store: &dyn Store,
    user_id: &str,
    key_id: &str,
) -> ApiResult<CreatedDevApiKey> {
    if !is_plausible_id(key_id) {
        return Err(ApiError::not_found(KEY_RESOURCE));
    }
    let generated = generate_dev_key();
    let info = store
        .rotate_key(user_id, key_id, &generated.hash, &generated.display_prefix)
        .await?
        .ok_or_else(|| ApiError::not_found(KEY_RESOURCE))?;
    Ok(CreatedDevApiKey {
        info,
        raw_key: generated.raw,
    })
}

pub async fn revoke_key(store: &dyn Store, user_id: &str, key_id: &str) -> ApiResult<()> {
    if is_plausible_id(key_id) && store.delete_key(user_id, key_id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(KEY_RESOURCE))
    }
}

pub async fn list_keys(store: &dyn Store, user_id: &str) -> ApiResult<Vec<DevApiKey>> {
    Ok(store.list_keys(user_id).await?)
}
