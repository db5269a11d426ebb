//! `/api/v1/users`: admins manage accounts. Reads come from the `users` read model;
//! writes are `User` commands. Usernames and emails are claimed in `user_handles`
//! before the command, and password hashes live in `credentials`, never in events.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dcp_aggregates::user::{validate_email, User, UserCommand};
use dcp_aggregates::Role;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth_routes::revoke_sessions;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::positions::{wants_minimal, Positioned, PREFERENCE_APPLIED, SESSIONS, USERS};
use super::AppState;
use crate::auth::password::check_policy;
use crate::commands::{CommandError, CommandMeta};
use crate::event_store::SideWrite;
use dcp_aggregates::session::RevocationReason;

mod accounts;

pub use accounts::{claim_handles, create_account, handle, release_handles, NewUser};
use accounts::{other_active_admins, with_admin_lock};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// An account as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    pub is_active: bool,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// The aggregate's sequence number: how many changes it has seen.
    pub version: i64,
}

const USER_COLUMNS: &str =
    "id, username, email, full_name, role, is_active, must_change_password, created_at, updated_at, last_login_at, version";

/// One user from the read model.
pub async fn find_user(pool: &PgPool, id: Uuid) -> Result<Option<UserView>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    /// Only users with this role (`admin`, `operator`, `viewer`).
    #[param(value_type = Option<String>)]
    pub role: Option<Role>,
    /// Only active (true) or deactivated (false) users.
    pub active: Option<bool>,
    /// Case-insensitive search in username, email and full name.
    pub q: Option<String>,
    /// Page size (1–500, default 100).
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// List accounts.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, body = UserList), (status = 403, description = "not an admin")))]
async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<UserListQuery>,
) -> ApiResult<ApiJson<UserList>> {
    state.settle_request(&headers, USERS).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::validation(
            "offset",
            "offset must not be negative",
        ));
    }
    let pattern = query.q.as_deref().map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let filter = "($1::text IS NULL OR role = $1) AND ($2::bool IS NULL OR is_active = $2) AND \
                  ($3::text IS NULL OR username ILIKE $3 OR email ILIKE $3 OR full_name ILIKE $3)";
    let role = query.role.map(|r| r.as_str().to_string());
    let items: Vec<UserView> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY lower(username) LIMIT $4 OFFSET $5"
    ))
    .bind(&role)
    .bind(query.active)
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM users WHERE {filter}"))
        .bind(&role)
        .bind(query.active)
        .bind(&pattern)
        .fetch_one(&state.pool)
        .await?;
    Ok(ApiJson(UserList {
        items,
        total,
        limit,
        offset,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub email: String,
    pub full_name: String,
    /// `admin`, `operator` or `viewer`.
    #[schema(value_type = String)]
    pub role: Role,
    /// The initial password (8–256 characters).
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// Ask for a new password at first login (default true).
    pub must_change_password: Option<bool>,
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserView), (status = 400), (status = 409, description = "username or email taken")))]
async fn create_user(
    State(state): State<AppState>,
    meta: CommandMeta,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<Response> {
    let new = NewUser {
        username: body.username,
        email: body.email,
        full_name: body.full_name,
        role: body.role,
        password: body.password,
        must_change_password: body.must_change_password.unwrap_or(true),
    };
    let (user_id, cursor) = create_account(&state, new, &meta).await?;
    let location = (
        header::LOCATION.as_str(),
        format!("/api/v1/users/{user_id}"),
    );
    if wants_minimal(&headers) {
        let applied = (PREFERENCE_APPLIED.0, PREFERENCE_APPLIED.1.to_string());
        let position = cursor.map(|c| c.position);
        return Ok(
            Positioned(position, (StatusCode::CREATED, [location, applied])).into_response(),
        );
    }
    let position = state.settle(cursor, USERS).await?;
    let user = find_user(&state.pool, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Positioned(position, (StatusCode::CREATED, [location], ApiJson(user))).into_response())
}

/// One account.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404)))]
async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<UserView>> {
    state.settle_request(&headers, USERS).await?;
    find_user(&state.pool, id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("user"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub email: Option<String>,
    pub full_name: Option<String>,
    /// `admin`, `operator` or `viewer`.
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// false deactivates, true reactivates.
    pub is_active: Option<bool>,
    /// A new password set by the admin; the user must change it at next login.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
}

/// Change an account: profile, role, activation, password — all at once or not at all.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path), ("Prefer" = Option<String>, Header, description = "return=minimal: answer 204 once committed, without waiting for the read model")),
    request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), (status = 204, description = "with Prefer: return=minimal"), (status = 404), (status = 409)))]
