//! `/api/v1/images`: images live from each Docker engine, pulls and removals; the work is
//! the resources service's ([`crate::resources`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::positions::Positioned;
use crate::commands::CommandMeta;
use crate::resources::{
    AcceptedOperation, ImageList, ImageListQuery, PullRequest, ResourceOutcome,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_images))
        .routes(routes!(pull_image))
        .routes(routes!(delete_image))
}

/// List images.
#[utoipa::path(get, path = "/api/v1/images", tag = "images", params(ImageListQuery),
    responses((status = 200, body = ImageList), (status = 502), (status = 503)))]
async fn list_images(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ImageListQuery>,
) -> ApiResult<ApiJson<ImageList>> {
    Ok(ApiJson(state.resources.list_images(query).await?))
}

/// Pull an image. Answers 202 at once with the operation id; the pull's per-layer
/// progress and its outcome are at `GET /api/v1/operations/{id}`.
#[utoipa::path(post, path = "/api/v1/images/pull", tag = "images", request_body = PullRequest,
    responses((status = 202, body = AcceptedOperation), (status = 400), (status = 404), (status = 503)))]
async fn pull_image(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiJson(request): ApiJson<PullRequest>,
) -> ApiResult<Response> {
    let accepted = state.resources.pull_image(request, &meta).await?;
    let location = accepted.location.clone();
    Ok(Positioned(
        accepted.position,
        (
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            ApiJson(accepted),
        ),
    )
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteImageQuery {
    /// The Docker host (default `local`).
    pub host: Option<String>,
    /// Remove it even if containers use it or it has several tags (default false).
    pub force: Option<bool>,
}

/// Remove an image (or one of its tags).
#[utoipa::path(delete, path = "/api/v1/images/{id}", tag = "images",
    params(("id" = String, Path, description = "image id, unique id prefix, or a reference such as `app:1` (percent-encode '/' as %2F)"), DeleteImageQuery),
    responses((status = 200, body = ResourceOutcome), (status = 400), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn delete_image(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteImageQuery>,
) -> ApiResult<Response> {
    let outcome = state
        .resources
        .remove_image(
            query.host.as_deref(),
            &reference,
            query.force.unwrap_or(false),
            &meta,
        )
        .await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}
