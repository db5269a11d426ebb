//! Any past moment of one resource: `GET /api/v1/<resources>/{id}/state?at=|position=`
//! rebuilds a user, container, image, volume or network from its events up to that moment,
//! and `…/diff?from=&to=` says what changed in between, field by field, and which events
//! (with their actors) changed it. See [`dcp_projections::past`].

use axum::extract::State;
use chrono::{DateTime, Utc};
use dcp_aggregates::{resource_key, Role};
use dcp_projections::past::{self as state, ChangeEvent, FieldChange};
use dcp_projections::{current_shapes, StoredEvent, UnknownEvents};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::containers::{host_of, valid_reference};
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::AppState;
use crate::commands::CommandMeta;
use crate::resources::normalize_reference;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_state))
        .routes(routes!(user_diff))
        .routes(routes!(container_state))
        .routes(routes!(container_diff))
        .routes(routes!(image_state))
        .routes(routes!(image_diff))
        .routes(routes!(volume_state))
        .routes(routes!(volume_diff))
        .routes(routes!(network_state))
        .routes(routes!(network_diff))
        .routes(routes!(host_state))
        .routes(routes!(host_diff))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    /// The moment (RFC 3339): the state after every event recorded at or before it.
    pub at: Option<String>,
    /// Or a global position: the state after every event at or before it.
    pub position: Option<i64>,
    /// The Docker host (default `local`); not used for users.
    pub host: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The earlier moment: an RFC 3339 time or a global position.
    pub from: String,
    /// The later moment (default: now).
    pub to: Option<String>,
    /// The Docker host (default `local`); not used for users.
    pub host: Option<String>,
}

/// A moment: a time or a place in the log. Events at or before it count.
#[derive(Debug, Clone, Copy)]
enum Moment {
    Time(DateTime<Utc>),
    Position(i64),
    Now,
}

impl Moment {
    fn includes(&self, event: &StoredEvent) -> bool {
        match self {
            Moment::Time(at) => event.recorded_at <= *at,
            Moment::Position(position) => event.global_position <= *position,
            Moment::Now => true,
        }
    }

    fn parse(field: &'static str, text: &str) -> ApiResult<Moment> {
        if let Ok(position) = text.parse::<i64>() {
            return if position < 0 {
                Err(ApiError::validation(field, "a position is not negative"))
            } else {
                Ok(Moment::Position(position))
            };
        }
        DateTime::parse_from_rfc3339(text)
            .map(|at| Moment::Time(at.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::validation(
                    field,
                    "an RFC 3339 time (2026-11-26T10:00:00Z) or a global position",
                )
            })
    }

    fn of_state_query(query: &StateQuery) -> ApiResult<Moment> {
        match (&query.at, query.position) {
            (Some(_), Some(_)) => Err(ApiError::validation(
                "position",
                "give either at or position, not both",
            )),
            (Some(at), None) => match Moment::parse("at", at)? {
                Moment::Position(_) => Err(ApiError::validation(
                    "at",
                    "an RFC 3339 time; use position for a global position",
                )),
                moment => Ok(moment),
            },
            (None, Some(position)) if position < 0 => Err(ApiError::validation(
                "position",
                "a position is not negative",
            )),
            (None, Some(position)) => Ok(Moment::Position(position)),
            (None, None) => Ok(Moment::Now),
        }
    }
}

/// The last event a state includes.
#[derive(Debug, Serialize, ToSchema)]
pub struct AsOf {
    pub global_position: i64,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
}

impl AsOf {
    fn of(events: &[StoredEvent]) -> Option<AsOf> {
        events.last().map(|e| AsOf {
            global_position: e.global_position,
            sequence: e.sequence,
            recorded_at: e.recorded_at,
        })
    }
}

/// One resource as it was.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateView {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The last event folded in; `null` when the resource had no event yet at that moment.
    pub as_of: Option<AsOf>,
    /// The state then; `null` when the resource was not known yet.
    #[schema(value_type = Option<Object>)]
    pub state: Value,
}

/// What changed between two moments.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffView {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub from: Option<AsOf>,
    pub to: Option<AsOf>,
    /// Each field that differs, with the events that changed it.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<FieldChange>,
    /// Every event in between, with its actor and the fields it changed.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<ChangeEvent>,
    #[schema(value_type = Option<Object>)]
    pub before: Value,
    #[schema(value_type = Option<Object>)]
    pub after: Value,
}

