//! Real `shard-node`, `coordinator` and `relayer` processes on 127.0.0.1 ports chosen at run time, always
//! killed on drop. Shard nodes get a fixed port (picked free at start) so a restarted node keeps the
//! endpoint the coordinator and relayers were given.

#![allow(dead_code, clippy::unwrap_used)]

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use shardex_client::{BridgeClient, CoordinatorClient, ShardClient};
use shardex_core::{
    genesis::{Authorities, Genesis, Peer},
    pb,
    validators::ValidatorSet,
    AccountId, ChainId, Keypair, ShardId,
};
use shardex_test_support::{ServerProcess, ShardNodeProcess};

pub use shardex_test_support::wait_for;

/// Directory of the workspace binaries: `relayer` is this package's; `shard-node`, `coordinator` and
/// `shardex` are beside it, fresh (see `shardex_test_support::workspace_bins`).
pub fn bin_dir() -> PathBuf {
    shardex_test_support::workspace_bins(std::path::Path::new(env!("CARGO_BIN_EXE_relayer")))
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub const CHAIN: u64 = 7;
pub const USD: u64 = 1_000_000;

/// Keys of the test world.
pub fn coordinator_key() -> Keypair {
    Keypair::from_seed([0xc0; 32])
}
pub fn oracle_key() -> Keypair {
    Keypair::from_seed([0xf0; 32])
}
pub fn deposit_key() -> Keypair {
    Keypair::from_seed([0xd0; 32])
}

/// Shards of the test world; shard `s` is run by the one validator `Keypair::from_seed([s; 32])`.
pub const SHARDS: [u32; 2] = [1, 2];

/// A bridge-enabled genesis for `shard`, listing every other shard of [`SHARDS`] as a peer.
pub fn genesis(shard: u32, node: &Keypair) -> Genesis {
    let oracle = oracle_key().account();
    let authorities = Authorities { deposit: deposit_key().account(), oracle, admin: oracle };
    let mut g = Genesis::example(authorities, node.account());
    (g.chain_id, g.shard_id) = (ChainId(CHAIN), ShardId(shard));
    g.coordinator = Some(coordinator_key().account());
    g.peers = SHARDS
        .iter()
        .filter(|&&s| s != shard)
        .map(|&s| Peer {
            shard_id: ShardId(s),
            validators: ValidatorSet::equal(&[Keypair::from_seed([s as u8; 32]).account()]).unwrap(),
        })
        .collect();
    g
}

/// One shard node on a fixed port.
pub fn start_shard(dir: &Path, shard: u32) -> ShardNodeProcess {
    let key = Keypair::from_seed([shard as u8; 32]);
    let addr = format!("127.0.0.1:{}", free_port());
    ShardNodeProcess::start(
        &bin_dir().join("shard-node"),
        dir,
        &genesis(shard, &key),
        &key,
        &["--log.filter", "warn", "--rpc.addr", &addr],
    )
}

/// A coordinator following `shards`, 100 ms epochs.
pub fn start_coordinator(dir: &Path, shards: &[&ShardNodeProcess]) -> ServerProcess {
    let shards: Vec<(String, PathBuf)> = shards.iter().map(|s| (s.endpoint.clone(), s.genesis_path())).collect();
    let settings = ["--follow.max-backoff-ms", "200", "--log.filter", "warn"];
    shardex_test_support::start_coordinator(&bin_dir().join("coordinator"), dir, &coordinator_key(), &shards, &settings)
}

/// A relayer with its own key over `shards`.
pub fn start_relayer(dir: &Path, seed: u8, coordinator: &str, shards: &[&ShardNodeProcess]) -> ServerProcess {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("relayer.key"), Keypair::from_seed([seed; 32]).secret_hex()).unwrap();
    let mut args: Vec<OsString> = vec!["--node.data-dir".into(), dir.join("data").into()];
    args.extend(["--node.key-file".into(), dir.join("relayer.key").into()]);
    args.extend(["--coordinator.endpoint".into(), coordinator.into()]);
    args.extend(["--coordinator.key".into(), coordinator_key().account().to_string().into()]);
    args.extend(
        [
            "--rpc.addr",
            "127.0.0.1:0",
            "--relay.poll-interval-ms",
            "20",
            "--relay.max-backoff-ms",
            "400",
            "--relay.inflight-ms",
            "1000",
            "--follow.max-backoff-ms",
            "200",
            "--log.filter",
            "info",
        ]
        .map(OsString::from),
    );
    for s in shards {
        args.push("--shard".into());
        args.push(format!("{}={}", s.endpoint, s.genesis_path().display()).into());
    }
    ServerProcess::start(
        "relayer",
        &PathBuf::from(env!("CARGO_BIN_EXE_relayer")),
        args,
        &dir.join("data"),
        &dir.join("relayer.log"),
    )
}

