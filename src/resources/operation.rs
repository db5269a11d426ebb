//! One operation on one resource aggregate: the request recorded, the Docker call made,
//! its outcome recorded.

use std::future::Future;

use chrono::Utc;
use cqrs_es::Aggregate;
use dcp_aggregates::image::ImageCommand;
use dcp_aggregates::network::NetworkCommand;
use dcp_aggregates::operation::ResourceError;
use dcp_aggregates::volume::VolumeCommand;
use uuid::Uuid;

use super::ResourcesError;
use crate::commands::{CommandBus, CommandMeta, CqrsFor};
use crate::docker::DockerError;
use crate::errors::ServiceError;

/// One operation on aggregate `A`: how to record its request and its outcome.
pub(super) struct Operation<'a, A: Aggregate> {
    pub commands: &'a CommandBus,
    pub aggregate_id: String,
    pub op_id: Uuid,
    pub meta: CommandMeta,
    /// The `OperationFailed` command of `A`: op id, code, message.
    pub failed: fn(Uuid, String, String) -> A::Command,
}

impl<'a, A> Operation<'a, A>
where
    A: Aggregate<Error = ResourceError>,
    A::Command: Clone,
    CommandBus: CqrsFor<A>,
{
    /// A new operation on `aggregate_id`, with a fresh operation id.
    pub fn new(
        commands: &'a CommandBus,
        aggregate_id: String,
        meta: &CommandMeta,
        failed: fn(Uuid, String, String) -> A::Command,
    ) -> Self {
        let op_id = Uuid::now_v7();
        Operation {
            commands,
            aggregate_id,
            op_id,
            meta: meta.for_operation(op_id),
            failed,
        }
    }

    /// Records the request (committed means accepted); its position.
    pub async fn record(&self, command: A::Command) -> Result<Option<i64>, ResourcesError> {
        Ok(self
            .commands
            .execute::<A>(&self.aggregate_id, command, &self.meta)
            .await?
            .map(|cursor| cursor.position))
    }

    /// Records an outcome: what Docker did is recorded even when an observed change was
    /// appended to the same aggregate at the same moment.
    pub async fn record_outcome(&self, command: A::Command) -> Result<Option<i64>, ResourcesError> {
        Ok(self
            .commands
            .execute_retrying::<A>(&self.aggregate_id, command, &self.meta, vec![])
            .await?
            .map(|cursor| cursor.position))
    }

    /// Records the request, makes the Docker call, records its outcome (`done` on
    /// success, `OperationFailed` on a refusal) and answers with it.
    #[tracing::instrument(skip_all, fields(aggregate = A::TYPE, op_id = %self.op_id), err(level = "debug"))]
    pub async fn run<T>(
        &self,
        request: A::Command,
        call: impl Future<Output = Result<T, DockerError>>,
        done: impl FnOnce(&T) -> A::Command,
    ) -> Result<(T, Option<i64>), ResourcesError> {
        self.record(request).await?;
        match call.await {
            Ok(value) => {
                let position = self.record_outcome(done(&value)).await?;
                Ok((value, position))
            }
            Err(error @ DockerError::Unavailable { .. }) => Err(ResourcesError::Pending {
                operation_id: self.op_id,
                error,
            }),
            Err(error) => {
                let message = error.to_string();
                let refusal = ResourcesError::refusal(error);
                let failed =
                    (self.failed)(self.op_id, refusal.code().as_str().to_string(), message);
                self.record_outcome(failed).await?;
                Err(refusal)
            }
        }
    }
}

/// A Docker call's result, its failure classified for `host`.
pub(super) fn docker_result<T>(
    host: &str,
    result: Result<T, bollard::errors::Error>,
) -> Result<T, DockerError> {
    result.map_err(|error| DockerError::from_bollard(host, error))
}

pub(super) fn volume_failed(op_id: Uuid, code: String, message: String) -> VolumeCommand {
    VolumeCommand::RecordFailed {
        op_id,
        code,
        message,
        at: Utc::now(),
    }
}

pub(super) fn network_failed(op_id: Uuid, code: String, message: String) -> NetworkCommand {
    NetworkCommand::RecordFailed {
        op_id,
        code,
        message,
        at: Utc::now(),
    }
}

pub(super) fn image_failed(op_id: Uuid, code: String, message: String) -> ImageCommand {
    ImageCommand::RecordFailed {
        op_id,
        code,
        message,
        at: Utc::now(),
    }
}
