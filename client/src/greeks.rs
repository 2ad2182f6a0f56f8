//! `shardex greeks`: the Greeks of an account's option positions on an options market, per series and
//! summed, as the node computes them at its head (spot, volatility and block time are in state).

use std::path::PathBuf;

use clap::Args;
use shardex_client::{
    core::{option::series::SeriesId, Usd},
    ShardClient,
};

/// `shardex greeks`.
#[derive(Debug, Args)]
pub struct GreeksArgs {
    /// Account (hex public key), or a key file with --key.
    account: Option<String>,
    /// Read the account from a key file.
    #[arg(long, short)]
    key: Option<PathBuf>,
}

fn usd(micros: i64) -> String {
    Usd::from_micros(micros).to_string()
}

/// A fixed-point figure with `decimals` decimals.
fn fixed(value: i64, decimals: u32) -> String {
    let scale = 10i128.pow(decimals);
    let v = i128::from(value);
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:0width$}", v.abs() / scale, v.abs() % scale, width = decimals as usize)
}

/// Runs `shardex greeks`.
pub async fn run(client: &ShardClient, a: GreeksArgs, out: crate::output::Output) -> eyre::Result<()> {
    let account = crate::account_arg(a.account.as_deref(), a.key.as_deref())?;
    let g = client.greeks(&account).await?;
    if out.json() {
        use crate::output::{usd as json_usd, usd_u};
        let series: Vec<serde_json::Value> = g
            .series
            .iter()
            .map(|s| {
                serde_json::json!({
                    "series": SeriesId::from_bytes(&s.series).map_or_else(|| hex::encode(&s.series), |id| id.to_string()),
                    "position_lots": s.position_lots,
                    "price_usd": usd_u(s.price_micros),
                    "vol": fixed(i64::from(s.vol_ppm), 6),
                    "delta": fixed(s.delta_ppm, 6),
                    "gamma_per_usd": fixed(s.gamma_e12, 12),
                    "vega_usd_per_point": json_usd(s.vega_micros),
                    "theta_usd_per_day": json_usd(s.theta_micros),
                })
            })
            .collect();
        return crate::output::emit(&serde_json::json!({
            "account": account.to_hex(),
            "height": g.height,
            "spot_usd": usd_u(g.spot_micros),
            "block_time_ms": g.block_time_ms,
            "series": series,
            "total": {
                "delta_units": fixed(g.delta_micro_units, 6),
                "gamma_per_usd": fixed(g.gamma_e12, 12),
                "vega_usd_per_point": json_usd(g.vega_micros),
                "theta_usd_per_day": json_usd(g.theta_micros),
            },
        }));
    }
    println!(
        "account  {account}  (height {}, spot {}, block time {} ms)",
        g.height,
        usd(i64::try_from(g.spot_micros).unwrap_or(i64::MAX)),
        g.block_time_ms
    );
    println!(
        "{:<34} {:>8} {:>14} {:>8} {:>9} {:>12} {:>12} {:>12}",
        "series", "lots", "price", "vol", "delta", "gamma", "vega/pt", "theta/day"
    );
    for s in &g.series {
        let name = match SeriesId::from_bytes(&s.series) {
            Some(id) => format!("{:?} {} @ {} ms", id.kind, usd(id.strike_micros as i64), id.expiry_ms),
            None => hex::encode(&s.series),
        };
        println!(
            "{name:<34} {:>8} {:>14} {:>7}% {:>9} {:>12} {:>12} {:>12}",
            s.position_lots,
            usd(i64::try_from(s.price_micros).unwrap_or(i64::MAX)),
            fixed(i64::from(s.vol_ppm) / 100, 2),
            fixed(s.delta_ppm, 6),
            fixed(s.gamma_e12, 12),
            usd(s.vega_micros),
            usd(s.theta_micros)
        );
    }
    if g.series.is_empty() {
        println!("(no option positions)");
    }
    println!(
        "total    delta {} units  gamma {} per USD  vega {} per point  theta {} per day",
        fixed(g.delta_micro_units, 6),
        fixed(g.gamma_e12, 12),
        usd(g.vega_micros),
        usd(g.theta_micros)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fixed;

    #[test]
    fn fixed_point_figures_print_with_their_decimals() {
        assert_eq!(fixed(545_649, 6), "0.545649");
        assert_eq!(fixed(-454_350, 6), "-0.454350");
        assert_eq!(fixed(2_000_000, 6), "2.000000");
        assert_eq!(fixed(8_000, 2), "80.00");
    }
}
