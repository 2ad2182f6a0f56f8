//! Serving a gRPC service the way every shardex server does: health (`grpc.health.v1`) reporting it as
//! serving, reflection over the shardex descriptor set, and `TCP_NODELAY` on every accepted connection.

use std::net::SocketAddr;

use shardex_proto::FILE_DESCRIPTOR_SET;
use tokio::net::TcpListener;
use tokio_stream::{wrappers::TcpListenerStream, StreamExt};
use tonic::service::Routes;
use tracing::{info, warn};

/// Serves `routes` (the service named `service_name`, with its limits set) on `listener` until `shutdown`
/// resolves.
pub async fn serve(
    routes: Routes,
    service_name: &'static str,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status(service_name, tonic_health::ServingStatus::Serving).await;
    let mut routes = routes.add_service(health_service);
    match tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
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
    tonic::transport::Server::builder().add_routes(routes).serve_with_incoming_shutdown(incoming, shutdown).await
}
