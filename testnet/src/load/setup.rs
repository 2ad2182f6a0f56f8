//! Setting up a shard for load: funding, prices, quotes, taker orders and the signing threads.

use super::*;

/// The `k`-th order of a taker: pairs of a buy and a sell of the same size (1–3 lots) so positions stay
/// near flat, priced through every quote level so they cross; one pair in four is GTC, the rest IOC. A GTC
/// order rests only if the market maker's side is empty.
pub(super) fn taker_order(m: &Market, k: u64) -> pb::PlaceOrder {
    let side = if k.is_multiple_of(2) { pb::Side::Buy } else { pb::Side::Sell };
    let lots = 1 + (k / 2) % 3;
    let tif = if (k / 2) % 4 == 3 { pb::TimeInForce::Gtc } else { pb::TimeInForce::Ioc };
    let through = match side {
        pb::Side::Buy => pb::Side::Sell,
        _ => pb::Side::Buy,
    };
    m.order(side, m.quote_price(through, QUOTE_LEVELS), lots, tif)
}

/// The orders that bring every quote level back to [`QUOTE_LOTS`], given the book.
pub(super) fn missing_quotes(m: &Market, book: &pb::GetBookResponse) -> Vec<pb::PlaceOrder> {
    let mut orders = Vec::new();
    for level in 1..=QUOTE_LEVELS {
        for (side, levels) in [(pb::Side::Buy, &book.bids), (pb::Side::Sell, &book.asks)] {
            let price = m.quote_price(side, level);
            let have = levels.iter().find(|l| l.price_micros == price).map_or(0, |l| l.total_lots);
            if have < QUOTE_LOTS / 2 {
                orders.push(m.order(side, price, QUOTE_LOTS - have, pb::TimeInForce::Gtc));
            }
        }
    }
    orders
}

/// Refuses endpoints that are not on 127.0.0.1.
pub(super) fn loopback_only(node: &NodeEntry) -> eyre::Result<()> {
    let host = node.endpoint.strip_prefix("http://").and_then(|rest| rest.split(':').next());
    if host != Some("127.0.0.1") {
        bail!("{} is at {:?}; `testnet load` only drives nodes on 127.0.0.1", node.name, node.endpoint);
    }
    Ok(())
}

/// Submits setup `txs` in batches, every one of which must be accepted, and waits until the last is final
/// (blocks take the mempool in order, so then all are).
pub(crate) async fn submit_final(client: &ShardClient, txs: Vec<pb::SignedTx>, what: &str) -> eyre::Result<()> {
    let mut last = None;
    let mut txs = txs.into_iter().peekable();
    while txs.peek().is_some() {
        let chunk: Vec<pb::SignedTx> = txs.by_ref().take(SETUP_BATCH).collect();
        for r in client.submit_batch(chunk).await.wrap_err_with(|| format!("submitting {what}"))? {
            ensure!(r.accepted, "{what} refused: {} {}", r.reason, r.message);
            last = b256_from_slice(&r.tx_hash);
        }
    }
    if let Some(hash) = last {
        client.wait_final(hash, SETUP_FINAL).await.wrap_err_with(|| format!("{what} did not become final"))?;
    }
    Ok(())
}