async fn update_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> ApiResult<Response> {
    state.settle_request(&headers, USERS).await?;
    let current = find_user(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if let Some(email) = &body.email {
        validate_email(email).map_err(|e| ApiError::from(CommandError::Rejected(e)))?;
    }
    if let Some(password) = &body.password {
        check_policy(
            secrecy::ExposeSecret::expose_secret(password),
            &current.username,
        )
        .map_err(|message| ApiError::validation("password", message))?;
    }
    let new_email = body
        .email
        .clone()
        .filter(|e| !e.eq_ignore_ascii_case(&current.email));
    let new_hash = match &body.password {
        Some(password) => Some(state.hasher.hash(password).await?),
        None => None,
    };
    // What must commit with the events: the new hash, and the release of the old email.
    let mut side_writes = Vec::new();
    if let Some(hash) = &new_hash {
        side_writes.push(SideWrite::SetPasswordHash {
            user_id: id,
            hash: hash.clone(),
        });
    }
    if new_email.is_some() {
        side_writes.push(SideWrite::ReleaseHandles {
            user_id: id,
            handles: vec![handle("email", &current.email)],
        });
    }
    if let Some(email) = &new_email {
        claim_handles(&state.pool, id, &[("email", email.as_str())]).await?;
    }
    // Any change of role or activation is decided under the admin lock, on a read model
    // that every earlier such change has settled into: deciding from a read made before
    // the lock could let two changes remove the last admin between them.
    let may_remove_admin = body.role.is_some() || body.is_active.is_some();
    let minimal = wants_minimal(&headers);
    let position = with_admin_lock(&state, may_remove_admin, minimal, async {
        let command = UserCommand::Update {
            email: body.email.clone(),
            full_name: body.full_name.clone(),
            role: body.role,
            active: body.is_active,
            password_reset: new_hash.is_some(),
            actor_id: Some(principal.user_id),
            // Counting scans the users; a profile-only change cannot remove an admin.
            other_active_admins: match may_remove_admin {
                true => other_active_admins(&state.pool, id).await?,
                false => u64::MAX,
            },
            at: Utc::now(),
        };
        state
            .commands
            .execute_with::<User>(&id.to_string(), command, &meta, side_writes)
            .await
            .map_err(ApiError::from)
    })
    .await;
    let position = match position {
        Ok(position) => position,
        Err(error) => {
            if let Some(email) = &new_email {
                let _ = release_handles(&state.pool, id, &[("email", email.as_str())]).await;
            }
            return Err(error);
        }
    };
    // A deactivated account, or one whose password an admin reset, keeps no session: a
    // reactivation must not bring an old (possibly stolen) session back.
    let revoke = match (body.is_active, new_hash.is_some()) {
        (Some(false), _) => Some(RevocationReason::AccountDeactivated),
        (_, true) => Some(RevocationReason::PasswordChanged),
        _ => None,
    };
    if let Some(reason) = revoke {
        let revoked =
            revoke_sessions(&state.pool, &state.commands, id, None, reason, &meta).await?;
        if !minimal {
            state.settle(revoked, SESSIONS).await?;
        }
    }
    if minimal {
        return Ok(
            Positioned(position, (StatusCode::NO_CONTENT, [PREFERENCE_APPLIED])).into_response(),
        );
    }
    let user = find_user(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Positioned(position, ApiJson(user)).into_response())
}

/// Delete an account for good.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)))]
async fn delete_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    state.settle_request(&headers, USERS).await?;
    find_user(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let position = with_admin_lock(&state, true, wants_minimal(&headers), async {
        let command = UserCommand::Delete {
            actor_id: Some(principal.user_id),
            other_active_admins: other_active_admins(&state.pool, id).await?,
            at: Utc::now(),
        };
        // Handles, hash and refresh tokens go in the same transaction as `UserDeleted`.
        let side_writes = vec![SideWrite::ForgetUser { user_id: id }];
        state
            .commands
            .execute_with::<User>(&id.to_string(), command, &meta, side_writes)
            .await
            .map_err(ApiError::from)
    })
    .await?;
    let revoked = revoke_sessions(
        &state.pool,
        &state.commands,
        id,
        None,
        RevocationReason::AccountDeleted,
        &meta,
    )
    .await?;
    if !wants_minimal(&headers) {
        state.settle(revoked, SESSIONS).await?;
    }
    Ok(Positioned(position, StatusCode::NO_CONTENT))
}
