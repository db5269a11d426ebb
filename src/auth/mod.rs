//! Authentication and roles: password hashing, access tokens, refresh token rotation, login
//! throttling, the per-request principal lookup, the role policy and the redaction of secrets.

pub mod password;
pub mod policy;
pub mod principal;
pub mod redaction;
pub mod refresh;
pub mod throttle;
pub mod tokens;
