//! The state-resident order book against a reference model: a `Vec` of resting orders where priority is
//! (price priority, order id) and ids are arrival order. Seeded random limit (GTC, IOC, post-only) and
//! market orders from three owners on both sides over a small price grid, cancels by id, by client id and
//! cancel-all, with small limits so every limit is hit. Each step is one tx: a `TxScope` over a `BTreeMap`
//! base whose writes are merged on success and dropped (with the model restored) on error.
//!
//! After every step: fills, self-trade cancellations, remainders and rejections equal the model's; the whole
//! book state equals the state built from the model, key for key and byte for byte; and model-free
//! invariants hold (level totals and counts, FIFO links, sorted side lists equal to the set of levels,
//! account records equal to their owners' orders, never crossed, lots conserved). Lots conservation:
//! per match, `incoming lots = Σ fill lots + remaining` (self-trade cancellations consume none); overall,
//! `Σ lots rested = Σ lots resting + Σ lots filled as maker + Σ lots removed by cancel or self-trade
//! prevention`. Replay a failure with SHARDEX_TEST_SEED.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::B256;
use prost::Message;
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardex_core::{pb, AccountId, Lots, Price};
use shardex_vm::{
    book::{self, Book, BookLimits, Incoming, MatchOutcome, NewOrder, Side},
    Changes, ExecError, TxScope,
};

const OWNERS: [AccountId; 3] = [AccountId([0xa1; 32]), AccountId([0xb2; 32]), AccountId([0xc3; 32])];
const GRID: [u64; 8] = [95, 96, 97, 98, 99, 100, 101, 102];
const STEPS: u64 = 300;
const SEEDS: u64 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Resting {
    id: u64,
    owner: AccountId,
    side: Side,
    price: u64,
    lots: u64,
    original: u64,
    cid: u64,
    reduce_only: bool,
    height: u64,
}

/// What the model says a rest does, in the order the book checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reject {
    Crosses,
    MaxOpenOrders,
    ClientIdInUse,
    MaxLevels,
}

impl Reject {
    /// A word of the book's error message that tells the rejections apart.
    fn marker(self) -> &'static str {
        match self {
            Self::Crosses => "cross",
            Self::MaxOpenOrders => "open orders",
            Self::ClientIdInUse => "client order id",
            Self::MaxLevels => "price levels",
        }
    }
}

/// (maker id, maker, price, lots, maker done).
type ModelFill = (u64, AccountId, u64, u64, bool);

#[derive(Debug, Clone, Default)]
struct Model {
    /// Resting orders in arrival (= id) order.
    orders: Vec<Resting>,
    next_id: u64,
    /// Lots tallied from the book's own outputs, for conservation.
    seen: Tally,
}

#[derive(Debug, Clone, Default)]
struct Tally {
    rested: u64,
    maker_filled: u64,
    removed: u64,
}

fn priority(side: Side, price: u64) -> u64 {
    match side {
        Side::Buy => u64::MAX - price,
        Side::Sell => price,
    }
}

impl Model {
    fn best_index(&self, side: Side) -> Option<usize> {
        let on_side = self.orders.iter().enumerate().filter(|(_, o)| o.side == side);
        on_side.min_by_key(|(_, o)| (priority(side, o.price), o.id)).map(|(i, _)| i)
    }

    fn best_price(&self, side: Side) -> Option<u64> {
        self.best_index(side).map(|i| self.orders[i].price)
    }

    fn would_cross(&self, side: Side, price: u64) -> bool {
        self.best_price(side.opposite()).is_some_and(|best| match side {
            Side::Buy => best <= price,
            Side::Sell => best >= price,
        })
    }

