//! The wizard types and their steps: what each step asks for and how its data is checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{StepTest, WizardError};

/// The kinds of wizard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WizardType {
    /// Add a remote Docker host over SSH.
    SshHostSetup,
}

/// One step of a wizard type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSpec {
    pub name: &'static str,
    /// Whether `next` needs a passed test of this step.
    pub tested: bool,
}

impl WizardType {
    /// The steps, in order.
    pub fn steps(self) -> &'static [StepSpec] {
        match self {
            WizardType::SshHostSetup => &[
                StepSpec {
                    name: "connection",
                    tested: false,
                },
                StepSpec {
                    name: "authentication",
                    tested: false,
                },
                StepSpec {
                    name: "ssh_test",
                    tested: true,
                },
                StepSpec {
                    name: "docker_test",
                    tested: true,
                },
                StepSpec {
                    name: "confirmation",
                    tested: false,
                },
            ],
        }
    }

    /// Checks the data of step `step` (and its consistency with the tests so far).
    pub fn validate(
        self,
        step: &str,
        data: &Map<String, Value>,
        tests: &BTreeMap<String, StepTest>,
    ) -> Result<(), WizardError> {
        match (self, step) {
            (WizardType::SshHostSetup, "connection") => {
                let name = text(data, "connection_name")?;
                crate::host::check_name(name).map_err(|_| {
                    invalid(
                        "connection_name",
                        "1 to 64 characters, no control characters or surrounding spaces, not 'local'",
                    )
                })?;
                parse_ssh_url(text(data, "host_url")?)?;
                only(data, &["connection_name", "host_url"])
            }
            (WizardType::SshHostSetup, "authentication") => {
                let method = text(data, "method")?;
                if !matches!(method, "generated_key" | "imported_key" | "password") {
                    return Err(invalid("method", "generated_key, imported_key or password"));
                }
                text(data, "secret_id")?
                    .parse::<Uuid>()
                    .map_err(|_| invalid("secret_id", "the id of a sealed secret"))?;
                only(data, &["method", "secret_id", "public_key"])
            }
            (WizardType::SshHostSetup, "ssh_test") => {
                // The admin confirms the host key the test saw; it is then pinned.
                let confirmed = text(data, "confirm_fingerprint")?;
                let seen = tests
                    .get("ssh_test")
                    .filter(|t| t.passed)
                    .and_then(|t| t.details.get("fingerprint"))
                    .and_then(Value::as_str);
                match seen {
                    None => Err(WizardError::TestNotPassed("ssh_test")),
                    Some(seen) if seen != confirmed => Err(invalid(
                        "confirm_fingerprint",
                        "not the host key fingerprint the SSH test saw",
                    )),
                    Some(_) => only(data, &["confirm_fingerprint"]),
                }
            }
            (WizardType::SshHostSetup, "docker_test") => only(data, &[]),
            (WizardType::SshHostSetup, "confirmation") => {
                if let Some(tags) = data.get("tags") {
                    let tags = tags
                        .as_array()
                        .ok_or_else(|| invalid("tags", "a list of tags"))?;
                    if tags.len() > 32
                        || !tags.iter().all(|t| {
                            t.as_str().is_some_and(|t| {
                                !t.is_empty()
                                    && t.len() <= 64
                                    && t.chars().all(|c| {
                                        c.is_ascii_alphanumeric()
                                            || matches!(c, '-' | '_' | '.' | ':')
                                    })
                            })
                        })
                    {
                        return Err(invalid(
                            "tags",
                            "at most 32 tags of letters, digits, '-', '_', '.', ':'",
                        ));
                    }
                }
                only(data, &["tags"])
            }
            _ => Err(WizardError::UnknownStep(step.to_string())),
        }
    }
}

pub(super) fn invalid(field: &str, message: &str) -> WizardError {
    WizardError::Invalid {
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn text<'a>(data: &'a Map<String, Value>, field: &str) -> Result<&'a str, WizardError> {
    data.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(field, "required (a string)"))
}

fn only(data: &Map<String, Value>, allowed: &[&str]) -> Result<(), WizardError> {
    match data.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(invalid(unknown, "not a field of this step")),
        None => Ok(()),
    }
}

/// `ssh://user@host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
}

/// Parses `ssh://user@host[:port]` (a host name, an IPv4 address or `[IPv6]`).
pub fn parse_ssh_url(url: &str) -> Result<SshTarget, WizardError> {
    let bad = || invalid("host_url", "ssh://user@host[:port]");
    let rest = url.strip_prefix("ssh://").ok_or_else(bad)?;
    let (user, address) = rest.split_once('@').ok_or_else(bad)?;
    let user_ok = (1..=32).contains(&user.len())
        && user.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !user_ok {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = address.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (host.to_string(), after.strip_prefix(':'))
    } else {
        match address.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (address.to_string(), None),
        }
    };
    let port = match port {
        None => 22,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(bad)?,
    };
    let host_ok = host.contains(':') // an IPv6 address, checked above
        || ((1..=253).contains(&host.len())
            && host.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }));
    if !host_ok {
        return Err(bad());
    }
    Ok(SshTarget {
        user: user.to_string(),
        host,
        port,
    })
}
