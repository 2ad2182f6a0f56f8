//! `shardex message SRC DST SEQ`: a cross-shard message on both shards (`GetMessage`, proven), read from the
//! two nodes or from a relayer's Bridge service (which also reports its lifecycle).

use clap::Args;
use eyre::bail;
use shardex_client::{
    core::{bridge::verify_message_response, pb, ShardId},
    BridgeClient, ShardClient,
};

/// `shardex message`.
#[derive(Debug, Args)]
pub struct MessageArgs {
    /// Source shard id.
    src: u32,
    /// Destination shard id.
    dst: u32,
    /// Sequence number (from 1, per destination on the source).
    seq: u64,
    /// Ask a relayer's Bridge service instead of the nodes.
    #[arg(long)]
    bridge: Option<String>,
    /// Endpoint of the other shard's node (`--node` is one of the two).
    #[arg(long)]
    peer_node: Option<String>,
}

fn show_source(r: &pb::GetMessageResponse) {
    match (&r.escrow, &r.message) {
        (Some(e), Some(m)) => println!(
            "  source (height {}): escrow {:?}, {} micro-USD for {}, expiry epoch {}, locked at {}, closed at {}",
            r.height,
            pb::MessageState::try_from(e.state).unwrap_or_default(),
            m.amount_micros,
            hex::encode(&m.account),
            m.expiry_epoch,
            e.locked_height,
            e.closed_height
        ),
        _ => println!(
            "  source (height {}): no such message (never sent, or settled and pruned after the shard's bridge \
             retention)",
            r.height
        ),
    }
}

fn show_destination(r: &pb::GetMessageResponse) {
    match &r.receipt {
        Some(rc) => println!(
            "  destination (height {}): delivered at {}, ack {}",
            r.height,
            rc.delivered_height,
            if r.ack.is_some() { "written" } else { "absent (pruned after the shard's bridge retention)" }
        ),
        None => println!("  destination (height {}): not delivered (receipt proven absent)", r.height),
    }
}

/// The source side as JSON (null fields when the source holds no such message).
fn source_json(r: &pb::GetMessageResponse) -> serde_json::Value {
    match (&r.escrow, &r.message) {
        (Some(e), Some(m)) => serde_json::json!({
            "height": r.height,
            "escrow_state": pb::MessageState::try_from(e.state).unwrap_or_default().as_str_name(),
            "amount_usd": crate::output::usd_u(m.amount_micros),
            "recipient": hex::encode(&m.account),
            "expiry_epoch": m.expiry_epoch,
            "locked_height": e.locked_height,
            "closed_height": e.closed_height,
        }),
        _ => serde_json::json!({ "height": r.height, "escrow_state": null }),
    }
}

/// The destination side as JSON.
fn destination_json(r: &pb::GetMessageResponse) -> serde_json::Value {
    serde_json::json!({
        "height": r.height,
        "delivered_height": r.receipt.as_ref().map(|rc| rc.delivered_height),
        "ack_written": r.ack.is_some(),
    })
}

/// Prints the message as both shards hold it, every record checked against its proof.
pub async fn run(node: &str, a: MessageArgs, out: crate::output::Output) -> eyre::Result<()> {
    let (src, dst) = (ShardId(a.src), ShardId(a.dst));
    if let Some(url) = &a.bridge {
        let resp = BridgeClient::connect(url).await?.message(a.src, a.dst, a.seq).await?;
        let (Some(s), Some(d)) = (&resp.source, &resp.destination) else {
            bail!("the relayer returned no shard answers")
        };
        let chain = shardex_client::core::ChainId(
            s.header
                .as_ref()
                .and_then(|h| shardex_client::core::block::decode_header(h).ok())
                .map_or(0, |h| h.header.chain_id),
        );
        verify_message_response(s, chain, src, dst, a.seq, false, None)?;
        verify_message_response(d, chain, dst, src, a.seq, true, None)?;
        let life = resp.lifecycle.unwrap_or_default();
        let stage = shardex_proto::bridge::v1::Stage::try_from(life.stage).map_or("UNKNOWN", |s| s.as_str_name());
        if out.json() {
            return crate::output::emit(&serde_json::json!({
                "message": { "src_shard": a.src, "dst_shard": a.dst, "seq": a.seq },
                "stage": stage,
                "tracked": resp.tracked,
                "attempts": life.attempts,
                "last_error": life.last_error,
                "source": source_json(s),
                "destination": destination_json(d),
                "proofs_verified": true,
            }));
        }
        println!(
            "message {}/{}/{}: {stage} (relayer {}tracking it)",
            a.src,
            a.dst,
            a.seq,
            if resp.tracked { "" } else { "not " }
        );
        if life.attempts > 0 {
            println!("  {} failed attempts, last: {}", life.attempts, life.last_error);
        }
        show_source(s);
        show_destination(d);
        return Ok(());
    }
    let Some(peer) = &a.peer_node else { bail!("give --peer-node URL (the other shard's node) or --bridge URL") };
    let (n1, n2) = (ShardClient::connect(node).await?, ShardClient::connect(peer).await?);
    let (source, destination) = match (n1.domain().shard, n2.domain().shard) {
        (s, d) if s == src && d == dst => (n1, n2),
        (d, s) if s == src && d == dst => (n2, n1),
        _ => bail!("--node and --peer-node must serve shards {src} and {dst}"),
    };
    let s = source.message(dst, a.seq, false, true, None).await?;
    let d = destination.message(src, a.seq, true, true, None).await?;
    if out.json() {
        return crate::output::emit(&serde_json::json!({
            "message": { "src_shard": a.src, "dst_shard": a.dst, "seq": a.seq },
            "source": source_json(&s),
            "destination": destination_json(&d),
            "proofs_verified": true,
        }));
    }
    println!("message {}/{}/{} (proofs verified)", a.src, a.dst, a.seq);
    show_source(&s);
    show_destination(&d);
    Ok(())
}