/// Every event of one aggregate, in order and in current shapes.
pub(crate) async fn events_of(
    state: &AppState,
    aggregate_type: &str,
    aggregate_id: &str,
) -> ApiResult<Vec<StoredEvent>> {
    let events = dcp_projections::GlobalLogReader::aggregate_events(
        &state.pool,
        aggregate_type,
        aggregate_id,
    )
    .await?;
    if events.is_empty() {
        return Err(ApiError::not_found(aggregate_type));
    }
    // A rebuilt past that silently lacks an event would mislead an audit: refuse instead.
    let shaped = match current_shapes(&events, UnknownEvents::Fail)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?
    {
        std::borrow::Cow::Owned(shaped) => Some(shaped),
        std::borrow::Cow::Borrowed(_) => None,
    };
    Ok(shaped.unwrap_or(events))
}

fn fold_error(error: state::FoldError) -> ApiError {
    ApiError::internal(anyhow::Error::new(error))
}

/// Environment values can be secrets: only admins see them.
fn redact_env(value: &mut Value) {
    if let Some(env) = value
        .get_mut("config")
        .and_then(|config| config.get_mut("env"))
        .and_then(Value::as_object_mut)
    {
        for value in env.values_mut() {
            *value = Value::String("<redacted>".into());
        }
    }
}

/// Hides environment values in one changed field's value, keeping the names.
fn redact_change(field: &str, value: &mut Value) {
    match field {
        "config" => {
            let mut wrapper = serde_json::json!({ "config": value.take() });
            redact_env(&mut wrapper);
            *value = wrapper["config"].take();
        }
        "config.env" => {
            let mut wrapper = serde_json::json!({ "config": { "env": value.take() } });
            redact_env(&mut wrapper);
            *value = wrapper["config"]["env"].take();
        }
        _ if field.starts_with("config.env.") && !value.is_null() => {
            *value = Value::String("<redacted>".into());
        }
        _ => {}
    }
}

async fn state_at(
    state: &AppState,
    role: Role,
    aggregate_type: &str,
    aggregate_id: String,
    moment: Moment,
) -> ApiResult<StateView> {
    let events = events_of(state, aggregate_type, &aggregate_id).await?;
    let until = events.iter().take_while(|e| moment.includes(e)).count();
    let included = &events[..until];
    let mut folded = if included.is_empty() {
        Value::Null
    } else {
        state::fold(aggregate_type, included)
            .map_err(fold_error)?
            .to_json()
    };
    if role != Role::Admin {
        redact_env(&mut folded);
    }
    Ok(StateView {
        aggregate_type: aggregate_type.to_string(),
        aggregate_id,
        as_of: AsOf::of(included),
        state: folded,
    })
}

impl DiffQuery {
    fn moments(&self) -> ApiResult<(Moment, Moment)> {
        let from = Moment::parse("from", &self.from)?;
        let to = match &self.to {
            Some(to) => Moment::parse("to", to)?,
            None => Moment::Now,
        };
        Ok((from, to))
    }
}

async fn diff_between(
    state: &AppState,
    role: Role,
    aggregate_type: &str,
    aggregate_id: String,
    (from, to): (Moment, Moment),
) -> ApiResult<DiffView> {
    let events = events_of(state, aggregate_type, &aggregate_id).await?;
    let start = events.iter().take_while(|e| from.includes(e)).count();
    let end = events.iter().take_while(|e| to.includes(e)).count();
    if end < start {
        return Err(ApiError::validation("to", "to is before from"));
    }
    let mut diff =
        state::diff(aggregate_type, &events[..start], &events[start..end]).map_err(fold_error)?;
    if start == 0 {
        diff.before = Value::Null;
    }
    if role != Role::Admin {
        redact_env(&mut diff.before);
        redact_env(&mut diff.after);
        for change in &mut diff.changes {
            redact_change(&change.field, &mut change.from);
            redact_change(&change.field, &mut change.to);
        }
    }
    Ok(DiffView {
        aggregate_type: aggregate_type.to_string(),
        aggregate_id,
        from: AsOf::of(&events[..start]),
        to: AsOf::of(&events[..end]),
        changes: diff.changes,
        events: diff.events,
        before: diff.before,
        after: diff.after,
    })
}

