//! The one model of values that may be secrets, and the one redaction of them.
//!
//! A value may be a secret when it sits under one of [`SENSITIVE_KEYS`], wherever that key
//! appears in a document: a container's environment (`env` in dcp's requests and states,
//! `Env` as `NAME=value` lines in Docker's inspect) and a volume's driver options
//! (`driver_opts`, `DriverOpts`: a CIFS, NFS or sshfs mount's `password=…`). The names
//! stay (they say what a container is configured with); the values become [`REDACTED`].
//! SSH and registry credentials never enter a document at all: they are sealed
//! (`secrets/`) and only their sealed ids travel.
//!
//! Every reader that answers a document to a role goes through [`redact_for`]; the bus goes
//! through [`redact`] for everyone, as integrations and sockets alike read it.

use dcp_aggregates::Role;
use serde_json::Value;

/// What a redacted value reads as.
pub const REDACTED: &str = "<redacted>";

/// The keys under which values may be secrets, wherever they appear.
pub const SENSITIVE_KEYS: &[&str] = &["env", "Env", "driver_opts", "DriverOpts"];

/// Whether `role` may read values that may be secrets.
pub fn reads_secrets(role: Role) -> bool {
    role == Role::Admin
}

/// Hides every value that may be a secret in `document` from `role`, unless it may read them.
pub fn redact_for(role: Role, document: &mut Value) {
    if !reads_secrets(role) {
        redact(document);
    }
}

/// Hides every value that may be a secret in `document`, for everyone.
pub fn redact(document: &mut Value) {
    match document {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if SENSITIVE_KEYS.contains(&key.as_str()) {
                    redact_values(value);
                } else {
                    redact(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The values of a sensitive map (`{"NAME": "value"}` → `{"NAME": "<redacted>"}`) or list
/// of `NAME=value` lines (→ `NAME=<redacted>`); anything else is hidden whole.
fn redact_values(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for value in map.values_mut() {
                if !value.is_null() {
                    *value = Value::String(REDACTED.into());
                }
            }
        }
        Value::Array(lines) => {
            for line in lines.iter_mut() {
                let name = line
                    .as_str()
                    .map(|l| l.split_once('=').map_or(l, |(name, _)| name).to_string());
                *line = match name {
                    Some(name) => Value::String(format!("{name}={REDACTED}")),
                    None => Value::String(REDACTED.into()),
                };
            }
        }
        Value::Null => {}
        other => *other = Value::String(REDACTED.into()),
    }
}

/// Hides from `role` what may be a secret in one changed field of a diff, named by its dotted
/// path (`config`, `config.env`, `config.env.NAME`, `driver_opts.o`): a whole document, a
/// sensitive map, or one value of one.
pub fn redact_field_for(role: Role, field: &str, value: &mut Value) {
    if reads_secrets(role) || value.is_null() {
        return;
    }
    let segments: Vec<&str> = field.split('.').collect();
    match segments.iter().position(|s| SENSITIVE_KEYS.contains(s)) {
        // The sensitive map itself.
        Some(at) if at + 1 == segments.len() => redact_values(value),
        // One value in it (or below).
        Some(_) => *value = Value::String(REDACTED.into()),
        // A document that may hold one.
        None => redact(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn environment_and_driver_options_are_hidden_wherever_they_are_and_names_kept() {
        let mut document = json!({
            "config": {"env": {"DB_PASSWORD": "hunter2"}, "image": "app"},
            "inspect": {"Config": {"Env": ["DB_PASSWORD=hunter2", "BARE"], "Image": "app"}},
            "events": [{"spec": {"driver_opts": {"o": "username=u,password=hunter2"}}}],
            "DriverOpts": {"password": "hunter2"},
        });
        redact_for(Role::Operator, &mut document);
        let text = document.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(document["config"]["env"]["DB_PASSWORD"], REDACTED);
        assert_eq!(document["config"]["image"], "app");
        assert_eq!(
            document["inspect"]["Config"]["Env"],
            json!(["DB_PASSWORD=<redacted>", "BARE=<redacted>"])
        );
        assert_eq!(document["events"][0]["spec"]["driver_opts"]["o"], REDACTED);
        let mut admin = json!({"config": {"env": {"DB_PASSWORD": "hunter2"}}});
        redact_for(Role::Admin, &mut admin);
        assert_eq!(admin["config"]["env"]["DB_PASSWORD"], "hunter2");
    }

    #[test]
    fn a_changed_field_is_hidden_by_its_path() {
        let field = |path: &str, mut value: Value| {
            redact_field_for(Role::Viewer, path, &mut value);
            value
        };
        assert_eq!(field("config.env.A", json!("s")), json!(REDACTED));
        assert_eq!(field("driver_opts.o", json!("s")), json!(REDACTED));
        assert_eq!(
            field("config.env", json!({"A": "s"})),
            json!({"A": REDACTED})
        );
        assert_eq!(
            field("config", json!({"env": {"A": "s"}, "image": "x"})),
            json!({"env": {"A": REDACTED}, "image": "x"})
        );
        assert_eq!(field("config.image", json!("x")), json!("x"));
        assert_eq!(field("config.env.A", Value::Null), Value::Null);
        let mut admin = json!("s");
        redact_field_for(Role::Admin, "config.env.A", &mut admin);
        assert_eq!(admin, json!("s"));
    }
}