    /// Returns fills, self-trade-cancelled ids, remaining lots and whether the fill limit stopped it.
    fn match_incoming(&mut self, inc: &Incoming, limits: &BookLimits) -> (Vec<ModelFill>, Vec<u64>, u64, bool) {
        let (mut fills, mut stp, mut left, mut touched) = (vec![], vec![], inc.lots.get(), 0);
        while left > 0 {
            let Some(i) = self.best_index(inc.side.opposite()) else { break };
            let price = self.orders[i].price;
            let crosses = inc.limit_price.map(Price::micros).is_none_or(|l| match inc.side {
                Side::Buy => price <= l,
                Side::Sell => price >= l,
            });
            if !crosses {
                break;
            }
            if touched == limits.max_fills_per_order {
                return (fills, stp, left, true);
            }
            touched += 1;
            if self.orders[i].owner == inc.owner {
                stp.push(self.orders.remove(i).id);
                continue;
            }
            let lots = left.min(self.orders[i].lots);
            left -= lots;
            let o = &mut self.orders[i];
            o.lots -= lots;
            fills.push((o.id, o.owner, price, lots, o.lots == 0));
            if o.lots == 0 {
                self.orders.remove(i);
            }
        }
        (fills, stp, left, false)
    }

    /// Rests `new`; returns its id and the ids of the orders it evicted.
    fn rest(&mut self, new: &NewOrder, limits: &BookLimits) -> Result<(u64, Vec<u64>), Reject> {
        if self.would_cross(new.side, new.price.micros()) {
            return Err(Reject::Crosses);
        }
        if self.orders.iter().filter(|o| o.owner == new.owner).count() >= limits.max_open_orders_per_account {
            return Err(Reject::MaxOpenOrders);
        }
        if new.client_order_id != 0 && self.by_client_id(&new.owner, new.client_order_id).is_some() {
            return Err(Reject::ClientIdInUse);
        }
        let levels: BTreeSet<u64> = self.orders.iter().filter(|o| o.side == new.side).map(|o| o.price).collect();
        let mut evicted = Vec::new();
        if !levels.contains(&new.price.micros()) && levels.len() >= limits.max_price_levels {
            // The worst level worse than the new price with few enough orders gives way.
            let mut worse: Vec<u64> =
                levels.into_iter().filter(|&p| new.side.is_better(new.price, Price::from_micros(p))).collect();
            worse.sort_by_key(|&p| std::cmp::Reverse(priority(new.side, p)));
            let count = |p: u64| self.orders.iter().filter(|o| o.side == new.side && o.price == p).count();
            let gone = worse.into_iter().find(|&p| count(p) <= limits.max_evicted_orders).ok_or(Reject::MaxLevels)?;
            evicted = self.orders.iter().filter(|o| o.side == new.side && o.price == gone).map(|o| o.id).collect();
            self.orders.retain(|o| !(o.side == new.side && o.price == gone));
        }
        let id = self.next_id.max(1);
        self.next_id = id + 1;
        self.orders.push(Resting {
            id,
            owner: new.owner,
            side: new.side,
            price: new.price.micros(),
            lots: new.lots.get(),
            original: new.lots.get(),
            cid: new.client_order_id,
            reduce_only: new.reduce_only,
            height: new.placed_height,
        });
        Ok((id, evicted))
    }

    fn cancel(&mut self, id: u64) -> Option<Resting> {
        let i = self.orders.iter().position(|o| o.id == id)?;
        Some(self.orders.remove(i))
    }

    fn by_client_id(&self, owner: &AccountId, cid: u64) -> Option<u64> {
        self.orders.iter().find(|o| o.owner == *owner && o.cid == cid && cid != 0).map(|o| o.id)
    }

