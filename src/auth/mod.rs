//! Authentication and roles: password hashing, access tokens, refresh token rotation, login
//! throttling, the per-request principal lookup, and the role policy.

pub mod password;
pub mod policy;
pub mod principal;
pub mod refresh;
pub mod throttle;
pub mod tokens;
