//! The explorer's HTTP side: the page (`GET /`), the overview it polls (`GET /api/overview`) and an account's
//! verified balances (`GET /api/account/{hex}`). Errors are JSON `{"error": "..."}` with a fitting status.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Json, Router,
};
use shardex_core::AccountId;
use tokio::sync::Semaphore;

use crate::{account, collect::Explorer};

/// The page: one HTML file with its script and styles, no build step.
pub const PAGE: &str = include_str!("page.html");

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    explorer: Arc<Explorer>,
    lookups: Arc<Semaphore>,
    max_lookups: usize,
}

/// The router serving the page and its API, with at most `max_requests` requests at once and at most
/// `max_lookups` account lookups.
pub fn router(explorer: Arc<Explorer>, max_requests: usize, max_lookups: usize) -> Router {
    let state = AppState { explorer, lookups: Arc::new(Semaphore::new(max_lookups)), max_lookups };
    Router::new()
        .route("/", get(page))
        .route("/api/overview", get(overview))
        .route("/api/account/{account}", get(account))
        .fallback(not_found)
        .layer(tower::limit::ConcurrencyLimitLayer::new(max_requests))
        .with_state(state)
}

async fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

async fn overview(State(s): State<AppState>) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(s.explorer.snapshot())).into_response()
}

async fn account(State(s): State<AppState>, Path(hex): Path<String>) -> Response {
    let account = match AccountId::from_hex(hex.trim()) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not an account id (64 hex digits): {e}")),
    };
    let Ok(_permit) = s.lookups.try_acquire() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} account lookups are running, the most at once; try again", s.max_lookups),
        );
    };
    let timeout = Duration::from_millis(s.explorer.view.timeout_ms);
    Json(account::lookup(&s.explorer.net, account, timeout).await).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such page: the explorer serves /, /api/overview and /api/account/{hex}".into())
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        collect::{Network, Shard},
        config::ExplorerConfig,
    };
    use shardex_core::{genesis::Authorities, genesis::Genesis, Keypair};

    /// Serves an explorer of one shard whose only node is unreachable (no collectors run).
    async fn serve() -> String {
        let key = || Keypair::generate().account();
        let genesis = Genesis::example(Authorities { deposit: key(), oracle: key(), admin: key() }, key());
        let net = Network {
            chain: genesis.chain_id,
            shards: vec![Shard { genesis, endpoints: vec!["http://127.0.0.1:1".into()] }],
            coordinator: None,
            relayer: None,
        };
        let mut view = ExplorerConfig::default().view;
        view.timeout_ms = 500;
        let app = router(Arc::new(Explorer::new(net, view)), 8, 1);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn get(addr: &str, path: &'static str) -> (u16, String) {
        let addr = addr.to_owned();
        tokio::task::spawn_blocking(move || shardex_test_support::http_get(&addr, path))
            .await
            .expect("join")
            .expect("GET")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_page_and_api_answer_and_bad_input_gets_a_clear_error() {
        let addr = serve().await;
        let (code, page) = get(&addr, "/").await;
        assert!(code == 200 && page.contains("<title>shardex explorer</title>"), "{code} {page}");

        let (code, body) = get(&addr, "/api/overview").await;
        assert_eq!(code, 200, "{body}");
        let o: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(o["shards"][0]["symbol"], "BTC-PERP");
        assert!(o["coordinator"].is_null() && o["bridge"].is_null(), "none configured: {o}");

        for (path, code, says) in [
            ("/api/account/zz", 400, "not an account id"),
            ("/api/account/00", 400, "not an account id"),
            ("/api/nothing", 404, "no such page"),
            ("/favicon.ico", 404, "no such page"),
        ] {
            let (got, body) = get(&addr, path).await;
            assert_eq!(got, code, "{path}: {body}");
            let e: serde_json::Value = serde_json::from_str(&body).expect("errors are JSON");
            assert!(e["error"].as_str().is_some_and(|m| m.contains(says)), "{path}: {body}");
        }

        // A shard that cannot be asked is never marked verified: the error says why.
        let hex = "/api/account/1111111111111111111111111111111111111111111111111111111111111111";
        let (code, body) = get(&addr, hex).await;
        assert_eq!(code, 200, "{body}");
        let a: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let shard = &a["shards"][0];
        assert_eq!(shard["verified"], false, "{a}");
        assert!(shard["error"].as_str().is_some_and(|e| !e.is_empty()), "{a}");
    }
}
