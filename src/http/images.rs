//! `/api/v1/images`: images live from each Docker engine.

use std::collections::BTreeMap;

use axum::extract::State;
use bollard::query_parameters::ListImagesOptions;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::containers::host_of;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::positions::Positioned;
use super::AppState;
use crate::commands::CommandMeta;
use crate::docker::policy::validate_image;
use crate::docker::DockerError;
use crate::resources::{AcceptedOperation, ResourceOutcome};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_images))
        .routes(routes!(pull_image))
        .routes(routes!(delete_image))
}

/// An image as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageView {
    pub host: String,
    /// `sha256:…`
    pub id: String,
    /// The first 12 hex digits of the id.
    pub short_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// Bytes.
    pub size: i64,
    /// Containers using the image (-1 when Docker did not count).
    pub containers: i64,
    pub labels: BTreeMap<String, String>,
}

/// Images, with how each host answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageList {
    pub items: Vec<ImageView>,
    /// Without `host`, every host is listed at once; one that failed is `unreachable` here.
    pub hosts: Vec<crate::docker::fanout::HostAnswer>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImageListQuery {
    /// The Docker host (id or name); default: every host at once.
    pub host: Option<String>,
    /// Case-insensitive part of a tag.
    pub reference: Option<String>,
}

/// List images.
#[utoipa::path(get, path = "/api/v1/images", tag = "images", params(ImageListQuery),
    responses((status = 200, body = ImageList), (status = 502), (status = 503)))]
async fn list_images(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ImageListQuery>,
) -> ApiResult<ApiJson<ImageList>> {
    let host = crate::docker::fanout::hosts_of(&state, &query.host)?;
    let (images, hosts) = crate::docker::fanout::list_on(&state, host, |host, docker| async move {
        let images = docker
            .list_images(Some(ListImagesOptions::default()))
            .await
            .map_err(|error| DockerError::from_bollard(&host, error))?;
        Ok(images
            .into_iter()
            .map(|image| (host.clone(), image))
            .collect::<Vec<_>>())
    })
    .await?;
    let wanted = query.reference.as_deref().map(str::to_lowercase);
    let mut views: Vec<ImageView> = images
        .into_iter()
        .filter(|(_, image)| {
            wanted.as_deref().is_none_or(|w| {
                image
                    .repo_tags
                    .iter()
                    .any(|tag| tag.to_lowercase().contains(w))
            })
        })
        .map(|(host, image)| ImageView {
            host,
            short_id: image
                .id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect(),
            id: image.id,
            repo_tags: image.repo_tags,
            repo_digests: image.repo_digests,
            created_at: DateTime::from_timestamp(image.created, 0),
            size: image.size,
            containers: image.containers,
            labels: image.labels.into_iter().collect(),
        })
        .collect();
    views.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.host.cmp(&b.host))
    });
    Ok(ApiJson(ImageList {
        items: views,
        hosts,
    }))
}

/// `POST /api/v1/images/pull`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// Repository, e.g. `nginx` or `registry.local:5000/team/app` (a tag or digest may be
    /// included instead of `tag`).
    pub image: String,
    /// Tag (default `latest`).
    pub tag: Option<String>,
    /// The Docker host (default `local`).
    pub host: Option<String>,
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
    let reference = match &request.tag {
        Some(tag) => {
            let last = request.image.rsplit('/').next().unwrap_or_default();
            if request.image.contains('@') || last.contains(':') {
                return Err(ApiError::validation(
                    "tag",
                    "give the tag either in image or in tag, not both",
                ));
            }
            format!("{}:{tag}", request.image)
        }
        None => request.image.clone(),
    };
    if validate_image(&reference).is_err() {
        let field = if request.tag.is_some() && validate_image(&request.image).is_ok() {
            "tag"
        } else {
            "image"
        };
        return Err(ApiError::validation(
            field,
            "image must be a reference like name:tag or registry:5000/team/name@sha256:…",
        ));
    }
    let host = host_of(&state, &request.host)?;
    let accepted = crate::resources::pull_image(&state, &host, &reference, &meta).await?;
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
    let id_like = reference
        .strip_prefix("sha256:")
        .unwrap_or(&reference)
        .chars()
        .all(|c| c.is_ascii_hexdigit());
    if !(id_like && !reference.is_empty() && reference.len() <= 71)
        && validate_image(&reference).is_err()
    {
        return Err(ApiError::validation(
            "id",
            "an image id, id prefix or reference",
        ));
    }
    let host = host_of(&state, &query.host)?;
    let outcome = crate::resources::remove_image(
        &state,
        &host,
        &reference,
        query.force.unwrap_or(false),
        &meta,
    )
    .await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}
