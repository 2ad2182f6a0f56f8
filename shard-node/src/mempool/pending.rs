//! Pending txs as a queue of open blocks.
//!
//! A tx is admitted by executing it, once, in the block it will be committed in: the block's height and
//! timestamp are fixed when the block opens (with its begin-block work), and every tx admitted into it runs
//! on top of the blocks before it. Sealing the front block therefore needs no re-execution: its writes,
//! receipts and events are exactly what any replica re-executing it in order computes.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
};

use alloy_primitives::B256;
use shardex_core::{pb, tx::VerifiedTx};

use shardex_vm::{BlockCtx, Changes, Outcome};

/// Sizes that bound the pending queue and each block in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// Pending txs in all open blocks together.
    pub max_txs: usize,
    /// Txs in one block.
    pub max_block_txs: usize,
    /// Gas in one block.
    pub block_gas_limit: u64,
    /// Encoded bytes of one block's txs, receipts and begin-block events (see [`entry_bytes`]).
    pub block_max_bytes: usize,
    /// How long after its timestamp a block still takes txs. Past it a tx opens a new block, so a tx never
    /// executes at a block time far behind the clock (a stalled producer, say).
    pub max_open_ms: u64,
}

/// A block being filled: its context and begin-block work are fixed, txs are appended in admission order.
#[derive(Debug, Clone)]
pub struct OpenBlock {
    /// Height and timestamp, fixed when the block opened.
    pub ctx: BlockCtx,
    /// Market-wide events of the block's begin-block work.
    pub block_events: Vec<pb::Event>,
    /// Txs in execution order. Shared with the mempool once the block is sealed, so a block that loses a
    /// consensus round can have its txs admitted again.
    pub txs: Arc<Vec<VerifiedTx>>,
    /// One receipt per tx, in order.
    pub receipts: Vec<pb::Receipt>,
    /// Everything the block writes: begin-block, then each tx. Shared with the mempool's read layers while the
    /// block is sealed and being committed.
    pub writes: Arc<Changes>,
    /// Gas of its txs.
    pub gas: u64,
    /// Encoded bytes of its txs, receipts and begin-block events, as they appear in its `pb::Block`.
    pub bytes: usize,
}

/// What `block_events` add to the encoding of their `pb::Block`.
pub fn block_events_bytes(block_events: &[pb::Event]) -> usize {
    prost::encoding::message::encoded_len_repeated(4, block_events)
}

/// What one tx adds to the encoding of its `pb::Block`: the signed tx and its receipt (at `index`), each
/// with its field key and length. A block's bytes are the sum over its txs plus [`block_events_bytes`]; the
/// header and certificate come on top.
pub fn entry_bytes(tx: &VerifiedTx, index: u32, outcome: &Outcome) -> usize {
    use prost::{
        encoding::{encoded_len_varint, key_len, message},
        Message,
    };
    let receipt = pb::Receipt { tx_hash: tx.hash().to_vec(), index, gas_used: outcome.gas_used, events: Vec::new() };
    let receipt_len = receipt.encoded_len() + message::encoded_len_repeated(4, &outcome.events);
    message::encoded_len(2, tx.envelope()) + key_len(3) + encoded_len_varint(receipt_len as u64) + receipt_len
}

/// The bytes of a whole block's txs, receipts and begin-block events (what [`entry_bytes`] and
/// [`block_events_bytes`] add up to while it fills).
pub fn block_bytes(txs: &[VerifiedTx], receipts: &[pb::Receipt], block_events: &[pb::Event]) -> usize {
    use prost::encoding::message;
    let txs_len: usize = txs.iter().map(|tx| message::encoded_len(2, tx.envelope())).sum();
    txs_len + message::encoded_len_repeated(3, receipts) + block_events_bytes(block_events)
}

