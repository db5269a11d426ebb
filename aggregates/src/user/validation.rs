//! Field rules for user accounts, shared by the aggregate and the HTTP layer.

use super::UserError;

fn invalid(field: &'static str, message: impl Into<String>) -> UserError {
    UserError::Invalid {
        field,
        message: message.into(),
    }
}

/// 3–64 characters: letters, digits, `_`, `.`, `-`, starting with a letter or digit.
pub fn validate_username(username: &str) -> Result<(), UserError> {
    let len = username.chars().count();
    if !(3..=64).contains(&len) {
        return Err(invalid("username", "username must be 3 to 64 characters"));
    }
    let mut chars = username.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(invalid(
            "username",
            "username may contain letters, digits, '_', '.' and '-', and must start with a letter or digit",
        ));
    }
    Ok(())
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces, ≤ 254 bytes.
pub fn validate_email(email: &str) -> Result<(), UserError> {
    let message = "email must be an address like name@example.com";
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("email", message));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(invalid("email", message));
    };
    let domain_ok = !domain.is_empty()
        && !domain.contains('@')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && (domain.contains('.') || domain.eq_ignore_ascii_case("localhost"));
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(invalid("email", message));
    }
    Ok(())
}

/// 1–200 characters after trimming, no control characters.
pub fn validate_full_name(full_name: &str) -> Result<(), UserError> {
    let trimmed = full_name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 {
        return Err(invalid(
            "full_name",
            "full_name must be 1 to 200 characters",
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid(
            "full_name",
            "full_name must not contain control characters",
        ));
    }
    Ok(())
}
