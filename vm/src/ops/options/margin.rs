//! An account's option margin at block time: the standard rules (`shardex_core::option::margin`), or, for an
//! account that opted in (`SetMarginMode`), portfolio margin (`shardex_core::option::portfolio`).
//!
//! Standard: each series it holds or quotes is marked with Black-76 at the oracle's spot, the expiry's
//! volatility at the strike and the time left, plus one micro-USD so the rounding is against the account.
//! Equity is collateral: premiums are already in it, and a long option lends nothing.
//!
//! Portfolio: each series is also priced in the 15 scenarios of the grid (spot and volatility shocked),
//! and the requirement is what the positions are worth against the account in the worst of them.
//!
//! Either way, initial margin assumes every resting sell fills (more short) and reserves the premium every
//! resting buy would pay; maintenance is on positions alone. Prices are memoized per thread by their exact
//! inputs, so the series of a block are priced once (in every scenario) however many orders check them.

use std::collections::BTreeMap;

use shardex_core::{
    option::{
        black76::{self, Inputs},
        margin::{self, Leg, Requirement},
        portfolio::{self, ScenarioLeg, Shocks, SCENARIOS},
        series::{self, OptionKind, SeriesId},
    },
    pb, AccountId, Price, Usd,
};

use super::{chain, positions};
use crate::{
    book::{self, Book},
    error::ExecError,
    exec::BlockCtx,
    ops::oracle,
    records::{collateral, load_account, store_account},
    view::TxScope,
};

/// Marks of series at one block, each priced once.
pub struct Marks {
    spot_micros: u64,
    now_ms: u64,
    expiries: BTreeMap<u64, pb::ExpiryRecord>,
    marks: BTreeMap<SeriesId, u64>,
    scenarios: BTreeMap<SeriesId, [u64; SCENARIOS]>,
}

impl Marks {
    /// No marks yet, at `spot` and block time `now_ms`.
    pub fn new(spot: Price, now_ms: u64) -> Self {
        Self {
            spot_micros: spot.micros(),
            now_ms,
            expiries: BTreeMap::new(),
            marks: BTreeMap::new(),
            scenarios: BTreeMap::new(),
        }
    }

    /// The expiry record of `s`, loaded once.
    fn expiry(&mut self, scope: &mut TxScope<'_>, s: &SeriesId) -> Result<&pb::ExpiryRecord, ExecError> {
        Ok(match self.expiries.entry(s.expiry_ms) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(chain::load_expiry(scope, s.expiry_ms)?.ok_or_else(|| ExecError::Corrupt {
                    what: "expiry",
                    detail: format!("series of expiry {} without its expiry record", s.expiry_ms),
                })?)
            }
        })
    }

    /// The price of `s` per unit in each scenario of `shocks`, rounded down: Black-76 at the shocked spot and
    /// volatility, or, once expired, its intrinsic value at the settlement price (at the shocked spot until
    /// that is fixed). `StalePrice` while its expiry has no volatility.
    pub fn scenarios(
        &mut self,
        scope: &mut TxScope<'_>,
        s: &SeriesId,
        shocks: &Shocks,
    ) -> Result<[u64; SCENARIOS], ExecError> {
        if let Some(values) = self.scenarios.get(s) {
            return Ok(*values);
        }
        let (spot, now) = (self.spot_micros, self.now_ms);
        let expiry = self.expiry(scope, s)?;
        let mut values = [0u64; SCENARIOS];
        if expiry.settle_price_micros != 0 {
            values = [s.intrinsic_micros(expiry.settle_price_micros); SCENARIOS];
        } else if now >= s.expiry_ms {
            for (i, v) in values.iter_mut().enumerate() {
                *v = s.intrinsic_micros(shocks.spot(i, spot));
            }
        } else {
            let base = pricing_inputs(expiry, s, spot, now)?;
            let (calls, puts) = scenario_quotes(&base, shocks)?;
            values = if s.kind == OptionKind::Call { calls } else { puts };
        }
        self.scenarios.insert(*s, values);
        Ok(values)
    }

    /// The mark of `s`: its Black-76 price, plus one micro-USD. `StalePrice` while its expiry has no
    /// volatility.
    pub fn mark(&mut self, scope: &mut TxScope<'_>, s: &SeriesId) -> Result<Price, ExecError> {
        if let Some(mark) = self.marks.get(s) {
            return Ok(Price::from_micros(*mark));
        }
        let (spot, now) = (self.spot_micros, self.now_ms);
        let expiry = self.expiry(scope, s)?;
        if expiry.settle_price_micros != 0 || now >= s.expiry_ms {
            // Expired: worth its intrinsic value at the settlement price once fixed, at spot until then.
            let price = if expiry.settle_price_micros != 0 { expiry.settle_price_micros } else { spot };
            let mark = s.intrinsic_micros(price).checked_add(1).ok_or(ExecError::Overflow("mark"))?;
            self.marks.insert(*s, mark);
            return Ok(Price::from_micros(mark));
        }
        let inputs = pricing_inputs(expiry, s, spot, now)?;
        let (call, put) = quote(&inputs)?;
        let price = match s.kind {
            OptionKind::Call => call,
            OptionKind::Put => put,
        };
        let mark = price.checked_add(1).ok_or(ExecError::Overflow("mark"))?;
        self.marks.insert(*s, mark);
        Ok(Price::from_micros(mark))
    }
}