fn uuid_of(id: &str) -> ApiResult<Uuid> {
    id.parse()
        .map_err(|_| ApiError::validation("id", "a user id (UUID)"))
}

/// The aggregate of a container: its platform id, or a Docker id, id prefix or name
/// (a removed container by its id or a unique prefix, as in its history).
async fn container_aggregate(
    state: &AppState,
    meta: &CommandMeta,
    reference: &str,
    host: &Option<String>,
) -> ApiResult<String> {
    if let Ok(id) = reference.parse::<Uuid>() {
        return Ok(id.to_string());
    }
    if !valid_reference(reference) {
        return Err(ApiError::validation(
            "id",
            "a platform id, container id, id prefix or name",
        ));
    }
    let host = host_of(state, host)?;
    match crate::operations::resolve(state, &host, reference, meta).await {
        Ok(target) => Ok(target.aggregate_id.to_string()),
        Err(error) if error.code == ErrorCode::NotFound => {
            let escaped = reference
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let known: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'container' \
                 AND event_type IN ('ContainerCreated', 'ContainerDiscovered', 'ContainerRecreated') \
                 AND payload::jsonb -> event_type ->> 'docker_id' LIKE $1 || '%' LIMIT 2",
            )
            .bind(escaped)
            .fetch_all(&state.pool)
            .await?;
            match known.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}

/// The aggregate of a Docker resource known by name (volumes, networks) or reference (images).
fn keyed_aggregate(
    state: &AppState,
    kind: &str,
    key: &str,
    host: &Option<String>,
) -> ApiResult<String> {
    if let Ok(id) = key.parse::<Uuid>() {
        return Ok(id.to_string());
    }
    if key.is_empty() || key.len() > 512 || key.chars().any(char::is_control) {
        return Err(ApiError::validation("id", format!("a {kind} name or id")));
    }
    let host = host_of(state, host)?;
    let key = if kind == "image" {
        normalize_reference(key)
    } else {
        key.to_string()
    };
    Ok(resource_key(kind, &host, &key).to_string())
}

/// A network by name, or else by (a prefix of) the Docker id its events recorded.
async fn network_aggregate(
    state: &AppState,
    key: &str,
    host: &Option<String>,
) -> ApiResult<String> {
    let by_name = keyed_aggregate(state, "network", key, host)?;
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'network' AND aggregate_id = $1)",
    )
    .bind(&by_name)
    .fetch_one(&state.pool)
    .await?;
    if known || !key.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(by_name);
    }
    let by_id: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'network' \
         AND event_type IN ('NetworkCreated', 'NetworkObserved') \
         AND payload::jsonb -> event_type ->> 'network_id' LIKE $1 || '%' LIMIT 2",
    )
    .bind(key)
    .fetch_all(&state.pool)
    .await?;
    match by_id.as_slice() {
        [one] => Ok(one.clone()),
        _ => Ok(by_name),
    }
}

/// An image by reference, or else by the image id its removal was recorded under.
async fn image_aggregate(state: &AppState, key: &str, host: &Option<String>) -> ApiResult<String> {
    let by_reference = keyed_aggregate(state, "image", key, host)?;
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'image' AND aggregate_id = $1)",
    )
    .bind(&by_reference)
    .fetch_one(&state.pool)
    .await?;
    if known || key.parse::<Uuid>().is_ok() {
        return Ok(by_reference);
    }
    let host = host_of(state, host)?;
    let id = format!("sha256:{}", key.trim_start_matches("sha256:"));
    Ok(resource_key("image", &host, &id).to_string())
}

/// A remote host by id, by its current name, or by a name it was registered under.
async fn host_aggregate(state: &AppState, key: &str) -> ApiResult<String> {
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'host' AND aggregate_id = $1)",
    )
    .bind(key)
    .fetch_one(&state.pool)
    .await?;
    if known {
        return Ok(key.to_string());
    }
    let by_name: Option<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_type = 'host' \
         AND event_type IN ('HostRegistered', 'HostUpdated') \
         AND lower(COALESCE(payload::jsonb -> event_type -> 'spec' ->> 'name', payload::jsonb -> event_type ->> 'name')) = lower($1) \
         ORDER BY global_position DESC LIMIT 1",
    )
    .bind(key)
    .fetch_optional(&state.pool)
    .await?;
    by_name.ok_or_else(|| ApiError::not_found("host"))
}

