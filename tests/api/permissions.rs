//! Permission matrix: every route × every role and anonymous.