/// What prices `s` at spot `spot_micros` and block time `now_ms`: the spot as forward, the strike, the
/// volatility of its expiry (`expiry`) at the strike and the time left. `StalePrice` while the expiry has
/// no volatility.
pub fn pricing_inputs(
    expiry: &pb::ExpiryRecord,
    s: &SeriesId,
    spot_micros: u64,
    now_ms: u64,
) -> Result<Inputs, ExecError> {
    let vol_ppm = series::vol_at(&expiry.vol_points, s.strike_micros).ok_or_else(|| {
        ExecError::StalePrice(format!("expiry {} ms has no volatility from the oracle yet", s.expiry_ms))
    })?;
    Ok(Inputs {
        forward_micros: spot_micros,
        strike_micros: s.strike_micros,
        vol_ppm,
        tau_ms: s.expiry_ms.saturating_sub(now_ms),
    })
}

/// Prices memoized per thread before the memo starts over (a few hundred KiB).
const QUOTE_MEMO_CAPACITY: usize = 1 << 14;

std::thread_local! {
    /// Black-76 inputs → (call, put). Every check in a block prices the same series at the same spot,
    /// volatility and block time, so most checks after the first find their marks here. A pure function's
    /// memo cannot change a result; it only saves the pricing (about 9 µs a series).
    static QUOTES: std::cell::RefCell<std::collections::HashMap<Inputs, (u64, u64)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Scenario prices memoized per thread before the memo starts over.
const SCENARIO_MEMO_CAPACITY: usize = 1 << 12;

/// Per-scenario (calls, puts) of one strike and expiry.
type ScenarioQuotes = ([u64; SCENARIOS], [u64; SCENARIOS]);

std::thread_local! {
    /// (unshocked inputs, shocks) → the call and put prices in every scenario: one lookup per series for a
    /// portfolio check instead of one per scenario.
    static SCENARIO_QUOTES: std::cell::RefCell<std::collections::HashMap<(Inputs, Shocks), ScenarioQuotes>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The call and put prices of `base` in each scenario of `shocks`, through the memo.
fn scenario_quotes(base: &Inputs, shocks: &Shocks) -> Result<ScenarioQuotes, ExecError> {
    let key = (*base, *shocks);
    if let Some(q) = SCENARIO_QUOTES.with(|memo| memo.borrow().get(&key).copied()) {
        return Ok(q);
    }
    let (mut calls, mut puts) = ([0u64; SCENARIOS], [0u64; SCENARIOS]);
    for i in 0..SCENARIOS {
        let q = black76::quote(&shocks.inputs(i, base))
            .map_err(|e| ExecError::InvalidOp(format!("pricing series: {e}")))?;
        (calls[i], puts[i]) = (q.call_micros, q.put_micros);
    }
    SCENARIO_QUOTES.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.len() >= SCENARIO_MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert(key, (calls, puts));
    });
    Ok((calls, puts))
}

