//! `shardex transfer`: lock collateral on the `--node` shard for an account on another shard; the relayers
//! carry it over. Prints the message id (source/destination/seq) to follow with `shardex message`.

use std::path::PathBuf;

use clap::Args;
use eyre::{bail, eyre, WrapErr};
use prost::Message;
use shardex_client::{
    core::{money::parse_usd, pb, state_key::Namespace, AccountId},
    CoordinatorClient, ShardClient, Wallet,
};

/// `shardex transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Key file of the sender.
    #[arg(long, short)]
    key: PathBuf,
    /// Destination shard id.
    #[arg(long)]
    to_shard: u32,
    /// Recipient on the destination (hex public key); default: the sender's own account.
    #[arg(long)]
    to: Option<String>,
    /// Amount in USD, up to 6 decimals.
    #[arg(long)]
    amount: String,
    /// Epochs until expiry, counted from the latest epoch known (the node's latest import, or the
    /// coordinator's latest with --coordinator); past it, an undelivered transfer is refunded.
    #[arg(long, default_value_t = 14_400)]
    expiry_epochs: u64,
    /// Coordinator endpoint: count the expiry from its latest epoch.
    #[arg(long)]
    coordinator: Option<String>,
}

/// Refuses a destination the transfer could never reach: no shard (0), the source shard itself, or a shard
/// the source's genesis does not list as a bridge peer (its escrow could be neither delivered nor refunded;
/// the node would refuse it too). The peer record is read with its proof.
async fn check_destination(client: &ShardClient, to: u32) -> eyre::Result<()> {
    let here = client.domain().shard.0;
    if to == 0 || to == here {
        bail!("--to-shard {to}: the destination must be another shard than {here} (shard ids start at 1)");
    }
    let (_, peer) = client.prove(Namespace::BridgePeer, &to.to_be_bytes(), 0).await?;
    if peer.is_none() {
        bail!(
            "--to-shard {to}: shard {here}'s genesis does not list shard {to} as a bridge peer, so a transfer there \
             could be neither delivered nor refunded"
        );
    }
    Ok(())
}

/// Submits the transfer-out, waits for its block and prints the message id.
pub async fn run(client: &ShardClient, a: TransferArgs, out: crate::output::Output) -> eyre::Result<()> {
    let key = shardex_core::Keypair::read_file(&a.key)?;
    let recipient = match &a.to {
        Some(hex) => AccountId::from_hex(hex)?,
        None => key.account(),
    };
    let amount_micros = parse_usd(&a.amount).map_err(|e| eyre!(e))?;
    check_destination(client, a.to_shard).await?;
    let (_, imported) = client.prove(Namespace::ImportedCommitment, &[], 0).await?;
    let mut base = imported
        .map(|v| pb::ImportedCommitmentRecord::decode(v.as_slice()).map(|r| r.epoch))
        .transpose()
        .wrap_err("imported commitment record")?
        .unwrap_or(0);
    if let Some(endpoint) = &a.coordinator {
        let signed = CoordinatorClient::connect(endpoint).await?.latest_epoch().await?;
        let record = shardex_client::core::coordpb::EpochRecord::decode(signed.record.as_slice())?;
        base = base.max(record.number);
    }
    let expiry_epoch = base.saturating_add(a.expiry_epochs.max(1));
    let op = pb::tx_body::Op::TransferOut(pb::TransferOut {
        dst_shard: a.to_shard,
        recipient: recipient.0.to_vec(),
        amount_micros,
        expiry_epoch,
    });
    let mut wallet = Wallet::new(key, client).await?;
    let hash = wallet.submit(client, op).await?;
    let inc = client.wait_final(hash, std::time::Duration::from_secs(30)).await?;
    let locked = inc.receipt.iter().flat_map(|r| r.events.iter()).find_map(|e| match &e.kind {
        Some(pb::event::Kind::BridgeMessageChanged(c)) => Some(*c),
        _ => None,
    });
    let c = locked.ok_or_else(|| eyre!("the transfer's receipt names no message"))?;
    if out.json() {
        return crate::output::emit(&serde_json::json!({
            "tx_hash": hex::encode(hash),
            "height": inc.height,
            "message": { "src_shard": c.src_shard, "dst_shard": c.dst_shard, "seq": c.seq },
            "amount_usd": crate::output::usd_u(amount_micros),
            "recipient": recipient.to_hex(),
            "expiry_epoch": expiry_epoch,
        }));
    }
    println!("tx 0x{} final in block {}", hex::encode(hash), inc.height);
    println!(
        "message {}/{}/{} locked: {}.{:06} USD to {recipient}, expiry epoch {expiry_epoch}",
        c.src_shard,
        c.dst_shard,
        c.seq,
        amount_micros / 1_000_000,
        amount_micros % 1_000_000
    );
    Ok(())
}
