//! An account's standard option margin at block time (`shardex_core::option::margin`): each series it holds
//! or quotes is marked with Black-76 at the oracle's spot, the expiry's volatility at the strike and the time
//! left, plus one micro-USD so the rounding is against the account. Equity is collateral: premiums are
//! already in it, and a long option lends nothing.
//!
//! Initial margin assumes every resting sell fills (more short) and reserves the premium every resting buy
//! would pay; maintenance is on positions alone. Prices are memoized per thread by their exact inputs, so
//! the series of a block are priced once however many orders check them.

use std::collections::BTreeMap;

use shardex_core::{
    option::{
        black76::{self, Inputs},
        margin::{self, Leg, Requirement},
        series::{self, OptionKind, SeriesId},
    },
    pb, AccountId,
};

use super::{chain, positions};
use crate::{
    book::{self, Book},
    error::ExecError,
    view::TxScope,
};

/// Marks of series at one block, each priced once.
pub struct Marks {
    spot_micros: u64,
    now_ms: u64,
    expiries: BTreeMap<u64, pb::ExpiryRecord>,
    marks: BTreeMap<SeriesId, u64>,
}

impl Marks {
    /// No marks yet, at `spot_micros` and block time `now_ms`.
    pub fn new(spot_micros: u64, now_ms: u64) -> Self {
        Self { spot_micros, now_ms, expiries: BTreeMap::new(), marks: BTreeMap::new() }
    }

    /// The mark of `s`, micro-USD per unit: its Black-76 price, plus one micro-USD. `StalePrice` while its
    /// expiry has no volatility.
    pub fn mark(&mut self, scope: &mut TxScope<'_>, s: &SeriesId) -> Result<u64, ExecError> {
        if let Some(mark) = self.marks.get(s) {
            return Ok(*mark);
        }
        let expiry = match self.expiries.entry(s.expiry_ms) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(chain::load_expiry(scope, s.expiry_ms)?.ok_or_else(|| ExecError::Corrupt {
                    what: "expiry",
                    detail: format!("series of expiry {} without its expiry record", s.expiry_ms),
                })?)
            }
        };
        if expiry.settle_price_micros != 0 || self.now_ms >= s.expiry_ms {
            // Expired: worth its intrinsic value at the settlement price once fixed, at spot until then.
            let price = if expiry.settle_price_micros != 0 { expiry.settle_price_micros } else { self.spot_micros };
            let mark = s.intrinsic_micros(price).checked_add(1).ok_or(ExecError::Overflow("mark"))?;
            self.marks.insert(*s, mark);
            return Ok(mark);
        }
        let inputs = pricing_inputs(expiry, s, self.spot_micros, self.now_ms)?;
        let (call, put) = quote(&inputs)?;
        let price = match s.kind {
            OptionKind::Call => call,
            OptionKind::Put => put,
        };
        let mark = price.checked_add(1).ok_or(ExecError::Overflow("mark"))?;
        self.marks.insert(*s, mark);
        Ok(mark)
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

/// An account's option requirements: `initial_micros` with its resting orders as described in the module
/// docs, `maintenance_micros` on its positions.
pub fn account(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    p: &pb::OptionsParams,
    account: &AccountId,
    marks: &mut Marks,
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
    let legs = |sizes: &BTreeMap<SeriesId, i64>, marks: &mut Marks, scope: &mut TxScope<'_>| {
        sizes
            .iter()
            .filter(|(_, lots)| **lots != 0)
            .map(|(s, lots)| Ok(Leg { series: *s, lots: *lots, mark_micros: marks.mark(scope, s)? }))
            .collect::<Result<Vec<_>, ExecError>>()
    };
    let rates = series::rates(p);
    let overflow = |_| ExecError::Overflow("option margin");
    let spot = marks.spot_micros;
    let initial = margin::requirement(&legs(&worst, marks, scope)?, spot, market.lot_size, &rates).map_err(overflow)?;
    let maintenance =
        margin::requirement(&legs(&held, marks, scope)?, spot, market.lot_size, &rates).map_err(overflow)?;
    let initial_micros = i128::from(initial.initial_micros) + buy_premium;
    Ok(Requirement {
        initial_micros: i64::try_from(initial_micros).map_err(|_| ExecError::Overflow("option margin"))?,
        maintenance_micros: maintenance.maintenance_micros,
    })
}

/// True if `account` holds an option position or a resting order.
pub fn has_exposure(scope: &mut TxScope<'_>, account: &AccountId) -> Result<bool, ExecError> {
    Ok(!positions::held(scope, account)?.is_empty() || !book::account_orders(scope, account)?.order_ids.is_empty())
}
