//! An image on one engine at a past moment.

use dcp_aggregates::image::ImageEvent;
use serde::Serialize;

use super::PendingOperation;

/// An image as dcp pulled, removed or saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageState {
    pub host: String,
    pub reference: String,
    pub image_id: Option<String>,
    pub digest: Option<String>,
    pub layers: Option<u32>,
    /// Whether the image was on the engine.
    pub present: bool,
    pub pending_operation: Option<PendingOperation>,
}

impl ImageState {
    pub(super) fn apply(&mut self, event: ImageEvent) {
        PendingOperation::follow(&mut self.pending_operation, &event);
        match event {
            ImageEvent::ImagePullRequested {
                host, reference, ..
            } => {
                self.host = host;
                self.reference = reference;
            }
            ImageEvent::ImagePulled {
                image_id,
                digest,
                layers,
                ..
            } => {
                self.image_id = Some(image_id);
                self.digest = digest;
                self.layers = Some(layers);
                self.present = true;
            }
            ImageEvent::ImageRemoveRequested {
                host,
                reference,
                image_id,
                ..
            } => {
                self.host = host;
                self.reference = reference;
                self.image_id = Some(image_id);
            }
            ImageEvent::ImageRemoved { .. } => self.present = false,
            ImageEvent::OperationFailed { .. } => {}
            ImageEvent::ImageObserved {
                host,
                reference,
                action,
                ..
            } => {
                self.host = host;
                if self.reference.is_empty() {
                    self.reference = reference;
                }
                match action.as_str() {
                    "pull" | "tag" | "import" | "load" => self.present = true,
                    "delete" | "untag" => self.present = false,
                    _ => {}
                }
            }
        }
    }
}
