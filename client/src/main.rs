//! `shardex`: the command-line client of a shardex shard node.

use std::{path::PathBuf, time::Duration};

mod events;
mod greeks;
mod history;
mod ledger;
mod message;
mod options;
mod output;
mod transfer;

use clap::{Args, Parser, Subcommand};
use eyre::{bail, eyre, WrapErr};
use output::Output;
use serde_json::json;
use shardex_client::{
    core::{
        genesis::Genesis,
        hash::b256_from_slice,
        money::parse_usd,
        option::series::SeriesId,
        order::{limit_order, market_order},
        pb,
        validators::ValidatorSet,
        AccountId, Keypair, Usd, B256,
    },
    CoordinatorClient, ShardClient, Wallet,
};

/// Command-line client of a shardex shard node.
#[derive(Debug, Parser)]
#[command(name = "shardex", version, about, long_about = None)]
struct Cli {
    /// gRPC endpoint of the shard node.
    #[arg(long, global = true, env = "SHARDEX_NODE", default_value = "http://127.0.0.1:7100")]
    node: String,
    /// How results print: readable text, or one JSON document (money as exact decimal USD strings).
    #[arg(long, global = true, env = "SHARDEX_OUTPUT", value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Key management.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Credit collateral to an account (signed by the deposit authority key).
    Deposit(DepositArgs),
    /// Withdraw free collateral from your account.
    Withdraw(WithdrawArgs),
    /// Show an account's collateral, optionally proven against a signed header.
    Account(AccountArgs),
    /// Place an order.
    Order(OrderArgs),
    /// Cancel an order by id, or every resting order with --all.
    Cancel(CancelArgs),
    /// Position, margin health and resting orders of an account.
    Positions(PositionsArgs),
    /// On an options market: the Greeks of an account's option positions, per series and summed.
    Greeks(greeks::GreeksArgs),
    /// On an options market: the chain (proven), listing series, volatility updates, settlement.
    #[command(subcommand)]
    Options(options::OptionsCmd),
    /// Order book depth.
    Book {
        /// Levels per side.
        #[arg(long, default_value_t = 10)]
        levels: u32,
    },
    /// Publish an oracle price (signed by the market's oracle key), timestamped now.
    Oracle(OracleArgs),
    /// Set the market mode (signed by the market's admin key).
    Mode(ModeArgs),
    /// Liquidate an account below maintenance margin: take over its position at the mark for a reward.
    Liquidate(LiquidateArgs),
    /// An account's proven history (fills, liquidations, collateral, orders), or the market's (funding,
    /// mode changes) with --market.
    History(history::HistoryArgs),
    /// The shard's ledger totals and pools, proven, and its conservation identity checked on them.
    Ledger(ledger::LedgerArgs),
    /// Move collateral to another shard: lock it here (the `--node` shard); relayers deliver it.
    Transfer(transfer::TransferArgs),
    /// A cross-shard message on both shards, proven (or via a relayer with --bridge).
    Message(message::MessageArgs),
    /// Show a tx's status.
    Tx {
        /// Tx hash (hex).
        hash: String,
    },
    /// Show a block.
    Block {
        /// Height.
        height: u64,
    },
    /// Show the node's status.
    Status,
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) to stdout, e.g.
    /// `shardex completions bash > /etc/bash_completion.d/shardex`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Generate a key and write its secret to a file (mode 0600).
    New {
        /// Where to write the secret.
        #[arg(long, short)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the account (public key) of a key file.
    Show {
        /// The key file.
        key: PathBuf,
    },
}

#[derive(Debug, Args)]
struct SignerArgs {
    /// Key file of the signer.
    #[arg(long, short)]
    key: PathBuf,
    /// Return once admitted instead of waiting for the tx to be final.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, Args)]
struct DepositArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// Account to credit (hex public key).
    #[arg(long)]
    to: String,
    /// Amount in USD, up to 6 decimals (e.g. 1500.25).
    #[arg(long)]
    amount: String,
}

#[derive(Debug, Args)]
struct WithdrawArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// Amount in USD, up to 6 decimals.
    #[arg(long)]
    amount: String,
}

