//! Images: listed live from each engine, pulled in the background, removed (a tag or the
//! image itself).

use std::collections::BTreeMap;

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};
use chrono::{DateTime, Utc};
use dcp_aggregates::image::{Image, ImageCommand};
use dcp_aggregates::resource_key;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::operation::{docker_result, image_failed, Operation};
use super::pull;
use super::{AcceptedOperation, ResourceOutcome, Resources, ResourcesError};
use crate::commands::CommandMeta;
use crate::docker::fanout::{hosts_of, list_on, HostAnswer};
use crate::docker::policy::validate_image;
use crate::docker::{normalize_reference, DockerError, DockerHosts};

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
    pub hosts: Vec<HostAnswer>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImageListQuery {
    /// The Docker host (id or name); default: every host at once.
    pub host: Option<String>,
    /// Case-insensitive part of a tag.
    pub reference: Option<String>,
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

impl Resources {
    /// The images of `query.host`, or of every host at once, newest first.
    #[tracing::instrument(skip_all, fields(host = query.host.as_deref()), err(level = "debug"))]
    pub async fn list_images(&self, query: ImageListQuery) -> Result<ImageList, ResourcesError> {
        let host = hosts_of(self.hosts.as_ref(), query.host.as_deref())?;
        let (images, hosts) = list_on(self.hosts.as_ref(), host, |host, docker| async move {
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
        Ok(ImageList {
            items: views,
            hosts,
        })
    }

    /// Records the pull request and starts the pull in the background; its progress and
    /// outcome are the operation's.
    #[tracing::instrument(skip_all, fields(image = %request.image), err(level = "debug"))]
    pub async fn pull_image(
        &self,
        request: PullRequest,
        meta: &CommandMeta,
    ) -> Result<AcceptedOperation, ResourcesError> {
        let reference = pull_reference(&request)?;
        let host = self.hosts.enabled_host(request.host.as_deref())?;
        let host = host.as_str();
        // Fails fast on an unknown or unreachable host, before anything is recorded.
        self.hosts.ping(host).await?;
        let reference = normalize_reference(&reference);
        let op_id = Uuid::now_v7();
        let aggregate_id = resource_key("image", host, &reference).to_string();
        let meta = meta.for_operation(op_id);
        let request = ImageCommand::RequestPull {
            op_id,
            host: host.to_string(),
            reference: reference.clone(),
            at: Utc::now(),
        };
        let position = self
            .commands
            .execute::<Image>(&aggregate_id, request, &meta)
            .await?
            .map(|cursor| cursor.position);
        let service = self.clone();
        let task_host = host.to_string();
        let task_reference = reference.clone();
        // Tracked: a stopping server lets it finish (see `Application::run_until_stopped`).
        self.background.spawn(async move {
            let operation = Operation::<Image> {
                commands: &service.commands,
                aggregate_id,
                op_id,
                meta,
                failed: image_failed,
            };
            let outcome = pull::run(
                &service.hosts,
                service.reads.pool(),
                &task_host,
                &task_reference,
                op_id,
            )
            .await;
            let command = match outcome {
                Ok(pulled) => ImageCommand::RecordPulled {
                    op_id,
                    image_id: pulled.image_id,
                    digest: pulled.digest,
                    layers: pulled.layers,
                    at: Utc::now(),
                },
                Err(pull::PullError::Unavailable(message)) => {
                    // The engine went away mid-pull: the reconciler settles it later.
                    tracing::warn!(%op_id, %message, "image pull left pending");
                    return;
                }
                Err(pull::PullError::Failed { code, message }) => {
                    image_failed(op_id, code.as_str().to_string(), message)
                }
            };
            if let Err(error) = operation.record_outcome(command).await {
                tracing::error!(%op_id, %error, "Failed to record the outcome of an image pull");
            }
        });
        Ok(AcceptedOperation {
            operation_id: op_id,
            action: "image.pull".into(),
            status: "pending".into(),
            host: host.to_string(),
            resource: reference,
            location: format!("/api/v1/operations/{op_id}"),
            position,
        })
    }

    /// Removes an image by id, id prefix or reference.
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local"), reference = %reference), err(level = "debug"))]
    pub async fn remove_image(
        &self,
        host: Option<&str>,
        reference: &str,
        force: bool,
        meta: &CommandMeta,
    ) -> Result<ResourceOutcome, ResourcesError> {
        check_image_reference(reference)?;
        let host = self.hosts.enabled_host(host)?;
        let host = host.as_str();
        let docker = self.hosts.client(host)?;
        let found = docker.inspect_image(reference).await.map_err(|error| {
            ResourcesError::lookup("image", DockerError::from_bollard(host, error))
        })?;
        let image_id = found.id.clone().unwrap_or_default();
        // Docker resolves a name before an id prefix: `cafe` is the tag `cafe:latest` if the
        // image has it, even when the id starts with `cafe`.
        let tagged = found
            .repo_tags
            .iter()
            .flatten()
            .any(|tag| *tag == normalize_reference(reference));
        let by_id = !tagged
            && !reference.contains('@')
            && image_id
                .trim_start_matches("sha256:")
                .starts_with(reference.trim_start_matches("sha256:"));
        // The aggregate of the tag removed, or of the image itself when removed by id.
        let key = if by_id {
            image_id.clone()
        } else {
            normalize_reference(reference)
        };
        let operation = Operation::<Image>::new(
            &self.commands,
            resource_key("image", host, &key).to_string(),
            meta,
            image_failed,
        );
        let op_id = operation.op_id;
        let request = ImageCommand::RequestRemove {
            op_id,
            host: host.to_string(),
            reference: key.clone(),
            image_id: image_id.clone(),
            force,
            at: Utc::now(),
        };
        let target = if by_id { image_id.clone() } else { key.clone() };
        let call = async {
            docker_result(
                host,
                docker
                    .remove_image(
                        &target,
                        Some(RemoveImageOptions {
                            force,
                            ..Default::default()
                        }),
                        None,
                    )
                    .await,
            )
        };
        let (_, position) = operation
            .run(request, call, |items| ImageCommand::RecordRemoved {
                op_id,
                deleted: items.iter().filter_map(|i| i.deleted.clone()).collect(),
                untagged: items.iter().filter_map(|i| i.untagged.clone()).collect(),
                at: Utc::now(),
            })
            .await?;
        Ok(ResourceOutcome {
            operation_id: op_id,
            action: "image.delete".into(),
            status: "succeeded".into(),
            host: host.to_string(),
            resource: key,
            docker_id: Some(image_id),
            position,
        })
    }
}

/// The reference a pull asks for: the image with its tag, given in one or the other.
fn pull_reference(request: &PullRequest) -> Result<String, ResourcesError> {
    let reference = match &request.tag {
        Some(tag) => {
            let last = request.image.rsplit('/').next().unwrap_or_default();
            if request.image.contains('@') || last.contains(':') {
                return Err(ResourcesError::Invalid {
                    field: "tag",
                    message: "give the tag either in image or in tag, not both".into(),
                });
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
        return Err(ResourcesError::Invalid {
            field,
            message: "image must be a reference like name:tag or registry:5000/team/name@sha256:…"
                .into(),
        });
    }
    Ok(reference)
}

/// An image id, id prefix, or a reference.
fn check_image_reference(reference: &str) -> Result<(), ResourcesError> {
    let id_like = reference
        .strip_prefix("sha256:")
        .unwrap_or(reference)
        .chars()
        .all(|c| c.is_ascii_hexdigit());
    if !(id_like && !reference.is_empty() && reference.len() <= 71)
        && validate_image(reference).is_err()
    {
        return Err(ResourcesError::Invalid {
            field: "id",
            message: "an image id, id prefix or reference".into(),
        });
    }
    Ok(())
}
