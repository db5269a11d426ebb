//! The keys of event metadata, written by the server and read by projections.

/// Id of the user who caused the event (absent for anonymous attempts and the system).
pub const ACTOR_ID: &str = "actor_id";
/// Username of that user at the time.
pub const ACTOR_USERNAME: &str = "actor_username";
/// Role of that user at the time.
pub const ACTOR_ROLE: &str = "actor_role";
/// The HTTP request id (`x-request-id`).
pub const REQUEST_ID: &str = "request_id";
/// The client's IP address.
pub const CLIENT_IP: &str = "client_ip";
/// The client's `User-Agent`.
pub const USER_AGENT: &str = "user_agent";
/// Id of the Docker operation this event belongs to, if any.
pub const OPERATION_ID: &str = "operation_id";
/// Id shared by every event caused by one request or workflow.
pub const CORRELATION_ID: &str = "correlation_id";
/// Id of the command or event that caused this one.
pub const CAUSATION_ID: &str = "causation_id";
/// Who acts when no user does (`system` for startup tasks).
pub const ACTOR_KIND: &str = "actor_kind";
/// Why an admin acted on what the platform protects (shown in the audit entry's details).
pub const REASON: &str = "reason";