    /// The book's whole state as the model says it must be stored.
    fn expected_state(&self) -> BTreeMap<B256, Vec<u8>> {
        let mut state = BTreeMap::new();
        let mut put = |key: B256, record: &dyn Fn() -> Vec<u8>| {
            let bytes = record();
            if !bytes.is_empty() {
                state.insert(key, bytes);
            }
        };
        if self.next_id > 0 {
            put(book::counters_key(), &|| pb::MarketCountersRecord { next_order_id: self.next_id }.encode_to_vec());
        }
        for side in [Side::Buy, Side::Sell] {
            let mut prices: Vec<u64> = self.orders.iter().filter(|o| o.side == side).map(|o| o.price).collect();
            prices.sort_by_key(|&p| priority(side, p));
            prices.dedup();
            put(book::side_key(Book::Perp, side), &|| {
                pb::BookSideRecord { prices_micros: prices.clone() }.encode_to_vec()
            });
            for &price in &prices {
                let fifo: Vec<&Resting> = self.orders.iter().filter(|o| o.side == side && o.price == price).collect();
                let level = pb::BookLevelRecord {
                    head_order_id: fifo[0].id,
                    tail_order_id: fifo[fifo.len() - 1].id,
                    total_lots: fifo.iter().map(|o| o.lots).sum(),
                    order_count: fifo.len() as u32,
                };
                put(book::level_key(Book::Perp, side, price), &|| level.encode_to_vec());
                for (k, o) in fifo.iter().enumerate() {
                    let record = pb::OrderRecord {
                        order_id: o.id,
                        owner: o.owner.0.to_vec(),
                        is_buy: side.is_buy(),
                        price_micros: price,
                        remaining_lots: o.lots,
                        client_order_id: o.cid,
                        reduce_only: o.reduce_only,
                        placed_height: o.height,
                        prev_order_id: if k == 0 { 0 } else { fifo[k - 1].id },
                        next_order_id: fifo.get(k + 1).map_or(0, |n| n.id),
                        original_lots: o.original,
                        series: Vec::new(),
                    };
                    put(book::order_key(o.id), &|| record.encode_to_vec());
                    if o.cid != 0 {
                        put(book::client_order_key(&o.owner, o.cid), &|| {
                            pb::ClientOrderRecord { order_id: o.id }.encode_to_vec()
                        });
                    }
                }
            }
        }
        for owner in OWNERS {
            put(book::account_orders_key(&owner), &|| expected_account(&self.orders, &owner).encode_to_vec());
        }
        state
    }
}

fn expected_account(orders: &[Resting], owner: &AccountId) -> pb::AccountOrdersRecord {
    let mine: Vec<&Resting> = orders.iter().filter(|o| o.owner == *owner).collect();
    let open = |side: Side| mine.iter().filter(|o| o.side == side).map(|o| o.lots).sum();
    pb::AccountOrdersRecord {
        order_ids: mine.iter().map(|o| o.id).collect(),
        open_buy_lots: open(Side::Buy),
        open_sell_lots: open(Side::Sell),
    }
}

fn actual_fills(out: &MatchOutcome) -> Vec<ModelFill> {
    out.fills.iter().map(|f| (f.maker_order_id, f.maker, f.price.micros(), f.lots.get(), f.maker_done)).collect()
}

