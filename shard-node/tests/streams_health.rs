//! Against a real `shard-node`: the header stream catches up from genesis then follows live blocks in
//! order; the account event stream delivers exactly the account's events; health and reflection answer.

mod support;

use std::time::Duration;

use shardex_client::Wallet;
use shardex_core::{block::verify_finalized, pb};
use support::{account, NodeProcess, TestKeys};
use tokio_stream::StreamExt;

const USD: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_event_streams_health_and_reflection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(40);
    let genesis = keys.genesis(9, 1);
    let node = NodeProcess::start(dir.path(), &genesis, &keys.node, &[]);
    let client = node.client().await;
    let (_, alice) = account(41);
    let (_, bob) = account(42);
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");

    // Two blocks before anyone subscribes.
    for to in [alice, bob] {
        let h = authority.deposit(&client, &to, USD).await.expect("deposit");
        client.wait_final(h, Duration::from_secs(10)).await.expect("final");
    }

    let mut headers =
        client.raw().stream_headers(pb::StreamHeadersRequest { from_height: 0 }).await.expect("stream").into_inner();
    let mut events = client
        .raw()
        .stream_account_events(pb::StreamAccountEventsRequest { account: alice.0.to_vec() })
        .await
        .expect("events")
        .into_inner();
    // Give the event subscription time to attach before new blocks commit.
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Three more blocks: alice, bob, alice.
    for (to, usd) in [(alice, 2), (bob, 3), (alice, 4)] {
        let h = authority.deposit(&client, &to, usd * USD).await.expect("deposit");
        client.wait_final(h, Duration::from_secs(10)).await.expect("final");
    }

    let mut heights = Vec::new();
    while heights.len() < 6 {
        let fh = tokio::time::timeout(Duration::from_secs(10), headers.next())
            .await
            .expect("header in time")
            .expect("open")
            .expect("ok");
        let d = if heights.is_empty() {
            shardex_core::block::decode_header(&fh).expect("genesis decodes")
        } else {
            verify_finalized(&fh, genesis.chain_id, genesis.shard_id, &genesis.validators).expect("signed")
        };
        heights.push(d.header.height);
    }
    assert_eq!(heights, vec![0, 1, 2, 3, 4, 5], "headers in order without gaps");

    let mut deltas = Vec::new();
    while deltas.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("event in time")
            .expect("open")
            .expect("ok");
        let Some(pb::Event { account, kind: Some(pb::event::Kind::CollateralChanged(c)) }) = ev.event else {
            panic!("bad event")
        };
        assert_eq!(account, alice.0.to_vec());
        deltas.push((ev.height, c.delta_micros, c.balance_micros));
    }
    assert_eq!(deltas, vec![(3, 2 * USD as i64, 3 * USD as i64), (5, 4 * USD as i64, 7 * USD as i64)]);

    // Standard health service.
    let channel =
        tonic::transport::Endpoint::from_shared(node.endpoint.clone()).expect("uri").connect().await.expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest { service: "shardex.shard.v1.ShardService".into() })
        .await
        .expect("health");
    assert_eq!(resp.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    // Server reflection lists what this server serves: the Shard service, health and reflection, and not the
    // coordinator's or the relayer's services, whose descriptors it also holds.
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse, ServerReflectionRequest,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = reflection.server_reflection_info(tokio_stream::iter([req])).await.expect("reflection").into_inner();
    let first = resp.next().await.expect("answer").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("unexpected reflection answer")
    };
    let mut names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let served = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "shardex.shard.v1.ShardService"];
    assert_eq!(names, served, "{list:?}");
}

/// Opens an account-event stream, returning the status when the server refuses it.
async fn open_events(
    client: &shardex_client::ShardClient,
    who: shardex_core::AccountId,
) -> Result<tonic::Streaming<pb::AccountEvent>, tonic::Status> {
    client
        .raw()
        .stream_account_events(pb::StreamAccountEventsRequest { account: who.0.to_vec() })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_slots_are_released_by_gone_clients_idle_streams_end_and_far_starts_are_refused() {
    let (_, quiet) = account(43);

    // Two slots, no idle limit to speak of: only a gone client can free one.
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = TestKeys::new(44);
        let genesis = keys.genesis(9, 1);
        let node = NodeProcess::start(dir.path(), &genesis, &keys.node, &["--rpc.max-subscribers", "2"]);
        let client = node.client().await;
        let first = open_events(&client, quiet).await.expect("first slot");
        let second = open_events(&client, quiet).await.expect("second slot");
        let refused = open_events(&client, quiet).await.expect_err("no third slot");
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
        assert_eq!(refused.metadata().get("shardex-reason").and_then(|v| v.to_str().ok()), Some("UNAVAILABLE"));

        // The account never has an event, so nothing is ever sent on these streams: the server must notice the
        // clients leaving without a failed send.
        drop(first);
        drop(second);
        let reopened = shardex_test_support::wait_for(Duration::from_secs(5), "a freed stream slot", || async {
            open_events(&client, quiet).await.ok()
        })
        .await;
        drop(reopened);
    }

    // A one-second idle limit; starts beyond head + 1000 are refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(45);
    let genesis = keys.genesis(9, 1);
    let node = NodeProcess::start(dir.path(), &genesis, &keys.node, &["--rpc.stream-idle-ms", "1000"]);
    let client = node.client().await;
    let mut quiet_stream = open_events(&client, quiet).await.expect("open");
    let end = tokio::time::timeout(Duration::from_secs(5), quiet_stream.next())
        .await
        .expect("the idle stream ends in time")
        .expect("a final status")
        .expect_err("an error status");
    assert_eq!(end.code(), tonic::Code::Unavailable, "{end:?}");
    assert!(end.message().contains("resubscribe"), "{end:?}");

    let far = client
        .raw()
        .stream_headers(pb::StreamHeadersRequest { from_height: 10_000 })
        .await
        .expect_err("a start 10000 blocks ahead is refused");
    assert_eq!(far.code(), tonic::Code::NotFound, "{far:?}");
    // Within the allowed lead the stream opens and waits.
    client.raw().stream_headers(pb::StreamHeadersRequest { from_height: 500 }).await.expect("a near-future start");
}

