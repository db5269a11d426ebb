//! A container's logs as a stream of chunks: Docker's multiplexed output split into lines
//! (stdout or stderr, with Docker's timestamp when asked for).

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use chrono::DateTime;
use futures_util::stream::BoxStream;
use serde::Serialize;
use std::time::Duration;

use super::Streams;
use crate::docker::DockerHosts;
use crate::realtime::RealtimeError;

/// One chunk of output, as sent: `{"type":"log","stream":"stdout","timestamp":…,"data":"…"}`
/// (in a batch, the same without `type`).
#[derive(Debug, Serialize)]
pub struct LogLine {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub stream: &'static str,
    pub timestamp: Option<String>,
    pub data: String,
}

impl LogLine {
    /// The chunk Docker sent, with its timestamp split off when asked for; None for stdin.
    pub fn of(output: &LogOutput, timestamps: bool) -> Option<LogLine> {
        let (stream, bytes) = match output {
            LogOutput::StdOut { message } => ("stdout", message),
            LogOutput::StdErr { message } => ("stderr", message),
            LogOutput::Console { message } => ("stdout", message),
            LogOutput::StdIn { .. } => return None,
        };
        let text = String::from_utf8_lossy(bytes);
        let (timestamp, data) = match text.split_once(' ') {
            Some((ts, rest)) if timestamps && ts.contains('T') => (Some(ts.to_string()), rest),
            _ => (None, text.as_ref()),
        };
        Some(LogLine {
            kind: Some("log"),
            stream,
            timestamp,
            data: data.to_string(),
        })
    }
}

/// A batch holds at most this many chunks…
pub const BATCH_LINES: usize = 1000;
/// …and about this many bytes of output…
pub const BATCH_BYTES: usize = 256 * 1024;
/// …collected for at most this long after its first chunk.
pub const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// What a logs socket asks for, as given.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// Lines from the end to start with (default 100), or `all`.
    pub tail: Option<String>,
    /// Only lines since this time (RFC 3339 or Unix seconds).
    pub since: Option<String>,
    /// Keep streaming new lines (default true).
    pub follow: Option<bool>,
    /// Prefix each line with Docker's timestamp (default false).
    pub timestamps: Option<bool>,
}

impl LogsRequest {
    /// Docker's options for the request, checked.
    pub fn options(&self) -> Result<LogsOptions, RealtimeError> {
        let tail = self.tail.clone().unwrap_or_else(|| "100".into());
        if tail != "all" && tail.parse::<u32>().is_err() {
            return Err(RealtimeError::invalid("tail", "a number of lines, or all"));
        }
        let since = match self.since.as_deref().map(parse_since) {
            Some(None) => {
                return Err(RealtimeError::invalid(
                    "since",
                    "RFC 3339 time or Unix seconds",
                ))
            }
            Some(Some(since)) => since,
            None => 0,
        };
        Ok(LogsOptions {
            follow: self.follow.unwrap_or(true),
            stdout: true,
            stderr: true,
            since,
            timestamps: self.timestamps.unwrap_or(false),
            tail,
            ..Default::default()
        })
    }
}

/// The chunks Docker gives, one by one (read from Docker only when the next one is asked for).
pub type LogChunks = BoxStream<'static, Result<LogOutput, bollard::errors::Error>>;

impl Streams {
    /// The logs of container `id` on `host`, as `options` ask.
    pub fn logs(
        &self,
        host: &str,
        id: &str,
        options: LogsOptions,
    ) -> Result<LogChunks, RealtimeError> {
        let docker = self.registry.streaming_client(host)?;
        Ok(Box::pin(docker.logs(id, Some(options))))
    }
}

fn parse_since(since: &str) -> Option<i32> {
    if let Ok(seconds) = since.parse::<i64>() {
        return i32::try_from(seconds).ok().filter(|s| *s >= 0);
    }
    DateTime::parse_from_rfc3339(since)
        .ok()
        .and_then(|t| i32::try_from(t.timestamp()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_seconds_or_rfc3339() {
        assert_eq!(parse_since("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_since("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        assert_eq!(parse_since("yesterday"), None);
        assert_eq!(parse_since("-5"), None);
    }
}
