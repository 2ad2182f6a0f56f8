//! Serving a gRPC service the way every shardex server does: health (`grpc.health.v1`) reporting it as
//! serving, reflection over the shardex descriptor set, `TCP_NODELAY` on every accepted connection, and
//! explicit connection limits (`[rpc.limits]`): a request deadline, streams and in-flight requests per
//! connection, and HTTP/2 keepalive so a vanished client's connection (and its streams) is dropped.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use shardex_proto::FILE_DESCRIPTOR_SET;
use tokio::net::TcpListener;
use tokio_stream::{wrappers::TcpListenerStream, StreamExt};
use tonic::service::Routes;

use crate::metrics::TaskGuard;
use tracing::{info, warn};

/// `[rpc.limits]`: what one client connection may hold of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// Deadline of every request until its response starts, ms (a `SubmitStream` must end within it; server
    /// streams, once started, are bounded by the idle limit instead). A client's shorter `grpc-timeout` wins.
    pub request_timeout_ms: u64,
    /// Concurrent HTTP/2 streams (calls, open server streams included) per connection.
    pub max_streams_per_connection: u32,
    /// Requests handled at once per connection; more wait their turn.
    pub max_inflight_per_connection: usize,
    /// HTTP/2 ping interval on an idle connection, ms.
    pub keepalive_interval_ms: u64,
    /// A connection whose ping is not answered within this is closed, ms.
    pub keepalive_timeout_ms: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            request_timeout_ms: 30_000,
            max_streams_per_connection: 512,
            max_inflight_per_connection: 256,
            keepalive_interval_ms: 20_000,
            keepalive_timeout_ms: 10_000,
        }
    }
}

impl ServerLimits {
    /// The range checks, as `(key, holds, problem)` for [`crate::config::check`].
    pub fn checks(&self) -> [(&'static str, bool, &'static str); 5] {
        [
            (
                "rpc.limits.request_timeout_ms",
                (100..=3_600_000).contains(&self.request_timeout_ms),
                "must be 100..=3600000",
            ),
            (
                "rpc.limits.max_streams_per_connection",
                (1..=100_000).contains(&self.max_streams_per_connection),
                "must be 1..=100000",
            ),
            (
                "rpc.limits.max_inflight_per_connection",
                (1..=100_000).contains(&self.max_inflight_per_connection),
                "must be 1..=100000",
            ),
            (
                "rpc.limits.keepalive_interval_ms",
                (1_000..=3_600_000).contains(&self.keepalive_interval_ms),
                "must be 1000..=3600000",
            ),
            (
                "rpc.limits.keepalive_timeout_ms",
                (100..=self.keepalive_interval_ms).contains(&self.keepalive_timeout_ms),
                "must be 100..=rpc.limits.keepalive_interval_ms",
            ),
        ]
    }
}

/// Flags overriding `[rpc.limits]`, shared by every server's command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerLimitFlags {
    /// Deadline of every request until its response starts, ms.
    #[arg(long = "rpc.limits.request-timeout-ms", value_name = "MS")]
    pub request_timeout_ms: Option<u64>,
    /// Concurrent calls and streams per connection.
    #[arg(long = "rpc.limits.max-streams-per-connection", value_name = "N")]
    pub max_streams_per_connection: Option<u32>,
    /// Requests handled at once per connection.
    #[arg(long = "rpc.limits.max-inflight-per-connection", value_name = "N")]
    pub max_inflight_per_connection: Option<usize>,
    /// HTTP/2 keepalive ping interval, ms.
    #[arg(long = "rpc.limits.keepalive-interval-ms", value_name = "MS")]
    pub keepalive_interval_ms: Option<u64>,
    /// HTTP/2 keepalive ping timeout, ms.
    #[arg(long = "rpc.limits.keepalive-timeout-ms", value_name = "MS")]
    pub keepalive_timeout_ms: Option<u64>,
}

impl ServerLimitFlags {
    /// Overrides the limits given on the command line.
    pub fn apply(self, limits: &mut ServerLimits) {
        use crate::config::set;
        set(self.request_timeout_ms, &mut limits.request_timeout_ms);
        set(self.max_streams_per_connection, &mut limits.max_streams_per_connection);
        set(self.max_inflight_per_connection, &mut limits.max_inflight_per_connection);
        set(self.keepalive_interval_ms, &mut limits.keepalive_interval_ms);
        set(self.keepalive_timeout_ms, &mut limits.keepalive_timeout_ms);
    }
}