/// The account-event stream of `who` over a connection with a 1 KiB HTTP/2 stream window: when the client
/// stops reading, the node's buffer for the stream fills after a handful of items instead of after megabytes.
async fn small_window_events(endpoint: &str, who: shardex_core::AccountId) -> tonic::Streaming<pb::AccountEvent> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .expect("uri")
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .expect("connect");
    shardex_proto::shard::v1::shard_service_client::ShardServiceClient::new(channel)
        .stream_account_events(pb::StreamAccountEventsRequest { account: who.0.to_vec() })
        .await
        .expect("events")
        .into_inner()
}

/// Deposits `count` × 1 µUSD to `to`, eight at a time (the test genesis's nonce window), waiting for each
/// group to be final; returns the height of the last.
async fn deposits(
    client: &shardex_client::ShardClient,
    authority: &mut Wallet,
    to: shardex_core::AccountId,
    count: usize,
) -> u64 {
    let mut last = 0;
    for group in (0..count).collect::<Vec<_>>().chunks(8) {
        let mut hash = None;
        for _ in group {
            hash = Some(authority.deposit(client, &to, 1).await.expect("deposit"));
        }
        if let Some(h) = hash {
            last = client.wait_final(h, Duration::from_secs(10)).await.expect("final").height;
        }
    }
    last
}

/// Collects a stream's items until it ends or errs.
async fn drain<T>(stream: &mut tonic::Streaming<T>) -> (Vec<T>, Option<tonic::Status>) {
    let mut items = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("stream answers in time") {
            Some(Ok(item)) => items.push(item),
            Some(Err(status)) => return (items, Some(status)),
            None => return (items, None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_is_dropped_and_a_lagging_one_misses_nothing() {
    let (_, alice) = account(46);
    let (_, bob) = account(47);

    // A client that pauses while its stream task is pushed past the broadcast of committed blocks (64) still
    // gets every event, in order: the task reads what it missed from storage.
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = TestKeys::new(48);
        let genesis = keys.genesis(9, 1);
        let node = NodeProcess::start(dir.path(), &genesis, &keys.node, &["--rpc.stream-stall-ms", "60000"]);
        let client = node.client().await;
        let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
        let mut paused = small_window_events(node.endpoint(), alice).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // 96 events fill the task's buffer and the window; 80 more blocks lap the broadcast meanwhile.
        deposits(&client, &mut authority, alice, 96).await;
        for _ in 0..80 {
            deposits(&client, &mut authority, bob, 1).await;
        }
        deposits(&client, &mut authority, alice, 4).await;
        let mut got = Vec::new();
        while got.len() < 100 {
            let ev = tokio::time::timeout(Duration::from_secs(10), paused.next())
                .await
                .expect("event in time")
                .expect("open")
                .expect("no error: the lag was made good from storage");
            let Some(pb::event::Kind::CollateralChanged(c)) = ev.event.and_then(|e| e.kind) else {
                panic!("bad event")
            };
            got.push(c.balance_micros);
        }
        assert_eq!(got, (1..=100).collect::<Vec<i64>>(), "every deposit once, in order");
    }

    // A client that never reads is dropped after the stall limit with SLOW_CONSUMER, having been sent only what
    // its buffer holds.
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(49);
    let genesis = keys.genesis(9, 1);
    let node = NodeProcess::start(dir.path(), &genesis, &keys.node, &["--rpc.stream-stall-ms", "300"]);
    let client = node.client().await;
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    let mut stalled = small_window_events(node.endpoint(), alice).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    deposits(&client, &mut authority, alice, 160).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (items, end) = drain(&mut stalled).await;
    let end = end.expect("the stream ends with a status");
    assert_eq!(end.code(), tonic::Code::ResourceExhausted, "{end:?}");
    assert_eq!(end.metadata().get("shardex-reason").and_then(|v| v.to_str().ok()), Some("SLOW_CONSUMER"));
    assert!((64..160).contains(&items.len()), "{} events before the drop", items.len());
    // The node still serves everyone else.
    client.status().await.expect("status");
}
