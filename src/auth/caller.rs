//! The authenticated caller, put in the request by the middleware, and the extractors that read
//! it. `Authorized<scopes::MemoriesRead>` in a handler's arguments is the scope check: it runs
//! after authentication and rate limiting, before the body is read (API.md §1.1 order).

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::domain::keys::DevApiKey;
use crate::domain::scope::Scope;
use crate::domain::users::User;
use crate::error::ApiError;

/// A request authenticated with a developer key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub key: DevApiKey,
}

/// A request authenticated with an account token (key management only).
#[derive(Debug, Clone)]
pub struct AccountCaller {
    pub user: User,
}

fn from_extensions<T: Clone + Send + Sync + 'static>(parts: &Parts) -> Result<T, ApiError> {
    parts.extensions.get::<T>().cloned().ok_or_else(|| {
        // A route without its authentication layer: a wiring bug, never the client's fault.
        ApiError::internal(anyhow::anyhow!(
            "route is missing its authentication middleware"
        ))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        from_extensions(parts)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AccountCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        from_extensions(parts)
    }
}

/// Names the scope a route requires, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    const SCOPE: Scope;
}

/// A developer-key caller holding the scope `S`; otherwise 403.
#[derive(Debug, Clone)]
pub struct Authorized<S: RequiredScope> {
    pub caller: Caller,
    scope: PhantomData<S>,
}

impl<S: RequiredScope> Deref for Authorized<S> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<S: RequiredScope, St: Send + Sync> FromRequestParts<St> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, ApiError> {
        let caller: Caller = from_extensions(parts)?;
        if !caller.key.scopes.contains(S::SCOPE) {
            return Err(ApiError::forbidden_scope(S::SCOPE.as_str()));
        }
        Ok(Authorized {
            caller,
            scope: PhantomData,
        })
    }
}

/// One marker type per scope, for `Authorized<...>`.
pub mod scopes {
    use super::{RequiredScope, Scope};

    macro_rules! scope_markers {
        ($($marker:ident),* $(,)?) => {
            $(
                #[derive(Debug, Clone, Copy)]
                pub struct $marker;
                impl RequiredScope for $marker {
                    const SCOPE: Scope = Scope::$marker;
                }
            )*
        };
    }

    scope_markers!(
        ConversationsRead,
        ConversationsWrite,
        MemoriesRead,
        MemoriesWrite,
        ActionItemsRead,
        ActionItemsWrite,
        GoalsRead,
        GoalsWrite,
        IngestWrite,
        WebhooksRead,
        WebhooksWrite,
    );
}
