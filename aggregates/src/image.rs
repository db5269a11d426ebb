//! The `Image` aggregate: pulls and removals dcp performs, and pulls and deletions Docker
//! reports made outside it.
//!
//! One aggregate per `(host, reference)` (see [`crate::resource_key`]): a tag such as
//! `registry:5000/team/app:1.4` for pulls and removals by tag, the image id `sha256:…`
//! for an image removed by id or deleted outside dcp.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::operation::{
    docker_resource_event, validate_docker_action, DockerActivity, OperationEventTypes,
    OperationPhase, OperationSlot, ResourceError,
};

/// What the pending operation does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageOperation {
    Pull,
    Remove,
}

impl ImageOperation {
    /// The verb in audit actions: `image.<verb>`.
    pub fn verb(&self) -> &'static str {
        match self {
            ImageOperation::Pull => "pull",
            ImageOperation::Remove => "delete",
        }
    }
}

/// Commands accepted by [`Image`].
#[derive(Debug, Clone, PartialEq)]
pub enum ImageCommand {
    /// Pull `reference` (already validated) on `host`.
    RequestPull {
        op_id: Uuid,
        host: String,
        reference: String,
        at: DateTime<Utc>,
    },
    /// Remove the image (the caller found it on the engine).
    RequestRemove {
        op_id: Uuid,
        host: String,
        reference: String,
        image_id: String,
        force: bool,
        at: DateTime<Utc>,
    },
    RecordPulled {
        op_id: Uuid,
        image_id: String,
        digest: Option<String>,
        layers: u32,
        at: DateTime<Utc>,
    },
    RecordRemoved {
        op_id: Uuid,
        deleted: Vec<String>,
        untagged: Vec<String>,
        at: DateTime<Utc>,
    },
    RecordFailed {
        op_id: Uuid,
        code: String,
        message: String,
        at: DateTime<Utc>,
    },
    /// Docker reported a change dcp did not make.
    Observe {
        host: String,
        reference: String,
        action: String,
        time_nano: i64,
        attributes: BTreeMap<String, String>,
        at: DateTime<Utc>,
    },
}

/// Events emitted by [`Image`]. Persisted names never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImageEvent {
    ImagePullRequested {
        op_id: Uuid,
        host: String,
        reference: String,
        requested_at: DateTime<Utc>,
    },
    ImagePulled {
        op_id: Uuid,
        image_id: String,
        digest: Option<String>,
        /// Layers the pull reported (downloaded or already present).
        layers: u32,
        pulled_at: DateTime<Utc>,
    },
    ImageRemoveRequested {
        op_id: Uuid,
        host: String,
        reference: String,
        image_id: String,
        force: bool,
        requested_at: DateTime<Utc>,
    },
    ImageRemoved {
        op_id: Uuid,
        deleted: Vec<String>,
        untagged: Vec<String>,
        removed_at: DateTime<Utc>,
    },
    OperationFailed {
        op_id: Uuid,
        operation: String,
        code: String,
        message: String,
        failed_at: DateTime<Utc>,
    },
    /// A Docker event for this image that no dcp operation explains.
    ImageObserved {
        host: String,
        reference: String,
        action: String,
        time_nano: i64,
        attributes: BTreeMap<String, String>,
        observed_at: DateTime<Utc>,
    },
}

impl DomainEvent for ImageEvent {
    fn event_type(&self) -> String {
        match self {
            ImageEvent::ImagePullRequested { .. } => "ImagePullRequested",
            ImageEvent::ImagePulled { .. } => "ImagePulled",
            ImageEvent::ImageRemoveRequested { .. } => "ImageRemoveRequested",
            ImageEvent::ImageRemoved { .. } => "ImageRemoved",
            ImageEvent::OperationFailed { .. } => "OperationFailed",
            ImageEvent::ImageObserved { .. } => "ImageObserved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::upcasting::version_of(Image::TYPE, &self.event_type())
    }
}

impl ImageEvent {
    /// The image's operation events by name (see [`OperationEventTypes`]).
    pub const OPERATION_TYPES: OperationEventTypes = OperationEventTypes {
        requests: &[
            ("ImagePullRequested", "pull"),
            ("ImageRemoveRequested", "delete"),
        ],
        outcomes: &["ImagePulled", "ImageRemoved", "OperationFailed"],
    };

    /// What this event is to the image's operations.
    fn activity(&self) -> DockerActivity<'_> {
        use ImageEvent as E;
        use OperationPhase::{Failed, Requested, Succeeded};
        let (op_id, verb, phase) = match self {
            E::ImagePullRequested { op_id, .. } => (op_id, "pull", Requested),
            E::ImagePulled { op_id, .. } => (op_id, "pull", Succeeded),
            E::ImageRemoveRequested { op_id, .. } => (op_id, "delete", Requested),
            E::ImageRemoved { op_id, .. } => (op_id, "delete", Succeeded),
            E::OperationFailed {
                op_id, operation, ..
            } => (op_id, operation.as_str(), Failed),
            E::ImageObserved { .. } => return DockerActivity::observed(Image::TYPE),
        };
        DockerActivity::step(Image::TYPE, *op_id, verb, phase)
    }
}

docker_resource_event!(ImageEvent);

/// The state the aggregate of an image (one per host and reference) decides from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    host: String,
    reference: String,
    image_id: Option<String>,
    operations: OperationSlot<ImageOperation>,
}

