//! `/api/v1/audit-logs`: the audit log with filters, cursor pagination and CSV/NDJSON
//! export, and its verification; the work is the history service's ([`crate::history`]).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiQuery};
use super::positions::{min_position, settle_request};
use crate::checkpoints::Checkpoint;
use crate::history::{
    AuditAnswer, AuditPage, AuditQuery, ChainReportView, ExportFormat, VerifyReport, VerifyRequest,
};
use crate::read_models::AUDIT;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit_logs))
        .routes(routes!(verify_audit_chain, verify_with_checkpoints))
        .routes(routes!(audit_checkpoint))
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit-logs", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage, description = "JSON page; with format=csv or ndjson a download of every matching entry")))]
async fn list_audit_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    settle_request(&state.reads, &headers, AUDIT).await?;
    Ok(match state.history.audit_log(query).await? {
        AuditAnswer::Page(page) => ApiJson(page).into_response(),
        AuditAnswer::Export { format, chunks } => {
            let (content_type, extension) = match format {
                ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
                _ => ("application/x-ndjson", "ndjson"),
            };
            let disposition = format!("attachment; filename=\"dcp-audit-log.{extension}\"");
            (
                [
                    (header::CONTENT_TYPE, content_type.to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                Body::from_stream(chunks),
            )
                .into_response()
        }
    })
}

/// Verify the audit log's hash chain: every entry carries
/// `sha256(previous hash ‖ "\n" ‖ canonical entry)`; an edited, removed, inserted or
/// reordered entry breaks it, and the first entry that does not match is named.
#[utoipa::path(get, path = "/api/v1/audit-logs/verify", tag = "audit",
    responses((status = 200, body = ChainReportView)))]
async fn verify_audit_chain(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<ApiJson<ChainReportView>> {
    settle_request(&state.reads, &headers, AUDIT).await?;
    Ok(ApiJson(state.history.verify_chain().await?))
}

/// Sign a checkpoint of the newest audit entry. Keep it outside the database (with the
/// auditors, in a ticket, in another system): presented later to
/// `POST /api/v1/audit-logs/verify` (or `dcp audit verify --checkpoint FILE`), it shows
/// whether the entries it covers were rewritten since, even by someone who recomputed the
/// whole hash chain.
#[utoipa::path(get, path = "/api/v1/audit-logs/checkpoint", tag = "audit",
    responses((status = 200, body = Checkpoint), (status = 404)))]
async fn audit_checkpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<ApiJson<Checkpoint>> {
    settle_request(&state.reads, &headers, AUDIT).await?;
    Ok(ApiJson(state.history.checkpoint().await?))
}

/// Verify the hash chain and checkpoints exported earlier: a checkpoint whose entry is
/// gone or no longer has the signed hash shows the log was cut or rewritten.
#[utoipa::path(post, path = "/api/v1/audit-logs/verify", tag = "audit", request_body = VerifyRequest,
    responses((status = 200, body = VerifyReport), (status = 400)))]
async fn verify_with_checkpoints(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> ApiResult<ApiJson<VerifyReport>> {
    let wait_for = min_position(&headers)?;
    Ok(ApiJson(
        state.history.verify_checkpoints(request, wait_for).await?,
    ))
}
