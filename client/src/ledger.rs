//! `shardex ledger`: a shard's ledger totals and pools, each record proven under one state root (optionally
//! against a header certified by the genesis validator set), and its conservation identity checked on them.

use std::path::PathBuf;

use clap::Args;
use eyre::bail;
use shardex_client::{
    core::{
        genesis::Genesis,
        ledger::{held_micros, net_inflow_micros},
        Usd,
    },
    ShardClient,
};

/// `shardex ledger`.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Height to read at (default: head); must be inside the node's retention window.
    #[arg(long, default_value_t = 0)]
    height: u64,
    /// Genesis file: also verify the state root is carried by a header its validator set certified.
    #[arg(long)]
    genesis: Option<PathBuf>,
}

fn usd(micros: i128) -> String {
    match i64::try_from(micros) {
        Ok(m) => Usd::from_micros(m).to_string(),
        Err(_) => format!("{micros} micro-USD"),
    }
}

/// Prints the proven totals and pools and fails when the identity does not hold.
pub async fn run(client: &ShardClient, a: LedgerArgs, out: crate::output::Output) -> eyre::Result<()> {
    let validators = match &a.genesis {
        Some(path) => Some(Genesis::read_file(path)?.validators),
        None => None,
    };
    let v = client.ledger(a.height, validators.as_ref()).await?;
    let (t, p) = (&v.totals, &v.pools);
    if out.json() {
        let exact = |m: i128| usd(m).trim_end_matches(" USD").to_owned();
        let conservation = v.check_conservation();
        crate::output::emit(&serde_json::json!({
            "market": v.market.symbol,
            "shard_id": client.domain().shard.0,
            "height": v.height,
            "state_root": hex::encode(v.state_root),
            "header_certified_by_genesis_validators": v.header_checked,
            "deposited_usd": exact(t.deposited_micros.into()),
            "withdrawn_usd": exact(t.withdrawn_micros.into()),
            "bridged_in_usd": exact(t.bridged_in_micros.into()),
            "bridged_out_usd": exact(t.bridged_out_micros.into()),
            "escrowed_usd": exact(t.escrowed_micros.into()),
            "collateral_usd": exact(t.collateral_micros.into()),
            "entry_notional_usd": exact(t.entry_notional_micros.into()),
            "fee_pool_usd": exact(p.fee_pool_micros.into()),
            "insurance_fund_usd": exact(p.insurance_fund_micros.into()),
            "funding_pool_usd": exact(p.funding_pool_micros.into()),
            "held_usd": exact(held_micros(t, p)),
            "net_inflow_usd": exact(net_inflow_micros(t)),
            "conservation_holds": conservation.is_ok(),
        }))?;
        return conservation.map_err(|e| eyre::eyre!(e));
    }
    println!("market          {} (shard {})", v.market.symbol, client.domain().shard);
    println!("deposited       {}", usd(t.deposited_micros.into()));
    println!("withdrawn       {}", usd(t.withdrawn_micros.into()));
    println!("bridged in      {}", usd(t.bridged_in_micros.into()));
    println!("bridged out     {}", usd(t.bridged_out_micros.into()));
    println!("escrowed        {}", usd(t.escrowed_micros.into()));
    println!("Σ collateral    {}", usd(t.collateral_micros.into()));
    println!("Σ entry         {}", usd(t.entry_notional_micros.into()));
    println!("fee pool        {}", usd(p.fee_pool_micros.into()));
    println!("insurance fund  {}", usd(p.insurance_fund_micros.into()));
    println!("funding pool    {}", usd(p.funding_pool_micros.into()));
    println!("proof           verified against state root 0x{} at height {}", hex::encode(v.state_root), v.height);
    if v.header_checked {
        println!("header          certified by the genesis validator set");
    }
    match v.check_conservation() {
        Ok(()) => {
            println!("conservation    holds: held = net inflow = {}", usd(held_micros(t, p)));
            Ok(())
        }
        Err(e) => {
            println!(
                "conservation    BROKEN: held {}, net inflow {}",
                usd(held_micros(t, p)),
                usd(net_inflow_micros(t))
            );
            bail!(e)
        }
    }
}