impl OpenBlock {
    fn push(&mut self, tx: VerifiedTx, outcome: Outcome, writes: Changes) {
        self.bytes = self.bytes.saturating_add(entry_bytes(&tx, self.txs.len() as u32, &outcome));
        self.receipts.push(pb::Receipt {
            tx_hash: tx.hash().to_vec(),
            index: self.txs.len() as u32,
            gas_used: outcome.gas_used,
            events: outcome.events,
        });
        self.gas = self.gas.saturating_add(outcome.gas_used);
        // Only the mempool holds an open block's writes and txs: these never copy.
        Arc::make_mut(&mut self.writes).extend(writes);
        Arc::make_mut(&mut self.txs).push(tx);
    }
}

/// Bounded queue of open blocks, deduplicated by tx hash. Admission reads the head through the writes of
/// every pending block, oldest first: blocks sealed but not yet committed, then the open ones.
#[derive(Debug)]
pub struct Mempool {
    blocks: VecDeque<OpenBlock>,
    /// Sealed blocks until [`Mempool::retire`]: their writes reach the head only then.
    sealed: VecDeque<SealedBlock>,
    hashes: HashSet<B256>,
    txs: usize,
    limits: PendingLimits,
    /// Height and earliest timestamp of the next block to open.
    next_height: u64,
    last_timestamp_ms: u64,
}

/// A block taken for proposal and not yet committed.
#[derive(Debug)]
struct SealedBlock {
    writes: Arc<Changes>,
    txs: Arc<Vec<VerifiedTx>>,
}

/// Where an admitted tx goes.
pub enum Slot {
    /// Into the last open block, which has room for one more tx.
    Tail(BlockCtx),
    /// Into a new block with this context.
    New(BlockCtx),
}

impl Mempool {
    /// An empty queue whose first block follows a head at `head_height` / `head_timestamp_ms`.
    pub fn new(limits: PendingLimits, head_height: u64, head_timestamp_ms: u64) -> Self {
        Self {
            blocks: VecDeque::new(),
            sealed: VecDeque::new(),
            hashes: HashSet::new(),
            txs: 0,
            limits,
            next_height: head_height + 1,
            last_timestamp_ms: head_timestamp_ms,
        }
    }

    /// Pending txs (open and sealed, not yet committed).
    pub fn len(&self) -> usize {
        self.txs
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.txs == 0
    }

    /// True when no more txs fit.
    pub fn is_full(&self) -> bool {
        self.txs >= self.limits.max_txs
    }

    /// True when `hash` is pending.
    pub fn contains(&self, hash: &B256) -> bool {
        self.hashes.contains(hash)
    }

    /// True when the front block cannot take another tx (full, or a later block opened because it was full
    /// or older than `max_open_ms`): it should be sealed without waiting for the next tick.
    pub fn has_full_block(&self) -> bool {
        self.blocks.len() > 1 || self.blocks.front().is_some_and(|b| self.is_block_full(b))
    }

    /// Open blocks waiting to be sealed.
    pub fn open_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The writes of every pending block, oldest first: the layers admission reads over the head.
    pub fn layers(&self) -> Vec<&Changes> {
        self.sealed.iter().map(|b| b.writes.as_ref()).chain(self.blocks.iter().map(|b| b.writes.as_ref())).collect()
    }

    fn is_block_full(&self, block: &OpenBlock) -> bool {
        block.txs.len() >= self.limits.max_block_txs
            || block.gas >= self.limits.block_gas_limit
            || block.bytes >= self.limits.block_max_bytes
    }

    /// Where the next tx would go at `now_ms`: the tail block while it has room for a tx and is younger than
    /// `max_open_ms`, else a new block.
    pub fn slot(&self, now_ms: u64) -> Slot {
        match self.blocks.back() {
            Some(tail)
                if !self.is_block_full(tail)
                    && now_ms.saturating_sub(tail.ctx.timestamp_ms) < self.limits.max_open_ms =>
            {
                Slot::Tail(tail.ctx)
            }
            _ => Slot::New(self.next_ctx(now_ms)),
        }
    }

    /// The context a block opened at `now_ms` gets: the next height, and a time no earlier than the head's or
    /// any pending block's.
    pub fn next_ctx(&self, now_ms: u64) -> BlockCtx {
        BlockCtx { height: self.next_height, timestamp_ms: now_ms.max(self.last_timestamp_ms) }
    }