/// The call and put prices of `inputs`, through the memo.
fn quote(inputs: &Inputs) -> Result<(u64, u64), ExecError> {
    if let Some(prices) = QUOTES.with(|memo| memo.borrow().get(inputs).copied()) {
        return Ok(prices);
    }
    let q = black76::quote(inputs).map_err(|e| ExecError::InvalidOp(format!("pricing series: {e}")))?;
    QUOTES.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.len() >= QUOTE_MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert(*inputs, (q.call_micros, q.put_micros));
    });
    Ok((q.call_micros, q.put_micros))
}

/// The rules an account is margined by: `Some(shocks)` for portfolio margin (it opted in, and the market
/// offers it), `None` for the standard rules.
pub fn rules_of(
    scope: &mut TxScope<'_>,
    p: &pb::OptionsParams,
    account: &AccountId,
) -> Result<Option<Shocks>, ExecError> {
    Ok(if load_account(scope, account)?.portfolio_margin { series::shocks(p) } else { None })
}

/// An account's option requirements under the rules it opted into ([`rules_of`]): `initial` with its
/// resting orders as described in the module docs, `maintenance` on its positions.
pub fn account(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    p: &pb::OptionsParams,
    account: &AccountId,
    marks: &mut Marks,
) -> Result<Requirement, ExecError> {
    let rules = rules_of(scope, p, account)?;
    requirement(scope, market, p, account, marks, rules.as_ref())
}

/// An account's option requirements under `portfolio` rules (`None`: the standard rules).
pub fn requirement(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    p: &pb::OptionsParams,
    account: &AccountId,
    marks: &mut Marks,
    portfolio: Option<&Shocks>,
) -> Result<Requirement, ExecError> {
    let mut held = BTreeMap::new();
    for s in positions::held(scope, account)? {
        held.insert(s, positions::load(scope, account, &s)?.size_lots);
    }
    let mut worst = held.clone();
    let mut buy_premium: i128 = 0;
    for id in book::account_orders(scope, account)?.order_ids {
        let order = book::order(scope, id)?.ok_or_else(|| ExecError::Corrupt {
            what: "account orders",
            detail: format!("order {id} listed but not resting"),
        })?;
        let Book::Series(s) = Book::of(&order)? else { continue };
        let lots = i64::try_from(order.remaining_lots).map_err(|_| ExecError::Overflow("order lots"))?;
        if order.is_buy {
            let premium = i128::from(order.price_micros) * i128::from(lots) * i128::from(market.lot_size);
            buy_premium += premium.div_euclid(1_000_000) + i128::from(premium.rem_euclid(1_000_000) != 0);
        } else {
            let size = worst.entry(s).or_insert(0);
            *size = size.checked_sub(lots).ok_or(ExecError::Overflow("worst-case lots"))?;
        }
    }
    let (spot, lot_size) = (marks.spot_micros, market.lot_size);
    // The requirement of one set of positions under the account's rules.
    let of = |sizes: &BTreeMap<SeriesId, i64>, marks: &mut Marks, scope: &mut TxScope<'_>| {
        let open = sizes.iter().filter(|(_, lots)| **lots != 0);
        let r = match portfolio {
            None => {
                let legs = open
                    .map(|(s, lots)| Ok(Leg { series: *s, lots: *lots, mark_micros: marks.mark(scope, s)?.micros() }))
                    .collect::<Result<Vec<_>, ExecError>>()?;
                margin::requirement(&legs, spot, lot_size, &series::rates(p))
            }
            Some(shocks) => {
                let legs = open
                    .map(|(s, lots)| Ok(ScenarioLeg { lots: *lots, values: marks.scenarios(scope, s, shocks)? }))
                    .collect::<Result<Vec<_>, ExecError>>()?;
                portfolio::requirement(&legs, spot, lot_size, shocks)
            }
        };
        r.map_err(|_| ExecError::Overflow("option margin"))
    };
    let initial = of(&worst, marks, scope)?.initial;
    let maintenance = of(&held, marks, scope)?.maintenance;
    let initial = i64::try_from(i128::from(initial) + buy_premium)
        .map(Usd::from_micros)
        .map_err(|_| ExecError::Overflow("option margin"))?;
    Ok(Requirement { initial, maintenance })
}

