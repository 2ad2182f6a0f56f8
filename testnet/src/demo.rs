//! `testnet demo`: a narrated workload on a running network, every shown balance proven against a
//! validator-certified header and then up to a coordinator-signed epoch. Any failed step or check makes the
//! command exit non-zero.
//!
//! Steps: funding, bad requests, quotes, a leveraged taker, the options shard's story up to a liquidation
//! ([`options`]), collateral moved to another shard and used as margin there ([`bridge`]), a crash, a
//! liquidation, the circuit breaker, the first shard's leader killed while trading goes on ([`failover`]),
//! an option series expiring and settling, then the proofs.

mod bridge;
mod failover;
mod options;

use std::{collections::BTreeMap, path::Path, time::Duration};

use eyre::{bail, ensure, eyre, WrapErr};
use prost::Message;
use shardex_client::{CoordinatorClient, ShardClient, Wallet};
use shardex_core::{
    coordpb,
    genesis::Genesis,
    order::{limit_order, market_order},
    pb::{self, tx_body::Op},
    tx::sign_tx,
    AccountId, Keypair, Reason, Usd,
};

use crate::network::{coordinator_key_file, Network, NodeEntry};

/// 100,000 USD per BTC in micro-USD.
const BTC_100K: u64 = 100_000_000_000;
/// One USD in micro-USD, as a price step.
const PRICE_USD: u64 = 1_000_000;

const FINAL: Duration = Duration::from_secs(30);
const USD: u64 = 1_000_000;

fn step(n: usize, text: &str) {
    println!("\n[{n}] {text}");
}

fn trader_key(dir: &Path, name: &str) -> eyre::Result<Keypair> {
    let path = dir.join("keys").join(format!("{name}.key"));
    if path.exists() {
        return Ok(Keypair::read_file(&path)?);
    }
    let key = Keypair::generate();
    key.write_file(&path).wrap_err_with(|| format!("writing {}", path.display()))?;
    Ok(key)
}

/// Expects a rejection with `reason`; anything else fails the demo.
fn expect_reason<T>(what: &str, r: Result<T, shardex_client::ClientError>, reason: Reason) -> eyre::Result<()> {
    match r {
        Err(e) if e.reason() == Some(reason) => {
            println!("    refused as expected: {what} -> {reason}");
            Ok(())
        }
        Err(e) => bail!("{what}: expected {reason}, got {e}"),
        Ok(_) => bail!("{what}: was accepted, expected {reason}"),
    }
}

