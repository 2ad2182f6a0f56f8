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

    // Server reflection lists the Shard service.
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
    assert!(list.service.iter().any(|s| s.name == "shardex.shard.v1.ShardService"), "{list:?}");
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