/// Funds a fresh market maker and fresh takers, publishes the price and places the first quotes.
pub(super) async fn setup(
    node: &NodeEntry,
    validators: Vec<(String, Option<u32>)>,
    dir: &Path,
    args: &LoadArgs,
    shards: usize,
    bridge: Option<&BridgeLoad>,
) -> eyre::Result<(ShardLoad, Actors)> {
    loopback_only(node)?;
    let client = ShardClient::connect(&node.endpoint).await.wrap_err_with(|| format!("connecting to {}", node.name))?;
    let genesis = Genesis::read_file(&node.genesis_file()).wrap_err_with(|| format!("genesis of {}", node.name))?;
    let mut market = Market::for_symbol(&genesis.market.symbol, genesis.market.tick_size_micros);
    let keys = dir.join("keys");
    let deposit = Keypair::read_file(&keys.join("deposit.key"))?;
    let mut oracle = Wallet::new(Keypair::read_file(&keys.join("oracle.key"))?, &client).await?;
    let maker_key = Keypair::generate();
    let mut maker = Wallet::with_nonce(maker_key.clone(), 0);
    let takers: Vec<Keypair> = (0..args.accounts).map(|_| Keypair::generate()).collect();

    let mut recipients = vec![(maker.account(), MAKER_USD * USD)];
    recipients.extend(takers.iter().map(|t| (t.account(), TAKER_USD * USD)));
    if let Some(b) = bridge {
        recipients.extend(b.accounts.iter().map(|k| (k.account(), BRIDGE_ACCOUNT_USD * USD)));
    }
    fund(&client, &deposit, recipients, &format!("{}: funding the market maker and takers", node.name)).await?;
    let price = Op::OracleUpdate(pb::OracleUpdate { price_micros: market.price_micros, timestamp_ms: crate::now_ms() });
    submit_final(&client, vec![oracle.sign(&client, price)], "the first price").await?;
    // A market left outside normal mode (a tripped breaker after `testnet demo`, or the jump to this price
    // just now) refuses the takers' orders: the admin returns it to normal first.
    let mode = client.market(false).await?.market.map_or(0, |m| m.mode);
    if mode != pb::MarketMode::Normal as i32 {
        let mut admin = Wallet::new(Keypair::read_file(&keys.join("admin.key"))?, &client).await?;
        let normal = pb::SetMarketMode { mode: pb::MarketMode::Normal as i32, reason: "testnet load".into() };
        submit_final(&client, vec![admin.sign(&client, Op::SetMarketMode(normal))], "returning the market to normal")
            .await?;
        println!(
            "  {}: the admin returned the market to normal mode (it was {})",
            node.name,
            pb::MarketMode::try_from(mode).map_or("unknown", |m| m.as_str_name())
        );
    }
    if let Some(options) = &genesis.market.options {
        market = options_market(&client, &keys, &mut oracle, options, market).await?;
    }
    let quotes = missing_quotes(&market, &pb::GetBookResponse::default());
    let txs = quotes.into_iter().map(|o| maker.sign(&client, Op::PlaceOrder(o))).collect();
    submit_final(&client, txs, "market-maker quotes").await?;

    let tx_rate_per_s = args.tps as f64 / shards as f64;
    let transfer_rate_per_s = if bridge.is_some() { tx_rate_per_s * args.bridge_ratio } else { 0.0 };
    let rate_per_s = tx_rate_per_s - transfer_rate_per_s;
    let load = ShardLoad {
        name: node.name.clone(),
        validators,
        client,
        market,
        rate_per_s,
        orders: (rate_per_s * args.duration as f64).round() as u64,
        transfer_rate_per_s,
        stats: Arc::default(),
        signer: Arc::default(),
    };
    Ok((load, Actors { takers, maker_key, maker, oracle }))
}

/// On an options market: the at-the-money call of the daily expiry ([`crate::options::daily_expiry_ms`]),
/// listed if it is not yet, with the volatility published; the quotes centre on its premium at `spot`.
async fn options_market(
    client: &ShardClient,
    keys: &Path,
    oracle: &mut Wallet,
    options: &shardex_core::genesis::OptionsParams,
    spot: Market,
) -> eyre::Result<Market> {
    let tick = options.strike_tick_micros.max(1);
    let strike = (spot.spot_micros + tick / 2) / tick * tick;
    let now = crate::now_ms();
    let series = SeriesId {
        expiry_ms: crate::options::daily_expiry_ms(now),
        strike_micros: strike,
        kind: shardex_core::option::series::OptionKind::Call,
    };
    let mut admin = Wallet::new(Keypair::read_file(&keys.join("admin.key"))?, client).await?;
    crate::options::list_and_price(client, &mut admin, oracle, &[series]).await?;
    let premium = crate::options::price(&series, spot.spot_micros, now)?;
    Ok(Market::for_series(spot.spot_micros, series, premium, spot.tick_micros))
}

