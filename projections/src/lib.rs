//! dcp read side: the global log reader, the projection runner, read models and the audit log.
//!
//! Every consumer reads the event store in `(transaction_id, global_position)` order
//! below the oldest running transaction (see [`log`]), so an event whose transaction
//! commits late is never skipped. A projection writes its tables and its checkpoint
//! in one transaction, so its effects happen exactly once.
//!
//! Projections read each event as its aggregate's typed enum (after the upcasters) and ask
//! it what it is (`dcp_aggregates::audit::Audited`, `dcp_aggregates::operation::OperationEvent`):
//! no projection spells event names (one that skips events before decoding them uses the
//! names the events declare). [`past`] rebuilds one resource as of a past moment.

pub mod audit;
pub mod containers;
pub mod hosts;
pub mod log;
pub mod lookups;
pub mod metadata;
pub mod operations;
pub mod past;
pub mod progress;
pub mod replay;
pub mod runner;
pub mod sessions;
pub mod users;

pub use log::{
    current_shapes, EventFilter, GlobalLogReader, LogCursor, LogWaker, StoredEvent, UnknownEvents,
    UnreadableEvent,
};
pub use runner::{
    projection_statuses, rebuild_projection, DynProjection, Projection, ProjectionProgress,
    ProjectionRunner, ProjectionStatus,
};

/// Every projection this crate provides, in the order they are started.
pub fn all_projections() -> Vec<std::sync::Arc<dyn DynProjection>> {
    vec![
        std::sync::Arc::new(users::UsersProjection),
        std::sync::Arc::new(sessions::SessionsProjection),
        std::sync::Arc::new(audit::AuditLogProjection),
        std::sync::Arc::new(operations::OperationsProjection),
        std::sync::Arc::new(containers::ContainersProjection),
        std::sync::Arc::new(hosts::HostsProjection),
        std::sync::Arc::new(hosts::WizardsProjection),
    ]
}
