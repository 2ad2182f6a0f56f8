//! Leaf keys of the book's records (DESIGN.md §3: `keccak256(namespace || id)`).

use alloy_primitives::B256;
use shardex_core::{
    state_key::{leaf_key, Namespace},
    AccountId,
};

use super::types::Side;

/// `OrderRecord` of `order_id` (id = order id, u64 BE).
pub fn order_key(order_id: u64) -> B256 {
    leaf_key(Namespace::Order, &order_id.to_be_bytes())
}

/// `BookLevelRecord` of one price on one side (id = side byte || price u64 BE).
pub fn level_key(side: Side, price_micros: u64) -> B256 {
    let mut id = Vec::with_capacity(9);
    id.push(side.byte());
    id.extend_from_slice(&price_micros.to_be_bytes());
    leaf_key(Namespace::BookLevel, &id)
}

/// `BookSideRecord` of `side` (id = side byte).
pub fn side_key(side: Side) -> B256 {
    leaf_key(Namespace::BookSide, &[side.byte()])
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
        assert_eq!(level_key(Side::Sell, 258), keccak256([0x0d, 2, 0, 0, 0, 0, 0, 0, 1, 2]));
        assert_eq!(side_key(Side::Buy), keccak256([0x0e, 1]));
        assert_eq!(counters_key(), keccak256([0x11]));
        let owner = AccountId([7; 32]);
        assert_eq!(account_orders_key(&owner), keccak256([[0x0f].as_slice(), &[7; 32]].concat()));
        assert_eq!(client_order_key(&owner, 3), keccak256([[0x10].as_slice(), &[7; 32], &3u64.to_be_bytes()].concat()));
    }
}
