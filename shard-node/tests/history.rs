//! History pages: an account's receipts and the market's begin-block events come back complete across
//! pages (checked against a scan of every block), each proven against a validator-certified header; a page
//! altered in transit does not verify.

mod support;

use shardex_core::{
    history::{verify_history_page, HistoryItem},
    order::limit_order,
    pb::{self, tx_body::Op, Side, TimeInForce},
    proof::ProofError,
    AccountId, Keypair,
};
use shardex_shard_node::{
    chain::HistoryPos,
    shard::{HistoryQuery, MAX_HISTORY_ENTRIES},
};
use support::inproc::Net;

const USD: u64 = 1_000_000;
const PRICE: u64 = 100_000_000_000;

/// Every (height, receipt index) with an event of `account`, and every (height, event index) of
/// begin-block events, by scanning all blocks.
fn scan(net: &Net, account: Option<&AccountId>) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    for height in 1..=net.shard.head().height {
        let block = net.shard.view().block(height).expect("read").expect("block");
        match account {
            Some(a) => {
                for (i, r) in (0u32..).zip(&block.receipts) {
                    if r.events.iter().any(|e| e.account == a.0) {
                        out.push((height, i));
                    }
                }
            }
            None => out.extend((0u32..).zip(&block.block_events).map(|(i, _)| (height, i))),
        }
    }
    out
}

/// Pages through the whole history `limit` entries at a time, verifying every page.
fn page_all(net: &Net, account: Option<AccountId>, limit: usize) -> Vec<(u64, u32, HistoryItem)> {
    let validators = net.shard.genesis().validators.clone();
    let (chain, shard) = (net.domain.chain, net.domain.shard);
    let mut from = HistoryPos { height: 0, index: 0 };
    let mut out = Vec::new();
    for _ in 0..1_000 {
        let page = net
            .shard
            .view()
            .history_reader()
            .page(&HistoryQuery { account, from, limit, prove: true })
            .expect("page")
            .expect("served");
        assert!(page.entries.len() <= limit);
        let items = verify_history_page(&page, account.as_ref(), chain, shard, &validators).expect("page verifies");
        out.extend(page.entries.iter().zip(items).map(|(e, item)| (e.height, e.index, item)));
        if !page.more {
            return out;
        }
        from = HistoryPos { height: page.next_height, index: page.next_index };
    }
    panic!("history did not end");
}

