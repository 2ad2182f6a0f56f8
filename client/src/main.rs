//! `shardex`: the command-line client of a shardex shard node.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use eyre::{bail, eyre, WrapErr};
use shardex_client::{
    core::{genesis::Genesis, hash::b256_from_slice, money::parse_usd, pb, AccountId, Keypair, Usd, B256},
    ShardClient, Wallet,
};

/// Command-line client of a shardex shard node.
#[derive(Debug, Parser)]
#[command(name = "shardex", version, about, long_about = None)]
struct Cli {
    /// gRPC endpoint of the shard node.
    #[arg(long, global = true, env = "SHARDEX_NODE", default_value = "http://127.0.0.1:7100")]
    node: String,
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
    /// Genesis file: also verify the header is signed by its sequencer set.
    #[arg(long)]
    genesis: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn read_key(path: &PathBuf) -> eyre::Result<Keypair> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading key file {}", path.display()))?;
    Keypair::from_secret_hex(&text).wrap_err_with(|| format!("key file {}", path.display()))
}

fn parse_hash(s: &str) -> eyre::Result<B256> {
    let digits = s.trim().trim_start_matches("0x");
    let bytes = hex::decode(digits).wrap_err("tx hash is not hex")?;
    b256_from_slice(&bytes).ok_or_else(|| eyre!("a tx hash is 32 bytes (64 hex characters)"))
}

async fn run(cli: Cli) -> eyre::Result<()> {
    if let Cmd::Keys(k) = &cli.cmd {
        return keys(k);
    }
    let client = ShardClient::connect(&cli.node).await?;
    match cli.cmd {
        Cmd::Keys(_) => unreachable_keys(),
        Cmd::Deposit(a) => {
            let to = AccountId::from_hex(&a.to)?;
            let amount = parse_usd(&a.amount).map_err(|e| eyre!(e))?;
            let mut wallet = Wallet::new(read_key(&a.signer.key)?, &client).await?;
            let hash = wallet.deposit(&client, &to, amount).await?;
            report(&client, hash, a.signer.no_wait).await
        }
        Cmd::Withdraw(a) => {
            let amount = parse_usd(&a.amount).map_err(|e| eyre!(e))?;
            let mut wallet = Wallet::new(read_key(&a.signer.key)?, &client).await?;
            let hash = wallet.withdraw(&client, amount).await?;
            report(&client, hash, a.signer.no_wait).await
        }
        Cmd::Account(a) => account(&client, a).await,
        Cmd::Tx { hash } => {
            let status = client.tx_status(parse_hash(&hash)?).await?;
            print_status(&status);
            Ok(())
        }
        Cmd::Block { height } => {
            let block = client.block(height).await?;
            let fh = block.header.as_ref().ok_or_else(|| eyre!("block without header"))?;
            let d = shardex_client::core::block::decode_header(fh)?;
            println!("height       {}", d.header.height);
            println!("hash         0x{}", hex::encode(d.hash));
            println!("parent       0x{}", hex::encode(&d.header.parent_hash));
            println!("timestamp_ms {}", d.header.timestamp_ms);
            println!("state_root   0x{}", hex::encode(&d.header.state_root));
            println!("tx_root      0x{}", hex::encode(&d.header.tx_root));
            println!("gas_used     {}", d.header.gas_used);
            println!("signatures   {}", fh.signatures.len());
            println!("txs          {}", block.txs.len());
            for r in &block.receipts {
                println!("  #{:<4} 0x{} gas {}", r.index, hex::encode(&r.tx_hash), r.gas_used);
            }
            Ok(())
        }
        Cmd::Status => {
            let s = client.status().await?;
            println!("chain {} shard {} ({})", s.chain_id, s.shard_id, s.symbol);
            println!("height      {}", s.height);
            println!("state_root  0x{}", hex::encode(&s.state_root));
            println!("block_hash  0x{}", hex::encode(&s.block_hash));
            println!("mempool     {} txs", s.mempool_txs);
            println!("provable    heights {}..={}", s.oldest_provable_height, s.height);
            println!("node key    {}", hex::encode(&s.node_key));
            Ok(())
        }
    }
}

fn unreachable_keys() -> eyre::Result<()> {
    bail!("keys commands run without a node")
}

fn keys(cmd: &KeysCmd) -> eyre::Result<()> {
    match cmd {
        KeysCmd::New { out, force } => {
            if out.exists() && !force {
                bail!("{} exists; pass --force to overwrite", out.display());
            }
            let key = Keypair::generate();
            write_secret(out, &key.secret_hex())?;
            println!("{}", key.account());
            Ok(())
        }
        KeysCmd::Show { key } => {
            println!("{}", read_key(key)?.account());
            Ok(())
        }
    }
}

fn write_secret(path: &PathBuf, secret: &str) -> eyre::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).wrap_err_with(|| format!("creating {}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    Ok(())
}

async fn report(client: &ShardClient, hash: B256, no_wait: bool) -> eyre::Result<()> {
    println!("tx 0x{} admitted", hex::encode(hash));
    if no_wait {
        return Ok(());
    }
    let inc = client.wait_final(hash, Duration::from_secs(30)).await?;
    println!("final in block {} at index {}", inc.height, inc.index);
    if let Some(r) = inc.receipt {
        for e in r.events {
            if let Some(pb::event::Kind::CollateralChanged(c)) = e.kind {
                println!(
                    "  {} collateral {:+} -> {}",
                    hex::encode(&e.account),
                    Usd::from_micros(c.delta_micros),
                    Usd::from_micros(c.balance_micros)
                );
            }
        }
    }
    Ok(())
}

async fn account(client: &ShardClient, a: AccountArgs) -> eyre::Result<()> {
    let account = match (&a.account, &a.key) {
        (Some(hex), None) => AccountId::from_hex(hex)?,
        (None, Some(path)) => read_key(path)?.account(),
        _ => bail!("give an account id or --key FILE (one of them)"),
    };
    if !a.prove && a.genesis.is_none() && a.height == 0 {
        let rec = client.account(&account).await?;
        print_account(&account, rec.as_ref());
        return Ok(());
    }
    let sequencers = match &a.genesis {
        Some(path) => {
            let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?;
            Some(Genesis::from_toml(&text)?.sequencers)
        }
        None => None,
    };
    let v = client.account_proven(&account, a.height, sequencers.as_deref()).await?;
    print_account(&account, v.record.as_ref());
    println!("proof       verified against state root 0x{} at height {}", hex::encode(v.state_root), v.height);
    if v.header_checked {
        println!("header      signed by the genesis sequencer set");
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
