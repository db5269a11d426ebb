//! `/api/v1/audit-logs`: the audit log with filters, cursor pagination and CSV/NDJSON export.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery};
use super::positions::AUDIT;
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit_logs))
        .routes(routes!(verify_audit_chain, verify_with_checkpoints))
        .routes(routes!(audit_checkpoint))
}

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

struct Filter {
    user_id: Option<Uuid>,
    action: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
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
    // Formula-looking cells are prefixed so spreadsheets do not evaluate them.
    let value = if value.starts_with(['=', '+', '-', '@']) {
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

/// Streams every matching entry, newest first, page by page.
fn export(pool: PgPool, filter: Filter, format: ExportFormat, max: i64) -> Response {
    let (content_type, extension) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        _ => ("application/x-ndjson", "ndjson"),
    };
    let stream = async_stream(pool, filter, format, max);
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"dcp-audit-log.{extension}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn async_stream(
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

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit-logs", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage, description = "JSON page; with format=csv or ndjson a download of every matching entry")))]
async fn list_audit_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    state.settle_request(&headers, AUDIT).await?;
    let before =
        match &query.cursor {
            None => None,
            Some(cursor) => Some(cursor.parse::<i64>().ok().filter(|c| *c > 0).ok_or_else(
                || {
                    ApiError::validation(
                        "cursor",
                        "cursor must be a next_cursor value from a previous page",
                    )
                },
            )?),
        };
    for (field, value) in [("since", query.since), ("until", query.until)] {
        // PostgreSQL stores years 4713 BC to 294276 AD; keep to a plainly sane range.
        if value.is_some_and(|t| !(1..=9999).contains(&chrono::Datelike::year(&t))) {
            return Err(ApiError::validation(
                field,
                format!("{field} must be a time between years 1 and 9999"),
            ));
        }
    }
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if since > until {
            return Err(ApiError::validation(
                "since",
                "since must not be after until",
            ));
        }
    }
    let filter = Filter {
        user_id: query.user_id,
        action: query.action,
        resource_type: query.resource_type,
        resource_id: query.resource_id,
        since: query.since,
        until: query.until,
    };
    let format = query.format.unwrap_or_default();
    if format != ExportFormat::Json {
        let max = query.limit.unwrap_or(1_000_000);
        if !(1..=1_000_000).contains(&max) {
            return Err(ApiError::validation(
                "limit",
                "limit must be between 1 and 1000000 for exports",
            ));
        }
        return Ok(export(state.pool.clone(), filter, format, max));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    let items = page(&state.pool, &filter, before, limit + 1).await?;
    let has_more = items.len() as i64 > limit;
    let items: Vec<AuditLogView> = items.into_iter().take(limit as usize).collect();
    let next_cursor = has_more
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(ApiJson(AuditPage { items, next_cursor }).into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "\"'=cmd()\"");
    }
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
}

/// Verify the audit log's hash chain: every entry carries
/// `sha256(previous hash ‖ "\n" ‖ canonical entry)`; an edited, removed, inserted or
/// reordered entry breaks it, and the first entry that does not match is named.
#[utoipa::path(get, path = "/api/v1/audit-logs/verify", tag = "audit",
    responses((status = 200, body = ChainReportView)))]
async fn verify_audit_chain(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> ApiResult<ApiJson<ChainReportView>> {
    state.settle_request(&headers, AUDIT).await?;
    let report = dcp_projections::audit::verify_chain(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(chain_view(report)))
}

fn chain_view(report: dcp_projections::audit::ChainReport) -> ChainReportView {
    ChainReportView {
        valid: report.valid,
        checked: report.checked,
        last_hash: report.last_hash,
        first_invalid: report
            .first_invalid
            .and_then(|invalid| serde_json::to_value(invalid).ok()),
    }
}

/// Sign a checkpoint of the newest audit entry. Keep it outside the database (with the
/// auditors, in a ticket, in another system): presented later to
/// `POST /api/v1/audit-logs/verify` (or `dcp audit verify --checkpoint FILE`), it shows
/// whether the entries it covers were rewritten since, even by someone who recomputed the
/// whole hash chain.
#[utoipa::path(get, path = "/api/v1/audit-logs/checkpoint", tag = "audit",
    responses((status = 200, body = crate::checkpoints::Checkpoint), (status = 404)))]
async fn audit_checkpoint(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> ApiResult<ApiJson<crate::checkpoints::Checkpoint>> {
    state.settle_request(&headers, AUDIT).await?;
    crate::checkpoints::issue(&state.pool, &state.audit_key)
        .await
        .map_err(ApiError::internal)?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("audit entry"))
}

/// Checkpoints to check the log against.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Checkpoints exported earlier (at most 100).
    pub checkpoints: Vec<crate::checkpoints::Checkpoint>,
}

/// The chain walked, and each checkpoint checked.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// True when the chain holds and every checkpoint is `ok`.
    pub valid: bool,
    pub chain: ChainReportView,
    pub checkpoints: Vec<crate::checkpoints::CheckpointCheck>,
}

/// Verify the hash chain and checkpoints exported earlier: a checkpoint whose entry is
/// gone or no longer has the signed hash shows the log was cut or rewritten.
#[utoipa::path(post, path = "/api/v1/audit-logs/verify", tag = "audit", request_body = VerifyRequest,
    responses((status = 200, body = VerifyReport), (status = 400)))]
async fn verify_with_checkpoints(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> ApiResult<ApiJson<VerifyReport>> {
    if request.checkpoints.len() > 100 {
        return Err(ApiError::validation(
            "checkpoints",
            "at most 100 checkpoints at once",
        ));
    }
    state.settle_request(&headers, AUDIT).await?;
    let chain = dcp_projections::audit::verify_chain(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    let checkpoints =
        crate::checkpoints::check(&state.pool, &state.audit_key, &request.checkpoints)
            .await
            .map_err(ApiError::internal)?;
    Ok(ApiJson(VerifyReport {
        valid: chain.valid && checkpoints.iter().all(|c| c.status == "ok"),
        chain: chain_view(chain),
        checkpoints,
    }))
}
