//! What the demo and the load share on an options shard: the reference expiry and volatility, listing the
//! series they trade (once: a listed series stays until it expires), and premiums at the Black-76 price.

use eyre::{ensure, eyre, WrapErr};
use prost::Message;
use shardex_client::{ShardClient, Wallet};
use shardex_core::{
    option::{
        black76::{self, Inputs},
        series::{OptionKind, SeriesId},
    },
    pb::{self, tx_body::Op},
    state_key::Namespace,
};

use crate::load::submit_final;

/// The volatility the testnet's oracle publishes for every expiry: 60%, flat across strikes. The demo and
/// the load both publish it, so neither trips the volatility band for the other.
pub const VOL_PPM: u32 = 600_000;

const DAY_MS: u64 = 86_400_000;
const HOUR_MS: u64 = 3_600_000;

/// The expiry the demo and the load trade: the first midnight (UTC) at least 12 hours away, so its series
/// are listed once a day and stay far from their settlement window while either runs.
pub fn daily_expiry_ms(now_ms: u64) -> u64 {
    (now_ms + 12 * HOUR_MS).div_ceil(DAY_MS) * DAY_MS
}

/// The proven record of `expiry_ms` at the head, if it was ever listed.
async fn expiry_record(client: &ShardClient, expiry_ms: u64) -> eyre::Result<Option<pb::ExpiryRecord>> {
    let height = client.status().await?.height;
    let (_, value) = client.prove(Namespace::Expiry, &expiry_ms.to_be_bytes(), height).await?;
    value.map(|bytes| pb::ExpiryRecord::decode(bytes.as_slice()).wrap_err("expiry record")).transpose()
}

/// The series of `expiry_ms` listed at the head.
pub async fn listed(client: &ShardClient, expiry_ms: u64) -> eyre::Result<Vec<SeriesId>> {
    let Some(record) = expiry_record(client, expiry_ms).await? else { return Ok(Vec::new()) };
    record
        .series
        .iter()
        .map(|r| {
            let kind = OptionKind::from_pb(r.kind).ok_or_else(|| eyre!("series of unknown kind {}", r.kind))?;
            Ok(SeriesId { expiry_ms, strike_micros: r.strike_micros, kind })
        })
        .collect()
}

/// The settlement price of `expiry_ms` at the head, 0 until fixed.
pub async fn settlement_price(client: &ShardClient, expiry_ms: u64) -> eyre::Result<u64> {
    let record = expiry_record(client, expiry_ms).await?.ok_or_else(|| eyre!("expiry {expiry_ms} has no record"))?;
    Ok(record.settle_price_micros)
}

/// Lists those of `series` not yet listed (signed by `admin`) and publishes [`VOL_PPM`] for each of their
/// expiries (signed by `oracle`), waiting until all of it is final. Returns how many series it listed.
pub async fn list_and_price(
    client: &ShardClient,
    admin: &mut Wallet,
    oracle: &mut Wallet,
    series: &[SeriesId],
) -> eyre::Result<usize> {
    let mut expiries: Vec<u64> = series.iter().map(|s| s.expiry_ms).collect();
    expiries.sort_unstable();
    expiries.dedup();
    let mut txs = Vec::new();
    for &expiry_ms in &expiries {
        let have = listed(client, expiry_ms).await?;
        for s in series.iter().filter(|s| s.expiry_ms == expiry_ms && !have.contains(s)) {
            let op = pb::ListSeries { expiry_ms, strike_micros: s.strike_micros, kind: s.kind.to_pb() as i32 };
            txs.push(admin.sign(client, Op::ListSeries(op)));
        }
    }
    let new = txs.len();
    for &expiry_ms in &expiries {
        let points = vec![pb::VolPoint { strike_micros: series[0].strike_micros, vol_ppm: VOL_PPM }];
        let vol = pb::VolUpdate { expiry_ms, timestamp_ms: crate::now_ms(), points };
        txs.push(oracle.sign(client, Op::VolUpdate(vol)));
    }
    submit_final(client, txs, "series listings and volatility").await?;
    Ok(new)
}

/// The Black-76 price of `s` at spot `spot_micros` and time `now_ms` at [`VOL_PPM`], micro-USD per unit.
pub fn price(s: &SeriesId, spot_micros: u64, now_ms: u64) -> eyre::Result<u64> {
    ensure!(now_ms < s.expiry_ms, "series {s} has expired");
    let inputs = Inputs {
        forward_micros: spot_micros,
        strike_micros: s.strike_micros,
        vol_ppm: VOL_PPM,
        tau_ms: s.expiry_ms - now_ms,
    };
    let q = black76::quote(&inputs).map_err(|e| eyre!("pricing {s}: {e}"))?;
    Ok(if s.kind == OptionKind::Call { q.call_micros } else { q.put_micros })
}

/// A bid and an ask around `price_micros`, `spread_micros` away on each side, on the `tick` (the bid at
/// least one tick, the ask above it).
pub fn quotes(price_micros: u64, spread_micros: u64, tick: u64) -> (u64, u64) {
    let tick = tick.max(1);
    let bid = (price_micros.saturating_sub(spread_micros) / tick * tick).max(tick);
    let ask = ((price_micros + spread_micros).div_ceil(tick) * tick).max(bid + tick);
    (bid, ask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_expiry_is_a_midnight_at_least_twelve_hours_away() {
        let midnight = 1_700_006_400_000 / DAY_MS * DAY_MS;
        assert_eq!(daily_expiry_ms(midnight), midnight + DAY_MS);
        assert_eq!(daily_expiry_ms(midnight + 12 * HOUR_MS), midnight + DAY_MS);
        assert_eq!(daily_expiry_ms(midnight + 12 * HOUR_MS + 1), midnight + 2 * DAY_MS);
    }

    #[test]
    fn quotes_straddle_the_price_on_the_tick() {
        assert_eq!(quotes(37_654_321, 1_000_000, 10_000), (36_650_000, 38_660_000));
        // A price under the spread still bids one tick, and the ask stays above the bid.
        assert_eq!(quotes(5_000, 1_000_000, 10_000), (10_000, 1_010_000));
        assert_eq!(quotes(0, 0, 10_000), (10_000, 20_000));
    }
}
