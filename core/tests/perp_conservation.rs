//! Perp margin math invariants: fills conserve money exactly, nothing panics on extreme input, more
//! collateral never hurts, and the liquidation price is the exact boundary of `health`.
//!
//! Seeded: every proptest runs from [`SEED`] unless `PROPTEST_RNG_SEED` is set, so a failure replays with
//! the same command; the deterministic ledger run uses [`SEED`] with ChaCha.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardex_core::money::Overflow;
use shardex_core::perp::{self, Health, MarketMath, Position};
use shardex_core::{Lots, Price, Usd};

// The perp math on raw integers (micro-USD, micro-USD per unit, lots), as these invariants are stated.

fn notional(m: &MarketMath, lots: i64, price: u64) -> Result<i64, Overflow> {
    m.notional(lots, Price::from_micros(price)).map(Usd::micros)
}

fn fee(notional: i64, bps: u32) -> Result<i64, Overflow> {
    perp::fee(Usd::from_micros(notional), bps).map(Usd::micros)
}

fn funding_payment(size_lots: i64, delta: i64) -> Result<i64, Overflow> {
    perp::funding_payment(size_lots, delta).map(Usd::micros)
}

fn apply_fill(pos: &mut Position, m: &MarketMath, lots: i64, price: u64) -> Result<i64, Overflow> {
    pos.apply_fill(m, lots, Price::from_micros(price)).map(Usd::micros)
}

fn health(m: &MarketMath, collateral: i64, pos: &Position, buy: u64, sell: u64, mark: u64) -> Result<Health, Overflow> {
    perp::health(m, Usd::from_micros(collateral), pos, Lots::new(buy), Lots::new(sell), Price::from_micros(mark))
}

fn liquidation_price(m: &MarketMath, collateral: i64, pos: &Position) -> Result<Option<u64>, Overflow> {
    perp::liquidation_price(m, Usd::from_micros(collateral), pos).map(|p| p.map(Price::micros))
}

/// Seed of every randomized test here.
const SEED: u64 = 0x9e4f_c0de_2026;

/// Default config (which honours `PROPTEST_*` env vars) with [`SEED`] unless a seed is given there, and no
/// regression files written into the source tree.
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    let rng_seed = match default.rng_seed {
        RngSeed::Random => RngSeed::Fixed(SEED),
        chosen => chosen,
    };
    ProptestConfig { rng_seed, failure_persistence: None, ..default }
}

/// One account's state in one market.
#[derive(Debug, Clone, Copy)]
struct Account {
    collateral_micros: i64,
    pos: Position,
}

/// How a fill changed one side's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open,
    Increase,
    PartialClose,
    FullClose,
    Flip,
}

fn kind(before: &Position, after: &Position) -> Kind {
    match (before.size_lots.signum(), after.size_lots.signum()) {
        (0, _) => Kind::Open,
        (_, 0) => Kind::FullClose,
        (b, a) if b != a => Kind::Flip,
        _ if after.size_lots.unsigned_abs() > before.size_lots.unsigned_abs() => Kind::Increase,
        _ => Kind::PartialClose,
    }
}

/// A ledger of accounts trading one market, as the VM would keep it.
struct Ledger {
    math: MarketMath,
    accounts: Vec<Account>,
    fee_pool_micros: i64,
    funding_pool_micros: i64,
    deposits_micros: i128,
}

impl Ledger {
    fn new(math: MarketMath, collaterals: &[i64]) -> Self {
        let accounts =
            collaterals.iter().map(|&collateral_micros| Account { collateral_micros, pos: Position::FLAT }).collect();
        let deposits_micros = collaterals.iter().map(|&c| i128::from(c)).sum();
        Self { math, accounts, fee_pool_micros: 0, funding_pool_micros: 0, deposits_micros }
    }

