//! Leaf keys of the book's records (DESIGN.md §3: `keccak256(namespace || id)`).

use alloy_primitives::B256;
use shardex_core::{
    state_key::{leaf_key, Namespace},
    AccountId,
};

use super::types::{Book, Side};

/// `OrderRecord` of `order_id` (id = order id, u64 BE).
pub fn order_key(order_id: u64) -> B256 {
    leaf_key(Namespace::Order, &order_id.to_be_bytes())
}

/// `BookLevelRecord` of one price on one side of `book` (id = book prefix || side byte || price u64 BE).
pub fn level_key(book: Book, side: Side, price_micros: u64) -> B256 {
    let (prefix, len) = book.id_prefix();
    let mut id = [0u8; 26];
    id[..len].copy_from_slice(&prefix[..len]);
    id[len] = side.byte();
    id[len + 1..len + 9].copy_from_slice(&price_micros.to_be_bytes());
    leaf_key(Namespace::BookLevel, &id[..len + 9])
}

/// `BookSideRecord` of one side of `book` (id = book prefix || side byte).
pub fn side_key(book: Book, side: Side) -> B256 {
    let (prefix, len) = book.id_prefix();
    let mut id = [0u8; 18];
    id[..len].copy_from_slice(&prefix[..len]);
    id[len] = side.byte();
    leaf_key(Namespace::BookSide, &id[..=len])
}

/// `AccountOrdersRecord` of `owner` (id = account).
pub fn account_orders_key(owner: &AccountId) -> B256 {
    leaf_key(Namespace::AccountOrders, &owner.0)
}

/// `ClientOrderRecord` of (`owner`, `client_order_id`) (id = account || client order id u64 BE).
pub fn client_order_key(owner: &AccountId, client_order_id: u64) -> B256 {
    let mut id = Vec::with_capacity(40);
    id.extend_from_slice(&owner.0);
    id.extend_from_slice(&client_order_id.to_be_bytes());
    leaf_key(Namespace::ClientOrder, &id)
}

/// `MarketCountersRecord` (id empty).
pub fn counters_key() -> B256 {
    leaf_key(Namespace::MarketCounters, &[])
}

#[cfg(test)]
mod tests {
    use alloy_primitives::keccak256;

    use super::*;

    #[test]
    fn golden_ids() {
        // Pinned layouts: a change to an id encoding moves every book record and must fail loudly.
        assert_eq!(order_key(1), keccak256([0x05, 0, 0, 0, 0, 0, 0, 0, 1]));
        assert_eq!(level_key(Book::Perp, Side::Sell, 258), keccak256([0x0d, 2, 0, 0, 0, 0, 0, 0, 1, 2]));
        assert_eq!(side_key(Book::Perp, Side::Buy), keccak256([0x0e, 1]));
        let series = shardex_core::option::series::SeriesId {
            expiry_ms: 5,
            strike_micros: 6,
            kind: shardex_core::option::series::OptionKind::Put,
        };
        let id = series.to_bytes();
        let book = Book::Series(series);
        assert_eq!(
            level_key(book, Side::Sell, 258),
            keccak256([&[0x0d][..], &id, &[2, 0, 0, 0, 0, 0, 0, 1, 2]].concat())
        );
        assert_eq!(side_key(book, Side::Buy), keccak256([&[0x0e][..], &id, &[1]].concat()));
        assert_eq!(counters_key(), keccak256([0x11]));
        let owner = AccountId([7; 32]);
        assert_eq!(account_orders_key(&owner), keccak256([[0x0f].as_slice(), &[7; 32]].concat()));
        assert_eq!(client_order_key(&owner, 3), keccak256([[0x10].as_slice(), &[7; 32], &3u64.to_be_bytes()].concat()));
    }
}