#[derive(Debug, Args)]
struct AccountArgs {
    /// Account (hex public key), or a key file with --key.
    account: Option<String>,
    /// Read the account from a key file.
    #[arg(long, short)]
    key: Option<PathBuf>,
    /// Fetch and verify an MPT proof of the record.
    #[arg(long)]
    prove: bool,
    /// Height to read at (default: head); must be inside the node's retention window.
    #[arg(long, default_value_t = 0)]
    height: u64,
    /// Genesis file: also verify the header is certified by its validator set.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Verify up to a coordinator-signed epoch: coordinator signature → global root → shard header →
    /// state root → record (needs --prove, --genesis and --coordinator-key).
    #[arg(long, requires_all = ["prove", "genesis", "coordinator_key"])]
    global: bool,
    /// gRPC endpoint of the coordinator (with --global).
    #[arg(long, env = "SHARDEX_COORDINATOR", default_value = "http://127.0.0.1:7200")]
    coordinator: String,
    /// The coordinator public key you trust (hex), with --global.
    #[arg(long, value_name = "HEX")]
    coordinator_key: Option<String>,
    /// Epoch to verify against (default: the latest), with --global.
    #[arg(long, default_value_t = 0)]
    epoch: u64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SideArg {
    Buy,
    Sell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TifArg {
    /// Good till cancelled: the remainder rests.
    Gtc,
    /// Immediate or cancel: the remainder is cancelled.
    Ioc,
    /// Rest only; refused if it would trade.
    PostOnly,
}

#[derive(Debug, Args)]
struct OrderArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// buy or sell.
    side: SideArg,
    /// Size in lots.
    #[arg(long)]
    lots: u64,
    /// Limit price in USD (omit for a market order).
    #[arg(long)]
    price: Option<String>,
    /// Time in force of a limit order.
    #[arg(long, value_enum, default_value = "gtc")]
    tif: TifArg,
    /// Only reduce the position.
    #[arg(long)]
    reduce_only: bool,
    /// Client order id (non-zero makes placement idempotent).
    #[arg(long, default_value_t = 0)]
    client_id: u64,
    /// On an options market, the series (EXPIRY_MS:STRIKE_USD:call|put); the price is then the premium.
    #[arg(long)]
    series: Option<String>,
}

#[derive(Debug, Args)]
struct CancelArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// Order id.
    order_id: Option<u64>,
    /// Cancel every resting order.
    #[arg(long, conflicts_with = "order_id")]
    all: bool,
}

#[derive(Debug, Args)]
struct PositionsArgs {
    /// Account (hex public key), or a key file with --key.
    account: Option<String>,
    /// Read the account from a key file.
    #[arg(long, short)]
    key: Option<PathBuf>,
    /// Verify proofs of the position and collateral records.
    #[arg(long)]
    prove: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Normal,
    PostOnly,
    ReduceOnly,
    SettlementOnly,
}

#[derive(Debug, Args)]
struct ModeArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// The new mode.
    mode: ModeArg,
    /// Why (recorded in the event, at most 256 bytes).
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Debug, Args)]
struct LiquidateArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// The account to liquidate (hex public key).
    account: String,
    /// Most lots to take over (default: the whole position).
    #[arg(long, default_value_t = 0)]
    max_lots: u64,
    /// On an options market, the series whose position is taken over (EXPIRY_MS:STRIKE_USD:call|put).
    #[arg(long)]
    series: Option<String>,
}

#[derive(Debug, Args)]
struct OracleArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// Price in USD.
    #[arg(long)]
    price: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn parse_hash(s: &str) -> eyre::Result<B256> {
    let digits = s.trim().trim_start_matches("0x");
    let bytes = hex::decode(digits).wrap_err("tx hash is not hex")?;
    b256_from_slice(&bytes).ok_or_else(|| eyre!("a tx hash is 32 bytes (64 hex characters)"))
}