/// The range checks of the `[rpc]` keys that bound a server's streams (`max_subscribers`, `stream_idle_ms`,
/// `stream_stall_ms`), as `(key, holds, problem)` for [`crate::config::check`].
pub fn stream_checks(
    max_subscribers: usize,
    stream_idle_ms: u64,
    stream_stall_ms: u64,
) -> [(&'static str, bool, &'static str); 3] {
    [
        ("rpc.max_subscribers", (1..=100_000).contains(&max_subscribers), "must be 1..=100000"),
        ("rpc.stream_idle_ms", (1_000..=86_400_000).contains(&stream_idle_ms), "must be 1000..=86400000"),
        ("rpc.stream_stall_ms", (100..=3_600_000).contains(&stream_stall_ms), "must be 100..=3600000"),
    ]
}

/// Flags overriding a server's stream keys of `[rpc]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StreamLimitFlags {
    /// Concurrent stream subscribers, all clients together.
    #[arg(long = "rpc.max-subscribers", value_name = "N")]
    pub max_subscribers: Option<usize>,
    /// How long a stream may have nothing to send before it ends, in ms.
    #[arg(long = "rpc.stream-idle-ms", value_name = "MS")]
    pub stream_idle_ms: Option<u64>,
    /// How long a stream's client may leave its buffer full before it is dropped, in ms.
    #[arg(long = "rpc.stream-stall-ms", value_name = "MS")]
    pub stream_stall_ms: Option<u64>,
}

impl StreamLimitFlags {
    /// Overrides the keys given on the command line.
    pub fn apply(self, max_subscribers: &mut usize, stream_idle_ms: &mut u64, stream_stall_ms: &mut u64) {
        use crate::config::set;
        set(self.max_subscribers, max_subscribers);
        set(self.stream_idle_ms, stream_idle_ms);
        set(self.stream_stall_ms, stream_stall_ms);
    }
}

/// The health service's name, served beside every service and advertised by reflection.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// The reflection service's name, advertised by itself.
pub const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

/// Serves `routes` (the service named `service_name`, with its message limits set) on `listener` under
/// `limits` until `shutdown` resolves. The health service reports the server (both `service_name` and the
/// whole server, `""`) `SERVING` while `ready` holds true, `NOT_SERVING` while it holds false; without
/// `ready`, `SERVING` from the start.
pub async fn serve(
    routes: Routes,
    service_name: &'static str,
    limits: &ServerLimits,
    listener: TcpListener,
    ready: Option<tokio::sync::watch::Receiver<bool>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let (health, health_service) = tonic_health::server::health_reporter();
    let report = move |health: tonic_health::server::HealthReporter, serving: bool| async move {
        let status =
            if serving { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
        health.set_service_status(service_name, status).await;
        health.set_service_status("", status).await;
    };
    let _health_task = match ready {
        None => {
            report(health, true).await;
            None
        }
        Some(mut ready) => {
            let serving = *ready.borrow_and_update();
            report(health.clone(), serving).await;
            Some(TaskGuard::spawn(async move {
                while ready.changed().await.is_ok() {
                    let serving = *ready.borrow_and_update();
                    report(health.clone(), serving).await;
                }
            }))
        }
    };
    let mut routes = routes.add_service(health_service);
    // Reflection advertises what this server serves, not every service the descriptor set describes.
    match tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(service_name)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_SERVICE)
        .build_v1()
    {
        Ok(reflection) => routes = routes.add_service(reflection),
        Err(e) => warn!(target: "rpc", error = %e, "reflection disabled: descriptor set did not load"),
    }
    info!(target: "rpc", ?addr, service = service_name, "gRPC serving (with health and reflection)");
    // tonic's `tcp_nodelay` does not reach connections from a caller-provided listener: set it here, or
    // every small response waits out Nagle's algorithm against the client's delayed ACK (~40 ms).
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn {
            if let Err(e) = stream.set_nodelay(true) {
                warn!(target: "rpc", error = %e, "could not set TCP_NODELAY");
            }
        }
        conn
    });
    tonic::transport::Server::builder()
        .timeout(Duration::from_millis(limits.request_timeout_ms))
        .max_concurrent_streams(limits.max_streams_per_connection)
        .concurrency_limit_per_connection(limits.max_inflight_per_connection)
        .http2_keepalive_interval(Some(Duration::from_millis(limits.keepalive_interval_ms)))
        .http2_keepalive_timeout(Some(Duration::from_millis(limits.keepalive_timeout_ms)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
