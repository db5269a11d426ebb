//! `/ws/containers/{id}/stats`: a container's resource use, a sample a second (Docker's own
//! pace), until the container stops or the client leaves.

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{
    admit_on_container, answer, close, close_for, closed_or_gone, fail, query_error, send_json,
    send_text,
};
use crate::commands::RequestContext;
use crate::http::app_state::AppState;
use crate::http::error::ApiError;
use crate::realtime::sockets::Registration;
use crate::realtime::streams::StatsSamples;
use crate::realtime::tickets::Purpose;
use crate::realtime::RealtimeError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    pub ticket: Option<String>,
    pub host: Option<String>,
}

pub(super) async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    context: RequestContext,
    Path(reference): Path<String>,
    query: Result<Query<StatsQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    let opened = async {
        let socket = admit_on_container(
            &state,
            (&headers, &context),
            query.ticket.as_deref(),
            Purpose::ContainerStats,
            query.host.as_deref(),
            &reference,
        )
        .await?;
        let samples = state.streams.stats(&socket.host, &socket.id)?;
        Ok::<_, ApiError>((samples, socket.registration, socket.protocol))
    };
    let (samples, registration, protocol) = match opened.await {
        Ok(opened) => opened,
        Err(error) => return error.into_response(),
    };
    answer(upgrade, protocol)
        .on_upgrade(move |socket| session(socket, registration, samples))
        .into_response()
}

async fn session(socket: WebSocket, mut registration: Registration, mut samples: StatsSamples) {
    let (mut sink, mut incoming) = socket.split();
    loop {
        let item = tokio::select! {
            reason = closed_or_gone(&mut registration, &mut incoming) => {
                if let Some(reason) = reason {
                    close_for(&mut sink, reason).await;
                }
                return;
            }
            item = samples.next() => item,
        };
        match item {
            Some(Ok(sample)) => {
                let Ok(text) = serde_json::to_string(&sample) else {
                    continue;
                };
                if !send_text(&mut sink, text).await {
                    return;
                }
            }
            Some(Err(error)) => {
                let broken =
                    RealtimeError::StreamBroken(format!("Failed to stream stats: {error}"));
                return fail(&mut sink, broken, "stats stream failed").await;
            }
            None => {
                let end = json!({ "type": "end", "reason": "the container stopped" });
                let _ = send_json(&mut sink, end).await;
                return close(&mut sink, 1000, "end of stats").await;
            }
        }
    }
}
