//! A signing key with automatic nonces.

use shardex_core::{pb, pb::tx_body::Op, tx::sign_tx, AccountId, Keypair, B256};

use crate::{client::ShardClient, error::Result};

/// A key that signs txs for one shard, picking nonces itself.
///
/// The first nonce is one above the highest the account has used on chain; after that the wallet counts
/// locally, so many txs can be in flight. Nonces of txs the node refused are skipped, never reused.
#[derive(Debug)]
pub struct Wallet {
    key: Keypair,
    next_nonce: u64,
}

impl Wallet {
    /// A wallet for `key`, syncing its next nonce from the node.
    pub async fn new(key: Keypair, client: &ShardClient) -> Result<Self> {
        let record = client.account(&key.account()).await?;
        let next_nonce = record.and_then(|r| r.nonces.last().copied()).map_or(0, |n| n.saturating_add(1));
        Ok(Self { key, next_nonce })
    }

    /// A wallet whose next nonce is given (fresh accounts, load generators).
    pub fn with_nonce(key: Keypair, next_nonce: u64) -> Self {
        Self { key, next_nonce }
    }

    /// The account.
    pub fn account(&self) -> AccountId {
        self.key.account()
    }

    /// The nonce the next tx will use.
    pub fn next_nonce(&self) -> u64 {
        self.next_nonce
    }

    /// Signs `op` for the client's shard with the next nonce.
    pub fn sign(&mut self, client: &ShardClient, op: Op) -> pb::SignedTx {
        let tx = sign_tx(&self.key, client.domain(), self.next_nonce, op);
        self.next_nonce = self.next_nonce.saturating_add(1);
        tx
    }

    /// Signs and submits `op`; returns the tx hash once admitted.
    pub async fn submit(&mut self, client: &ShardClient, op: Op) -> Result<B256> {
        let tx = self.sign(client, op);
        client.submit(tx).await
    }

    /// Deposit (the wallet must hold the deposit authority key).
    pub async fn deposit(&mut self, client: &ShardClient, to: &AccountId, amount_micros: u64) -> Result<B256> {
        self.submit(client, Op::Deposit(pb::Deposit { account: to.0.to_vec(), amount_micros })).await
    }

    /// Places an order (see `pb::PlaceOrder` for the fields).
    pub async fn place_order(&mut self, client: &ShardClient, order: pb::PlaceOrder) -> Result<B256> {
        self.submit(client, Op::PlaceOrder(order)).await
    }

    /// Cancels one of the wallet's orders by order id.
    pub async fn cancel_order(&mut self, client: &ShardClient, order_id: u64) -> Result<B256> {
        let target = Some(pb::cancel_order::Target::OrderId(order_id));
        self.submit(client, Op::CancelOrder(pb::CancelOrder { target })).await
    }

    /// Cancels every resting order of the wallet.
    pub async fn cancel_all(&mut self, client: &ShardClient) -> Result<B256> {
        self.submit(client, Op::CancelAll(pb::CancelAll {})).await
    }

    /// Liquidates `account` (below maintenance margin), taking over up to `max_lots` (0 = all) of its
    /// position at the mark; the wallet must have the margin to carry it.
    pub async fn liquidate(&mut self, client: &ShardClient, account: &AccountId, max_lots: u64) -> Result<B256> {
        self.submit(
            client,
            Op::Liquidate(pb::Liquidate { account: account.0.to_vec(), max_size_lots: max_lots, series: Vec::new() }),
        )
        .await
    }

    /// Publishes an oracle price (the wallet must hold the market's oracle key).
    pub async fn oracle_update(&mut self, client: &ShardClient, price_micros: u64, timestamp_ms: u64) -> Result<B256> {
        self.submit(client, Op::OracleUpdate(pb::OracleUpdate { price_micros, timestamp_ms })).await
    }

    /// Withdraw from the wallet's own account.
    pub async fn withdraw(&mut self, client: &ShardClient, amount_micros: u64) -> Result<B256> {
        self.submit(client, Op::Withdraw(pb::Withdraw { amount_micros })).await
    }
}
