//! `shardex history`: an account's or the market's history, every entry proven against a header signed by
//! the genesis sequencer set.

use std::path::PathBuf;

use clap::Args;
use eyre::bail;
use shardex_client::{
    core::{genesis::Genesis, history::HistoryItem, AccountId},
    HistoryPos, ShardClient,
};

use crate::events::describe;

/// `shardex history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Account (hex public key), or a key file with --key.
    account: Option<String>,
    /// Read the account from a key file.
    #[arg(long, short)]
    key: Option<PathBuf>,
    /// The market's begin-block events (funding, rule-driven mode changes) instead of an account's.
    #[arg(long)]
    market: bool,
    /// Genesis file of the shard: its validator set certifies the headers the entries are proven against.
    #[arg(long)]
    genesis: PathBuf,
    /// First height to show.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Most entries to show.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

/// Prints up to `limit` proven entries, fetching as many pages as needed.
pub async fn run(client: &ShardClient, a: HistoryArgs, out: crate::output::Output) -> eyre::Result<()> {
    let account = match (&a.account, &a.key, a.market) {
        (Some(hex), None, false) => Some(AccountId::from_hex(hex)?),
        (None, Some(path), false) => Some(shardex_core::Keypair::read_file(path)?.account()),
        (None, None, true) => None,
        _ => bail!("give one of: an account id, --key FILE, --market"),
    };
    let validators = Genesis::read_file(&a.genesis)?.validators;

    let mut from = HistoryPos { height: a.from, index: 0 };
    let (mut shown, mut head) = (0usize, 0u64);
    let mut entries = Vec::new();
    while shown < a.limit {
        let want = u32::try_from(a.limit - shown).unwrap_or(u32::MAX).min(256);
        let page = client.history(account.as_ref(), from, want, &validators).await?;
        head = page.head_height;
        for item in &page.items {
            if out.json() {
                entries.push(item_json(item, account.as_ref()));
            } else {
                print_item(item, account.as_ref());
            }
        }
        shown += page.items.len();
        match page.next {
            Some(next) if !page.items.is_empty() => from = next,
            _ => break,
        }
    }
    if out.json() {
        return crate::output::emit(&serde_json::json!({
            "head_height": head,
            "entries": entries,
            "proven": "each entry against a header certified by the genesis validator set",
        }));
    }
    println!(
        "{shown} entries up to height {head}, each proven against a header certified by the genesis validator set"
    );
    Ok(())
}

/// One entry as JSON: a receipt's events that touch `account`, or a market event.
fn item_json(item: &HistoryItem, account: Option<&AccountId>) -> serde_json::Value {
    use crate::output::event;
    match item {
        HistoryItem::Receipt { height, timestamp_ms, receipt } => serde_json::json!({
            "height": height,
            "timestamp_ms": timestamp_ms,
            "tx_hash": hex::encode(&receipt.tx_hash),
            "events": receipt
                .events
                .iter()
                .filter(|e| account.is_some_and(|a| e.account == a.0))
                .map(event)
                .collect::<Vec<_>>(),
        }),
        HistoryItem::Market { height, timestamp_ms, event: e, .. } => {
            serde_json::json!({ "height": height, "timestamp_ms": timestamp_ms, "event": event(e) })
        }
    }
}

fn print_item(item: &HistoryItem, account: Option<&AccountId>) {
    match item {
        HistoryItem::Receipt { height, timestamp_ms, receipt } => {
            println!("height {height} (t {timestamp_ms}) tx 0x{}", hex::encode(&receipt.tx_hash));
            // The account's own events; the counterparties' sides of the same tx are in `shardex tx`.
            for event in receipt.events.iter().filter(|e| account.is_some_and(|a| e.account == a.0)) {
                if let Some(line) = describe(event) {
                    println!("  {line}");
                }
            }
        }
        HistoryItem::Market { height, timestamp_ms, event, .. } => {
            if let Some(line) = describe(event) {
                println!("height {height} (t {timestamp_ms}) {line}");
            }
        }
    }
}
