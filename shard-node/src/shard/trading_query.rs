//! Trading queries at the head: position with margin health, open orders, book depth. They read through
//! the same code the VM uses (a tx scope over committed state with no pending changes).

use shardex_core::{pb, perp::liquidation_price, state_key, AccountId, Price, Usd};

use super::{HeadState, HeadView, KeyRead, Reject, ShardError};
use shardex_vm::{
    book::{self, Side},
    ops::{funding, oracle, positions, trade},
    records::{load_account, load_market},
    ExecError, TxScope,
};

fn exec_err(e: ExecError) -> ShardError {
    ShardError::Exec(e)
}

/// Position view: records, health and (when asked) proofs.
pub struct PositionView {
    /// Position record (None when never traded or flat with nothing left).
    pub position: Option<pb::PositionRecord>,
    /// Collateral record.
    pub account: Option<pb::AccountRecord>,
    /// Open-order totals.
    pub open_orders: pb::AccountOrdersRecord,
    /// Health at the latest oracle price (None before the first price).
    pub health: Option<pb::AccountHealth>,
    /// Height.
    pub height: u64,
    /// Proofs of the position and account records, and the header, when asked.
    pub proofs: Option<(pb::StateProof, pb::StateProof, pb::FinalizedHeader)>,
    /// State root.
    pub state_root: alloy_primitives::B256,
}

impl HeadView {
    /// Position, collateral, open orders and health of `account` at the head.
    pub fn position(&self, account: &AccountId, prove: bool) -> Result<PositionView, ShardError> {
        let base = HeadState(&self.engine);
        let mut scope = TxScope::over(&base, Vec::new());
        let market = load_market(&mut scope).map_err(exec_err)?;
        let open_orders = book::account_orders(&mut scope, account).map_err(exec_err)?;
        let head_only = |r: Result<KeyRead, super::Reject>| r.map_err(|e| ShardError::Inconsistent(e.to_string()));
        let pos_read = head_only(self.read_at(state_key::position_key(account), None, prove)?)?;
        let acct_read = head_only(self.read_at(state_key::account_key(account), None, prove)?)?;
        let position = super::query::decode_opt::<pb::PositionRecord>("position", pos_read.value)?;
        let acct = super::query::decode_opt::<pb::AccountRecord>("account", acct_read.value)?;

        // Health counts funding not yet settled: settle in this throw-away scope (the records returned, and
        // proven, are the stored ones).
        funding::settle(&mut scope, account).map_err(exec_err)?;
        let settled_pos = positions::load(&mut scope, account).map_err(exec_err)?;
        let settled_collateral = load_account(&mut scope, account).map_err(exec_err)?.collateral_micros;
        let health = match oracle::load(&mut scope).map_err(exec_err)? {
            None => None,
            Some(o) if shardex_vm::ops::options::params(&market).is_ok() => {
                option_health(&mut scope, &market, account, o.price_micros, self.head.timestamp_ms)?
            }
            Some(o) => {
                let math = trade::market_math(&market).map_err(exec_err)?;
                let (pos, mark) = (positions::perp(&settled_pos), Price::from_micros(o.price_micros));
                let collateral = Usd::from_micros(settled_collateral);
                let overflow = |_| ShardError::Exec(ExecError::Overflow("health"));
                let h = trade::health_of(&math, collateral, &settled_pos, &open_orders, mark).map_err(exec_err)?;
                let upnl = pos.unrealized_pnl(&math, mark).map_err(overflow)?;
                let liq = liquidation_price(&math, collateral, &pos).map_err(overflow)?;
                Some(pb::AccountHealth {
                    mark_price_micros: o.price_micros,
                    equity_micros: h.equity.micros(),
                    unrealized_pnl_micros: upnl.micros(),
                    initial_required_micros: h.initial_required.micros(),
                    maintenance_required_micros: h.maintenance_required.micros(),
                    free_collateral_micros: h.free_collateral.micros(),
                    liquidatable: h.liquidatable,
                    liquidation_price_micros: liq.map_or(0, Price::micros),
                })
            }
        };
        let proofs = match (pos_read.proof, acct_read.proof) {
            (Some((pp, header)), Some((ap, _))) => Some((pp, ap, header)),
            _ => None,
        };
        Ok(PositionView {
            position,
            account: acct,
            open_orders,
            health,
            height: self.head.height,
            proofs,
            state_root: self.head.state_root,
        })
    }

    /// The fee pool balance at the head.
    pub fn fee_pool(&self) -> Result<i64, ShardError> {
        let base = HeadState(&self.engine);
        let mut scope = TxScope::over(&base, Vec::new());
        positions::load_fee_pool(&mut scope).map(Usd::micros).map_err(exec_err)
    }