/// The check after an op that may raise `holder`'s requirement (a trade, taking over a liquidated position):
/// the account may not end needing more initial margin than its collateral covers, unless the op lowered what
/// it needs (`initial_before`, its initial requirement before the op), nor end with negative collateral.
pub fn check_after_op(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    p: &pb::OptionsParams,
    holder: &AccountId,
    marks: &mut Marks,
    initial_before: Usd,
) -> Result<(), ExecError> {
    let required = account(scope, market, p, holder, marks)?.initial;
    let collateral = collateral(&load_account(scope, holder)?);
    if (required > initial_before && collateral < required) || collateral.is_negative() {
        return Err(ExecError::InsufficientMargin {
            equity_micros: collateral.micros(),
            required_micros: required.micros(),
        });
    }
    Ok(())
}

/// `SetMarginMode`: the signer's margin rules become portfolio margin (the market must offer it) or the
/// standard rules, provided its collateral meets the new rules' initial margin at a fresh spot.
pub fn set_mode(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    signer: &AccountId,
    op: &pb::SetMarginMode,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let p = *chain::params(market)?;
    let rules = match (op.portfolio, series::shocks(&p)) {
        (true, None) => {
            return Err(ExecError::InvalidOp(format!(
                "{} offers no portfolio margin (its pm_spot_shock_bps is 0)",
                market.symbol
            )))
        }
        (true, shocks) => shocks,
        (false, _) => None,
    };
    let mut record = load_account(scope, signer)?;
    if record.portfolio_margin == op.portfolio {
        let rules = if op.portfolio { "portfolio" } else { "standard" };
        return Err(ExecError::InvalidOp(format!("the account already uses {rules} margin")));
    }
    let required = match has_exposure(scope, signer)? {
        false => Requirement::default(),
        true => {
            let spot = oracle::fresh_mark(scope, market, ctx)?;
            let mut marks = Marks::new(spot, ctx.timestamp_ms);
            requirement(scope, market, &p, signer, &mut marks, rules.as_ref())?
        }
    };
    if collateral(&record) < required.initial {
        return Err(ExecError::InsufficientMargin {
            equity_micros: record.collateral_micros,
            required_micros: required.initial.micros(),
        });
    }
    record.portfolio_margin = op.portfolio;
    store_account(scope, signer, &record)?;
    Ok(vec![pb::Event {
        account: signer.0.to_vec(),
        kind: Some(pb::event::Kind::MarginModeSet(pb::MarginModeSet {
            portfolio: op.portfolio,
            initial_micros: required.initial.micros(),
            maintenance_micros: required.maintenance.micros(),
        })),
    }])
}

/// True if `account` holds an option position or a resting order.
pub fn has_exposure(scope: &mut TxScope<'_>, account: &AccountId) -> Result<bool, ExecError> {
    Ok(!positions::held(scope, account)?.is_empty() || !book::account_orders(scope, account)?.order_ids.is_empty())
}