/// Signs every taker order of a shard into the lanes' buffers: order `i` is taker `(i / 2) mod K`'s, so each
/// taker sends a buy and the sell that closes it one after the other (a market caps the open positions per
/// side, and a wide load's takers would otherwise hold one each), round robin over the takers; taker `a`
/// always goes to lane `a % lanes`. Stops after `total` orders or when the lanes are gone.
pub(super) fn sign_orders(
    takers: Vec<Keypair>,
    domain: TxDomain,
    market: Market,
    lanes: Vec<mpsc::Sender<Signed>>,
    total: u64,
    stats: Arc<SignerStats>,
) {
    let mut next = vec![0u64; takers.len()];
    for i in 0..total {
        let a = ((i / 2) % takers.len() as u64) as usize;
        let start = Instant::now();
        let tx = sign_tx(&takers[a], domain, next[a], Op::PlaceOrder(taker_order(&market, next[a])));
        let hash = tx_hash(&tx.body);
        stats.busy_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats.signed.fetch_add(1, Ordering::Relaxed);
        next[a] += 1;
        if lanes[a % lanes.len()].blocking_send(Signed { tx, hash }).is_err() {
            return;
        }
    }
}

/// Starts the shard's signing thread; returns the lanes' receivers.
pub(super) fn start_signer(
    load: &ShardLoad,
    takers: Vec<Keypair>,
    args: &LoadArgs,
) -> eyre::Result<(Vec<mpsc::Receiver<Signed>>, std::thread::JoinHandle<()>, u64)> {
    let lanes = args.lanes.min(takers.len());
    let buffer = match args.presign {
        // Every order of the run fits in its lane's buffer: pair p (orders 2p and 2p + 1) is taker p mod K's,
        // which sends on lane (p mod K) mod lanes, so a lane gets at most 2 ceil(ceil(total / 2) / K) orders
        // of each of ceil(K / lanes) takers.
        true => {
            let (k, lanes) = (takers.len().max(1) as u64, lanes.max(1) as u64);
            let per_taker = 2 * load.orders.div_ceil(2).div_ceil(k);
            let most = per_taker.saturating_mul(k.div_ceil(lanes));
            usize::try_from(most).unwrap_or(usize::MAX).max(1)
        }
        false => ((load.rate_per_s / lanes as f64 * PRESIGN_S) as usize).max(2 * args.batch),
    };
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..lanes).map(|_| mpsc::channel(buffer)).unzip();
    let (domain, market, total, stats) = (load.client.domain(), load.market, load.orders, load.signer.clone());
    let thread = std::thread::Builder::new()
        .name(format!("sign-{}", load.name))
        .spawn(move || sign_orders(takers, domain, market, senders, total, stats))
        .wrap_err("starting a signing thread")?;
    Ok((receivers, thread, total.min((buffer * lanes) as u64)))
}

/// Cancels the market maker's resting quotes so the next run starts from its own book (best effort: a
/// top-up still pending can take the nonce, so it tries twice).
pub(super) async fn withdraw_quotes(client: &ShardClient, maker: Keypair) {
    for _ in 0..2 {
        let Ok(mut wallet) = Wallet::new(maker.clone(), client).await else { return };
        if let Ok(hash) = wallet.cancel_all(client).await {
            let _ = client.wait_final(hash, Duration::from_secs(5)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Signs [`CALIBRATION_ORDERS`] taker orders on this thread before the load starts: the signing rate of
/// one otherwise idle core, to compare with the rate under load.
pub(super) fn calibrate_signing(load: &ShardLoad) -> f64 {
    let key = Keypair::generate();
    let start = Instant::now();
    for k in 0..CALIBRATION_ORDERS {
        let tx = sign_tx(&key, load.client.domain(), k, Op::PlaceOrder(taker_order(&load.market, k)));
        std::hint::black_box(tx_hash(&tx.body));
    }
    CALIBRATION_ORDERS as f64 / start.elapsed().as_secs_f64()
}
