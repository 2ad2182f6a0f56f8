//! `testnet demo`: a narrated workload on a running network, every shown balance proven against a
//! sequencer-signed header. Any failed step or check makes the command exit non-zero.

use std::{collections::BTreeMap, path::Path, time::Duration};

use eyre::{bail, ensure, eyre, WrapErr};
use shardex_client::{ShardClient, Wallet};
use shardex_core::{
    genesis::Genesis,
    pb::{self, tx_body::Op},
    tx::sign_tx,
    AccountId, Keypair, Reason, Usd,
};

use crate::network::{read_key, Network};

const FINAL: Duration = Duration::from_secs(30);
const USD: u64 = 1_000_000;

fn step(n: usize, text: &str) {
    println!("\n[{n}] {text}");
}

fn trader_key(dir: &Path, name: &str) -> eyre::Result<Keypair> {
    let path = dir.join("keys").join(format!("{name}.key"));
    if path.exists() {
        return read_key(&path);
    }
    let key = Keypair::generate();
    std::fs::write(&path, key.secret_hex()).wrap_err_with(|| format!("writing {}", path.display()))?;
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

/// Runs the demo against the network in `dir`.
pub async fn run(dir: &Path) -> eyre::Result<()> {
    let net = Network::load(dir)?;
    let deposit_key = read_key(&dir.join("keys").join("deposit.key"))?;
    let alice = trader_key(dir, "alice")?;
    let bob = trader_key(dir, "bob")?;
    println!("shardex demo on chain {} with {} shard(s)", net.chain_id, net.nodes.len());
    println!("  alice {}", alice.account());
    println!("  bob   {}", bob.account());

    let mut clients = Vec::new();
    for node in &net.nodes {
        let client =
            ShardClient::connect(&node.endpoint).await.wrap_err_with(|| format!("connecting to {}", node.name))?;
        let genesis = Genesis::from_toml(&std::fs::read_to_string(node.genesis_file())?)?;
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

    let (first, client, _) = clients.first().ok_or_else(|| eyre!("the network has no shards"))?;
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

    step(4, "Every balance, proven: MPT proof -> state root -> header signed by the shard's sequencers");
    for (node, client, genesis) in &clients {
        let market = client.market(false).await?;
        let totals = market.totals.unwrap_or_default();
        let mut shown_sum = 0i64;
        for (name, who) in [("alice", alice.account()), ("bob", bob.account())] {
            let v = client
                .account_proven(&who, 0, Some(&genesis.sequencers))
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
        let net_in = i128::from(totals.deposited_micros) - i128::from(totals.withdrawn_micros);
        println!(
            "    {:<14} deposits {} - withdrawals {} = {} (accounts above hold {})",
            node.name,
            Usd::from_micros(totals.deposited_micros as i64),
            Usd::from_micros(totals.withdrawn_micros as i64),
            Usd::from_micros(net_in as i64),
            Usd::from_micros(shown_sum)
        );
        ensure!(net_in >= i128::from(shown_sum), "{}: accounts hold more than entered the shard", node.name);
    }
    println!("\ndemo complete: every step succeeded and every balance verified");
    Ok(())
}