/// Runs the demo against the network in `dir`; `bin_dir` holds the `shard-node` binary a restart runs.
pub async fn run(dir: &Path, bin_dir: Option<&Path>) -> eyre::Result<()> {
    let net = Network::load(dir)?;
    let deposit_key = Keypair::read_file(&dir.join("keys").join("deposit.key"))?;
    let alice = trader_key(dir, "alice")?;
    let bob = trader_key(dir, "bob")?;
    println!(
        "shardex demo on chain {} with {} shard(s) of {} validator(s)",
        net.chain_id,
        net.shards().len(),
        net.shards().first().map_or(0, |n| net.validators_of(n.shard_id).len())
    );
    println!("  alice {}", alice.account());
    println!("  bob   {}", bob.account());

    let mut clients = Vec::new();
    for node in net.shards() {
        let client =
            ShardClient::connect(&node.endpoint).await.wrap_err_with(|| format!("connecting to {}", node.name))?;
        let genesis = Genesis::read_file(&node.genesis_file())?;
        clients.push((node.clone(), client, genesis));
    }

    // Expected balances per (shard, account), computed from what the demo does.
    let mut expected: BTreeMap<(u32, AccountId), i64> = BTreeMap::new();
    for (node, client, _) in &clients {
        for who in [alice.account(), bob.account()] {
            let have = client.account(&who).await?.map_or(0, |r| r.collateral_micros);
            expected.insert((node.shard_id.0, who), have);
        }
    }

    step(1, "The deposit authority funds alice with 10,000 USD and bob with 2,500 USD on every shard");
    for (node, client, _) in &clients {
        let mut authority = Wallet::new(deposit_key.clone(), client).await?;
        for (who, usd) in [(alice.account(), 10_000u64), (bob.account(), 2_500)] {
            let hash = authority.deposit(client, &who, usd * USD).await?;
            let inc = client.wait_final(hash, FINAL).await?;
            *expected.entry((node.shard_id.0, who)).or_default() += (usd * USD) as i64;
            println!(
                "    {:<14} +{} to {} (block {})",
                node.name,
                Usd::from_micros((usd * USD) as i64),
                &who.to_hex()[..8],
                inc.height
            );
        }
    }

    let (first, client, genesis) = clients.first().ok_or_else(|| eyre!("the network has no shards"))?;
    ensure!(
        genesis.market.options.is_none(),
        "the demo's perpetual story runs on the first shard, and {} is an options market: list a *-PERP market \
         first (`testnet up --shards BTC-PERP,ETH-OPTIONS`)",
        first.name
    );
    step(2, &format!("alice withdraws 1,234.567891 USD on {}", first.name));
    let mut alice_w = Wallet::new(alice.clone(), client).await?;
    let amount = 1_234_567_891u64;
    let hash = alice_w.withdraw(client, amount).await?;
    let inc = client.wait_final(hash, FINAL).await?;
    *expected.entry((first.shard_id.0, alice.account())).or_default() -= amount as i64;
    println!("    final in block {} (tx 0x{})", inc.height, &hex::encode(hash)[..16]);

    step(3, "Bad requests are refused and change nothing");
    let before = client.status().await?.state_root;
    let replay =
        sign_tx(&alice, client.domain(), alice_w.next_nonce() - 1, Op::Withdraw(pb::Withdraw { amount_micros: 1 }));
    expect_reason("replayed nonce", client.submit(replay).await, Reason::NonceUsed)?;
    let mut bob_w = Wallet::new(bob.clone(), client).await?;
    let overdraft = bob_w.sign(client, Op::Withdraw(pb::Withdraw { amount_micros: 1_000_000 * USD }));
    expect_reason("bob withdraws 1,000,000 USD", client.submit(overdraft).await, Reason::InsufficientCollateral)?;
    let self_deposit =
        bob_w.sign(client, Op::Deposit(pb::Deposit { account: bob.account().0.to_vec(), amount_micros: USD }));
    expect_reason("bob signs his own deposit", client.submit(self_deposit).await, Reason::Unauthorized)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(client.status().await?.state_root == before, "a refused request changed the state root");

    // Fresh traders each run, so a rerun tells the same story; their keys stay for the conservation check.
    let run = std::fs::read_dir(dir.join("keys"))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("carol-"))
        .count()
        + 1;
    let mut trading = open_trading(dir, client, &deposit_key, run).await?;
    let options = options::open(dir, &clients, &deposit_key, run).await?;
    let mut shown = vec![("alice".to_owned(), alice.account()), ("bob".to_owned(), bob.account())];
    // Collateral moves between the first two perpetual shards.
    let perps: Vec<_> = clients.iter().filter(|(_, _, g)| g.market.options.is_none()).cloned().collect();
    let bridged = bridge::cross_shard_margin(dir, &net, &perps, &deposit_key, &mut expected, run).await?;
    shown.extend(bridged);
    crash(client, &mut trading).await?;
    failover::leader_failover(dir, bin_dir, &mut trading.mm, BTC_100K / 100 * 80).await?;
    options::settle(options, &alice).await?;

    step(15, "Every balance, proven: MPT proof -> state root -> header certified by the shard's validators");
    // Proven reads go to each shard's follower where one runs (a read replica that trusts nothing but
    // certificates), once it holds everything the demo wrote there.
    let readers = readers(&net, &clients).await?;
    for ((node, _, genesis), (reader, client)) in clients.iter().zip(&readers) {
        println!("    {:<14} read from {}", node.name, reader.name);
        let market = client.market(false).await?;
        let totals = market.totals.unwrap_or_default();
        let mut shown_sum = 0i64;
        for (name, who) in &shown {
            let who = *who;
            let v = client
                .account_proven(&who, 0, Some(&genesis.validators))
                .await
                .wrap_err_with(|| format!("proving {name} on {}", node.name))?;
            let balance = v.record.as_ref().map_or(0, |r| r.collateral_micros);
            let want = expected.get(&(node.shard_id.0, who)).copied().unwrap_or(0);
            ensure!(
                balance == want,
                "{name} on {}: node says {}, expected {}",
                node.name,
                Usd::from_micros(balance),
                Usd::from_micros(want)
            );
            shown_sum += balance;
            println!(
                "    {:<14} {:<5} {:>22}  proven at height {} root 0x{}…",
                node.name,
                name,
                Usd::from_micros(balance).to_string(),
                v.height,
                &hex::encode(v.state_root)[..12]
            );
        }
        let net_in = net_inflow(&totals);
        println!(
            "    {:<14} deposits {} - withdrawals {} + bridged in {} - bridged out {} - escrowed {} = {} (accounts \
             above hold {})",
            node.name,
            usd(totals.deposited_micros),
            usd(totals.withdrawn_micros),
            usd(totals.bridged_in_micros),
            usd(totals.bridged_out_micros),
            usd(totals.escrowed_micros),
            Usd::from_micros(i64::try_from(net_in).unwrap_or(i64::MAX)),
            Usd::from_micros(shown_sum)
        );
        ensure!(net_in >= i128::from(shown_sum), "{}: accounts hold more than entered the shard", node.name);
    }
    for ((node, _, genesis), (_, client)) in clients.iter().zip(&readers) {
        conservation(node, client, genesis).await?;
    }
    global_proofs(dir, &net, &clients, &readers, &expected, &shown).await?;
    println!("\ndemo complete: every step succeeded and every balance verified");
    Ok(())
}