pub async fn coordinator_client(p: &ServerProcess) -> CoordinatorClient {
    p.connect(|e| async move { CoordinatorClient::connect(&e).await }).await
}

pub async fn bridge_client(p: &ServerProcess) -> BridgeClient {
    p.connect(|e| async move { BridgeClient::connect(&e).await }).await
}

/// Reconnects to a shard (after a restart) until it answers.
pub async fn shard_client(p: &ShardNodeProcess) -> ShardClient {
    wait_for(Duration::from_secs(20), "shard answers", || async { ShardClient::connect(&p.endpoint).await.ok() }).await
}

/// The escrow state of message (src → dst, seq) on the source, and the receipt's height on the destination.
pub async fn message_state(src: &ShardClient, dst: &ShardClient, seq: u64) -> Option<(pb::MessageState, u64)> {
    let (s, d) = (src.domain().shard, dst.domain().shard);
    let out = src.message(d, seq, false, true, None).await.ok()?;
    let inc = dst.message(s, seq, true, true, None).await.ok()?;
    let state = pb::MessageState::try_from(out.escrow?.state).ok()?;
    Some((state, inc.receipt.map_or(0, |r| r.delivered_height)))
}

/// Collateral of `account` on `client`'s shard (0 when it has no record).
pub async fn collateral(client: &ShardClient, account: &AccountId) -> i64 {
    client.account(account).await.ok().flatten().map_or(0, |a| a.collateral_micros)
}

/// Per-shard conservation from `GetMarket`'s totals over `accounts` (every account holding money there):
/// Σ collateral − Σ entry + fee pool + insurance + funding pool + escrowed = deposited − withdrawn + in − out.
pub async fn check_conservation(client: &ShardClient, accounts: &[AccountId]) -> pb::LedgerTotalsRecord {
    let m = client.market(false).await.unwrap();
    let t = m.totals.unwrap_or_default();
    let (mut collateral, mut entry, mut escrow) = (0i128, 0i128, 0i128);
    for a in accounts {
        let p = client.position(a, false).await.unwrap();
        let acct = p.account.unwrap_or_default();
        collateral += i128::from(acct.collateral_micros);
        escrow += i128::from(acct.escrow_micros);
        entry += i128::from(p.position.unwrap_or_default().entry_notional_micros);
    }
    let lhs = collateral - entry
        + i128::from(m.fee_pool.unwrap_or_default().balance_micros)
        + i128::from(m.insurance.unwrap_or_default().balance_micros)
        + i128::from(m.funding.unwrap_or_default().pool_micros)
        + i128::from(t.escrowed_micros);
    let rhs = i128::from(t.deposited_micros) - i128::from(t.withdrawn_micros) + i128::from(t.bridged_in_micros)
        - i128::from(t.bridged_out_micros);
    assert_eq!(lhs, rhs, "shard {} does not conserve money ({t:?})", client.domain().shard);
    assert_eq!(escrow, i128::from(t.escrowed_micros), "account escrows differ from the escrowed total");
    t
}

/// Runs the `shardex` CLI; panics unless it succeeds; returns stdout.
/// Runs the `shardex` CLI, which must fail; returns what it printed.
pub fn shardex_fails(args: &[&str]) -> String {
    let out = Command::new(bin_dir().join("shardex")).args(args).output().expect("run shardex");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "shardex {args:?} succeeded: {text}");
    text
}

pub fn shardex(args: &[&str]) -> String {
    let out = Command::new(bin_dir().join("shardex")).args(args).output().expect("run shardex");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "shardex {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}
