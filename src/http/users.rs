//! `/api/v1/users`: admins manage accounts; the work is the accounts service's
//! ([`crate::accounts`]).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::positions::{answer_wanted, settle_request, Positioned, PREFERENCE_APPLIED};
use crate::accounts::{
    CreateUserRequest, NewUser, UpdateUserRequest, UserList, UserListQuery, UserView,
};
use crate::commands::CommandMeta;
use crate::read_models::USERS;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// List accounts.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, body = UserList), (status = 403, description = "not an admin")))]
async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<UserListQuery>,
) -> ApiResult<ApiJson<UserList>> {
    settle_request(&state.reads, &headers, USERS).await?;
    Ok(ApiJson(state.accounts.list_users(query).await?))
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
    let (user_id, position, user) = state
        .accounts
        .create_user(new, &meta, answer_wanted(&headers))
        .await?;
    let location = (
        header::LOCATION.as_str(),
        format!("/api/v1/users/{user_id}"),
    );
    Ok(match user {
        Some(user) => {
            Positioned(position, (StatusCode::CREATED, [location], ApiJson(user))).into_response()
        }
        None => {
            let applied = (PREFERENCE_APPLIED.0, PREFERENCE_APPLIED.1.to_string());
            Positioned(position, (StatusCode::CREATED, [location, applied])).into_response()
        }
    })
}

/// One account.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404)))]
async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<UserView>> {
    settle_request(&state.reads, &headers, USERS).await?;
    Ok(ApiJson(state.accounts.user(id).await?))
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
    settle_request(&state.reads, &headers, USERS).await?;
    let answer = answer_wanted(&headers);
    let (position, user) = state
        .accounts
        .update_user(principal.user_id, id, body, &meta, answer)
        .await?;
    Ok(match user {
        Some(user) => Positioned(position, ApiJson(user)).into_response(),
        None => {
            Positioned(position, (StatusCode::NO_CONTENT, [PREFERENCE_APPLIED])).into_response()
        }
    })
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
    settle_request(&state.reads, &headers, USERS).await?;
    let position = state
        .accounts
        .delete_user(principal.user_id, id, &meta, answer_wanted(&headers))
        .await?;
    Ok(Positioned(position, StatusCode::NO_CONTENT))
}
