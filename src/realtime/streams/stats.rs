//! A container's resource use as `docker stats` shows it, a sample a second, ready for a chart.

use std::collections::HashMap;

use bollard::query_parameters::StatsOptions;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::Serialize;

use super::Streams;
use crate::docker::DockerHosts;
use crate::realtime::RealtimeError;

/// One sample, ready for a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSample {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: DateTime<Utc>,
    /// Of one CPU: 200 means two CPUs fully used (as `docker stats`).
    pub cpu_percent: f64,
    pub online_cpus: u32,
    pub memory: MemorySample,
    pub network: NetworkSample,
    pub block_io: BlockIoSample,
    pub pids: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorySample {
    /// Bytes used, without the page cache (as `docker stats`).
    pub usage: u64,
    pub limit: u64,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSample {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockIoSample {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// `docker stats`' figures from one stats document (current and previous CPU counters).
pub fn sample(stats: &bollard::models::ContainerStatsResponse) -> StatsSample {
    let cpu = stats.cpu_stats.as_ref();
    let precpu = stats.precpu_stats.as_ref();
    let total = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.system_cpu_usage).unwrap_or(0)
    };
    let online_cpus = cpu
        .and_then(|c| c.online_cpus)
        .filter(|n| *n > 0)
        .or_else(|| {
            cpu.and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|p| p.len() as u32)
        })
        .unwrap_or(1);
    let cpu_delta = total(cpu).saturating_sub(total(precpu)) as f64;
    let system_delta = system(cpu).saturating_sub(system(precpu)) as f64;
    let cpu_percent = if cpu_delta > 0.0 && system_delta > 0.0 {
        cpu_delta / system_delta * f64::from(online_cpus) * 100.0
    } else {
        0.0
    };
    let memory = stats.memory_stats.as_ref();
    let raw_usage = memory.and_then(|m| m.usage).unwrap_or(0);
    let detail: HashMap<String, u64> = memory.and_then(|m| m.stats.clone()).unwrap_or_default();
    // cgroup v1 counts the page cache as `total_inactive_file`, v2 as `inactive_file`.
    let cache = detail
        .get("total_inactive_file")
        .or_else(|| detail.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    let usage = if cache < raw_usage {
        raw_usage - cache
    } else {
        raw_usage
    };
    let limit = memory.and_then(|m| m.limit).unwrap_or(0);
    let percent = if limit > 0 {
        usage as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let (rx_bytes, tx_bytes) = stats
        .networks
        .iter()
        .flatten()
        .fold((0, 0), |(rx, tx), (_, n)| {
            (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
        });
    let (read_bytes, write_bytes) = stats
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .into_iter()
        .flatten()
        .fold((0, 0), |(read, write), entry| {
            match entry.op.as_deref().map(str::to_lowercase).as_deref() {
                Some("read") => (read + entry.value.unwrap_or(0), write),
                Some("write") => (read, write + entry.value.unwrap_or(0)),
                _ => (read, write),
            }
        });
    StatsSample {
        kind: "stats",
        timestamp: Utc::now(),
        cpu_percent: (cpu_percent * 100.0).round() / 100.0,
        online_cpus,
        memory: MemorySample {
            usage,
            limit,
            percent: (percent * 100.0).round() / 100.0,
        },
        network: NetworkSample { rx_bytes, tx_bytes },
        block_io: BlockIoSample {
            read_bytes,
            write_bytes,
        },
        pids: stats
            .pids_stats
            .as_ref()
            .and_then(|p| p.current)
            .unwrap_or(0),
    }
}

/// Samples a second (Docker's own pace), until the container stops.
pub type StatsSamples = BoxStream<'static, Result<StatsSample, bollard::errors::Error>>;

impl Streams {
    /// The resource use of container `id` on `host`, a sample a second.
    pub fn stats(&self, host: &str, id: &str) -> Result<StatsSamples, RealtimeError> {
        let docker = self.registry.streaming_client(host)?;
        let options = StatsOptions {
            stream: true,
            one_shot: false,
        };
        Ok(Box::pin(docker.stats(id, Some(options)).map(|document| {
            document.map(|document| sample(&document))
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cpu_and_memory_follow_docker_stats() {
        let document: bollard::models::ContainerStatsResponse = serde_json::from_value(json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000u64}, "system_cpu_usage": 18_000_000_000u64},
            "memory_stats": {"usage": 100_000_000u64, "limit": 400_000_000u64, "stats": {"inactive_file": 20_000_000u64}},
            "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 4096},
                {"major": 8, "minor": 0, "op": "write", "value": 8192}]},
            "pids_stats": {"current": 3}
        }))
        .unwrap();
        let sample = sample(&document);
        // 1 s of CPU over 2 s of system time on 2 CPUs: one CPU fully used.
        assert_eq!(sample.cpu_percent, 100.0);
        assert_eq!(sample.memory.usage, 80_000_000);
        assert_eq!(sample.memory.percent, 20.0);
        assert_eq!(
            sample.network,
            NetworkSample {
                rx_bytes: 11,
                tx_bytes: 22
            }
        );
        assert_eq!(
            sample.block_io,
            BlockIoSample {
                read_bytes: 4096,
                write_bytes: 8192
            }
        );
        assert_eq!(sample.pids, 3);
    }

    #[test]
    fn a_first_sample_without_history_is_zero_cpu() {
        let document: bollard::models::ContainerStatsResponse =
            serde_json::from_value(json!({"cpu_stats": {"cpu_usage": {"total_usage": 5}}}))
                .unwrap();
        assert_eq!(sample(&document).cpu_percent, 0.0);
    }
}