    /// `Σ collateral − Σ entry + fees + funding pool`: must stay equal to the deposits.
    fn invariant(&self) -> i128 {
        let collateral: i128 = self.accounts.iter().map(|a| i128::from(a.collateral_micros)).sum();
        let entry: i128 = self.accounts.iter().map(|a| i128::from(a.pos.entry_notional.micros())).sum();
        collateral - entry + i128::from(self.fee_pool_micros) + i128::from(self.funding_pool_micros)
    }

    fn open_interest_balance(&self) -> i128 {
        self.accounts.iter().map(|a| i128::from(a.pos.size_lots)).sum()
    }

    /// `buyer` buys `lots` from `seller` at `price`, paying `taker_bps` and `maker_bps` respectively.
    /// All or nothing: on `Overflow` nothing changes (and each failed `apply_fill` left its position alone).
    fn trade(
        &mut self,
        buyer: usize,
        seller: usize,
        lots: i64,
        price: u64,
        taker_bps: u32,
        maker_bps: u32,
    ) -> Result<(Kind, Kind), Overflow> {
        let math = self.math;
        let notional = notional(&math, lots, price)?;
        let (buy_fee, sell_fee) = (fee(notional, taker_bps)?, fee(notional, maker_bps)?);
        let (b, s) = (self.accounts[buyer], self.accounts[seller]);
        let (mut bpos, mut spos) = (b.pos, s.pos);
        let b_realized = apply_fill(&mut bpos, &math, lots, price);
        let s_realized = apply_fill(&mut spos, &math, -lots, price);
        if b_realized.is_err() {
            assert_eq!(bpos, b.pos, "a failed fill changed the position");
        }
        if s_realized.is_err() {
            assert_eq!(spos, s.pos, "a failed fill changed the position");
        }
        let credit = |collateral: i64, realized: i64, paid: i64| {
            collateral.checked_add(realized).and_then(|c| c.checked_sub(paid)).ok_or(Overflow)
        };
        let b_collateral = credit(b.collateral_micros, b_realized?, buy_fee)?;
        let s_collateral = credit(s.collateral_micros, s_realized?, sell_fee)?;
        let pool = self.fee_pool_micros.checked_add(buy_fee).and_then(|p| p.checked_add(sell_fee)).ok_or(Overflow)?;
        self.accounts[buyer] = Account { collateral_micros: b_collateral, pos: bpos };
        self.accounts[seller] = Account { collateral_micros: s_collateral, pos: spos };
        self.fee_pool_micros = pool;
        Ok((kind(&b.pos, &bpos), kind(&s.pos, &spos)))
    }

    /// Moves the funding index by `delta`; the rounding dust lands in the funding pool.
    fn fund(&mut self, delta: i64) -> Result<(), Overflow> {
        let payments =
            self.accounts.iter().map(|a| funding_payment(a.pos.size_lots, delta)).collect::<Result<Vec<_>, _>>()?;
        let total: i128 = payments.iter().map(|&p| i128::from(p)).sum();
        let accounts = credit_all(&self.accounts, &payments)?;
        let pool = i64::try_from(i128::from(self.funding_pool_micros) - total).map_err(|_| Overflow)?;
        assert!(total <= 0 && total >= -(self.accounts.len() as i128), "funding dust {total} out of bounds");
        self.accounts = accounts;
        self.funding_pool_micros = pool;
        Ok(())
    }

    /// Closes every position against the others at one price, pairing longs with shorts.
    fn close_all(&mut self, price: u64) -> Result<(), Overflow> {
        loop {
            let long = self.accounts.iter().position(|a| a.pos.size_lots > 0);
            let short = self.accounts.iter().position(|a| a.pos.size_lots < 0);
            let (Some(l), Some(s)) = (long, short) else { return Ok(()) };
            let lots = self.accounts[l].pos.size_lots.min(-self.accounts[s].pos.size_lots);
            self.trade(s, l, lots, price, 0, 0)?;
        }
    }
}