/// Invariants read from state alone, without the model. Returns the lots resting on the book.
fn check_invariants(scope: &mut TxScope<'_>) -> u64 {
    let mut resting_lots = 0u64;
    let mut by_owner: BTreeMap<AccountId, pb::AccountOrdersRecord> = BTreeMap::new();
    for side in [Side::Buy, Side::Sell] {
        let depth = book::depth(scope, Book::Perp, side, usize::MAX).expect("depth");
        let prices: Vec<u64> = depth.iter().map(|l| l.price.micros()).collect();
        let better = |a, b| side.is_better(Price::from_micros(a), Price::from_micros(b));
        assert!(prices.windows(2).all(|w| better(w[0], w[1])), "{side:?} list not strictly best-first");
        for &p in &GRID {
            let listed = prices.contains(&p);
            assert_eq!(
                scope.read(&book::level_key(Book::Perp, side, p)).expect("read").is_some(),
                listed,
                "{side:?} level {p}"
            );
        }
        for level in depth {
            let raw = scope
                .read(&book::level_key(Book::Perp, side, level.price.micros()))
                .expect("read")
                .expect("listed level");
            let record = pb::BookLevelRecord::decode(raw.as_slice()).expect("level decodes");
            let (mut lots, mut count, mut prev, mut cur) = (0u64, 0u32, 0u64, record.head_order_id);
            while cur != 0 {
                let o = book::order(scope, cur).expect("read").expect("linked order rests");
                assert_eq!((o.prev_order_id, o.is_buy, o.price_micros), (prev, side.is_buy(), level.price.micros()));
                assert!(o.remaining_lots > 0 && o.remaining_lots <= o.original_lots, "order {cur} lots");
                let owner = AccountId::from_slice(&o.owner).expect("owner");
                let acct = by_owner.entry(owner).or_default();
                acct.order_ids.push(cur);
                *if side.is_buy() { &mut acct.open_buy_lots } else { &mut acct.open_sell_lots } += o.remaining_lots;
                (lots, count, prev, cur) = (lots + o.remaining_lots, count + 1, cur, o.next_order_id);
            }
            assert_eq!(record.tail_order_id, prev, "{side:?} level {} tail", level.price);
            assert_eq!((level.total.get(), level.order_count), (lots, count), "{side:?} level {}", level.price);
            resting_lots += lots;
        }
    }
    for owner in OWNERS {
        let mut want = by_owner.remove(&owner).unwrap_or_default();
        want.order_ids.sort_unstable();
        assert_eq!(book::account_orders(scope, &owner).expect("read"), want, "account orders of {owner}");
    }
    let (bid, ask) = (
        book::best_price(scope, Book::Perp, Side::Buy).expect("read"),
        book::best_price(scope, Book::Perp, Side::Sell).expect("read"),
    );
    if let (Some(bid), Some(ask)) = (bid, ask) {
        assert!(bid < ask, "book crossed: bid {bid} ask {ask}");
    }
    resting_lots
}

fn apply(state: &mut BTreeMap<B256, Vec<u8>>, writes: Changes) {
    for (key, value) in writes {
        match value {
            Some(v) => state.insert(key, v),
            None => state.remove(&key),
        };
    }
}

/// Which paths a run reached, so a test that silently stops exercising one fails.
#[derive(Debug, Default)]
struct Coverage {
    fills: u64,
    partial_fills: u64,
    self_trades: u64,
    fill_limit_stops: u64,
    rejects: BTreeMap<&'static str, u64>,
    cancels: u64,
    failed_cancels: u64,
    post_only_rejects: u64,
    evictions: u64,
}

struct PrintSeedOnPanic(u64);

impl Drop for PrintSeedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("order_book failed with seed {0}; replay with SHARDEX_TEST_SEED={0}", self.0);
        }
    }
}

fn new_order(rng: &mut ChaCha8Rng, owner: AccountId, side: Side, height: u64) -> NewOrder {
    NewOrder {
        book: Book::Perp,
        owner,
        side,
        price: Price::from_micros(*GRID.choose(rng).expect("grid")),
        lots: Lots::new(rng.gen_range(1..=6)),
        client_order_id: if rng.gen_bool(0.3) { rng.gen_range(1..=3) } else { 0 },
        reduce_only: rng.gen_bool(0.1),
        placed_height: height,
    }
}

