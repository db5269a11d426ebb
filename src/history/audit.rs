//! The audit log: entries with filters and cursor pagination, exports as CSV or NDJSON,
//! and the checks that it was not rewritten (the hash chain, signed checkpoints).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{History, HistoryError};
use crate::checkpoints::{Checkpoint, CheckpointCheck};
use crate::read_models::AUDIT;

/// One audit entry.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditLogView {
    /// Order of the entry in the log (newer is larger).
    pub seq: i64,
    /// The id of the event it was derived from.
    pub id: Uuid,
    pub global_position: i64,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub role: Option<String>,
    /// `<resource>.<action>`, e.g. `auth.login`.
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub details: serde_json::Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Json,
    Csv,
    Ndjson,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub user_id: Option<Uuid>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1–1000, default 100). For exports: the most entries (default all, at most 1,000,000).
    pub limit: Option<i64>,
    /// `json` (default, paginated), `csv` or `ndjson` (downloads).
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditLogView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// What an audit query answers: a page, or a download of every matching entry.
pub enum AuditAnswer {
    Page(AuditPage),
    Export {
        format: ExportFormat,
        /// The file, chunk by chunk, newest entry first.
        chunks: futures_util::stream::BoxStream<'static, Result<String, sqlx::Error>>,
    },
}

/// Checkpoints to check the log against.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Checkpoints exported earlier (at most 100).
    pub checkpoints: Vec<crate::checkpoints::Checkpoint>,
}

impl VerifyRequest {
    /// At most 100 checkpoints at once.
    fn check(&self) -> Result<(), HistoryError> {
        if self.checkpoints.len() > 100 {
            return Err(HistoryError::invalid(
                "checkpoints",
                "at most 100 checkpoints at once",
            ));
        }
        Ok(())
    }
}

/// The chain walked, and each checkpoint checked.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// True when the chain holds and every checkpoint is `ok`.
    pub valid: bool,
    pub chain: ChainReportView,
    pub checkpoints: Vec<crate::checkpoints::CheckpointCheck>,
}

/// The result of walking the audit chain.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ChainReportView {
    /// True when every entry matches its hash and follows the one before it.
    pub valid: bool,
    pub checked: i64,
    pub last_hash: Option<String>,
    /// The first entry that does not match (changed, or not following the one before it:
    /// an entry was removed, inserted or moved).
    #[schema(value_type = Option<Object>)]
    pub first_invalid: Option<serde_json::Value>,
    /// The first event the audit log has applied without an entry for it (entries cut from
    /// the log, its tail included): `global_position`, `aggregate_type`, `event_type`.
    #[schema(value_type = Option<Object>)]
    pub first_missing: Option<serde_json::Value>,
}

impl History {
    /// The audit entries matching `query`, newest first: one page, or (with a `format`) every
    /// matching entry as a download.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn audit_log(&self, query: AuditQuery) -> Result<AuditAnswer, HistoryError> {
        let before = match &query.cursor {
            None => None,
            Some(cursor) => Some(cursor.parse::<i64>().ok().filter(|c| *c > 0).ok_or_else(
                || {
                    HistoryError::invalid(
                        "cursor",
                        "cursor must be a next_cursor value from a previous page",
                    )
                },
            )?),
        };
        let filter = Filter::of(&query)?;
        let format = query.format.unwrap_or_default();
        if format != ExportFormat::Json {
            let max = query.limit.unwrap_or(1_000_000);
            if !(1..=1_000_000).contains(&max) {
                return Err(HistoryError::invalid(
                    "limit",
                    "limit must be between 1 and 1000000 for exports",
                ));
            }
            let chunks = Box::pin(export(self.reads.pool().clone(), filter, format, max));
            return Ok(AuditAnswer::Export { format, chunks });
        }
        let limit = query.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(HistoryError::invalid(
                "limit",
                "limit must be between 1 and 1000",
            ));
        }
        let items = page(self.reads.pool(), &filter, before, limit + 1).await?;
        let has_more = items.len() as i64 > limit;
        let items: Vec<AuditLogView> = items.into_iter().take(limit as usize).collect();
        let next_cursor = has_more
            .then(|| items.last().map(|e| e.seq.to_string()))
            .flatten();
        Ok(AuditAnswer::Page(AuditPage { items, next_cursor }))
    }

    /// Walks the audit log's hash chain.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn verify_chain(&self) -> Result<ChainReportView, HistoryError> {
        let report = dcp_projections::audit::verify_chain(self.reads.pool()).await?;
        Ok(chain_view(report))
    }

    /// A signed checkpoint of the newest audit entry.
    pub async fn checkpoint(&self) -> Result<Checkpoint, HistoryError> {
        crate::checkpoints::issue(self.reads.pool(), &self.audit_key)
            .await?
            .ok_or(HistoryError::NotFound("audit entry"))
    }

    /// Walks the chain and checks checkpoints exported earlier (at most 100), once the
    /// audit log has applied position `wait_for`, when given.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn verify_checkpoints(
        &self,
        request: VerifyRequest,
        wait_for: Option<i64>,
    ) -> Result<VerifyReport, HistoryError> {
        request.check()?;
        if let Some(position) = wait_for {
            self.reads.settle_at(position, AUDIT).await?;
        }
        let chain = dcp_projections::audit::verify_chain(self.reads.pool()).await?;
        let checkpoints: Vec<CheckpointCheck> =
            crate::checkpoints::check(self.reads.pool(), &self.audit_key, &request.checkpoints)
                .await?;
        Ok(VerifyReport {
            valid: chain.valid && checkpoints.iter().all(|c| c.status == "ok"),
            chain: chain_view(chain),
            checkpoints,
        })
    }
}

