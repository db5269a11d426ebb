//! Exec sessions: a shell in a container (bash where the image has it, else sh), with a
//! TTY, recorded on the container's history before it runs and when it ends. A shell in a
//! container has the container's reach: the one judgement decides who may open one.

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use chrono::Utc;
use dcp_aggregates::container::{Container, ContainerCommand};
use futures_util::Stream;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::Streams;
use crate::auth::policy::Judgement;
use crate::auth::principal::Principal;
use crate::commands::{CommandBus, CommandMeta};
use crate::containers::{ContainerTarget, Intent};
use crate::denials::Refused;
use crate::docker::DockerHosts;
use crate::realtime::RealtimeError;

/// The command an exec session runs: bash where the image has it, else sh.
pub const SHELL_DETECTION: &str =
    "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi";

/// A shell running in a container: its output, its input, and what records it.
pub struct ExecSession {
    pub exec_id: String,
    pub command: Vec<String>,
    /// What the shell prints (the TTY's bytes).
    pub output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    /// What is typed into it; written before the next frame is read, so a fast typist is
    /// slowed down, never buffered for.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    docker: Docker,
    commands: CommandBus,
    target: ContainerTarget,
    meta: CommandMeta,
    started_at: tokio::time::Instant,
}

impl Streams {
    /// The container a shell would run in: `reference` on `host`, looked up once, judged
    /// whole (a shell in it has its reach: [`Intent::Enter`]) and resolved to its aggregate
    /// (discovered if dcp has not seen it), since the session is recorded on its history. A
    /// refusal is recorded as a denied request of `route`; `meta.reason` is an admin's, for
    /// a container the platform protects.
    pub async fn exec_target(
        &self,
        principal: &Principal,
        at: (&str, &str),
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<ContainerTarget, RealtimeError> {
        let resolved = self
            .containers
            .resolve_for(
                principal,
                at,
                Intent::Enter,
                Judgement::default(),
                meta,
                route,
            )
            .await?;
        Ok(self.containers.target_of(&resolved, meta).await?)
    }

    /// Starts a shell in `target`, `cols`×`rows`, recorded before it runs.
    #[tracing::instrument(skip_all, fields(host = %target.host, container = %target.docker_id), err(level = "debug"))]
    pub async fn start_exec(
        &self,
        target: ContainerTarget,
        meta: CommandMeta,
        (cols, rows): (u16, u16),
    ) -> Result<ExecSession, RealtimeError> {
        let docker = self.registry.streaming_client(&target.host)?;
        let command = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            SHELL_DETECTION.to_string(),
        ];
        let options = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(true),
            env: Some(vec!["TERM=xterm-256color".to_string()]),
            cmd: Some(command.clone()),
            ..Default::default()
        };
        let exec_id = docker
            .create_exec(&target.docker_id, options)
            .await
            .map_err(|error| {
                RealtimeError::ExecFailed(format!("Failed to start a shell: {error}"))
            })?
            .id;
        let started_at = tokio::time::Instant::now();
        let record_start = ContainerCommand::RecordExecStarted {
            exec_id: exec_id.clone(),
            command: command.clone(),
            at: Utc::now(),
        };
        // Recorded before the shell runs: no session without its audit entry.
        let aggregate = target.aggregate_id.to_string();
        if let Err(error) = self
            .commands
            .execute_retrying::<Container>(&aggregate, record_start, &meta, vec![])
            .await
        {
            tracing::error!(%error, "Failed to record an exec session; not starting it");
            return Err(RealtimeError::ExecFailed(
                "the session could not be recorded; try again".into(),
            ));
        }
        let options = StartExecOptions {
            detach: false,
            tty: true,
            output_capacity: None,
        };
        let (output, input) = match docker.start_exec(&exec_id, Some(options)).await {
            Ok(StartExecResults::Attached { output, input }) => (output, input),
            Ok(StartExecResults::Detached) | Err(_) => {
                return Err(RealtimeError::ExecFailed(
                    "Failed to attach to the shell".into(),
                ))
            }
        };
        let mut session = ExecSession {
            exec_id,
            command,
            output,
            input,
            docker,
            commands: self.commands.clone(),
            target,
            meta,
            started_at,
        };
        session.resize(cols, rows).await;
        Ok(session)
    }
}

impl ExecSession {
    /// The terminal's new size.
    pub async fn resize(&mut self, cols: u16, rows: u16) {
        let size = ResizeExecOptions {
            height: rows,
            width: cols,
        };
        let _ = self.docker.resize_exec(&self.exec_id, size).await;
    }

    /// Ends the session: stdin closed (an interactive shell still running ends), the exit
    /// code read, the end recorded. The exit code, when Docker tells it.
    pub async fn finish(mut self) -> Option<i64> {
        let _ = self.input.shutdown().await;
        drop(self.input);
        let exit_code = match self.docker.inspect_exec(&self.exec_id).await {
            Ok(inspect) if inspect.running == Some(true) => None,
            Ok(inspect) => inspect.exit_code,
            Err(_) => None,
        };
        let record_end = ContainerCommand::RecordExecEnded {
            exec_id: self.exec_id.clone(),
            exit_code,
            duration_ms: self.started_at.elapsed().as_millis() as i64,
            at: Utc::now(),
        };
        let aggregate = self.target.aggregate_id.to_string();
        if let Err(error) = self
            .commands
            .execute_retrying::<Container>(&aggregate, record_end, &self.meta, vec![])
            .await
        {
            tracing::error!(%error, "Failed to record the end of an exec session");
        }
        exit_code
    }
}