/// Runs one step as a tx; returns whether it succeeded. Panics when the book and the model disagree.
fn step(
    rng: &mut ChaCha8Rng,
    scope: &mut TxScope<'_>,
    model: &mut Model,
    limits: &BookLimits,
    height: u64,
    cov: &mut Coverage,
) -> bool {
    let owner = *OWNERS.choose(rng).expect("owners");
    let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
    match rng.gen_range(0..100) {
        // Limit order, GTC (rest the remainder) or IOC (drop it); market order.
        0..=64 => {
            let new = new_order(rng, owner, side, height);
            let kind = rng.gen_range(0..10);
            let limit = (kind != 0).then_some(new.price);
            let gtc = kind >= 3;
            let inc = Incoming { book: Book::Perp, owner, side, limit_price: limit, lots: new.lots };
            let out = book::match_incoming(scope, &inc, limits).expect("match");
            let (fills, stp, left, stopped) = model.match_incoming(&inc, limits);
            assert_eq!(actual_fills(&out), fills, "fills of {inc:?}");
            let cancelled: Vec<u64> = out.self_trade_cancelled.iter().map(|o| o.order_id).collect();
            assert_eq!(cancelled, stp, "self-trade cancellations of {inc:?}");
            assert_eq!((out.remaining.get(), out.stopped_at_fill_limit), (left, stopped), "remainder of {inc:?}");
            let filled: u64 = out.fills.iter().map(|f| f.lots.get()).sum();
            assert_eq!(inc.lots.get(), filled + out.remaining.get(), "lots of {inc:?}");
            cov.fills += fills.len() as u64;
            cov.partial_fills += fills.iter().filter(|f| !f.4).count() as u64;
            cov.self_trades += stp.len() as u64;
            cov.fill_limit_stops += u64::from(stopped);
            model.seen.maker_filled += filled;
            model.seen.removed += out.self_trade_cancelled.iter().map(|o| o.remaining_lots).sum::<u64>();
            if !gtc || left == 0 {
                return true;
            }
            let new = NewOrder { lots: Lots::new(left), ..new };
            rest_checked(scope, model, &new, limits, cov)
        }
        // Post-only: rejected if it would take liquidity.
        65..=74 => {
            let new = new_order(rng, owner, side, height);
            let crosses = book::would_cross(scope, Book::Perp, side, new.price).expect("would_cross");
            assert_eq!(crosses, model.would_cross(side, new.price.micros()), "would_cross {new:?}");
            if crosses {
                cov.post_only_rejects += 1;
                return false;
            }
            rest_checked(scope, model, &new, limits, cov)
        }
        // Cancel by id, including ids that never rested or are gone.
        75..=89 => {
            let id = match model.orders.choose(rng) {
                Some(o) if rng.gen_bool(0.7) => o.id,
                _ => rng.gen_range(1..=model.next_id.max(1) + 1),
            };
            let got = book::cancel(scope, id);
            match model.cancel(id) {
                Some(want) => {
                    let got = got.expect("cancel of a resting order");
                    assert_eq!((got.order_id, got.remaining_lots, got.client_order_id), (want.id, want.lots, want.cid));
                    model.seen.removed += got.remaining_lots;
                    cov.cancels += 1;
                    true
                }
                None => {
                    assert!(matches!(got, Err(ExecError::InvalidOp(_))), "cancel of absent {id}: {got:?}");
                    cov.failed_cancels += 1;
                    false
                }
            }
        }
        // Cancel by client id.
        90..=96 => {
            let cid = rng.gen_range(1..=3);
            let got = book::order_id_by_client_id(scope, &owner, cid).expect("lookup");
            assert_eq!(got, model.by_client_id(&owner, cid), "client id {cid} of {owner}");
            let Some(id) = got else { return false };
            model.seen.removed += book::cancel(scope, id).expect("cancel by client id").remaining_lots;
            model.cancel(id);
            cov.cancels += 1;
            true
        }
        // Cancel all of one owner.
        _ => {
            let cancelled = book::cancel_all(scope, &owner).expect("cancel all");
            model.seen.removed += cancelled.iter().map(|o| o.remaining_lots).sum::<u64>();
            let got: Vec<u64> = cancelled.iter().map(|o| o.order_id).collect();
            let want: Vec<u64> = model.orders.iter().filter(|o| o.owner == owner).map(|o| o.id).collect();
            assert_eq!(got, want, "cancel-all of {owner}");
            for id in want {
                model.cancel(id);
            }
            true
        }
    }
}

