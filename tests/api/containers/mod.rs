//! Containers live from the real Docker engine: list with filters and paging, inspect by
//! id, prefix or name, and the errors of unknown hosts and containers.

mod creation;
mod lifecycle;
mod listing;

use std::process::Command;

use uuid::Uuid;

use crate::common::*;

pub(crate) fn test_image() -> String {
    std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into())
}

pub(crate) fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker CLI");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Containers made for one test, labelled with its run id and removed when dropped.
pub(crate) struct Containers {
    pub(crate) run: String,
}

impl Containers {
    pub(crate) fn new() -> Self {
        Containers {
            run: Uuid::new_v4().simple().to_string(),
        }
    }

    pub(crate) fn start(&self, name: &str, extra: &[&str]) -> String {
        self.make("run", name, extra)
    }

    /// A container made and not started (some options cannot start in every sandbox, and
    /// what the container would reach is in its configuration either way).
    pub(crate) fn create(&self, name: &str, extra: &[&str]) -> String {
        self.make("create", name, extra)
    }

    fn make(&self, how: &str, name: &str, extra: &[&str]) -> String {
        let name = format!("{name}-{}", &self.run[..8]);
        let label = format!("test.dcp-run={}", self.run);
        let image = test_image();
        let detach = if how == "run" { "-d" } else { "-q" };
        let mut args = vec![how, detach, "--name", &name, "--label", &label];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&image, "sleep", "300"]);
        docker(&args)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let label = format!("label=test.dcp-run={}", self.run);
        if let Ok(output) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
        {
            let ids = String::from_utf8_lossy(&output.stdout).to_string();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .arg("rm")
                    .arg("-f")
                    .args(&ids)
                    .output();
            }
        }
    }
}

/// Whether a container of that exact name exists (running or not).
fn container_exists(name: &str) -> bool {
    let filter = format!("name=^/{name}$");
    !docker(&["ps", "-aq", "--filter", &filter]).is_empty()
}
