//! Any past moment of one resource: `GET /api/v1/<resources>/{id}/state?at=|position=`
//! and `…/diff?from=&to=`; the work is the history service's ([`crate::history`]).

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::commands::CommandMeta;
use crate::history::{DiffQuery, DiffView, PastKind, PastTarget, StateQuery, StateView};

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

/// Generates the `state` and `diff` handlers of one kind of resource.
macro_rules! past_routes {
    ($state:ident, $diff:ident, $kind:expr, $param:literal, $state_path:literal, $diff_path:literal,
     $what:literal) => {
        #[doc = concat!("The state of a ", $what, " at a past moment, rebuilt from its events.")]
        #[utoipa::path(get, path = $state_path, tag = "history",
            params(($param = String, Path, description = $what), StateQuery),
            responses((status = 200, body = StateView), (status = 400), (status = 404)))]
        async fn $state(
            State(state): State<AppState>,
            Auth(principal): Auth,
            meta: CommandMeta,
            ApiPath(key): ApiPath<String>,
            ApiQuery(query): ApiQuery<StateQuery>,
        ) -> ApiResult<ApiJson<StateView>> {
            let target = PastTarget { kind: $kind, key: &key };
            let past = state
                .history
                .state_at(principal.role, target, &query, &meta)
                .await?;
            Ok(ApiJson(past))
        }

        #[doc = concat!("What changed on a ", $what, " between two moments, and which events changed it.")]
        #[utoipa::path(get, path = $diff_path, tag = "history",
            params(($param = String, Path, description = $what), DiffQuery),
            responses((status = 200, body = DiffView), (status = 400), (status = 404)))]
        async fn $diff(
            State(state): State<AppState>,
            Auth(principal): Auth,
            meta: CommandMeta,
            ApiPath(key): ApiPath<String>,
            ApiQuery(query): ApiQuery<DiffQuery>,
        ) -> ApiResult<ApiJson<DiffView>> {
            let target = PastTarget { kind: $kind, key: &key };
            let diff = state
                .history
                .diff(principal.role, target, &query, &meta)
                .await?;
            Ok(ApiJson(diff))
        }
    };
}

past_routes!(
    user_state,
    user_diff,
    PastKind::User,
    "id",
    "/api/v1/users/{id}/state",
    "/api/v1/users/{id}/diff",
    "user (id)"
);
past_routes!(
    container_state,
    container_diff,
    PastKind::Container,
    "id",
    "/api/v1/containers/{id}/state",
    "/api/v1/containers/{id}/diff",
    "container (platform id, Docker id, id prefix or name)"
);
past_routes!(
    image_state,
    image_diff,
    PastKind::Image,
    "id",
    "/api/v1/images/{id}/state",
    "/api/v1/images/{id}/diff",
    "image (reference with '/' as %2F, image id, or platform id)"
);
past_routes!(
    volume_state,
    volume_diff,
    PastKind::Volume,
    "name",
    "/api/v1/volumes/{name}/state",
    "/api/v1/volumes/{name}/diff",
    "volume (name or platform id)"
);
past_routes!(
    network_state,
    network_diff,
    PastKind::Network,
    "id",
    "/api/v1/networks/{id}/state",
    "/api/v1/networks/{id}/diff",
    "network (name, id or id prefix, or platform id)"
);
past_routes!(
    host_state,
    host_diff,
    PastKind::Host,
    "id",
    "/api/v1/hosts/{id}/state",
    "/api/v1/hosts/{id}/diff",
    "remote host (id or name)"
);