fn rest_checked(
    scope: &mut TxScope<'_>,
    model: &mut Model,
    new: &NewOrder,
    limits: &BookLimits,
    cov: &mut Coverage,
) -> bool {
    let got = book::rest(scope, new, limits);
    match model.rest(new, limits) {
        Ok((id, evicted)) => {
            let book::Rested { order: got, evicted: got_evicted } = got.expect("rest the model accepts");
            let lots = new.lots.get();
            assert_eq!((got.order_id, got.remaining_lots, got.original_lots), (id, lots, lots), "rest {new:?}");
            assert_eq!(got_evicted.iter().map(|o| o.order_id).collect::<Vec<_>>(), evicted, "evicted by {new:?}");
            model.seen.rested += got.remaining_lots;
            model.seen.removed += got_evicted.iter().map(|o| o.remaining_lots).sum::<u64>();
            cov.evictions += u64::from(!evicted.is_empty());
            true
        }
        Err(reject) => {
            match got {
                Err(ExecError::InvalidOp(msg)) => assert!(msg.contains(reject.marker()), "{reject:?} but {msg}"),
                other => panic!("model rejects {new:?} ({reject:?}), book gave {other:?}"),
            }
            *cov.rejects.entry(reject.marker()).or_default() += 1;
            false
        }
    }
}

fn run_seed(seed: u64, cov: &mut Coverage) {
    let _guard = PrintSeedOnPanic(seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let limits = BookLimits {
        max_price_levels: rng.gen_range(2..=5),
        max_open_orders_per_account: rng.gen_range(2..=6),
        max_fills_per_order: rng.gen_range(1..=4),
        max_evicted_orders: rng.gen_range(1..=2),
    };
    let mut state: BTreeMap<B256, Vec<u8>> = BTreeMap::new();
    let mut model = Model::default();
    let no_changes = Changes::new();
    for height in 1..=STEPS {
        let before = model.clone();
        let writes = {
            let mut scope = TxScope::new(&state, &no_changes);
            let ok = step(&mut rng, &mut scope, &mut model, &limits, height, cov);
            ok.then(|| scope.into_writes())
        };
        match writes {
            Some(writes) => apply(&mut state, writes),
            None => model = before, // a failed tx changes nothing
        }

        let expected = model.expected_state();
        if state != expected {
            let keys: BTreeSet<&B256> = state.keys().chain(expected.keys()).collect();
            let diff: Vec<_> = keys.into_iter().filter(|k| state.get(*k) != expected.get(*k)).collect();
            panic!(
                "step {height}: state differs from the model's at {} keys: {diff:?}\nmodel: {:#?}",
                diff.len(),
                model.orders
            );
        }
        let mut scope = TxScope::new(&state, &no_changes);
        let resting = check_invariants(&mut scope);
        let seen = &model.seen;
        assert_eq!(seen.rested, resting + seen.maker_filled + seen.removed, "lots conservation at step {height}");
    }
}

#[test]
fn order_book_matches_reference_model() {
    let seeds: Vec<u64> = match std::env::var("SHARDEX_TEST_SEED") {
        Ok(s) => vec![s.parse().expect("SHARDEX_TEST_SEED is a u64")],
        Err(_) => (0..SEEDS).collect(),
    };
    let mut cov = Coverage::default();
    for &seed in &seeds {
        run_seed(seed, &mut cov);
    }
    if seeds.len() > 1 {
        let reached = cov.fills > 0
            && cov.partial_fills > 0
            && cov.self_trades > 0
            && cov.fill_limit_stops > 0
            && cov.cancels > 0
            && cov.failed_cancels > 0
            && cov.post_only_rejects > 0
            && cov.evictions > 0
            && cov.rejects.len() == 4;
        assert!(reached, "the random runs missed a path: {cov:#?}");
    }
}