impl Image {
    fn decide(&self, command: ImageCommand) -> Result<Vec<ImageEvent>, ResourceError> {
        let event = match command {
            ImageCommand::RecordPulled {
                op_id,
                image_id,
                digest,
                layers,
                at,
            } => match self.operations.outcome_for(op_id)? {
                None => return Ok(vec![]),
                Some(ImageOperation::Pull) => ImageEvent::ImagePulled {
                    op_id,
                    image_id,
                    digest,
                    layers,
                    pulled_at: at,
                },
                Some(_) => return Err(ResourceError::UnknownOperation(op_id)),
            },
            ImageCommand::RecordRemoved {
                op_id,
                deleted,
                untagged,
                at,
            } => match self.operations.outcome_for(op_id)? {
                None => return Ok(vec![]),
                Some(ImageOperation::Remove) => ImageEvent::ImageRemoved {
                    op_id,
                    deleted,
                    untagged,
                    removed_at: at,
                },
                Some(_) => return Err(ResourceError::UnknownOperation(op_id)),
            },
            ImageCommand::RecordFailed {
                op_id,
                code,
                message,
                at,
            } => match self.operations.outcome_for(op_id)? {
                None => return Ok(vec![]),
                Some(operation) => ImageEvent::OperationFailed {
                    op_id,
                    operation: operation.verb().to_string(),
                    code,
                    message,
                    failed_at: at,
                },
            },
            ImageCommand::Observe {
                host,
                reference,
                action,
                time_nano,
                attributes,
                at,
            } => {
                validate_docker_action(&action)?;
                if self.operations.seen(time_nano, &action) {
                    return Ok(vec![]);
                }
                ImageEvent::ImageObserved {
                    host,
                    reference,
                    action,
                    time_nano,
                    attributes,
                    observed_at: at,
                }
            }
            request @ (ImageCommand::RequestPull { .. } | ImageCommand::RequestRemove { .. }) => {
                return self.request(request)
            }
        };
        Ok(vec![event])
    }

    /// A request for an operation: accepted while no other operation is in flight.
    fn request(&self, command: ImageCommand) -> Result<Vec<ImageEvent>, ResourceError> {
        self.operations.require_idle()?;
        let event = match command {
            ImageCommand::RequestPull {
                op_id,
                host,
                reference,
                at,
            } => ImageEvent::ImagePullRequested {
                op_id,
                host,
                reference,
                requested_at: at,
            },
            ImageCommand::RequestRemove {
                op_id,
                host,
                reference,
                image_id,
                force,
                at,
            } => ImageEvent::ImageRemoveRequested {
                op_id,
                host,
                reference,
                image_id,
                force,
                requested_at: at,
            },
            // `decide` sends only requests here: another command is a bug, and
            // sending it back would loop.
            other => unreachable!("not one of requests: {other:?}"),
        };
        Ok(vec![event])
    }
}

impl Aggregate for Image {
    const TYPE: &'static str = "image";
    type Command = ImageCommand;
    type Event = ImageEvent;
    type Error = ResourceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ImageCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ResourceError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: ImageEvent) {
        match event {
            ImageEvent::ImagePullRequested {
                op_id,
                host,
                reference,
                ..
            } => {
                self.host = host;
                self.reference = reference;
                self.operations.begin(op_id, ImageOperation::Pull);
            }
            ImageEvent::ImageRemoveRequested {
                op_id,
                host,
                reference,
                ..
            } => {
                self.host = host;
                self.reference = reference;
                self.operations.begin(op_id, ImageOperation::Remove);
            }
            ImageEvent::ImagePulled {
                op_id, image_id, ..
            } => {
                self.image_id = Some(image_id);
                self.operations.finish(op_id);
            }
            ImageEvent::ImageRemoved { op_id, .. } => {
                self.image_id = None;
                self.operations.finish(op_id);
            }
            ImageEvent::OperationFailed { op_id, .. } => self.operations.finish(op_id),
            ImageEvent::ImageObserved {
                host,
                reference,
                action,
                time_nano,
                ..
            } => {
                self.host = host;
                self.reference = reference;
                self.operations.remember(time_nano, &action);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    type ImageTest = TestFramework<Image>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
    }

    const OP: Uuid = Uuid::from_u128(1);

    fn pull_requested() -> ImageEvent {
        ImageEvent::ImagePullRequested {
            op_id: OP,
            host: "local".into(),
            reference: "127.0.0.1:5000/app:1".into(),
            requested_at: at(),
        }
    }

    #[test]
    fn a_pull_is_requested_then_recorded() {
        ImageTest::with(())
            .given_no_previous_events()
            .when(ImageCommand::RequestPull {
                op_id: OP,
                host: "local".into(),
                reference: "127.0.0.1:5000/app:1".into(),
                at: at(),
            })
            .then_expect_events(vec![pull_requested()]);
        ImageTest::with(())
            .given(vec![pull_requested()])
            .when(ImageCommand::RecordPulled {
                op_id: OP,
                image_id: "sha256:ab".into(),
                digest: None,
                layers: 1,
                at: at(),
            })
            .then_expect_events(vec![ImageEvent::ImagePulled {
                op_id: OP,
                image_id: "sha256:ab".into(),
                digest: None,
                layers: 1,
                pulled_at: at(),
            }]);
    }

    #[test]
    fn a_pull_cannot_be_recorded_as_a_removal() {
        ImageTest::with(())
            .given(vec![pull_requested()])
            .when(ImageCommand::RecordRemoved {
                op_id: OP,
                deleted: vec![],
                untagged: vec![],
                at: at(),
            })
            .then_expect_error(ResourceError::UnknownOperation(OP));
        ImageTest::with(())
            .given(vec![pull_requested()])
            .when(ImageCommand::RequestPull {
                op_id: Uuid::from_u128(9),
                host: "local".into(),
                reference: "127.0.0.1:5000/app:1".into(),
                at: at(),
            })
            .then_expect_error(ResourceError::OperationInProgress(OP));
    }
}