async fn run(cli: Cli) -> eyre::Result<()> {
    let out = cli.output;
    if let Cmd::Keys(k) = &cli.cmd {
        return keys(k, out);
    }
    if let Cmd::Completions { shell } = cli.cmd {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "shardex", &mut std::io::stdout());
        return Ok(());
    }
    if let Cmd::Message(a) = cli.cmd {
        return message::run(&cli.node, a, out).await;
    }
    let client = ShardClient::connect(&cli.node).await?;
    match cli.cmd {
        Cmd::Keys(_) | Cmd::Message(_) | Cmd::Completions { .. } => ran_without_a_node(),
        Cmd::Deposit(a) => {
            let to = AccountId::from_hex(&a.to)?;
            let amount = parse_usd(&a.amount).map_err(|e| eyre!(e))?;
            let mut wallet = Wallet::new(Keypair::read_file(&a.signer.key)?, &client).await?;
            let hash = wallet.deposit(&client, &to, amount).await?;
            report(&client, hash, a.signer.no_wait, out).await
        }
        Cmd::Withdraw(a) => {
            let amount = parse_usd(&a.amount).map_err(|e| eyre!(e))?;
            let mut wallet = Wallet::new(Keypair::read_file(&a.signer.key)?, &client).await?;
            let hash = wallet.withdraw(&client, amount).await?;
            report(&client, hash, a.signer.no_wait, out).await
        }
        Cmd::Account(a) => account(&client, a, out).await,
        Cmd::Transfer(a) => transfer::run(&client, a, out).await,
        Cmd::Order(a) => {
            let mut wallet = Wallet::new(Keypair::read_file(&a.signer.key)?, &client).await?;
            let side = match a.side {
                SideArg::Buy => pb::Side::Buy,
                SideArg::Sell => pb::Side::Sell,
            };
            let base = match &a.price {
                Some(p) => {
                    let tif = match a.tif {
                        TifArg::Gtc => pb::TimeInForce::Gtc,
                        TifArg::Ioc => pb::TimeInForce::Ioc,
                        TifArg::PostOnly => pb::TimeInForce::PostOnly,
                    };
                    limit_order(side, parse_usd(p).map_err(|e| eyre!(e))?, a.lots, tif)
                }
                None => market_order(side, a.lots),
            };
            let series = match &a.series {
                Some(s) => SeriesId::parse(s).map_err(|e| eyre!(e))?.to_bytes().to_vec(),
                None => Vec::new(),
            };
            let order = pb::PlaceOrder { reduce_only: a.reduce_only, client_order_id: a.client_id, series, ..base };
            let hash = wallet.place_order(&client, order).await?;
            report(&client, hash, a.signer.no_wait, out).await
        }
        Cmd::Cancel(a) => {
            let mut wallet = Wallet::new(Keypair::read_file(&a.signer.key)?, &client).await?;
            let hash = match (a.order_id, a.all) {
                (Some(id), false) => wallet.cancel_order(&client, id).await?,
                (None, true) => wallet.cancel_all(&client).await?,
                _ => bail!("give an order id or --all"),
            };
            report(&client, hash, a.signer.no_wait, out).await
        }
        Cmd::Positions(a) => positions(&client, a, out).await,
        Cmd::Greeks(a) => greeks::run(&client, a, out).await,
        Cmd::Options(cmd) => options::run(&client, cmd, out, |hash| report(&client, hash, false, out)).await,
        Cmd::Book { levels } => {
            let book = client.book(levels).await?;
            if out.json() {
                let side = |levels: &[pb::BookLevel]| -> Vec<serde_json::Value> {
                    levels
                        .iter()
                        .map(|l| json!({ "price_usd": output::usd_u(l.price_micros), "lots": l.total_lots, "orders": l.order_count }))
                        .collect()
                };
                return output::emit(
                    &json!({ "height": book.height, "bids": side(&book.bids), "asks": side(&book.asks) }),
                );
            }
            println!("{:>22} {:>10} {:>6}   height {}", "ASK PRICE", "LOTS", "ORDERS", book.height);
            for l in book.asks.iter().rev() {
                println!(
                    "{:>22} {:>10} {:>6}",
                    Usd::from_micros(l.price_micros as i64).to_string(),
                    l.total_lots,
                    l.order_count
                );
            }
            println!("{:-<42}", "");
            for l in &book.bids {
                println!(
                    "{:>22} {:>10} {:>6}",
                    Usd::from_micros(l.price_micros as i64).to_string(),
                    l.total_lots,
                    l.order_count
                );
            }
            println!("{:>22} {:>10} {:>6}", "BID PRICE", "LOTS", "ORDERS");
            Ok(())
        }
        Cmd::Mode(a) => {
            let mode = match a.mode {
                ModeArg::Normal => pb::MarketMode::Normal,
                ModeArg::PostOnly => pb::MarketMode::PostOnly,
                ModeArg::ReduceOnly => pb::MarketMode::ReduceOnly,
                ModeArg::SettlementOnly => pb::MarketMode::SettlementOnly,
            };
            let mut wallet = Wallet::new(Keypair::read_file(&a.signer.key)?, &client).await?;
            let op = pb::tx_body::Op::SetMarketMode(pb::SetMarketMode { mode: mode as i32, reason: a.reason });
            let hash = wallet.submit(&client, op).await?;
            report(&client, hash, a.signer.no_wait, out).await
        }
        Cmd::Liquidate(a) => {
            let target = AccountId::from_hex(&a.account)?;
            let mut wallet = Wallet::new(Keypair::read_file(&a.signer.key)?, &client).await?;
            let hash = match &a.series {
                Some(s) => {
                    let series = SeriesId::parse(s).map_err(|e| eyre!(e))?.to_bytes().to_vec();
                    let op = pb::Liquidate { account: target.0.to_vec(), max_size_lots: a.max_lots, series };
                    wallet.submit(&client, pb::tx_body::Op::Liquidate(op)).await?
                }
                None => wallet.liquidate(&client, &target, a.max_lots).await?,
            };
            report(&client, hash, a.signer.no_wait, out).await
        }
        Cmd::Oracle(a) => {
            let price = parse_usd(&a.price).map_err(|e| eyre!(e))?;
            let mut wallet = Wallet::new(Keypair::read_file(&a.signer.key)?, &client).await?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
            let hash = wallet.oracle_update(&client, price, now).await?;
            report(&client, hash, a.signer.no_wait, out).await
        }
        Cmd::History(a) => history::run(&client, a, out).await,
        Cmd::Ledger(a) => ledger::run(&client, a, out).await,
        Cmd::Tx { hash } => {
            let status = client.tx_status(parse_hash(&hash)?).await?;
            if out.json() {
                return output::emit(&output::tx_status(&status));
            }
            print_status(&status);
            Ok(())
        }
        Cmd::Block { height } => {
            let block = client.block(height).await?;
            let fh = block.header.as_ref().ok_or_else(|| eyre!("block without header"))?;
            let d = shardex_client::core::block::decode_header(fh)?;
            if out.json() {
                let h = &d.header;
                let receipts: Vec<serde_json::Value> = block
                    .receipts
                    .iter()
                    .map(|r| {
                        json!({
                            "index": r.index,
                            "tx_hash": hex::encode(&r.tx_hash),
                            "gas_used": r.gas_used,
                            "events": r.events.iter().map(output::event).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                return output::emit(&json!({
                    "height": h.height,
                    "hash": hex::encode(d.hash),
                    "parent_hash": hex::encode(&h.parent_hash),
                    "timestamp_ms": h.timestamp_ms,
                    "state_root": hex::encode(&h.state_root),
                    "tx_root": hex::encode(&h.tx_root),
                    "receipts_root": hex::encode(&h.receipts_root),
                    "events_root": hex::encode(&h.events_root),
                    "proposer": hex::encode(&h.proposer),
                    "gas_used": h.gas_used,
                    "round": fh.round,
                    "signatures": fh.signatures.len(),
                    "txs": block.txs.len(),
                    "receipts": receipts,
                    "block_events": block.block_events.iter().map(output::event).collect::<Vec<_>>(),
                }));
            }
            println!("height       {}", d.header.height);
            println!("hash         0x{}", hex::encode(d.hash));
            println!("parent       0x{}", hex::encode(&d.header.parent_hash));
            println!("timestamp_ms {}", d.header.timestamp_ms);
            println!("state_root   0x{}", hex::encode(&d.header.state_root));
            println!("tx_root      0x{}", hex::encode(&d.header.tx_root));
            println!("gas_used     {}", d.header.gas_used);
            println!("signatures   {}", fh.signatures.len());
            println!("txs          {}", block.txs.len());
            println!("block events {}", block.block_events.len());
            for r in &block.receipts {
                println!("  #{:<4} 0x{} gas {}", r.index, hex::encode(&r.tx_hash), r.gas_used);
            }
            Ok(())
        }
        Cmd::Status => {
            let s = client.status().await?;
            if out.json() {
                return output::emit(&json!({
                    "chain_id": s.chain_id,
                    "shard_id": s.shard_id,
                    "symbol": s.symbol,
                    "height": s.height,
                    "state_root": hex::encode(&s.state_root),
                    "block_hash": hex::encode(&s.block_hash),
                    "mempool_txs": s.mempool_txs,
                    "oldest_provable_height": s.oldest_provable_height,
                    "node_key": hex::encode(&s.node_key),
                    "role": s.role,
                    "consensus_engine": s.consensus_engine,
                    "consensus_height": s.consensus_height,
                    "consensus_round": s.consensus_round,
                    "proposer": hex::encode(&s.proposer),
                    "round_changes": s.round_changes,
                    "validators": s.validators,
                }));
            }
            println!("chain {} shard {} ({})", s.chain_id, s.shard_id, s.symbol);
            println!("height      {}", s.height);
            println!("state_root  0x{}", hex::encode(&s.state_root));
            println!("block_hash  0x{}", hex::encode(&s.block_hash));
            println!("mempool     {} txs", s.mempool_txs);
            println!("provable    heights {}..={}", s.oldest_provable_height, s.height);
            println!("node key    {}", hex::encode(&s.node_key));
            match s.consensus_engine.as_str() {
                "malachite" => {
                    let role =
                        if s.proposer == s.node_key { "this node proposes" } else { "another validator proposes" };
                    println!(
                        "consensus   malachite, {} validators: height {} round {}, {role} ({})",
                        s.validators,
                        s.consensus_height,
                        s.consensus_round,
                        hex::encode(&s.proposer)
                    );
                    println!("            {} round change(s) since this node started", s.round_changes);
                }
                _ => println!("consensus   solo (this node alone finalizes blocks)"),
            }
            Ok(())
        }
    }
}

fn ran_without_a_node() -> eyre::Result<()> {
    bail!("this command runs without a node")
}

fn keys(cmd: &KeysCmd, output: Output) -> eyre::Result<()> {
    let account = match cmd {
        KeysCmd::New { out, force } => {
            if out.exists() && !force {
                bail!("{} exists; pass --force to overwrite", out.display());
            }
            let key = Keypair::generate();
            key.write_file(out).wrap_err_with(|| format!("writing {}", out.display()))?;
            key.account()
        }
        KeysCmd::Show { key } => Keypair::read_file(key)?.account(),
    };
    if output.json() {
        return output::emit(&json!({ "account": account.to_hex() }));
    }
    println!("{account}");
    Ok(())
}

async fn report(client: &ShardClient, hash: B256, no_wait: bool, out: Output) -> eyre::Result<()> {
    if out.json() {
        if no_wait {
            return output::emit(&json!({ "tx_hash": hex::encode(hash), "status": "admitted" }));
        }
        let included = client.wait_final(hash, Duration::from_secs(30)).await?;
        let status = pb::TxStatus { tx_hash: hash.to_vec(), status: Some(pb::tx_status::Status::Included(included)) };
        return output::emit(&output::tx_status(&status));
    }
    println!("tx 0x{} admitted", hex::encode(hash));
    if no_wait {
        return Ok(());
    }
    let inc = client.wait_final(hash, Duration::from_secs(30)).await?;
    println!("final in block {} at index {}", inc.height, inc.index);
    if let Some(r) = inc.receipt {
        for e in &r.events {
            if let Some(line) = events::describe(e) {
                println!("  {line}");
            }
        }
    }
    Ok(())
}

/// The account a command names: a hex account id or `--key FILE`, exactly one of them.
fn account_arg(account: Option<&str>, key: Option<&std::path::Path>) -> eyre::Result<AccountId> {
    match (account, key) {
        (Some(hex), None) => Ok(AccountId::from_hex(hex)?),
        (None, Some(path)) => Ok(Keypair::read_file(path)?.account()),
        _ => bail!("give an account id or --key FILE (one of them)"),
    }
}

async fn account(client: &ShardClient, a: AccountArgs, out: Output) -> eyre::Result<()> {
    let account = account_arg(a.account.as_deref(), a.key.as_deref())?;
    if !a.prove && a.genesis.is_none() && a.height == 0 {
        let rec = client.account(&account).await?;
        if out.json() {
            return output::emit(
                &json!({ "account": account.to_hex(), "record": output::account_record(rec.as_ref()) }),
            );
        }
        print_account(&account, rec.as_ref());
        return Ok(());
    }
    let validators = match &a.genesis {
        Some(path) => Some(Genesis::read_file(path)?.validators),
        None => None,
    };
    if a.global {
        let validators =
            validators.ok_or_else(|| eyre!("--global needs --genesis FILE (the shard's validator set)"))?;
        return account_global(client, &account, &a, &validators, out).await;
    }
    let v = client.account_proven(&account, a.height, validators.as_ref()).await?;
    if out.json() {
        return output::emit(&json!({
            "account": account.to_hex(),
            "record": output::account_record(v.record.as_ref()),
            "proof": {
                "height": v.height,
                "state_root": hex::encode(v.state_root),
                "header_certified_by_genesis_validators": v.header_checked,
            },
        }));
    }
    print_account(&account, v.record.as_ref());
    println!("proof       verified against state root 0x{} at height {}", hex::encode(v.state_root), v.height);
    if v.header_checked {
        println!("header      certified by the genesis validator set");
    }
    Ok(())
}

async fn account_global(
    client: &ShardClient,
    account: &AccountId,
    a: &AccountArgs,
    validators: &ValidatorSet,
    out: Output,
) -> eyre::Result<()> {
    let key_hex = a.coordinator_key.as_deref().ok_or_else(|| eyre!("--global needs --coordinator-key"))?;
    let coordinator_key = AccountId::from_hex(key_hex).wrap_err("--coordinator-key")?;
    let coordinator = CoordinatorClient::connect(&a.coordinator).await?;
    let v = client.account_global(&coordinator, &coordinator_key, a.epoch, account, validators).await?;
    if out.json() {
        return output::emit(&json!({
            "account": account.to_hex(),
            "record": output::account_record(v.record.as_ref()),
            "proof": {
                "height": v.entry.height,
                "state_root": hex::encode(v.state_root),
                "block_hash": hex::encode(v.block_hash),
                "header_certified_by_genesis_validators": true,
                "epoch": v.epoch.record.number,
                "epoch_hash": hex::encode(v.epoch.hash),
                "global_root": hex::encode(v.epoch.global_root),
                "coordinator": coordinator_key.to_hex(),
            },
        }));
    }
    print_account(account, v.record.as_ref());
    println!("proof       verified against state root 0x{} at height {}", hex::encode(v.state_root), v.entry.height);
    println!("header      0x{} certified by the genesis validator set", hex::encode(v.block_hash));
    println!(
        "global      shard {} entry proven under global root 0x{} of epoch {}",
        v.entry.shard_id,
        hex::encode(v.epoch.global_root),
        v.epoch.record.number
    );
    println!(
        "epoch       {} (hash 0x{}, time {} ms) signed by coordinator {coordinator_key}",
        v.epoch.record.number,
        hex::encode(v.epoch.hash),
        v.epoch.record.time_ms
    );
    Ok(())
}

async fn positions(client: &ShardClient, a: PositionsArgs, out: Output) -> eyre::Result<()> {
    let account = account_arg(a.account.as_deref(), a.key.as_deref())?;
    let p = client.position(&account, a.prove).await?;
    if out.json() {
        let pos = p.position.unwrap_or_default();
        let health = p.health.map(|h| {
            json!({
                "mark_usd": output::usd_u(h.mark_price_micros),
                "equity_usd": output::usd(h.equity_micros),
                "unrealized_pnl_usd": output::usd(h.unrealized_pnl_micros),
                "initial_required_usd": output::usd(h.initial_required_micros),
                "maintenance_required_usd": output::usd(h.maintenance_required_micros),
                "free_collateral_usd": output::usd(h.free_collateral_micros),
                "liquidation_price_usd": (h.liquidation_price_micros > 0).then(|| output::usd_u(h.liquidation_price_micros)),
                "liquidatable": h.liquidatable,
            })
        });
        let orders: Vec<serde_json::Value> = client
            .open_orders(&account)
            .await?
            .iter()
            .map(|o| {
                json!({
                    "order_id": o.order_id,
                    "side": if o.is_buy { "buy" } else { "sell" },
                    "remaining_lots": o.remaining_lots,
                    "price_usd": output::usd_u(o.price_micros),
                    "client_order_id": o.client_order_id,
                })
            })
            .collect();
        return output::emit(&json!({
            "account": account.to_hex(),
            "height": p.height,
            "collateral_usd": output::usd(p.account.as_ref().map_or(0, |r| r.collateral_micros)),
            "position_lots": pos.size_lots,
            "entry_notional_usd": output::usd(pos.entry_notional_micros),
            "health": health,
            "orders": orders,
            "proven_against_state_root": a.prove.then(|| hex::encode(&p.state_root)),
        }));
    }
    let usd = |m: i64| Usd::from_micros(m).to_string();
    let pos = p.position.unwrap_or_default();
    println!("account      {account}  (height {})", p.height);
    println!("collateral   {}", usd(p.account.map_or(0, |r| r.collateral_micros)));
    println!("position     {} lots, entry notional {}", pos.size_lots, usd(pos.entry_notional_micros));
    match p.health {
        Some(h) => {
            println!("mark         {}", usd(h.mark_price_micros as i64));
            println!("equity       {}  (unrealized {})", usd(h.equity_micros), usd(h.unrealized_pnl_micros));
            println!(
                "margin       initial {}  maintenance {}",
                usd(h.initial_required_micros),
                usd(h.maintenance_required_micros)
            );
            println!("free         {}", usd(h.free_collateral_micros));
            if h.liquidation_price_micros > 0 {
                println!(
                    "liquidation  {}{}",
                    usd(h.liquidation_price_micros as i64),
                    if h.liquidatable { "  LIQUIDATABLE" } else { "" }
                );
            }
        }
        None => println!("health       no oracle price yet"),
    }
    for o in client.open_orders(&account).await? {
        let side = if o.is_buy { "buy " } else { "sell" };
        println!("order #{:<6} {side} {} lots @ {}", o.order_id, o.remaining_lots, usd(o.price_micros as i64));
    }
    if a.prove {
        println!(
            "proof        position and collateral records verified against state root 0x{}",
            hex::encode(&p.state_root)
        );
    }
    Ok(())
}

fn print_account(account: &AccountId, rec: Option<&pb::AccountRecord>) {
    println!("account     {account}");
    match rec {
        Some(r) => {
            println!("collateral  {}", Usd::from_micros(r.collateral_micros));
            println!("escrow      {}", Usd::from_micros(i64::try_from(r.escrow_micros).unwrap_or(i64::MAX)));
            println!(
                "nonces      {} used, highest {}",
                r.nonces.len(),
                r.nonces.last().map_or("-".into(), |n| n.to_string())
            );
        }
        None => println!("collateral  none (no record)"),
    }
}

fn print_status(s: &pb::TxStatus) {
    use pb::tx_status::Status as S;
    match &s.status {
        Some(S::Included(i)) => println!("included in block {} at index {}", i.height, i.index),
        Some(S::Pending(_)) => println!("pending in the mempool"),
        Some(S::Rejected(r)) => println!("rejected: {} {}", r.reason, r.message),
        Some(S::Unknown(_)) | None => println!("unknown to this node"),
    }
}
