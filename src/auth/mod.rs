//! Authentication: password hashing, access tokens, refresh token rotation, login
//! throttling, and the per-request principal lookup.

pub mod password;
pub mod principal;
pub mod refresh;
pub mod throttle;
pub mod tokens;
