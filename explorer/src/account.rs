//! An account's balances on every shard, each marked verified only when its proofs check: with a
//! coordinator, up to the coordinator's signature (epoch → global root → shard header finalized by the
//! genesis validators → state root → account record); without one, up to the shard header finalized by the
//! genesis validators.

use std::time::Duration;

use eyre::eyre;
use serde::Serialize;
use shardex_client::{CoordinatorClient, ShardClient};
use shardex_core::AccountId;

use crate::{
    collect::{Network, Shard},
    view::{usd, usd_signed},
};

/// An account on every shard.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    /// The account (hex).
    pub account: String,
    /// One entry per shard, by shard id.
    pub shards: Vec<AccountShardView>,
}

/// An account on one shard.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountShardView {
    /// Shard id.
    pub shard_id: u32,
    /// Market symbol.
    pub symbol: String,
    /// The proofs checked: the collateral and escrow below are what they prove.
    pub verified: bool,
    /// What was checked, e.g. `epoch 41 → shard 1 at height 310 → record`.
    pub proof: String,
    /// Height the balances are proven at.
    pub height: u64,
    /// Collateral, exact (`0.000000 USD` for an account without a record).
    pub collateral: String,
    /// Collateral locked for outgoing bridge messages, exact.
    pub escrow: String,
    /// Whether the account has a record on the shard at that height.
    pub exists: bool,
    /// On an options market: the position-weighted Greeks at the head (not proven; read from the node).
    pub greeks: Option<GreeksView>,
    /// Why the shard could not be asked or the proofs did not check.
    pub error: Option<String>,
}

/// Summed Greeks of an account's option positions.
#[derive(Debug, Clone, Serialize)]
pub struct GreeksView {
    /// Head height.
    pub height: u64,
    /// Micro-units of the underlying.
    pub delta_micro_units: i64,
    /// 10^-12 per USD.
    pub gamma_e12: i64,
    /// Micro-USD per volatility point.
    pub vega_micros: i64,
    /// Micro-USD per day.
    pub theta_micros: i64,
    /// Series held.
    pub series: usize,
}

/// Looks `account` up on every shard of `net`, each within `timeout`.
pub async fn lookup(net: &Network, account: AccountId, timeout: Duration) -> AccountView {
    let shards = futures::future::join_all(net.shards.iter().map(|shard| async move {
        let mut view = AccountShardView {
            shard_id: shard.genesis.shard_id.0,
            symbol: shard.genesis.market.symbol.clone(),
            ..Default::default()
        };
        match tokio::time::timeout(timeout, on_shard(net, shard, &account, &mut view)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => view.error = Some(format!("{e:#}")),
            Err(_) => view.error = Some(format!("no answer in {timeout:?}")),
        }
        view
    }))
    .await;
    AccountView { account: account.to_hex(), shards }
}

async fn on_shard(net: &Network, shard: &Shard, account: &AccountId, view: &mut AccountShardView) -> eyre::Result<()> {
    let client = connect_any(&shard.endpoints).await?;
    let validators = &shard.genesis.validators;
    let record = match &net.coordinator {
        Some((endpoint, key)) => {
            let coordinator = CoordinatorClient::connect(endpoint).await?;
            let v = client.account_global(&coordinator, key, 0, account, validators).await?;
            view.height = v.entry.height;
            view.proof = format!(
                "coordinator signature → epoch {} → shard {} header at {} (certified by its validators) → state \
                 root 0x{}… → record",
                v.epoch.record.number,
                shard.genesis.shard_id.0,
                v.entry.height,
                &hex::encode(v.state_root)[..12]
            );
            v.record
        }
        None => {
            let v = client.account_proven(account, 0, Some(validators)).await?;
            view.height = v.height;
            view.proof = format!(
                "shard {} header at {} (certified by its validators) → state root 0x{}… → record",
                shard.genesis.shard_id.0,
                v.height,
                &hex::encode(v.state_root)[..12]
            );
            v.record
        }
    };
    view.verified = true;
    view.exists = record.is_some();
    let record = record.unwrap_or_default();
    view.collateral = usd_signed(record.collateral_micros);
    view.escrow = usd(record.escrow_micros);
    if shard.genesis.market.options.is_some() {
        let g = client.greeks(account).await?;
        view.greeks = Some(GreeksView {
            height: g.height,
            delta_micro_units: g.delta_micro_units,
            gamma_e12: g.gamma_e12,
            vega_micros: g.vega_micros,
            theta_micros: g.theta_micros,
            series: g.series.len(),
        });
    }
    Ok(())
}

/// The first of `endpoints` that answers.
async fn connect_any(endpoints: &[String]) -> eyre::Result<ShardClient> {
    let mut last = eyre!("the shard has no endpoint");
    for e in endpoints {
        match ShardClient::connect(e).await {
            Ok(c) => return Ok(c),
            Err(err) => last = eyre!("{e}: {err}"),
        }
    }
    Err(last)
}
