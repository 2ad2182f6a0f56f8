//! `shardex options`: an options market's chain read from proven state (expiries, series, volatility and
//! settlement prices), and the ops that shape it: listing a series (admin), a volatility update (oracle),
//! settling expired positions (anyone), an account's choice of margin rules, and the admin's fallback
//! settlement price.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use eyre::{eyre, WrapErr};
use prost::Message;
use shardex_client::{
    core::{
        money::parse_usd,
        option::series::{self, SeriesId},
        pb::{self, tx_body::Op},
        state_key::Namespace,
        AccountId, Keypair, Usd,
    },
    ShardClient, Wallet,
};

/// `shardex options`.
#[derive(Debug, Subcommand)]
pub enum OptionsCmd {
    /// The live expiries with their series, volatility points and settlement prices, each record proven.
    List,
    /// List a series (signed by the market's admin key).
    Add {
        /// Key file of the admin.
        #[arg(long, short)]
        key: PathBuf,
        /// The series: EXPIRY_MS:STRIKE_USD:call|put.
        series: String,
    },
    /// Set an expiry's volatility by strike (signed by the market's oracle key), timestamped now.
    Vol {
        /// Key file of the oracle.
        #[arg(long, short)]
        key: PathBuf,
        /// The expiry, ms since the Unix epoch.
        #[arg(long)]
        expiry: u64,
        /// Points STRIKE_USD:VOL_PERCENT, ascending by strike (e.g. 2000:80 2200:75.5).
        #[arg(required = true)]
        points: Vec<String>,
    },
    /// Choose the signer's margin rules on this market: `portfolio` (the worst loss over a grid of spot and
    /// volatility shocks) or `standard` (per-position rules, spreads capped at their maximum loss).
    Margin {
        /// Key file of the account.
        #[arg(long, short)]
        key: PathBuf,
        /// `portfolio` or `standard`.
        #[arg(value_parser = ["portfolio", "standard"])]
        rules: String,
    },
    /// Settle accounts' positions in an expired series whose settlement price is fixed (anyone may sign).
    Settle(SettleArgs),
    /// Fix the settlement price of an expiry the oracle left unsettled past the grace period (admin key).
    SetPrice {
        /// Key file of the admin.
        #[arg(long, short)]
        key: PathBuf,
        /// The expiry, ms since the Unix epoch.
        #[arg(long)]
        expiry: u64,
        /// Settlement price in USD.
        #[arg(long)]
        price: String,
        /// Why (kept in the tx).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// `shardex options settle`.
#[derive(Debug, Args)]
pub struct SettleArgs {
    /// Key file of the signer.
    #[arg(long, short)]
    key: PathBuf,
    /// The series: EXPIRY_MS:STRIKE_USD:call|put.
    series: String,
    /// Accounts to settle (hex), 1 to 64.
    #[arg(required = true)]
    accounts: Vec<String>,
}

/// A volatility point from `STRIKE_USD:VOL_PERCENT`.
fn point(s: &str) -> eyre::Result<pb::VolPoint> {
    let (strike, vol) = s.split_once(':').ok_or_else(|| eyre!("point {s:?}: expected STRIKE_USD:VOL_PERCENT"))?;
    let strike_micros = parse_usd(strike).map_err(|e| eyre!("point {s:?}: strike: {e}"))?;
    // A percentage with up to four decimals is a whole number of parts per million.
    let ppm = parse_usd(vol).map_err(|e| eyre!("point {s:?}: volatility: {e}"))? / 100;
    let vol_ppm = u32::try_from(ppm).map_err(|_| eyre!("point {s:?}: volatility too large"))?;
    Ok(pb::VolPoint { strike_micros, vol_ppm })
}

async fn record<M: Message + Default>(client: &ShardClient, ns: Namespace, id: &[u8], height: u64) -> eyre::Result<M> {
    let (_, value) = client.prove(ns, id, height).await?;
    Ok(value.map(|v| M::decode(v.as_slice())).transpose().wrap_err("record does not decode")?.unwrap_or_default())
}

/// Runs `shardex options`; `report` waits for and prints a submitted tx.
pub async fn run<F, Fut>(
    client: &ShardClient,
    cmd: OptionsCmd,
    out: crate::output::Output,
    report: F,
) -> eyre::Result<()>
where
    F: FnOnce(shardex_client::core::B256) -> Fut,
    Fut: std::future::Future<Output = eyre::Result<()>>,
{
    let op = match cmd {
        OptionsCmd::List => return list(client, out).await,
        OptionsCmd::Add { key, series } => {
            let s = SeriesId::parse(&series).map_err(|e| eyre!(e))?;
            let op =
                pb::ListSeries { expiry_ms: s.expiry_ms, strike_micros: s.strike_micros, kind: s.kind.to_pb() as i32 };
            (key, Op::ListSeries(op))
        }
        OptionsCmd::Vol { key, expiry, points } => {
            let points = points.iter().map(|p| point(p)).collect::<eyre::Result<Vec<_>>>()?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
            (key, Op::VolUpdate(pb::VolUpdate { expiry_ms: expiry, timestamp_ms: now, points }))
        }
        OptionsCmd::Margin { key, rules } => {
            (key, Op::SetMarginMode(pb::SetMarginMode { portfolio: rules == "portfolio" }))
        }
        OptionsCmd::SetPrice { key, expiry, price, reason } => {
            let price_micros = parse_usd(&price).map_err(|e| eyre!("price: {e}"))?;
            (key, Op::SetSettlementPrice(pb::SetSettlementPrice { expiry_ms: expiry, price_micros, reason }))
        }
        OptionsCmd::Settle(a) => {
            let s = SeriesId::parse(&a.series).map_err(|e| eyre!(e))?;
            let accounts =
                a.accounts.iter().map(|h| AccountId::from_hex(h).map(|a| a.0.to_vec())).collect::<Result<_, _>>()?;
            (a.key, Op::SettleExpired(pb::SettleExpired { series: s.to_bytes().to_vec(), accounts }))
        }
    };
    let (key, op) = op;
    let mut wallet = Wallet::new(Keypair::read_file(&key)?, client).await?;
    let hash = wallet.submit(client, op).await?;
    report(hash).await
}

async fn list(client: &ShardClient, out: crate::output::Output) -> eyre::Result<()> {
    let height = client.status().await?.height;
    let chain: pb::OptionChainRecord = record(client, Namespace::OptionChain, &[], height).await?;
    if out.json() {
        let mut expiries = Vec::new();
        for expiry_ms in &chain.expiries {
            let e: pb::ExpiryRecord = record(client, Namespace::Expiry, &expiry_ms.to_be_bytes(), height).await?;
            let mut series = Vec::new();
            for r in &e.series {
                let kind =
                    series::OptionKind::from_pb(r.kind).ok_or_else(|| eyre!("series of unknown kind {}", r.kind))?;
                let id = SeriesId { expiry_ms: *expiry_ms, strike_micros: r.strike_micros, kind };
                series.push(serde_json::json!({ "series": id.to_string(), "id": hex::encode(id.to_bytes()) }));
            }
            let vol: Vec<serde_json::Value> = e
                .vol_points
                .iter()
                .map(|p| serde_json::json!({ "strike_usd": crate::output::usd_u(p.strike_micros), "vol_ppm": p.vol_ppm }))
                .collect();
            expiries.push(serde_json::json!({
                "expiry_ms": expiry_ms,
                "vol_points": vol,
                "vol_timestamp_ms": e.vol_timestamp_ms,
                "settle_price_usd": (e.settle_price_micros != 0).then(|| crate::output::usd_u(e.settle_price_micros)),
                "series": series,
            }));
        }
        return crate::output::emit(&serde_json::json!({
            "height": height,
            "series_count": chain.series_count,
            "expiries": expiries,
            "proven": true,
        }));
    }
    println!(
        "option chain at height {height}: {} live series in {} expiries (every record proven)",
        chain.series_count,
        chain.expiries.len()
    );
    for expiry_ms in chain.expiries {
        let e: pb::ExpiryRecord = record(client, Namespace::Expiry, &expiry_ms.to_be_bytes(), height).await?;
        let vol: Vec<String> = e
            .vol_points
            .iter()
            .map(|p| format!("{}:{}.{:02}%", p.strike_micros / 1_000_000, p.vol_ppm / 10_000, p.vol_ppm / 100 % 100))
            .collect();
        let vol = if vol.is_empty() {
            "none yet".to_owned()
        } else {
            format!("{} (at {} ms)", vol.join(" "), e.vol_timestamp_ms)
        };
        println!("expiry {expiry_ms}  volatility {vol}");
        for r in &e.series {
            let kind = series::OptionKind::from_pb(r.kind).ok_or_else(|| eyre!("series of unknown kind {}", r.kind))?;
            let id = SeriesId { expiry_ms, strike_micros: r.strike_micros, kind };
            println!("  {id}  ({})", hex::encode(id.to_bytes()));
        }
        if e.settle_price_micros != 0 {
            println!("  settles at {}", Usd::from_micros(e.settle_price_micros as i64));
        }
    }
    Ok(())
}