/// Accounts with each funding payment credited, or `Overflow`.
fn credit_all(accounts: &[Account], payments: &[i64]) -> Result<Vec<Account>, Overflow> {
    accounts
        .iter()
        .zip(payments)
        .map(|(a, &p)| {
            let collateral_micros = a.collateral_micros.checked_add(p).ok_or(Overflow)?;
            Ok(Account { collateral_micros, ..*a })
        })
        .collect()
}

fn market() -> impl Strategy<Value = MarketMath> {
    let lot = prop_oneof![1u64..=10, 100u64..=1_000_000, Just(1_000u64), 1u64..=u64::from(u32::MAX)];
    (lot, 1u32..=10_000)
        .prop_flat_map(|(lot, im)| (Just(lot), Just(im), 1..=im))
        .prop_map(|(lot, im, mm)| MarketMath::new(lot, im, mm).expect("valid by construction"))
}

fn price() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..=1_000, 1u64..=10_000_000_000, 90_000_000_000u64..=110_000_000_000]
}

fn lots() -> impl Strategy<Value = i64> {
    prop_oneof![1i64..=10, 1i64..=100_000]
}

/// `(buyer, seller offset, lots, price, taker bps, maker bps)`.
type Fill = (usize, usize, i64, u64, u32, u32);

fn fills() -> impl Strategy<Value = Vec<Fill>> {
    prop::collection::vec((0usize..8, 0usize..8, lots(), price(), 0u32..=50, 0u32..=50), 1..60)
}