/// For each shard of `clients` (in order), the node to read proofs from and a client of it: the shard's
/// first follower, once its head reached the validator's, else the validator itself.
async fn readers(
    net: &Network,
    clients: &[(NodeEntry, ShardClient, Genesis)],
) -> eyre::Result<Vec<(NodeEntry, ShardClient)>> {
    let mut out = Vec::with_capacity(clients.len());
    for (node, client, _) in clients {
        let Some(follower) = net.nodes.iter().find(|n| n.follower && n.shard_id == node.shard_id) else {
            out.push((node.clone(), client.clone()));
            continue;
        };
        let reader = ShardClient::connect(&follower.endpoint)
            .await
            .wrap_err_with(|| format!("connecting to {}", follower.name))?;
        let target = client.status().await?.height;
        let deadline = tokio::time::Instant::now() + FINAL;
        loop {
            let at = reader.status().await?.height;
            if at >= target {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{} did not reach height {target} of {} within {FINAL:?}: it is at height {at}",
                follower.name,
                node.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        out.push((follower.clone(), reader));
    }
    Ok(out)
}

/// What entered a shard and is free of escrow: deposits − withdrawals + bridged in − bridged out − escrowed.
fn net_inflow(t: &pb::LedgerTotalsRecord) -> i128 {
    i128::from(t.deposited_micros) - i128::from(t.withdrawn_micros) + i128::from(t.bridged_in_micros)
        - i128::from(t.bridged_out_micros)
        - i128::from(t.escrowed_micros)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn order(side: pb::Side, price: u64, lots: u64, tif: pb::TimeInForce) -> pb::PlaceOrder {
    if price == 0 {
        market_order(side, lots)
    } else {
        limit_order(side, price, lots, tif)
    }
}

fn usd(micros: u64) -> String {
    Usd::from_micros(i64::try_from(micros).unwrap_or(i64::MAX)).to_string()
}

async fn show_health(client: &ShardClient, name: &str, who: &AccountId) -> eyre::Result<pb::AccountHealth> {
    let p = client.position(who, false).await?;
    let h = p.health.ok_or_else(|| eyre!("no oracle price"))?;
    println!(
        "    {name}: {} lots, equity {}, maintenance {}, liquidation price {}{}",
        p.position.map_or(0, |x| x.size_lots),
        Usd::from_micros(h.equity_micros),
        Usd::from_micros(h.maintenance_required_micros),
        if h.liquidation_price_micros == 0 { "none".to_owned() } else { usd(h.liquidation_price_micros) },
        if h.liquidatable { "  LIQUIDATABLE" } else { "" }
    );
    Ok(h)
}

/// The `Liquidated` event of a final liquidation tx.
fn liquidated(inc: pb::tx_status::Included) -> eyre::Result<pb::Liquidated> {
    inc.receipt
        .map(|r| r.events)
        .unwrap_or_default()
        .into_iter()
        .find_map(|e| match e.kind {
            Some(pb::event::Kind::Liquidated(l)) => Some(l),
            _ => None,
        })
        .ok_or_else(|| eyre!("no liquidation event"))
}

/// Returns the market to normal mode (by the admin key) if it is in another.
async fn ensure_normal_mode(dir: &Path, client: &ShardClient) -> eyre::Result<()> {
    let mode = client.market(false).await?.market.map_or(0, |m| m.mode);
    if mode != pb::MarketMode::Normal as i32 {
        let admin_key = Keypair::read_file(&dir.join("keys").join("admin.key"))?;
        let mut admin = Wallet::new(admin_key, client).await?;
        let op =
            Op::SetMarketMode(pb::SetMarketMode { mode: pb::MarketMode::Normal as i32, reason: "demo restart".into() });
        client.wait_final(admin.submit(client, op).await?, FINAL).await?;
        println!(
            "    the admin returned the market to normal mode (it was {})",
            pb::MarketMode::try_from(mode).map_or("?", |m| m.as_str_name())
        );
    }
    Ok(())
}

/// The traders of the first shard between steps 5 and 10 (the options and cross-shard steps run in between).
struct Trading {
    mm: Wallet,
    oracle: Wallet,
    carol: Keypair,
    dave: Keypair,
}

/// Steps 4 and 5 on the first shard: quotes and a leveraged taker.
async fn open_trading(dir: &Path, client: &ShardClient, deposit_key: &Keypair, run: usize) -> eyre::Result<Trading> {
    let mm = trader_key(dir, &format!("market-maker-{run}"))?;
    let carol = trader_key(dir, &format!("carol-{run}"))?;
    let dave = trader_key(dir, &format!("dave-{run}"))?;
    let oracle_key = Keypair::read_file(&dir.join("keys").join("oracle.key"))?;
    let mut authority = Wallet::new(deposit_key.clone(), client).await?;
    for (who, amount) in [(&mm, 500_000u64), (&carol, 3_000), (&dave, 50_000)] {
        let hash = authority.deposit(client, &who.account(), amount * USD).await?;
        client.wait_final(hash, FINAL).await?;
    }
    let mut oracle = Wallet::new(oracle_key, client).await?;

    // Sizes in lots from USD notionals, so the story holds for any lot size.
    let lot_size = client.market(false).await?.market.map_or(1, |m| m.lot_size.max(1));
    let lots_for = |usd_notional: u64| (usd_notional * USD * 1_000_000 / (lot_size * BTC_100K)).max(1);
    let (quote_lots, carol_lots) = (lots_for(20_000), lots_for(25_000));

    step(4, "The oracle publishes a price of 100,000 USD; a market maker quotes both sides");
    client.wait_final(oracle.oracle_update(client, BTC_100K, now_ms()).await?, FINAL).await?;
    // A previous run may have left the market post-only (its crash tripped the breaker) or the jump back to
    // 100,000 may trip it now: the admin returns the market to normal before the story starts.
    ensure_normal_mode(dir, client).await?;
    let mut mm_w = Wallet::new(mm, client).await?;
    let mut last = None;
    for i in 1..=3u64 {
        let bid = order(pb::Side::Buy, BTC_100K - i * 10 * PRICE_USD, quote_lots, pb::TimeInForce::PostOnly);
        let ask = order(pb::Side::Sell, BTC_100K + i * 10 * PRICE_USD, quote_lots, pb::TimeInForce::PostOnly);
        mm_w.place_order(client, bid).await?;
        last = Some(mm_w.place_order(client, ask).await?);
    }
    if let Some(hash) = last {
        client.wait_final(hash, FINAL).await?;
    }
    let book = client.book(3).await?;
    for l in book.asks.iter().rev() {
        println!("    ask {:>22} {:>5} lots", usd(l.price_micros), l.total_lots);
    }
    for l in &book.bids {
        println!("    bid {:>22} {:>5} lots", usd(l.price_micros), l.total_lots);
    }
    ensure!(book.bids.len() == 3 && book.asks.len() == 3, "the quotes did not all rest");

    step(5, &format!("carol buys {carol_lots} lots (about 25,000 USD) at market on 3,000 USD of collateral"));
    let mut carol_w = Wallet::new(carol.clone(), client).await?;
    let buy = order(pb::Side::Buy, 0, carol_lots, pb::TimeInForce::Ioc);
    let inc = client.wait_final(carol_w.place_order(client, buy).await?, FINAL).await?;
    for e in inc.receipt.map(|r| r.events).unwrap_or_default() {
        if let Some(pb::event::Kind::OrderFilled(f)) = e.kind {
            if !f.is_maker {
                println!(
                    "    filled {} lots @ {} (fee {})",
                    f.lots,
                    usd(f.price_micros),
                    Usd::from_micros(f.fee_micros)
                );
            }
        }
    }
    let h = show_health(client, "carol", &carol.account()).await?;
    ensure!(!h.liquidatable, "carol is liquidatable right after opening");
    Ok(Trading { mm: mm_w, oracle, carol, dave })
}

/// Steps 10 to 12 on the first shard: a crash, a liquidation, the breaker.
async fn crash(client: &ShardClient, t: &mut Trading) -> eyre::Result<()> {
    let Trading { mm: mm_w, oracle, carol, dave } = t;
    step(10, "The price falls 8% to 92,000 USD: carol drops below maintenance margin");
    let crash = BTC_100K / 100 * 92;
    client.wait_final(oracle.oracle_update(client, crash, now_ms()).await?, FINAL).await?;
    let h = show_health(client, "carol", &carol.account()).await?;
    ensure!(h.liquidatable && h.equity_micros > 0, "carol should be liquidatable but solvent");

    step(11, "dave liquidates carol: he takes the position over at the mark for half of the 1% penalty");
    let mut dave_w = Wallet::new(dave.clone(), client).await?;
    let inc = client.wait_final(dave_w.liquidate(client, &carol.account(), 0).await?, FINAL).await?;
    let report = liquidated(inc)?;
    println!(
        "    {} lots @ {}: penalty {}, dave earns {}, insurance fund {:+}",
        report.lots,
        usd(report.price_micros),
        Usd::from_micros(report.penalty_micros),
        Usd::from_micros(report.liquidator_reward_micros),
        Usd::from_micros(report.insurance_delta_micros)
    );
    let after = show_health(client, "carol", &carol.account()).await?;
    ensure!(!after.liquidatable && after.equity_micros > 0, "liquidation did not restore carol's solvency");
    show_health(client, "dave", &dave.account()).await?;

    step(12, "A fall to 84,000 USD (16% inside the band window) trips the circuit breaker: post-only");
    client.wait_final(oracle.oracle_update(client, BTC_100K / 100 * 84, now_ms()).await?, FINAL).await?;
    let market = client.market(false).await?.market.unwrap_or_default();
    println!(
        "    market mode {} ({}) until {} ms",
        pb::MarketMode::try_from(market.mode).map_or("?", |m| m.as_str_name()),
        pb::ModeCause::try_from(market.mode_cause).map_or("?", |c| c.as_str_name()),
        market.mode_until_ms
    );
    ensure!(market.mode == pb::MarketMode::PostOnly as i32, "the breaker did not trip");
    let taker = mm_w.sign(client, Op::PlaceOrder(order(pb::Side::Sell, 0, 1, pb::TimeInForce::Ioc)));
    expect_reason("a market order while post-only", client.submit(taker).await, Reason::MarketMode)?;
    Ok(())
}

/// Σ collateral − Σ entry + fee pool + insurance + funding pool + escrowed equals deposits − withdrawals +
/// bridged in − bridged out, from the ledger totals the VM keeps over every account (so it holds whoever
/// else traded on the network), every record proven under a header the shard's validators certified.
async fn conservation(node: &NodeEntry, client: &ShardClient, genesis: &Genesis) -> eyre::Result<()> {
    let l = client
        .ledger(0, Some(&genesis.validators))
        .await
        .wrap_err_with(|| format!("proving {}'s ledger", node.name))?;
    l.check_conservation().wrap_err_with(|| format!("{} at height {}", node.name, l.height))?;
    let t = &l.totals;
    println!(
        "    {:<14} collateral {} - entry notional {} + fees {} + insurance {} + funding {} + escrowed {} = \
         deposits - withdrawals + bridged in - bridged out (proven, height {})",
        node.name,
        Usd::from_micros(t.collateral_micros),
        Usd::from_micros(t.entry_notional_micros),
        usd(l.pools.fee_pool_micros),
        Usd::from_micros(l.pools.insurance_fund_micros),
        Usd::from_micros(l.pools.funding_pool_micros),
        usd(t.escrowed_micros),
        l.height
    );
    Ok(())
}

/// Step 16: the balances of step 15 again, each verified up to one coordinator-signed epoch that commits
/// every shard at or above its current height (so after everything the demo did).
async fn global_proofs(
    dir: &Path,
    net: &Network,
    clients: &[(NodeEntry, ShardClient, Genesis)],
    readers: &[(NodeEntry, ShardClient)],
    expected: &BTreeMap<(u32, AccountId), i64>,
    shown: &[(String, AccountId)],
) -> eyre::Result<()> {
    step(16, "Every balance, verified to the coordinator: epoch signature -> global root -> shard header -> record");
    let entry = net
        .coordinator
        .as_ref()
        .ok_or_else(|| eyre!("the network has no coordinator; `testnet down` then `testnet up` adds it"))?;
    // The key a client trusts: derived from the coordinator's own key file, and it must be the manifest's.
    let key = Keypair::read_file(&coordinator_key_file(dir))?.account();
    ensure!(key == entry.public_key, "keys/coordinator.key is not the key of the coordinator in network.toml");
    let coord = CoordinatorClient::connect(&entry.endpoint).await.wrap_err("connecting to the coordinator")?;
    let mut heights = Vec::with_capacity(clients.len());
    for (node, client, _) in clients {
        heights.push((node.shard_id.0, client.status().await?.height));
    }
    let epoch = epoch_committing(&coord, &heights).await?;
    println!("    epoch {epoch} commits all {} shards; coordinator key {}", clients.len(), key);
    for ((node, _, genesis), (reader, client)) in clients.iter().zip(readers) {
        // The reader must hold the epoch's height of its shard.
        let committed = coord.inclusion(epoch, node.shard_id.0).await?.entry.map_or(0, |e| e.height);
        let deadline = tokio::time::Instant::now() + FINAL;
        while client.status().await?.height < committed {
            ensure!(tokio::time::Instant::now() < deadline, "{} did not reach height {committed}", reader.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (name, who) in shown {
            let v = client
                .account_global(&coord, &key, epoch, who, &genesis.validators)
                .await
                .wrap_err_with(|| format!("verifying {name} on {} to epoch {epoch}", node.name))?;
            ensure!(
                v.epoch.record.number == epoch,
                "verified against epoch {} instead of {epoch}",
                v.epoch.record.number
            );
            let balance = v.record.as_ref().map_or(0, |r| r.collateral_micros);
            let want = expected.get(&(node.shard_id.0, *who)).copied().unwrap_or(0);
            ensure!(
                balance == want,
                "{name} on {} in epoch {epoch}: {}, expected {}",
                node.name,
                Usd::from_micros(balance),
                Usd::from_micros(want)
            );
            println!(
                "    {:<14} {:<5} {:>22}  in epoch {} (global root 0x{}…) at shard height {}",
                node.name,
                name,
                Usd::from_micros(balance).to_string(),
                v.epoch.record.number,
                &hex::encode(v.epoch.global_root)[..12],
                v.entry.height
            );
        }
    }
    Ok(())
}

/// The number of the first epoch whose entry for every (shard, height) is at that height or above.
async fn epoch_committing(coord: &CoordinatorClient, heights: &[(u32, u64)]) -> eyre::Result<u64> {
    let deadline = tokio::time::Instant::now() + FINAL;
    'poll: loop {
        ensure!(tokio::time::Instant::now() < deadline, "no epoch committed every shard within {FINAL:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let latest = coord.latest_epoch().await?;
        let number = coordpb::EpochRecord::decode(latest.record.as_slice()).wrap_err("epoch record")?.number;
        for (shard, height) in heights {
            let entry = coord.inclusion(number, *shard).await.ok().and_then(|i| i.entry);
            if entry.is_none_or(|e| e.height < *height) {
                continue 'poll;
            }
        }
        return Ok(number);
    }
}