#[test]
fn pages_are_complete_proven_and_tamper_evident() {
    let oracle = Keypair::from_seed([2; 32]);
    let deposit = Keypair::from_seed([4; 32]);
    let mut net = Net::new(&oracle, &deposit, |g| {
        g.market.trading.funding_interval_ms = 1_000;
    });
    let (maker, taker, other) =
        (Keypair::from_seed([50; 32]), Keypair::from_seed([51; 32]), Keypair::from_seed([52; 32]));
    for k in [&maker, &taker, &other] {
        net.run(&deposit, Op::Deposit(pb::Deposit { account: k.account().0.to_vec(), amount_micros: 10_000 * USD }))
            .expect("deposit");
    }
    for round in 0..12u64 {
        let t = net.clock_ms;
        net.submit(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: t }))
            .expect("oracle");
        net.submit(&maker, Op::PlaceOrder(limit_order(Side::Sell, PRICE + 10 * USD, 3, TimeInForce::Gtc)))
            .expect("ask");
        net.submit(&maker, Op::PlaceOrder(limit_order(Side::Buy, PRICE - 10 * USD, 3, TimeInForce::Gtc))).expect("bid");
        // Several of the taker's receipts share a block; `other` trades only in some rounds.
        net.submit(&taker, Op::PlaceOrder(limit_order(Side::Buy, PRICE + 10 * USD, 1, TimeInForce::Ioc)))
            .expect("taker buys");
        net.submit(&taker, Op::PlaceOrder(limit_order(Side::Sell, PRICE - 10 * USD, 1, TimeInForce::Ioc)))
            .expect("taker sells");
        if round % 3 == 0 {
            net.submit(&other, Op::Withdraw(pb::Withdraw { amount_micros: USD })).expect("withdraw");
        }
        net.block();
        net.clock_ms += 700;
    }

    for (who, limit) in [(&taker, 1), (&taker, 5), (&maker, 7), (&other, MAX_HISTORY_ENTRIES), (&deposit, 2)] {
        let account = who.account();
        let got = page_all(&net, Some(account), limit);
        let positions: Vec<(u64, u32)> = got.iter().map(|(h, i, _)| (*h, *i)).collect();
        assert_eq!(positions, scan(&net, Some(&account)), "history of {account} with pages of {limit}");
    }
    let taker_fills = page_all(&net, Some(taker.account()), 4)
        .iter()
        .flat_map(|(_, _, item)| match item {
            HistoryItem::Receipt { receipt, .. } => receipt.events.clone(),
            HistoryItem::Market { .. } => vec![],
        })
        .filter(|e| e.account == taker.account().0 && matches!(e.kind, Some(pb::event::Kind::OrderFilled(_))))
        .count();
    assert_eq!(taker_fills, 24, "two IOC fills per round");

    let market = page_all(&net, None, 2);
    let positions: Vec<(u64, u32)> = market.iter().map(|(h, i, _)| (*h, *i)).collect();
    assert_eq!(positions, scan(&net, None));
    let funding = market
        .iter()
        .filter(|(_, _, item)| matches!(item, HistoryItem::Market { event, .. } if matches!(event.kind, Some(pb::event::Kind::FundingApplied(_)))))
        .count();
    assert!(funding >= 5, "a funding interval passes about every other round: {funding}");

    // Tampering: a changed item, a dropped header, a header from another key.
    let validators = net.shard.genesis().validators.clone();
    let (chain, shard) = (net.domain.chain, net.domain.shard);
    let query = HistoryQuery { account: Some(taker.account()), from: HistoryPos::default(), limit: 10, prove: true };
    let page = net.shard.view().history_reader().page(&query).expect("page").expect("served");
    let verify = |p: &pb::GetHistoryResponse| verify_history_page(p, Some(&taker.account()), chain, shard, &validators);
    assert!(verify(&page).is_ok());
    let mut altered = page.clone();
    let last = altered.entries[0].item.len() - 1;
    altered.entries[0].item[last] ^= 1;
    assert!(matches!(verify(&altered), Err(ProofError::Invalid(_))));
    let mut headless = page.clone();
    headless.headers.clear();
    assert_eq!(verify(&headless), Err(ProofError::Missing));
    let mut swapped = page.clone();
    swapped.entries[0].index += 1;
    assert!(verify(&swapped).is_err(), "an entry moved to another index does not verify");
    // Someone else's receipt presented as the taker's history.
    let maker_page = net
        .shard
        .view()
        .history_reader()
        .page(&HistoryQuery { account: Some(maker.account()), ..query })
        .expect("page")
        .expect("served");
    let lone_maker_receipt = maker_page
        .entries
        .iter()
        .position(|e| {
            let r = <pb::Receipt as prost::Message>::decode(e.item.as_slice()).expect("receipt");
            !r.events.iter().any(|ev| ev.account == taker.account().0)
        })
        .expect("a maker receipt without the taker");
    let mut foreign = maker_page.clone();
    foreign.entries = vec![maker_page.entries[lone_maker_receipt].clone()];
    assert!(matches!(verify(&foreign), Err(ProofError::RecordMismatch(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_history_refuses_bad_requests_over_grpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = support::TestKeys::new(90);
    let node = support::NodeProcess::start(dir.path(), &keys.genesis(1, 1), &keys.node, &[]);
    let client = node.client().await;
    let before = client.status().await.expect("status").state_root;
    let refused = |status: tonic::Status| {
        let reason = status.metadata().get("shardex-reason").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (status.code(), reason)
    };
    let mut raw = client.raw();
    let too_many = pb::GetHistoryRequest { limit: MAX_HISTORY_ENTRIES as u32 + 1, ..Default::default() };
    let err = raw.get_history(too_many).await.expect_err("a page above the limit is refused");
    assert_eq!(refused(err), (tonic::Code::InvalidArgument, Some("MALFORMED".to_owned())));
    let short_account = pb::GetHistoryRequest { account: vec![7; 31], ..Default::default() };
    let err = raw.get_history(short_account).await.expect_err("a 31-byte account is refused");
    assert_eq!(refused(err), (tonic::Code::InvalidArgument, Some("MALFORMED".to_owned())));
    // At the limit, an empty history is a page with nothing more to read.
    let at_limit = pb::GetHistoryRequest { limit: MAX_HISTORY_ENTRIES as u32, prove: true, ..Default::default() };
    let page = raw.get_history(at_limit).await.expect("page").into_inner();
    assert!(page.entries.is_empty() && !page.more);
    assert_eq!(client.status().await.expect("status").state_root, before);
}