proptest! {
    #![proptest_config(config())]

    /// Σ collateral − Σ entry + fees is unchanged by every fill, sizes always net to zero, and after
    /// closing everything at one price Σ entry is exactly 0 and collateral + fees equal the deposits.
    #[test]
    fn fills_conserve_money(
        math in market(),
        collaterals in prop::collection::vec(0i64..1_000_000_000_000_000, 2..=6),
        fills in fills(),
        close_price in price(),
    ) {
        let mut ledger = Ledger::new(math, &collaterals);
        let n = collaterals.len();
        for (buyer, offset, lots, price, taker, maker) in fills {
            let buyer = buyer % n;
            let seller = (buyer + 1 + offset % (n - 1)) % n;
            let _ = ledger.trade(buyer, seller, lots, price, taker, maker);
            prop_assert_eq!(ledger.invariant(), ledger.deposits_micros);
            prop_assert_eq!(ledger.open_interest_balance(), 0);
        }
        if ledger.close_all(close_price).is_ok() {
            prop_assert!(ledger.accounts.iter().all(|a| a.pos == Position::FLAT));
            let entries: i128 = ledger.accounts.iter().map(|a| i128::from(a.pos.entry_notional.micros())).sum();
            prop_assert_eq!(entries, 0);
            let collateral: i128 = ledger.accounts.iter().map(|a| i128::from(a.collateral_micros)).sum();
            prop_assert_eq!(collateral + i128::from(ledger.fee_pool_micros), ledger.deposits_micros);
        }
        prop_assert_eq!(ledger.invariant(), ledger.deposits_micros);
    }

    /// Any fill on any position at any price returns a result: never a panic, never a partial change, and
    /// on success `realized == Δentry − notional(fill)` exactly.
    #[test]
    fn apply_fill_never_panics(
        lot in 1u64..=u64::MAX,
        start in (any::<i64>(), any::<i64>()),
        steps in prop::collection::vec((any::<i64>(), any::<u64>()), 1..20),
    ) {
        let math = MarketMath::new(lot, 10_000, 1).expect("valid");
        let mut pos = Position { size_lots: start.0, entry_notional: Usd::from_micros(start.1) };
        for (lots, price) in steps {
            let before = pos;
            match apply_fill(&mut pos, &math, lots, price) {
                Ok(realized) => {
                    let fill = i128::from(notional(&math, lots, price).expect("notional fitted"));
                    let d_entry = i128::from(pos.entry_notional.micros()) - i128::from(before.entry_notional.micros());
                    prop_assert_eq!(i128::from(realized), d_entry - fill);
                    prop_assert_eq!(i128::from(pos.size_lots), i128::from(before.size_lots) + i128::from(lots));
                }
                Err(Overflow) => prop_assert_eq!(pos, before),
            }
            let _ = pos.unrealized_pnl(&math, Price::from_micros(price));
            let _ = health(&math, lots, &pos, price, price, price);
            let _ = liquidation_price(&math, lots, &pos);
            let _ = fee(lots, u32::try_from(price >> 32).unwrap_or(u32::MAX));
            let _ = funding_payment(pos.size_lots, lots);
            let _ = math.premium_index(Price::from_micros(price), Price::from_micros(price.rotate_left(7)), 10_000);
        }
    }

    /// More collateral never makes an account liquidatable, never stops it opening, never lowers what it
    /// may withdraw, and moves its liquidation price away from the mark.
    #[test]
    fn more_collateral_never_hurts(
        math in market(),
        size in prop_oneof![-100_000i64..=100_000, -1_000_000_000i64..=1_000_000_000],
        entry_price in price(),
        open in (0u64..1_000_000, 0u64..1_000_000),
        mark in price(),
        collateral in -1_000_000_000_000i64..1_000_000_000_000,
        extra in 0i64..1_000_000_000_000,
    ) {
        let mut pos = Position::FLAT;
        if apply_fill(&mut pos, &math, size, entry_price).is_err() {
            return Ok(());
        }
        let (Ok(poor), Ok(rich)) = (
            health(&math, collateral, &pos, open.0, open.1, mark),
            health(&math, collateral + extra, &pos, open.0, open.1, mark),
        ) else {
            return Ok(());
        };
        prop_assert!(!rich.liquidatable || poor.liquidatable);
        prop_assert!(!poor.can_open || rich.can_open);
        prop_assert!(rich.free_collateral.micros() >= poor.free_collateral.micros());
        prop_assert_eq!(rich.equity.micros() - poor.equity.micros(), extra);
        prop_assert_eq!(rich.maintenance_required.micros(), poor.maintenance_required.micros());

        if let (Ok(Some(poor_liq)), Ok(rich_liq)) = (
            liquidation_price(&math, collateral, &pos),
            liquidation_price(&math, collateral + extra, &pos),
        ) {
            match rich_liq {
                Some(r) if size > 0 => prop_assert!(r <= poor_liq),
                Some(r) => prop_assert!(r >= poor_liq),
                None => {}
            }
        }
    }

    /// At the liquidation price the account is liquidatable; one tick toward safety (and anywhere further)
    /// it is not. Without one, no mark liquidates it.
    #[test]
    fn liquidation_price_is_the_health_boundary(
        math in market(),
        size in prop_oneof![-1_000i64..=1_000, -100_000_000i64..=100_000_000],
        entry_price in price(),
        collateral in prop_oneof![-1_000_000i64..1_000_000, 0i64..1_000_000_000_000],
        probe in any::<u64>(),
    ) {
        prop_assume!(size != 0);
        let mut pos = Position::FLAT;
        if apply_fill(&mut pos, &math, size, entry_price).is_err() {
            return Ok(());
        }
        let is_liquidatable = |mark: u64| health(&math, collateral, &pos, 0, 0, mark).map(|h| h.liquidatable);
        match liquidation_price(&math, collateral, &pos) {
            Err(Overflow) => {}
            Ok(None) => {
                let mark = probe % 1_000_000_000_000 + 1;
                prop_assert!(!is_liquidatable(mark).unwrap_or(false), "liquidatable at {} without a price", mark);
            }
            Ok(Some(liq)) => {
                if let Ok(h) = health(&math, collateral, &pos, 0, 0, liq) {
                    prop_assert!(h.liquidatable && h.equity.micros() <= h.maintenance_required.micros());
                } else {
                    prop_assert_eq!(liq, u64::MAX);
                }
                let (next, further) = if size > 0 {
                    (liq.checked_add(1), liq.checked_add(1 + probe % (u64::MAX - liq).max(1)))
                } else {
                    (liq.checked_sub(1).filter(|&m| m > 0), Some(1 + probe % liq.max(1)).filter(|&m| m < liq))
                };
                for mark in [next, further].into_iter().flatten() {
                    prop_assert!(!is_liquidatable(mark).unwrap_or(false), "liquidatable at {} past {}", mark, liq);
                }
            }
        }
    }

    /// Funding payments over positions that net to zero leave between 0 and n micro-USD of dust, never
    /// minting money.
    #[test]
    fn funding_never_mints(
        sizes in prop::collection::vec(-1_000_000_000i64..1_000_000_000, 1..8),
        delta in prop_oneof![-1_000_000i64..1_000_000, -1_000_000_000_000i64..1_000_000_000_000],
    ) {
        let mut all = sizes.clone();
        all.push(-sizes.iter().sum::<i64>());
        let total: i128 = all.iter().map(|&s| i128::from(funding_payment(s, delta).expect("fits"))).sum();
        prop_assert!(total <= 0 && total >= -(all.len() as i128), "dust {}", total);
    }
}

