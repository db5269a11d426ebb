//! `/api/v1/images`: images live from each Docker engine.

use std::collections::BTreeMap;

use axum::extract::State;
use bollard::query_parameters::ListImagesOptions;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::containers::host_of;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::docker::DockerError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_images))
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImageListQuery {
    /// The Docker host (default `local`).
    pub host: Option<String>,
    /// Case-insensitive part of a tag.
    pub reference: Option<String>,
}

/// List images.
#[utoipa::path(get, path = "/api/v1/images", tag = "images", params(ImageListQuery),
    responses((status = 200, body = [ImageView]), (status = 502), (status = 503)))]
async fn list_images(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ImageListQuery>,
) -> ApiResult<ApiJson<Vec<ImageView>>> {
    let host = host_of(&state, &query.host)?;
    let docker = state.docker.client(&host)?;
    let images = docker
        .list_images(Some(ListImagesOptions::default()))
        .await
        .map_err(|error| DockerError::from_bollard(&host, error))?;
    let wanted = query.reference.as_deref().map(str::to_lowercase);
    let mut views: Vec<ImageView> = images
        .into_iter()
        .filter(|image| {
            wanted.as_deref().is_none_or(|w| {
                image
                    .repo_tags
                    .iter()
                    .any(|tag| tag.to_lowercase().contains(w))
            })
        })
        .map(|image| ImageView {
            host: host.clone(),
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
    });
    Ok(ApiJson(views))
}