/// Generates the `state` and `diff` handlers of one resource.
macro_rules! state_routes {
    ($state:ident, $diff:ident, $kind:literal, $param:literal, $state_path:literal, $diff_path:literal,
     $what:literal, |$app:ident, $meta:ident, $id:ident, $host:ident| $resolve:expr) => {
        #[doc = concat!("The state of a ", $what, " at a past moment, rebuilt from its events.")]
        #[utoipa::path(get, path = $state_path, tag = "history",
            params(($param = String, Path, description = $what), StateQuery),
            responses((status = 200, body = StateView), (status = 400), (status = 404)))]
        async fn $state(
            State($app): State<AppState>,
            Auth(principal): Auth,
            $meta: CommandMeta,
            ApiPath($id): ApiPath<String>,
            ApiQuery(query): ApiQuery<StateQuery>,
        ) -> ApiResult<ApiJson<StateView>> {
            let moment = Moment::of_state_query(&query)?;
            let $host = &query.host;
            let aggregate = $resolve;
            let _ = &$meta;
            Ok(ApiJson(
                state_at(&$app, principal.role, $kind, aggregate, moment).await?,
            ))
        }

        #[doc = concat!("What changed on a ", $what, " between two moments, and which events changed it.")]
        #[utoipa::path(get, path = $diff_path, tag = "history",
            params(($param = String, Path, description = $what), DiffQuery),
            responses((status = 200, body = DiffView), (status = 400), (status = 404)))]
        async fn $diff(
            State($app): State<AppState>,
            Auth(principal): Auth,
            $meta: CommandMeta,
            ApiPath($id): ApiPath<String>,
            ApiQuery(query): ApiQuery<DiffQuery>,
        ) -> ApiResult<ApiJson<DiffView>> {
            let moments = query.moments()?;
            let $host = &query.host;
            let aggregate = $resolve;
            let _ = &$meta;
            Ok(ApiJson(
                diff_between(&$app, principal.role, $kind, aggregate, moments).await?,
            ))
        }
    };
}

state_routes!(
    user_state,
    user_diff,
    "user",
    "id",
    "/api/v1/users/{id}/state",
    "/api/v1/users/{id}/diff",
    "user (id)",
    |app, meta, id, host| {
        let _ = host;
        uuid_of(&id)?.to_string()
    }
);
state_routes!(
    container_state,
    container_diff,
    "container",
    "id",
    "/api/v1/containers/{id}/state",
    "/api/v1/containers/{id}/diff",
    "container (platform id, Docker id, id prefix or name)",
    |app, meta, id, host| container_aggregate(&app, &meta, &id, host).await?
);
state_routes!(
    image_state,
    image_diff,
    "image",
    "id",
    "/api/v1/images/{id}/state",
    "/api/v1/images/{id}/diff",
    "image (reference with '/' as %2F, image id, or platform id)",
    |app, meta, id, host| image_aggregate(&app, &id, host).await?
);
state_routes!(
    volume_state,
    volume_diff,
    "volume",
    "name",
    "/api/v1/volumes/{name}/state",
    "/api/v1/volumes/{name}/diff",
    "volume (name or platform id)",
    |app, meta, id, host| keyed_aggregate(&app, "volume", &id, host)?
);
state_routes!(
    network_state,
    network_diff,
    "network",
    "id",
    "/api/v1/networks/{id}/state",
    "/api/v1/networks/{id}/diff",
    "network (name, id or id prefix, or platform id)",
    |app, meta, id, host| network_aggregate(&app, &id, host).await?
);
state_routes!(
    host_state,
    host_diff,
    "host",
    "id",
    "/api/v1/hosts/{id}/state",
    "/api/v1/hosts/{id}/diff",
    "remote host (id or name)",
    |app, meta, id, host| {
        let _ = host;
        host_aggregate(&app, &id).await?
    }
);