    /// True when the tail block can take `tx`, executed with `outcome`, within its gas and bytes.
    pub fn tail_fits(&self, tx: &VerifiedTx, outcome: &Outcome) -> bool {
        self.blocks.back().is_some_and(|tail| {
            let bytes = entry_bytes(tx, tail.txs.len() as u32, outcome);
            tail.gas.saturating_add(outcome.gas_used) <= self.limits.block_gas_limit
                && tail.bytes.saturating_add(bytes) <= self.limits.block_max_bytes
        })
    }

    /// Appends an executed tx to the tail block. The caller checked capacity, duplicates and [`Self::tail_fits`].
    pub fn push_tail(&mut self, tx: VerifiedTx, outcome: Outcome, writes: Changes) {
        debug_assert!(!self.is_full() && !self.contains(&tx.hash()) && self.tail_fits(&tx, &outcome));
        self.hashes.insert(tx.hash());
        self.txs += 1;
        let Some(tail) = self.blocks.back_mut() else {
            unreachable!("push_tail without an open block: callers go through Slot::Tail");
        };
        tail.push(tx, outcome, writes);
    }

    /// Opens a block at `ctx` whose begin-block work wrote `begin_writes` (emitting `block_events`), with
    /// its first tx.
    pub fn open(
        &mut self,
        ctx: BlockCtx,
        block_events: Vec<pb::Event>,
        begin_writes: Changes,
        tx: VerifiedTx,
        outcome: Outcome,
        writes: Changes,
    ) {
        debug_assert_eq!(ctx.height, self.next_height);
        debug_assert!(ctx.timestamp_ms >= self.last_timestamp_ms);
        self.next_height += 1;
        self.last_timestamp_ms = ctx.timestamp_ms;
        let writes_so_far = Arc::new(begin_writes);
        let bytes = block_events_bytes(&block_events);
        let mut block = OpenBlock {
            ctx,
            block_events,
            txs: Arc::new(Vec::new()),
            receipts: Vec::new(),
            writes: writes_so_far,
            gas: 0,
            bytes,
        };
        self.hashes.insert(tx.hash());
        self.txs += 1;
        block.push(tx, outcome, writes);
        self.blocks.push_back(block);
    }

    /// Takes the oldest open block for proposal. Its txs stay pending (and its writes readable) until
    /// [`Self::retire`].
    pub fn seal_front(&mut self) -> Option<OpenBlock> {
        let block = self.blocks.pop_front()?;
        self.sealed.push_back(SealedBlock { writes: Arc::clone(&block.writes), txs: Arc::clone(&block.txs) });
        Some(block)
    }

    /// Seals a block without txs at `ctx` (a proposer with nothing to propose), whose begin-block work wrote
    /// `begin_writes`. Only when no block is open: later txs open blocks above it.
    pub fn seal_empty(&mut self, ctx: BlockCtx, block_events: Vec<pb::Event>, begin_writes: Changes) -> OpenBlock {
        debug_assert!(self.blocks.is_empty() && ctx.height == self.next_height);
        self.next_height += 1;
        self.last_timestamp_ms = ctx.timestamp_ms;
        let bytes = block_events_bytes(&block_events);
        let block = OpenBlock {
            ctx,
            block_events,
            txs: Arc::new(Vec::new()),
            receipts: Vec::new(),
            writes: Arc::new(begin_writes),
            gas: 0,
            bytes,
        };
        self.sealed.push_back(SealedBlock { writes: Arc::clone(&block.writes), txs: Arc::clone(&block.txs) });
        block
    }

    /// Takes every pending tx, sealed blocks first then open ones, in execution order, leaving the queue
    /// empty: for admitting them again on a head that another validator's block moved.
    pub fn drain(&mut self) -> Vec<VerifiedTx> {
        let sealed = std::mem::take(&mut self.sealed).into_iter().map(|b| b.txs);
        let open = std::mem::take(&mut self.blocks).into_iter().map(|b| b.txs);
        let txs = sealed.chain(open).flat_map(|txs| txs.iter().cloned().collect::<Vec<_>>()).collect();
        self.hashes.clear();
        self.txs = 0;
        txs
    }