    /// The account's resting orders, oldest first as the account record lists them.
    pub fn open_orders(&self, account: &AccountId) -> Result<Vec<pb::OrderRecord>, ShardError> {
        let base = HeadState(&self.engine);
        let mut scope = TxScope::over(&base, Vec::new());
        let ids = book::account_orders(&mut scope, account).map_err(exec_err)?.order_ids;
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            let order = book::order(&mut scope, id)
                .map_err(exec_err)?
                .ok_or_else(|| ShardError::Inconsistent(format!("account lists order {id}, which is not in state")))?;
            orders.push(order);
        }
        Ok(orders)
    }

    /// The best `levels` levels per side (capped by the market's level limit).
    pub fn book_depth(&self, levels: usize) -> Result<(Vec<pb::BookLevel>, Vec<pb::BookLevel>), ShardError> {
        let base = HeadState(&self.engine);
        let mut scope = TxScope::over(&base, Vec::new());
        let market = load_market(&mut scope).map_err(exec_err)?;
        let levels = levels.min(market.max_price_levels as usize);
        let mut side = |s: Side| -> Result<Vec<pb::BookLevel>, ShardError> {
            Ok(book::depth(&mut scope, book::Book::Perp, s, levels)
                .map_err(exec_err)?
                .into_iter()
                .map(|l| pb::BookLevel {
                    price_micros: l.price.micros(),
                    total_lots: l.total.get(),
                    order_count: l.order_count,
                })
                .collect())
        };
        let bids = side(Side::Buy)?;
        let asks = side(Side::Sell)?;
        Ok((bids, asks))
    }
}

/// An options account's health at `spot_micros` and block time `now_ms`, under the margin rules it opted
/// into: equity is collateral, the requirements are its option margin, and no single price liquidates it
/// (`liquidation_price_micros` 0). `None` while a series it holds cannot be priced (an expiry without
/// volatility).
fn option_health(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    account: &AccountId,
    spot_micros: u64,
    now_ms: u64,
) -> Result<Option<pb::AccountHealth>, ShardError> {
    use shardex_vm::ops::options::{self, margin};
    let p = *options::params(market).map_err(exec_err)?;
    let collateral = load_account(scope, account).map_err(exec_err)?.collateral_micros;
    let mut marks = margin::Marks::new(Price::from_micros(spot_micros), now_ms);
    let r = match margin::account(scope, market, &p, account, &mut marks) {
        Ok(r) => r,
        Err(ExecError::StalePrice(_)) => return Ok(None),
        Err(e) => return Err(exec_err(e)),
    };
    Ok(Some(pb::AccountHealth {
        mark_price_micros: spot_micros,
        equity_micros: collateral,
        unrealized_pnl_micros: 0,
        initial_required_micros: r.initial.micros(),
        maintenance_required_micros: r.maintenance.micros(),
        free_collateral_micros: collateral.saturating_sub(r.initial.micros()),
        liquidatable: collateral < r.maintenance.micros(),
        liquidation_price_micros: 0,
    }))
}

impl HeadView {
    /// The Greeks of `account`'s option positions at the head: each held series priced with Black-76 at the
    /// oracle spot, the expiry's volatility at the strike and the time left to the head's block time (an
    /// expired series is priced at its intrinsic value, with no gamma, vega or theta). `InvalidOp` on a
    /// perpetual market,
    /// `StalePrice` before the first oracle price or while an expiry it holds has no volatility.
    pub fn greeks(&self, account: &AccountId) -> Result<Result<pb::GetGreeksResponse, Reject>, ShardError> {
        use shardex_core::option::greeks;
        use shardex_vm::ops::options::margin as options_margin;
        let base = HeadState(&self.engine);
        let mut scope = TxScope::over(&base, Vec::new());
        let market = load_market(&mut scope).map_err(exec_err)?;
        let refuse = |e: ExecError| Ok(Err(Reject::new(e.reason(), e.to_string())));
        if let Err(e) = shardex_vm::ops::options::params(&market) {
            return refuse(e);
        }
        let Some(spot) = oracle::load(&mut scope).map_err(exec_err)?.map(|o| o.price_micros) else {
            return refuse(ExecError::StalePrice("no oracle price yet".into()));
        };
        let now = self.head.timestamp_ms;
        let mut resp = pb::GetGreeksResponse {
            height: self.head.height,
            spot_micros: spot,
            block_time_ms: now,
            ..Default::default()
        };
        let mut exposure = greeks::Exposure::default();
        for s in shardex_vm::ops::options::positions::held(&mut scope, account).map_err(exec_err)? {
            let lots = shardex_vm::ops::options::positions::load(&mut scope, account, &s).map_err(exec_err)?.size_lots;
            let expiry = shardex_vm::ops::options::chain::load_expiry(&mut scope, s.expiry_ms).map_err(exec_err)?;
            let inputs = match options_margin::pricing_inputs(&expiry.unwrap_or_default(), &s, spot, now) {
                Ok(inputs) => inputs,
                Err(e) => return refuse(e),
            };
            let g = match greeks::of(&inputs, s.kind) {
                Ok(g) => g,
                Err(e) => return refuse(ExecError::InvalidOp(format!("pricing series: {e}"))),
            };
            exposure.add(lots, market.lot_size, &g).map_err(|_| exec_err(ExecError::Overflow("greeks")))?;
            resp.series.push(pb::SeriesGreeks {
                series: s.to_bytes().to_vec(),
                position_lots: lots,
                price_micros: g.price_micros,
                vol_ppm: inputs.vol_ppm,
                delta_ppm: g.delta_ppm,
                gamma_e12: g.gamma_e12,
                vega_micros: g.vega_micros,
                theta_micros: g.theta_micros,
            });
        }
        resp.delta_micro_units = exposure.delta_micro_units;
        resp.gamma_e12 = exposure.gamma_e12;
        resp.vega_micros = exposure.vega_micros;
        resp.theta_micros = exposure.theta_micros;
        Ok(Ok(resp))
    }
}
