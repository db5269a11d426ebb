//! Malformed input on every route: a 4xx in the documented format, never a 500.
