//! The book's value types: sides, limits, incoming orders and what matching did.

use shardex_core::{
    option::series::{SeriesId, SERIES_ID_LEN},
    pb, AccountId, Lots, Price,
};

use crate::error::ExecError;

/// Which book of the market an order rests on: the perpetual's (the only one of a perpetual market) or one
/// option series' (an options market has one per listed series). Order ids are shared by every book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Book {
    /// The perpetual's book.
    Perp,
    /// The book of one option series.
    Series(SeriesId),
}

impl Book {
    /// The start of its level and side record ids: nothing for the perpetual's book (so its keys are those
    /// of a market without options), the 17-byte series id for a series' book.
    pub fn id_prefix(&self) -> ([u8; SERIES_ID_LEN], usize) {
        match self {
            Self::Perp => ([0; SERIES_ID_LEN], 0),
            Self::Series(s) => (s.to_bytes(), SERIES_ID_LEN),
        }
    }

    /// `OrderRecord.series`: empty for the perpetual's book.
    pub fn series_bytes(&self) -> Vec<u8> {
        let (bytes, len) = self.id_prefix();
        bytes[..len].to_vec()
    }

    /// The book a stored order rests on.
    pub fn of(order: &pb::OrderRecord) -> Result<Self, ExecError> {
        if order.series.is_empty() {
            return Ok(Self::Perp);
        }
        SeriesId::from_bytes(&order.series).map(Self::Series).ok_or_else(|| ExecError::Corrupt {
            what: "order",
            detail: format!("order {} names no series ({} bytes)", order.order_id, order.series.len()),
        })
    }
}

/// A side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Bids: best is the highest price.
    Buy,
    /// Asks: best is the lowest price.
    Sell,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }

    /// The side byte in level and side-list keys (1 buy, 2 sell); part of the protocol.
    pub fn byte(self) -> u8 {
        match self {
            Self::Buy => 1,
            Self::Sell => 2,
        }
    }

    /// The side of a stored order (`OrderRecord.is_buy`).
    pub fn from_is_buy(is_buy: bool) -> Self {
        if is_buy {
            Self::Buy
        } else {
            Self::Sell
        }
    }

    /// The side of a resting order record.
    pub fn of(order: &pb::OrderRecord) -> Self {
        Self::from_is_buy(order.is_buy)
    }

    /// True for [`Side::Buy`].
    pub fn is_buy(self) -> bool {
        self == Self::Buy
    }

    /// True if price `a` has priority over price `b` on this side (higher bid, lower ask).
    pub fn is_better(self, a: Price, b: Price) -> bool {
        match self {
            Self::Buy => a > b,
            Self::Sell => a < b,
        }
    }

    /// True if a taker on this side with limit `limit` trades against a maker resting at `maker`.
    pub fn crosses(self, limit: Price, maker: Price) -> bool {
        match self {
            Self::Buy => maker <= limit,
            Self::Sell => maker >= limit,
        }
    }
}

/// Bounds on the book's size and on the work one order may do. Market parameters, the same on every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookLimits {
    /// Most distinct prices one side may hold.
    pub max_price_levels: usize,
    /// Most resting orders one account may have (both sides together).
    pub max_open_orders_per_account: usize,
    /// Most maker orders one incoming order may touch: fills and self-trade cancellations both count,
    /// since each costs the same state work.
    pub max_fills_per_order: usize,
    /// Most orders a new price may evict from a worse level when its side is full (see
    /// [`rest`](super::rest)); a level holding more is never evicted.
    pub max_evicted_orders: usize,
}

/// An order that rested, and the orders it evicted to make room for its price level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rested {
    /// The resting order as stored.
    pub order: pb::OrderRecord,
    /// Orders of the evicted level, oldest first, as they rested (empty if the side had room).
    pub evicted: Vec<pb::OrderRecord>,
}

/// An order arriving at the book to take liquidity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming {
    /// The book it trades on.
    pub book: Book,
    /// Who sends it.
    pub owner: AccountId,
    /// The side it buys or sells on.
    pub side: Side,
    /// Worst price it accepts; `None` is a market order (any price).
    pub limit_price: Option<Price>,
    /// Size to trade (> 0).
    pub lots: Lots,
}

/// An order to rest on the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    /// The book it rests on.
    pub book: Book,
    /// Who owns it.
    pub owner: AccountId,
    /// Its side.
    pub side: Side,
    /// Its limit price.
    pub price: Price,
    /// Its size (> 0).
    pub lots: Lots,
    /// The owner's id for it; 0 = none. Reserved while the order rests.
    pub client_order_id: u64,
    /// Stored for the caller's reduce-only checks; the book ignores it.
    pub reduce_only: bool,
    /// Height of the block that rests it.
    pub placed_height: u64,
}

/// One trade between the incoming order and a resting maker order, at the maker's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// The maker order's id.
    pub maker_order_id: u64,
    /// The maker order's owner.
    pub maker: AccountId,
    /// Trade price: the maker's limit price.
    pub price: Price,
    /// Traded size.
    pub lots: Lots,
    /// True if the maker order is now fully filled and gone from the book.
    pub maker_done: bool,
}

/// What [`match_incoming`](super::match_incoming) did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchOutcome {
    /// Trades, in execution order.
    pub fills: Vec<Fill>,
    /// The incoming owner's own resting orders that were hit and cancelled (records as they rested).
    pub self_trade_cancelled: Vec<pb::OrderRecord>,
    /// Maker orders refused by the caller's veto and removed from the book (records as they rested).
    pub vetoed: Vec<pb::OrderRecord>,
    /// Incoming lots left untraded: `lots = Σ fills.lots + remaining`.
    pub remaining: Lots,
    /// True if matching stopped because `max_fills_per_order` makers were touched while lots remained.
    pub stopped_at_fill_limit: bool,
}
