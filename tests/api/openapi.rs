//! The OpenAPI document describes security, headers and errors of every operation.