/// A long deterministic ledger run: thousands of fills with funding in between, checking the full
/// invariant (with fee and funding pools) after every step and that every kind of fill occurred.
#[test]
fn long_ledger_run_conserves_and_covers_every_fill_kind() {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let math = MarketMath::new(1_000, 1_000, 500).expect("valid");
    let mut ledger = Ledger::new(math, &[1_000_000_000_000; 5]);
    let mut seen = Vec::new();
    let mut price: u64 = 100_000_000_000;
    for step in 0..5_000 {
        price = price.saturating_add_signed(rng.gen_range(-500_000_000..=500_000_000)).max(1);
        let buyer = rng.gen_range(0..5);
        let seller = (buyer + rng.gen_range(1..5)) % 5;
        let (buyer_size, seller_size) = (ledger.accounts[buyer].pos.size_lots, ledger.accounts[seller].pos.size_lots);
        let lots = match rng.gen_range(0..10) {
            // Exactly closes one side when it can, so positions go flat and reopen.
            0..=2 if buyer_size < 0 => -buyer_size,
            0..=2 if seller_size > 0 => seller_size,
            3 => rng.gen_range(1..=10_000),
            _ => rng.gen_range(1..=50),
        };
        let (b, s) =
            ledger.trade(buyer, seller, lots, price, rng.gen_range(0..=10), rng.gen_range(0..=5)).expect("fits");
        seen.extend([b, s]);
        if step % 50 == 0 {
            ledger.fund(rng.gen_range(-3_000_000..=3_000_000)).expect("fits");
        }
        assert_eq!(ledger.invariant(), ledger.deposits_micros, "step {step} (seed {SEED:#x})");
        assert_eq!(ledger.open_interest_balance(), 0);
    }
    for k in [Kind::Open, Kind::Increase, Kind::PartialClose, Kind::FullClose, Kind::Flip] {
        assert!(seen.iter().filter(|&&s| s == k).count() >= 50, "{k:?} too rare");
    }
    ledger.close_all(price).expect("fits");
    let collateral: i128 = ledger.accounts.iter().map(|a| i128::from(a.collateral_micros)).sum();
    assert!(ledger.accounts.iter().all(|a| a.pos == Position::FLAT));
    assert_eq!(
        collateral + i128::from(ledger.fee_pool_micros) + i128::from(ledger.funding_pool_micros),
        ledger.deposits_micros
    );
    assert!(ledger.fee_pool_micros > 0 && ledger.funding_pool_micros >= 0);
}
