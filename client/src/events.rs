//! One-line descriptions of receipt and block events, for the `shardex` CLI.

use shardex_client::core::{pb, Usd};

/// The market mode's wire name.
pub fn mode_name(mode: i32) -> &'static str {
    pb::MarketMode::try_from(mode).map_or("?", |m| m.as_str_name())
}

fn usd(micros: u64) -> Usd {
    Usd::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

fn short(account: &[u8]) -> String {
    let hex = hex::encode(account);
    format!("{}…", &hex[..hex.len().min(16)])
}

/// A line describing `e`, or None for an event without a kind.
pub fn describe(e: &pb::Event) -> Option<String> {
    let who = short(&e.account);
    Some(match e.kind.as_ref()? {
        pb::event::Kind::CollateralChanged(c) => format!(
            "{} collateral {:+} -> {}",
            hex::encode(&e.account),
            Usd::from_micros(c.delta_micros),
            Usd::from_micros(c.balance_micros)
        ),
        pb::event::Kind::OrderPlaced(o) => format!(
            "{who} order #{} rests: {} {} lots @ {}",
            o.order_id,
            if o.is_buy { "buy" } else { "sell" },
            o.lots,
            usd(o.price_micros)
        ),
        pb::event::Kind::OrderFilled(f) => format!(
            "{who} {} {} {} lots @ {} fee {} realized {} -> position {}",
            if f.is_maker { "maker" } else { "taker" },
            if f.is_buy { "bought" } else { "sold" },
            f.lots,
            usd(f.price_micros),
            Usd::from_micros(f.fee_micros),
            Usd::from_micros(f.realized_pnl_micros),
            f.position_lots
        ),
        pb::event::Kind::OrderCancelled(c) => format!("{who} order #{} cancelled ({} lots)", c.order_id, c.lots),
        pb::event::Kind::MarketModeChanged(m) => format!(
            "market mode {} -> {} ({}{})",
            mode_name(m.from),
            mode_name(m.to),
            pb::ModeCause::try_from(m.cause).map_or("?", |c| c.as_str_name()),
            if m.reason.is_empty() { String::new() } else { format!(": {}", m.reason) }
        ),
        pb::event::Kind::Deleveraged(d) => format!(
            "{who} auto-deleveraged {} lots @ {} against bankrupt {}, realized {}",
            d.lots,
            usd(d.price_micros),
            short(&d.bankrupt_account),
            Usd::from_micros(d.realized_pnl_micros)
        ),
        pb::event::Kind::Liquidated(l) => format!(
            "{who} liquidation of {}: {} lots @ {} penalty {} reward {} insurance {:+} bad debt {}",
            short(&l.account),
            l.lots,
            usd(l.price_micros),
            Usd::from_micros(l.penalty_micros),
            Usd::from_micros(l.liquidator_reward_micros),
            Usd::from_micros(l.insurance_delta_micros),
            usd(l.bad_debt_micros)
        ),
        pb::event::Kind::BridgeMessageChanged(b) => format!(
            "{who} bridge message {} from shard {} to shard {}: {} {}",
            b.seq,
            b.src_shard,
            b.dst_shard,
            usd(b.amount_micros),
            if b.delivered && b.state == pb::MessageState::Unspecified as i32 {
                "delivered".to_owned()
            } else {
                pb::MessageState::try_from(b.state).map_or("?", |s| s.as_str_name()).to_owned()
            }
        ),
        pb::event::Kind::FundingApplied(f) => {
            let point = f.point.unwrap_or_default();
            format!(
                "funding step {} (mid {}, index {}), cumulative index {}",
                point.step,
                usd(point.mid_micros),
                usd(point.index_micros),
                f.cumulative_index
            )
        }
        pb::event::Kind::SeriesListed(l) => format!(
            "series listed: {} {} expiring at {} ms",
            usd(l.strike_micros),
            match pb::OptionKind::try_from(l.kind) {
                Ok(pb::OptionKind::Call) => "call",
                Ok(pb::OptionKind::Put) => "put",
                _ => "?",
            },
            l.expiry_ms
        ),
        pb::event::Kind::VolUpdated(v) => format!(
            "volatility of expiry {} ms: {} points at {} ms, moved up to {} ppm{}",
            v.expiry_ms,
            v.points,
            v.timestamp_ms,
            v.jump_ppm,
            match v.post_only_until_ms {
                0 => String::new(),
                until => format!("; beyond the band: post-only until {until} ms"),
            }
        ),
        pb::event::Kind::ExpirySettled(x) => {
            format!("expiry {} ms settles at {}", x.expiry_ms, usd(x.settle_price_micros))
        }
        pb::event::Kind::OptionSettled(o) => format!(
            "{who} settled {} lots of series {} at {}: paid {} -> collateral {}",
            o.lots,
            hex::encode(&o.series),
            usd(o.settle_price_micros),
            Usd::from_micros(o.payout_micros),
            Usd::from_micros(o.collateral_micros)
        ),
        pb::event::Kind::MarginModeSet(m) => format!(
            "{who} is margined by {} rules: initial {}, maintenance {}",
            if m.portfolio { "portfolio" } else { "standard" },
            Usd::from_micros(m.initial_micros),
            Usd::from_micros(m.maintenance_micros)
        ),
    })
}