/// What an audit query keeps.
struct Filter {
    user_id: Option<Uuid>,
    action: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl Filter {
    fn of(query: &AuditQuery) -> Result<Filter, HistoryError> {
        for (field, value) in [("since", query.since), ("until", query.until)] {
            // PostgreSQL stores years 4713 BC to 294276 AD; keep to a plainly sane range.
            if value.is_some_and(|t| !(1..=9999).contains(&chrono::Datelike::year(&t))) {
                return Err(HistoryError::invalid(
                    field,
                    format!("{field} must be a time between years 1 and 9999"),
                ));
            }
        }
        if let (Some(since), Some(until)) = (query.since, query.until) {
            if since > until {
                return Err(HistoryError::invalid(
                    "since",
                    "since must not be after until",
                ));
            }
        }
        Ok(Filter {
            user_id: query.user_id,
            action: query.action.clone(),
            resource_type: query.resource_type.clone(),
            resource_id: query.resource_id.clone(),
            since: query.since,
            until: query.until,
        })
    }
}

async fn page(
    pool: &PgPool,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditLogView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, id, global_position, user_id, username, role, action, resource_type, resource_id, details, \
         host(ip_address) AS ip_address, user_agent, request_id, created_at FROM audit_logs \
         WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR action = $2) \
           AND ($3::text IS NULL OR resource_type = $3) AND ($4::text IS NULL OR resource_id = $4) \
           AND ($5::timestamptz IS NULL OR created_at >= $5) AND ($6::timestamptz IS NULL OR created_at < $6) \
           AND ($7::bigint IS NULL OR seq < $7) \
         ORDER BY seq DESC LIMIT $8",
    )
    .bind(filter.user_id)
    .bind(&filter.action)
    .bind(&filter.resource_type)
    .bind(&filter.resource_id)
    .bind(filter.since)
    .bind(filter.until)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

fn csv_field(value: &str) -> String {
    // Formula-looking cells are prefixed so spreadsheets do not evaluate them (OWASP's
    // list: a leading TAB or CR also starts a formula in some of them).
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    format!("\"{}\"", value.replace('"', "\"\""))
}

const CSV_HEADER: &str = "seq,id,global_position,created_at,user_id,username,role,action,resource_type,resource_id,ip_address,user_agent,request_id,details\n";

fn csv_row(entry: &AuditLogView) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [
        entry.seq.to_string(),
        entry.id.to_string(),
        entry.global_position.to_string(),
        entry.created_at.to_rfc3339(),
        entry.user_id.map(|u| u.to_string()).unwrap_or_default(),
        opt(&entry.username),
        opt(&entry.role),
        entry.action.clone(),
        opt(&entry.resource_type),
        opt(&entry.resource_id),
        opt(&entry.ip_address),
        opt(&entry.user_agent),
        opt(&entry.request_id),
        entry.details.to_string(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Every matching entry, newest first, read page by page as the download is sent.
fn export(
    pool: PgPool,
    filter: Filter,
    format: ExportFormat,
    max: i64,
) -> impl futures_util::Stream<Item = Result<String, sqlx::Error>> {
    let state = (pool, filter, None::<i64>, 0i64, format == ExportFormat::Csv);
    futures_util::stream::unfold(Some(state), move |state| async move {
        let (pool, filter, before, sent, header_pending) = state?;
        if header_pending {
            return Some((
                Ok(CSV_HEADER.to_string()),
                Some((pool, filter, before, sent, false)),
            ));
        }
        let want = (max - sent).min(1000);
        if want <= 0 {
            return None;
        }
        match page(&pool, &filter, before, want).await {
            Err(error) => {
                tracing::error!(%error, "audit export failed mid-stream");
                Some((Err(error), None))
            }
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                let chunk: String = rows
                    .iter()
                    .map(|entry| match format {
                        ExportFormat::Csv => csv_row(entry),
                        _ => serde_json::to_string(entry)
                            .map(|s| s + "\n")
                            .unwrap_or_default(),
                    })
                    .collect();
                let before = rows.last().map(|r| r.seq);
                let sent = sent + rows.len() as i64;
                Some((Ok(chunk), Some((pool, filter, before, sent, false))))
            }
        }
    })
}

fn chain_view(report: dcp_projections::audit::ChainReport) -> ChainReportView {
    ChainReportView {
        valid: report.valid,
        checked: report.checked,
        last_hash: report.last_hash,
        first_invalid: report
            .first_invalid
            .and_then(|invalid| serde_json::to_value(invalid).ok()),
        first_missing: report
            .first_missing
            .and_then(|missing| serde_json::to_value(missing).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "\"'=cmd()\"");
        assert_eq!(csv_field("\t=cmd()"), "\"'\t=cmd()\"");
        assert_eq!(csv_field("\r=cmd()"), "\"'\r=cmd()\"");
    }
}
