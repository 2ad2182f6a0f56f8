//! Constructors for order placement, so clients, tools and tests build orders one way.

use crate::pb;

/// A limit order of `size_lots` at `price_micros` with time in force `tif`; no client id, not reduce-only.
/// Adjust other fields with struct update syntax: `PlaceOrder { reduce_only: true, ..limit_order(..) }`.
pub fn limit_order(side: pb::Side, price_micros: u64, size_lots: u64, tif: pb::TimeInForce) -> pb::PlaceOrder {
    pb::PlaceOrder {
        side: side as i32,
        order_type: pb::OrderType::Limit as i32,
        time_in_force: tif as i32,
        price_micros,
        size_lots,
        reduce_only: false,
        client_order_id: 0,
        series: Vec::new(),
    }
}

/// A limit order on an option series: `limit_order` with the series' id, its price the premium in micro-USD
/// per unit of underlying.
pub fn option_order(
    series: &crate::option::series::SeriesId,
    side: pb::Side,
    premium_micros: u64,
    size_lots: u64,
    tif: pb::TimeInForce,
) -> pb::PlaceOrder {
    pb::PlaceOrder { series: series.to_bytes().to_vec(), ..limit_order(side, premium_micros, size_lots, tif) }
}

/// A market order (immediate or cancel, any price) of `size_lots`.
pub fn market_order(side: pb::Side, size_lots: u64) -> pb::PlaceOrder {
    pb::PlaceOrder {
        side: side as i32,
        order_type: pb::OrderType::Market as i32,
        time_in_force: pb::TimeInForce::Ioc as i32,
        price_micros: 0,
        size_lots,
        reduce_only: false,
        client_order_id: 0,
        series: Vec::new(),
    }
}