    /// Forgets the oldest sealed block once it is committed (its writes now read from the head), with its txs.
    pub fn retire(&mut self, tx_hashes: &[B256]) {
        self.sealed.pop_front();
        for hash in tx_hashes {
            if self.hashes.remove(hash) {
                self.txs -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use shardex_core::{
        pb::tx_body::Op,
        tx::{sign_tx, verify_envelope, TxDomain, DEFAULT_MAX_TX_BYTES},
        ChainId, Keypair, ShardId,
    };

    use super::*;

    const LIMITS: PendingLimits = PendingLimits {
        max_txs: 10,
        max_block_txs: 3,
        block_gas_limit: 100,
        block_max_bytes: 1 << 20,
        max_open_ms: 50,
    };

    fn tx(nonce: u64) -> VerifiedTx {
        let domain = TxDomain { chain: ChainId(1), shard: ShardId(1) };
        let key = Keypair::from_seed([7; 32]);
        let op = Op::Deposit(pb::Deposit { account: key.account().0.to_vec(), amount_micros: 1 });
        verify_envelope(sign_tx(&key, domain, nonce, op), domain, DEFAULT_MAX_TX_BYTES).expect("valid")
    }

    fn outcome(gas: u64) -> Outcome {
        Outcome { gas_used: gas, events: vec![] }
    }

    fn write(k: u8, v: u8) -> Changes {
        [(B256::from([k; 32]), Some(vec![v]))].into()
    }

    /// Admits `tx` where `slot` says, as the shard does.
    fn admit(pool: &mut Mempool, tx: VerifiedTx, now_ms: u64, gas: u64, writes: Changes) -> BlockCtx {
        match pool.slot(now_ms) {
            Slot::Tail(ctx) if pool.tail_fits(&tx, &outcome(gas)) => {
                pool.push_tail(tx, outcome(gas), writes);
                ctx
            }
            _ => {
                let ctx = pool.next_ctx(now_ms);
                pool.open(ctx, vec![], Changes::new(), tx, outcome(gas), writes);
                ctx
            }
        }
    }

    #[test]
    fn blocks_close_on_tx_count_gas_and_age() {
        let mut pool = Mempool::new(LIMITS, 5, 1_000);
        // A clock behind the head's time still gives a block no earlier than the head.
        assert_eq!(admit(&mut pool, tx(0), 900, 10, write(1, 1)), BlockCtx { height: 6, timestamp_ms: 1_000 });
        assert_eq!(admit(&mut pool, tx(1), 1_010, 10, write(2, 1)).height, 6);
        assert_eq!(admit(&mut pool, tx(2), 1_020, 10, write(3, 1)).height, 6);
        assert!(pool.has_full_block(), "three txs fill a block");
        assert_eq!(admit(&mut pool, tx(3), 1_030, 10, write(1, 2)), BlockCtx { height: 7, timestamp_ms: 1_030 });
        // Gas: 10 + 95 > 100 opens a new block.
        assert_eq!(admit(&mut pool, tx(4), 1_031, 95, write(4, 1)).height, 8);
        // Age: the tail opened at 1031 stops taking txs at 1031 + 50.
        assert_eq!(admit(&mut pool, tx(5), 1_080, 1, write(5, 1)).height, 8);
        assert_eq!(admit(&mut pool, tx(6), 1_081, 1, write(5, 2)), BlockCtx { height: 9, timestamp_ms: 1_081 });
        assert_eq!((pool.len(), pool.open_blocks()), (7, 4));
        let layers = pool.layers();
        let newest = layers.iter().rev().find_map(|l| l.get(&B256::from([1; 32])));
        assert_eq!(newest, Some(&Some(vec![2])), "later blocks shadow earlier");
    }

    #[test]
    fn sealed_writes_stay_readable_until_retired() {
        let mut pool = Mempool::new(LIMITS, 0, 0);
        for i in 0..6u8 {
            admit(&mut pool, tx(i.into()), 10, 1, write(i, i));
        }
        let first = pool.seal_front().expect("a block");
        assert_eq!((first.ctx.height, first.txs.len(), first.writes.len()), (1, 3, 3));
        assert_eq!(first.receipts.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2]);
        // Sealed txs stay pending (duplicates are still refused) until the block is committed.
        assert!(pool.contains(&first.txs[0].hash()));
        // Sealed and open blocks are both read, oldest first.
        assert_eq!(pool.layers().iter().map(|l| l.len()).collect::<Vec<_>>(), [3, 3]);
        let hashes: Vec<B256> = first.txs.iter().map(VerifiedTx::hash).collect();
        pool.retire(&hashes);
        assert!(!pool.contains(&hashes[0]));
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.layers().len(), 1, "the committed block reads from the head now");
        let second = pool.seal_front().expect("a block");
        pool.retire(&second.txs.iter().map(VerifiedTx::hash).collect::<Vec<_>>());
        assert!(pool.is_empty() && pool.layers().is_empty());
        // The next block follows the last one opened.
        assert_eq!(pool.next_ctx(0), BlockCtx { height: 3, timestamp_ms: 10 });
    }

    #[test]
    fn an_empty_block_seals_alone_and_drain_returns_every_pending_tx_in_order() {
        let mut pool = Mempool::new(LIMITS, 4, 100);
        let empty = pool.seal_empty(pool.next_ctx(150), vec![], write(9, 9));
        assert_eq!((empty.ctx.height, empty.txs.len()), (5, 0));
        assert_eq!(pool.layers().len(), 1, "its begin-block writes are read by later admission");
        // Txs admitted after it go to the next height.
        for i in 0..5u8 {
            admit(&mut pool, tx(i.into()), 160, 1, write(i, i));
        }
        let sealed = pool.seal_front().expect("a block");
        assert_eq!(sealed.ctx.height, 6);
        let order: Vec<B256> = (0..5u64).map(|n| tx(n).hash()).collect();
        let drained: Vec<B256> = pool.drain().iter().map(VerifiedTx::hash).collect();
        assert_eq!(drained, order, "sealed block first, then the open one, each in execution order");
        assert!(pool.is_empty() && pool.layers().is_empty() && !pool.contains(&order[0]));
    }

    #[test]
    fn blocks_close_on_bytes_counted_as_their_encoding() {
        let event = |n: u8| pb::Event {
            account: vec![n; 32],
            kind: Some(pb::event::Kind::CollateralChanged(pb::CollateralChanged {
                delta_micros: 1,
                balance_micros: i64::from(n),
                ..Default::default()
            })),
        };
        let with_event = |gas: u64, n: u8| Outcome { gas_used: gas, events: vec![event(n)] };
        let one = entry_bytes(&tx(1), 1, &with_event(1, 1));
        let limits = PendingLimits { max_block_txs: 100, block_max_bytes: 2 * one + one / 2, ..LIMITS };
        let mut pool = Mempool::new(limits, 0, 0);
        pool.open(pool.next_ctx(10), vec![event(0)], Changes::new(), tx(1), with_event(1, 1), write(1, 1));
        assert!(pool.tail_fits(&tx(2), &with_event(1, 2)), "a second tx fits");
        pool.push_tail(tx(2), with_event(1, 2), write(2, 1));
        assert!(!pool.tail_fits(&tx(3), &with_event(1, 3)), "a third would pass the byte bound");

        let block = pool.seal_front().expect("a block");
        let encoded = pb::Block {
            header: None,
            txs: block.txs.iter().map(|t| t.envelope().clone()).collect(),
            receipts: block.receipts.clone(),
            block_events: block.block_events.clone(),
        };
        assert_eq!(block.bytes, prost::Message::encoded_len(&encoded), "the count is the block's encoding");
        assert_eq!(block_bytes(&block.txs, &block.receipts, &block.block_events), block.bytes);
    }
}
