//! An operation as its task socket shows it: its status, its progress so far and its outcome.

use uuid::Uuid;

use super::Streams;
use crate::containers::{ContainersError, OperationView};
use crate::realtime::RealtimeError;

impl Streams {
    /// Operation `op_id` as the operations read model has it; `None` when it has not seen it.
    pub async fn task(&self, op_id: Uuid) -> Result<Option<OperationView>, RealtimeError> {
        match self.containers.operation(op_id).await {
            Ok(operation) => Ok(Some(operation)),
            Err(ContainersError::NoSuchOperation) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}
