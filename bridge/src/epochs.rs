//! Following the coordinator: `StreamEpochs` from the latest, each epoch's signature checked against the
//! configured coordinator key before the relaying loop sees it (a watch of the latest verified epoch).

use std::time::Duration;

use shardex_client::CoordinatorClient;
use shardex_core::{coordpb, global::verify_epoch, AccountId, ChainId};
use tokio::sync::watch;
use tracing::warn;

use crate::{
    error::{remote, RelayerError, Result},
    follow::Backoff,
};

/// The latest verified epoch: number and the signed record (what an import carries).
pub type LatestEpoch = Option<(u64, coordpb::SignedEpoch)>;

/// Follows the coordinator at `endpoint` until `tx` has no receiver.
pub async fn follow_epochs(
    endpoint: String,
    key: AccountId,
    chain: ChainId,
    tx: watch::Sender<LatestEpoch>,
    backoff: Backoff,
) {
    let mut delay = backoff.min;
    loop {
        if tx.is_closed() {
            return;
        }
        match follow_once(&endpoint, &key, chain, &tx, &mut delay, backoff.min).await {
            Ok(()) => return,
            Err(e) => {
                warn!(target: "relayer::epochs", error = %e, "coordinator stream ended; reconnecting");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(backoff.max);
            }
        }
    }
}

async fn follow_once(
    endpoint: &str,
    key: &AccountId,
    chain: ChainId,
    tx: &watch::Sender<LatestEpoch>,
    delay: &mut Duration,
    min: Duration,
) -> Result<()> {
    let client = CoordinatorClient::connect(endpoint).await.map_err(remote(format!("connect {endpoint}")))?;
    let latest = client.latest_epoch().await.map_err(remote("GetLatestEpoch"));
    if let Ok(signed) = latest {
        publish(signed, key, chain, tx)?;
    }
    let stream = client.stream_epochs(0).await.map_err(remote("StreamEpochs"))?;
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = futures::StreamExt::next(&mut stream).await {
        let signed = item.map_err(|s| remote("StreamEpochs")(s.into()))?;
        publish(signed, key, chain, tx)?;
        *delay = min;
        if tx.is_closed() {
            return Ok(());
        }
    }
    Err(RelayerError::Protocol("epoch stream closed".into()))
}

fn publish(
    signed: coordpb::SignedEpoch,
    key: &AccountId,
    chain: ChainId,
    tx: &watch::Sender<LatestEpoch>,
) -> Result<()> {
    let verified = verify_epoch(&signed, key, chain)
        .map_err(|e| RelayerError::Protocol(format!("epoch from the coordinator does not verify: {e}")))?;
    let number = verified.record.number;
    tx.send_if_modified(|cur| {
        if cur.as_ref().is_some_and(|(n, _)| *n >= number) {
            return false;
        }
        *cur = Some((number, signed));
        true
    });
    Ok(())
}
