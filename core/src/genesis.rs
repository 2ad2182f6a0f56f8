//! Genesis: the market, its authority keys and the validator set a shard starts from.

use serde::{Deserialize, Serialize};

use crate::{
    bridge::{peer_record, MAX_PEERS},
    ids::{AccountId, ChainId, ShardId},
    pb,
    validators::ValidatorSet,
};

/// Default number of used nonces an account keeps.
pub const DEFAULT_NONCE_WINDOW: u32 = 64;

/// Default least initial margin of an account with exposure: 50 USD, so filling the default 4,096
/// positions of one side takes 204,800 USD of equity however small each position is.
pub const DEFAULT_MIN_INITIAL_MARGIN_MICROS: u64 = 50_000_000;

/// Largest `min_initial_margin_micros`: 1,000,000 USD.
pub const MAX_MIN_INITIAL_MARGIN_MICROS: u64 = 1_000_000_000_000;

/// A shard's genesis file (TOML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain this shard belongs to.
    pub chain_id: ChainId,
    /// This shard.
    pub shard_id: ShardId,
    /// Timestamp of the genesis block, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// The market.
    pub market: MarketParams,
    /// Keys with special powers.
    pub authorities: Authorities,
    /// The validators whose precommits finalize blocks (`[[validators]]`: key and power), in proposer order.
    pub validators: ValidatorSet,
    /// The coordinator key whose epoch signatures this shard accepts (hex). Without it every bridge op is
    /// refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<AccountId>,
    /// The shards this one bridges with, each with its genesis validator set (`[[peers]]`: `shard_id` and
    /// `validators`). Written into genesis state; a bridge op naming a shard not listed is refused, and
    /// deliveries, acks and refunds carry the peer's header certified by a quorum of its set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Peer>,
    /// Blocks a settled bridge message's records stay in state before they are pruned (proven absent from
    /// then on): on the source, the outbox message and escrow that many blocks after its ack or refund; on
    /// the destination, the ack that many blocks after delivery (the inbox receipt, which stops a second
    /// delivery, is kept for good). 0 keeps them all. The source's relayers must prove the ack within this
    /// window, or the escrow can neither be released nor refunded.
    #[serde(default = "default_bridge_retention_blocks")]
    pub bridge_retention_blocks: u64,
}

/// Default [`Genesis::bridge_retention_blocks`]: an hour of 100 ms blocks.
pub const DEFAULT_BRIDGE_RETENTION_BLOCKS: u64 = 36_000;
/// Smallest non-zero [`Genesis::bridge_retention_blocks`].
pub const MIN_BRIDGE_RETENTION_BLOCKS: u64 = 16;
/// Largest [`Genesis::bridge_retention_blocks`].
pub const MAX_BRIDGE_RETENTION_BLOCKS: u64 = 100_000_000;

fn default_bridge_retention_blocks() -> u64 {
    DEFAULT_BRIDGE_RETENTION_BLOCKS
}

/// A bridge peer: another shard of the chain and the validator set whose precommits finalize its blocks
/// (its own genesis `[[validators]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// The peer shard.
    pub shard_id: ShardId,
    /// Its genesis validator set, in its genesis order.
    pub validators: ValidatorSet,
}

/// Market parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketParams {
    /// e.g. `BTC-PERP`.
    pub symbol: String,
    /// Price tick in quote micro-units.
    pub tick_size_micros: u64,
    /// Base lot size (smallest tradable unit, in base micro-units).
    pub lot_size: u64,
    /// Initial margin, basis points of notional.
    pub initial_margin_bps: u32,
    /// Maintenance margin, basis points of notional.
    pub maintenance_margin_bps: u32,
    /// Used nonces kept per account.
    #[serde(default = "default_nonce_window")]
    pub nonce_window: u32,
    /// Trading fees and book limits.
    #[serde(default)]
    pub trading: TradingParams,
    /// Present on an options market (`[market.options]`): the market then lists option series on its
    /// oracle's underlying instead of trading a perpetual, and has no funding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<OptionsParams>,
}

/// What an options market lists and accepts. Every limit is explicit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptionsParams {
    /// Strikes are multiples of this, micro-USD.
    pub strike_tick_micros: u64,
    /// Expiries are multiples of this, ms since the Unix epoch.
    pub expiry_step_ms: u64,
    /// Least time between a listing and its expiry, ms.
    pub min_tenor_ms: u64,
    /// Most time between a listing and its expiry, ms.
    pub max_tenor_ms: u64,
    /// Expiries with live series at once.
    pub max_expiries: u32,
    /// Series per expiry.
    pub max_series_per_expiry: u32,
    /// Least volatility an update may carry, parts per million.
    pub min_vol_ppm: u32,
    /// Most volatility an update may carry, parts per million.
    pub max_vol_ppm: u32,
    /// Points in one volatility update.
    pub max_vol_points: u32,
    /// Initial margin of a short at the money, basis points of spot.
    pub im_spot_max_bps: u32,
    /// Least initial margin of a short, basis points of spot.
    pub im_spot_min_bps: u32,
    /// Maintenance margin of a short, basis points of spot.
    pub mm_spot_bps: u32,
    /// Least maintenance margin of a short put, basis points of its mark.
    pub mm_put_mark_bps: u32,
    /// Series one account may hold a position in.
    pub max_series_per_account: u32,
    /// Window before an expiry over which its settlement price averages the oracle, ms.
    pub settle_window_ms: u64,
    /// Age beyond which an expiry's volatility is stale and its series take only reduce-only orders, ms.
    pub vol_max_age_ms: u64,
    /// Largest move of an expiry's volatility at any strike in one update, ppm, before its series turn
    /// post-only; 0 disables the breaker.
    pub vol_band_ppm: u32,
    /// How long a tripped volatility band keeps the expiry post-only, ms.
    pub vol_band_cooldown_ms: u64,
    /// How long after an expiry the oracle has to fix its settlement price before the admin may, ms.
    pub settle_grace_ms: u64,
    /// Portfolio margin's largest spot move, basis points of spot; 0: the market offers no portfolio margin.
    pub pm_spot_shock_bps: u32,
    /// Portfolio margin's volatility rise, basis points of the volatility.
    pub pm_vol_up_bps: u32,
    /// Portfolio margin's volatility fall, basis points of the volatility (below 10,000).
    pub pm_vol_down_bps: u32,
    /// Portfolio margin's contingency per unit sold short, basis points of spot.
    pub pm_contingency_bps: u32,
    /// Portfolio initial margin as a multiple of its maintenance, basis points (10,000 to 30,000).
    pub pm_im_scale_bps: u32,
}

impl Default for OptionsParams {
    fn default() -> Self {
        Self {
            strike_tick_micros: 1_000_000,
            expiry_step_ms: 3_600_000,
            min_tenor_ms: 3_600_000,
            max_tenor_ms: 365 * 86_400_000,
            max_expiries: 16,
            max_series_per_expiry: 64,
            min_vol_ppm: 10_000,
            max_vol_ppm: 5_000_000,
            max_vol_points: 64,
            im_spot_max_bps: 1_500,
            im_spot_min_bps: 1_000,
            mm_spot_bps: 750,
            mm_put_mark_bps: 750,
            max_series_per_account: 32,
            settle_window_ms: 1_800_000,
            vol_max_age_ms: 300_000,
            vol_band_ppm: 300_000,
            vol_band_cooldown_ms: 60_000,
            settle_grace_ms: 3_600_000,
            pm_spot_shock_bps: 2_000,
            pm_vol_up_bps: 5_000,
            pm_vol_down_bps: 2_500,
            pm_contingency_bps: 100,
            pm_im_scale_bps: 12_500,
        }
    }
}

impl OptionsParams {
    /// As stored in the market record.
    pub fn to_pb(&self) -> pb::OptionsParams {
        pb::OptionsParams {
            strike_tick_micros: self.strike_tick_micros,
            expiry_step_ms: self.expiry_step_ms,
            min_tenor_ms: self.min_tenor_ms,
            max_tenor_ms: self.max_tenor_ms,
            max_expiries: self.max_expiries,
            max_series_per_expiry: self.max_series_per_expiry,
            min_vol_ppm: self.min_vol_ppm,
            max_vol_ppm: self.max_vol_ppm,
            max_vol_points: self.max_vol_points,
            im_spot_max_bps: self.im_spot_max_bps,
            im_spot_min_bps: self.im_spot_min_bps,
            mm_spot_bps: self.mm_spot_bps,
            mm_put_mark_bps: self.mm_put_mark_bps,
            max_series_per_account: self.max_series_per_account,
            settle_window_ms: self.settle_window_ms,
            vol_max_age_ms: self.vol_max_age_ms,
            vol_band_ppm: self.vol_band_ppm,
            vol_band_cooldown_ms: self.vol_band_cooldown_ms,
            settle_grace_ms: self.settle_grace_ms,
            pm_spot_shock_bps: self.pm_spot_shock_bps,
            pm_vol_up_bps: self.pm_vol_up_bps,
            pm_vol_down_bps: self.pm_vol_down_bps,
            pm_contingency_bps: self.pm_contingency_bps,
            pm_im_scale_bps: self.pm_im_scale_bps,
        }
    }
}

fn default_nonce_window() -> u32 {
    DEFAULT_NONCE_WINDOW
}

/// Fees, book limits and oracle freshness of a market. Every limit is explicit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TradingParams {
    /// Maker fee, basis points of fill notional.
    pub maker_fee_bps: u32,
    /// Taker fee, basis points of fill notional.
    pub taker_fee_bps: u32,
    /// Price levels per book side.
    pub max_price_levels: u32,
    /// Resting orders per account.
    pub max_open_orders: u32,
    /// Fills one incoming order may make.
    pub max_fills_per_order: u32,
    /// Largest order, lots.
    pub max_order_lots: u64,
    /// Oracle price age beyond which it is stale, ms.
    pub oracle_max_age_ms: u64,
    /// How far ahead of block time an oracle timestamp may be, ms.
    pub oracle_max_future_ms: u64,
    /// Liquidation penalty, basis points of the liquidated notional.
    pub liquidation_penalty_bps: u32,
    /// The liquidator's share of the penalty, basis points of it.
    pub liquidator_share_bps: u32,
    /// Lots liquidated per block, across all accounts.
    pub max_liquidation_lots_per_block: u64,
    /// Circuit breaker: largest move from the reference price within the window, basis points.
    pub price_band_bps: u32,
    /// Circuit breaker window, ms.
    pub price_band_window_ms: u64,
    /// How long a tripped breaker keeps the market post-only, ms.
    pub band_cooldown_ms: u64,
    /// Insurance fund floor below which the market becomes reduce-only; 0 disables it.
    pub insurance_floor_micros: u64,
    /// Funding interval, ms; 0 disables funding.
    pub funding_interval_ms: u64,
    /// Largest funding step per interval, basis points of a lot's notional.
    pub funding_clamp_bps: u32,
    /// Open positions per side; bounds the work of auto-deleveraging.
    pub max_positions_per_side: u32,
    /// Least initial margin of an account with a position or a resting order, micro-USD: what occupying
    /// one of the bounded positions per side (or a share of the book's price levels) costs at least.
    pub min_initial_margin_micros: u64,
}

impl Default for TradingParams {
    fn default() -> Self {
        Self {
            maker_fee_bps: 2,
            taker_fee_bps: 5,
            max_price_levels: 512,
            max_open_orders: 128,
            max_fills_per_order: 64,
            max_order_lots: 1_000_000,
            oracle_max_age_ms: 10_000,
            oracle_max_future_ms: 2_000,
            liquidation_penalty_bps: 100,
            liquidator_share_bps: 5_000,
            max_liquidation_lots_per_block: 100_000,
            price_band_bps: 1_500,
            price_band_window_ms: 60_000,
            band_cooldown_ms: 30_000,
            insurance_floor_micros: 0,
            funding_interval_ms: 3_600_000,
            funding_clamp_bps: 50,
            max_positions_per_side: 4_096,
            min_initial_margin_micros: DEFAULT_MIN_INITIAL_MARGIN_MICROS,
        }
    }
}

/// Authority keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorities {
    /// Signs deposits (the on-ramp).
    pub deposit: AccountId,
    /// Signs oracle prices.
    pub oracle: AccountId,
    /// Changes market modes.
    pub admin: AccountId,
}

/// A genesis file could not be read or cannot start a shard; names the file.
#[derive(Debug, thiserror::Error)]
pub enum GenesisFileError {
    /// The file could not be read.
    #[error("reading genesis {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Its content is not a valid genesis.
    #[error("genesis {path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        source: GenesisError,
    },
}

/// A genesis value that cannot start a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// TOML syntax or shape.
    #[error("genesis does not parse: {0}")]
    Parse(String),
    /// A value out of range.
    #[error("genesis field {field}: {problem}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl Genesis {
    /// A valid BTC-PERP genesis on chain 1, shard 1, with fixed time and market parameters: the base of
    /// tests and fixtures, which change the fields they care about.
    ///
    /// # Panics
    /// If `validator` is not a valid ed25519 key (fixtures pass `Keypair::account()`).
    pub fn example(authorities: Authorities, validator: AccountId) -> Self {
        #[allow(clippy::expect_used)]
        let validators = ValidatorSet::equal(&[validator]).expect("fixture validator key is an ed25519 key");
        Self {
            chain_id: ChainId(1),
            shard_id: ShardId(1),
            genesis_time_ms: 1_700_000_000_000,
            market: MarketParams {
                symbol: "BTC-PERP".into(),
                tick_size_micros: 100_000,
                lot_size: 1_000,
                initial_margin_bps: 1_000,
                maintenance_margin_bps: 500,
                nonce_window: DEFAULT_NONCE_WINDOW,
                trading: TradingParams::default(),
                options: None,
            },
            authorities,
            validators,
            coordinator: None,
            peers: Vec::new(),
            bridge_retention_blocks: DEFAULT_BRIDGE_RETENTION_BLOCKS,
        }
    }

    /// [`Genesis::example`] as an ETH options market (`ETH-OPTIONS`): premium tick $0.01, lots of 0.001 ETH,
    /// default option limits (strikes on $1, expiries on the hour), no funding.
    pub fn example_options(authorities: Authorities, validator: AccountId) -> Self {
        let mut g = Self::example(authorities, validator);
        g.market.symbol = "ETH-OPTIONS".into();
        g.market.tick_size_micros = 10_000;
        g.market.trading.funding_interval_ms = 0;
        g.market.options = Some(OptionsParams::default());
        g
    }

    /// Parses and validates a genesis TOML document.
    pub fn from_toml(s: &str) -> Result<Self, GenesisError> {
        let g: Self = toml::from_str(s).map_err(|e| {
            let legacy = s.lines().any(|l| l.trim_start().starts_with("sequencers"));
            if legacy {
                GenesisError::Invalid {
                    field: "sequencers",
                    problem: "this genesis predates validator sets: a genesis lists `[[validators]]` with `key` and \
                              `power`; recreate the network (e.g. `testnet down`, remove its directory, `testnet up`)"
                        .into(),
                }
            } else {
                GenesisError::Parse(e.to_string())
            }
        })?;
        g.validate()?;
        Ok(g)
    }

    /// Reads, parses and validates a genesis file.
    pub fn read_file(path: &std::path::Path) -> Result<Self, GenesisFileError> {
        let name = || path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GenesisFileError::Read { path: name(), source })?;
        Self::from_toml(&text).map_err(|source| GenesisFileError::Invalid { path: name(), source })
    }

    /// Serializes as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every field is usable.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let invalid = |field, problem: &str| Err(GenesisError::Invalid { field, problem: problem.to_owned() });
        let m = &self.market;
        if m.symbol.is_empty() || m.symbol.len() > 32 {
            return invalid("market.symbol", "must be 1 to 32 characters");
        }
        if m.tick_size_micros == 0 || m.lot_size == 0 {
            return invalid("market.tick_size_micros/lot_size", "must be positive");
        }
        if m.maintenance_margin_bps == 0
            || m.maintenance_margin_bps > m.initial_margin_bps
            || m.initial_margin_bps > 10_000
        {
            return invalid("market.*_margin_bps", "need 0 < maintenance <= initial <= 10000");
        }
        if m.nonce_window == 0 || m.nonce_window > 1024 {
            return invalid("market.nonce_window", "must be 1 to 1024");
        }
        let retention = self.bridge_retention_blocks;
        if retention != 0 && !(MIN_BRIDGE_RETENTION_BLOCKS..=MAX_BRIDGE_RETENTION_BLOCKS).contains(&retention) {
            return invalid("bridge_retention_blocks", "must be 0 (keep every record) or 16 to 100000000");
        }
        let t = &m.trading;
        if t.maker_fee_bps > 1_000 || t.taker_fee_bps > 1_000 {
            return invalid("market.trading.*_fee_bps", "must be at most 1000 (10%)");
        }
        if !(1..=4096).contains(&t.max_price_levels) || !(1..=4096).contains(&t.max_open_orders) {
            return invalid("market.trading.max_price_levels/max_open_orders", "must be 1 to 4096");
        }
        if !(1..=1024).contains(&t.max_fills_per_order) || t.max_order_lots == 0 {
            return invalid("market.trading.max_fills_per_order/max_order_lots", "fills 1 to 1024, lots positive");
        }
        if t.liquidation_penalty_bps > 2_000 || t.liquidator_share_bps > 10_000 || t.max_liquidation_lots_per_block == 0
        {
            return invalid(
                "market.trading.liquidation_*",
                "penalty at most 2000 bps, share at most 10000, cap positive",
            );
        }
        if t.liquidation_penalty_bps >= m.maintenance_margin_bps {
            return invalid("market.trading.liquidation_penalty_bps", "must be below the maintenance margin");
        }
        if !(1..=10_000).contains(&t.price_band_bps) || t.price_band_window_ms == 0 {
            return invalid("market.trading.price_band_*", "band 1 to 10000 bps, window positive");
        }
        // Auto-deleveraging ranks every opposite position in one op: this bound keeps that op within the tx
        // gas limit.
        if !(1..=8_192).contains(&t.max_positions_per_side) {
            return invalid("market.trading.max_positions_per_side", "must be 1 to 8192");
        }
        if t.min_initial_margin_micros > MAX_MIN_INITIAL_MARGIN_MICROS {
            return invalid("market.trading.min_initial_margin_micros", "must be at most 1000000000000 (1M USD)");
        }
        if t.funding_clamp_bps > 1_000 {
            return invalid("market.trading.funding_clamp_bps", "must be at most 1000 (10% per interval)");
        }
        if t.oracle_max_age_ms == 0 {
            return invalid("market.trading.oracle_max_age_ms", "must be positive");
        }
        if let Some(options) = &m.options {
            crate::option::series::check_params(&options.to_pb())
                .or_else(|problem| invalid("market.options", &problem))?;
            if t.funding_interval_ms != 0 {
                return invalid("market.trading.funding_interval_ms", "must be 0 on an options market (no funding)");
            }
        }
        if let Some(coordinator) = &self.coordinator {
            if let Err(e) = crate::signing::check_signer(coordinator) {
                return invalid("coordinator", &format!("must be an ed25519 public key that can sign: {e}"));
            }
            if self.validators.contains(coordinator) {
                return invalid("coordinator", "must differ from every validator key");
            }
        }
        self.validate_peers()
    }

    /// `[[peers]]`: at most [`MAX_PEERS`], each another shard than this one (and not shard 0), listed once,
    /// with a valid set (checked when it was built or parsed) that does not hold the coordinator key, so
    /// that no single key both commits an epoch and certifies a peer's header.
    fn validate_peers(&self) -> Result<(), GenesisError> {
        let invalid = |problem: String| Err(GenesisError::Invalid { field: "peers", problem });
        if self.peers.len() > MAX_PEERS {
            return invalid(format!("{} peers, at most {MAX_PEERS} are allowed", self.peers.len()));
        }
        for (i, p) in self.peers.iter().enumerate() {
            if p.shard_id.0 == 0 || p.shard_id == self.shard_id {
                return invalid(format!(
                    "peer shard {} must be another shard than this one ({})",
                    p.shard_id, self.shard_id
                ));
            }
            if self.peers[..i].iter().any(|q| q.shard_id == p.shard_id) {
                return invalid(format!("shard {} is listed twice", p.shard_id));
            }
            if let Some(c) = self.coordinator.filter(|c| p.validators.contains(c)) {
                return invalid(format!("the validator set of shard {} holds the coordinator key {c}", p.shard_id));
            }
        }
        Ok(())
    }

    /// The peer records written at genesis: each peer's validator set at its shard's key.
    pub fn peer_records(&self) -> Vec<(ShardId, pb::BridgePeerRecord)> {
        self.peers.iter().map(|p| (p.shard_id, peer_record(&p.validators))).collect()
    }

    /// The market record written at genesis.
    pub fn market_record(&self) -> pb::MarketRecord {
        let m = &self.market;
        pb::MarketRecord {
            symbol: m.symbol.clone(),
            kind: if m.options.is_some() { pb::MarketKind::Options } else { pb::MarketKind::Perpetual } as i32,
            mode: pb::MarketMode::Normal as i32,
            tick_size_micros: m.tick_size_micros,
            lot_size: m.lot_size,
            initial_margin_bps: m.initial_margin_bps,
            maintenance_margin_bps: m.maintenance_margin_bps,
            deposit_authority: self.authorities.deposit.0.to_vec(),
            oracle_key: self.authorities.oracle.0.to_vec(),
            admin_key: self.authorities.admin.0.to_vec(),
            nonce_window: m.nonce_window,
            maker_fee_bps: m.trading.maker_fee_bps,
            taker_fee_bps: m.trading.taker_fee_bps,
            max_price_levels: m.trading.max_price_levels,
            max_open_orders: m.trading.max_open_orders,
            max_fills_per_order: m.trading.max_fills_per_order,
            max_order_lots: m.trading.max_order_lots,
            oracle_max_age_ms: m.trading.oracle_max_age_ms,
            oracle_max_future_ms: m.trading.oracle_max_future_ms,
            liquidation_penalty_bps: m.trading.liquidation_penalty_bps,
            liquidator_share_bps: m.trading.liquidator_share_bps,
            max_liquidation_lots_per_block: m.trading.max_liquidation_lots_per_block,
            mode_cause: pb::ModeCause::Genesis as i32,
            mode_since_ms: self.genesis_time_ms,
            mode_until_ms: 0,
            price_band_bps: m.trading.price_band_bps,
            price_band_window_ms: m.trading.price_band_window_ms,
            band_cooldown_ms: m.trading.band_cooldown_ms,
            insurance_floor_micros: m.trading.insurance_floor_micros,
            funding_interval_ms: m.trading.funding_interval_ms,
            funding_clamp_bps: m.trading.funding_clamp_bps,
            max_positions_per_side: m.trading.max_positions_per_side,
            min_initial_margin_micros: m.trading.min_initial_margin_micros,
            coordinator_key: self.coordinator.map(|c| c.0.to_vec()).unwrap_or_default(),
            bridge_retention_blocks: self.bridge_retention_blocks,
            options: m.options.as_ref().map(OptionsParams::to_pb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_files_are_read_and_their_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("shardex-genesis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let g = Genesis::example(
            Authorities { deposit: AccountId([1; 32]), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) },
            crate::Keypair::from_seed([4; 32]).account(),
        );
        let (good, bad, missing) = (dir.join("good.toml"), dir.join("bad.toml"), dir.join("missing.toml"));
        std::fs::write(&good, g.to_toml()).expect("write");
        std::fs::write(&bad, "chain_id = 1\nbogus = 2").expect("write");
        assert_eq!(Genesis::read_file(&good).expect("good"), g);
        let e = Genesis::read_file(&bad).expect_err("bad");
        assert!(matches!(e, GenesisFileError::Invalid { source: GenesisError::Parse(_), .. }), "{e}");
        assert!(e.to_string().contains("bad.toml"), "{e}");
        let e = Genesis::read_file(&missing).expect_err("missing");
        assert!(matches!(e, GenesisFileError::Read { .. }) && e.to_string().contains("missing.toml"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn toml_round_trip_and_validation() {
        let g = Genesis::example(
            Authorities { deposit: AccountId([1; 32]), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) },
            crate::Keypair::from_seed([4; 32]).account(),
        );
        assert_eq!(Genesis::from_toml(&g.to_toml()), Ok(g.clone()));
        let mut bad = g.clone();
        bad.market.maintenance_margin_bps = 2_000;
        assert!(Genesis::from_toml(&bad.to_toml()).is_err());
        assert!(matches!(Genesis::from_toml("chain_id = 1\nbogus = 2"), Err(GenesisError::Parse(_))));
    }

    #[test]
    fn a_genesis_from_before_validator_sets_says_so() {
        let g = Genesis::example(
            Authorities { deposit: AccountId([1; 32]), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) },
            crate::Keypair::from_seed([4; 32]).account(),
        );
        let key = g.validators.keys().next().expect("one validator");
        let text = g.to_toml();
        assert!(text.contains("[[validators]]") && text.contains(&key.to_hex()), "{text}");
        let start = text.find("[[validators]]").expect("validators table");
        let legacy = format!("sequencers = [\"{key}\"]\n{}", &text[..start]);
        let err = Genesis::from_toml(&legacy).expect_err("old format refused");
        assert!(matches!(err, GenesisError::Invalid { field: "sequencers", .. }), "{err}");
        assert!(err.to_string().contains("[[validators]]"), "{err}");
    }

    #[test]
    fn coordinator_key_round_trips_and_is_validated() {
        let mut g = Genesis::example(
            Authorities { deposit: AccountId([1; 32]), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) },
            crate::Keypair::from_seed([4; 32]).account(),
        );
        assert!(!g.to_toml().contains("coordinator"), "absent key stays absent");
        let key = crate::Keypair::from_seed([5; 32]).account();
        g.coordinator = Some(key);
        let toml = g.to_toml();
        assert!(toml.contains(&format!("coordinator = \"{key}\"")), "{toml}");
        assert_eq!(Genesis::from_toml(&toml), Ok(g.clone()));
        assert_eq!(g.market_record().coordinator_key, key.0.to_vec());
        g.coordinator = g.validators.keys().next();
        assert!(matches!(g.validate(), Err(GenesisError::Invalid { field: "coordinator", .. })));
    }

    fn peer(shard: u32, seeds: &[u8]) -> Peer {
        let keys: Vec<AccountId> = seeds.iter().map(|&b| crate::Keypair::from_seed([b; 32]).account()).collect();
        Peer { shard_id: ShardId(shard), validators: ValidatorSet::equal(&keys).expect("valid set") }
    }

    #[test]
    fn peers_round_trip_in_their_toml_form_and_become_records() {
        let mut g = Genesis::example(
            Authorities { deposit: AccountId([1; 32]), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) },
            crate::Keypair::from_seed([4; 32]).account(),
        );
        assert!(!g.to_toml().contains("peers"), "no peers, no table: older genesis files read the same");
        g.coordinator = Some(crate::Keypair::from_seed([5; 32]).account());
        g.peers = vec![peer(2, &[20, 21, 22, 23]), peer(3, &[30])];
        let text = g.to_toml();
        assert!(text.contains("[[peers]]") && text.contains("[[peers.validators]]"), "{text}");
        assert_eq!(Genesis::from_toml(&text), Ok(g.clone()));

        // The form an operator writes by hand.
        let k = crate::Keypair::from_seed([20; 32]).account();
        let by_hand = format!(
            "{}\n[[peers]]\nshard_id = 7\nvalidators = [{{ key = \"{k}\", power = 3 }}]\n",
            Genesis { peers: Vec::new(), ..g.clone() }.to_toml()
        );
        let parsed = Genesis::from_toml(&by_hand).expect("inline validators parse");
        assert_eq!(parsed.peers.len(), 1);
        assert_eq!(parsed.peers[0].shard_id, ShardId(7));
        assert_eq!(parsed.peers[0].validators.total_power(), 3);

        let records = g.peer_records();
        assert_eq!(records.iter().map(|(s, _)| s.0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(crate::bridge::peer_set(&records[0].1), Ok(Some(g.peers[0].validators.clone())));
    }

    #[test]
    fn peers_are_validated() {
        let mut g = Genesis::example(
            Authorities { deposit: AccountId([1; 32]), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) },
            crate::Keypair::from_seed([4; 32]).account(),
        );
        g.coordinator = Some(crate::Keypair::from_seed([5; 32]).account());
        let refused = |peers: Vec<Peer>| {
            let bad = Genesis { peers, ..g.clone() };
            let err = bad.validate().expect_err("refused");
            assert!(matches!(err, GenesisError::Invalid { field: "peers", .. }), "{err}");
            assert!(Genesis::from_toml(&bad.to_toml()).is_err(), "the file is refused too");
            err.to_string()
        };
        assert!(refused(vec![peer(1, &[20])]).contains("another shard"), "its own shard");
        assert!(refused(vec![peer(0, &[20])]).contains("another shard"), "shard 0 is no shard");
        assert!(refused(vec![peer(2, &[20]), peer(2, &[21])]).contains("listed twice"));
        assert!(refused(vec![peer(2, &[20, 5])]).contains("coordinator key"));
        let many: Vec<Peer> = (2..=crate::bridge::MAX_PEERS as u32 + 2).map(|s| peer(s, &[20])).collect();
        assert!(refused(many).contains("at most 64"));
        let most: Vec<Peer> = (2..crate::bridge::MAX_PEERS as u32 + 2).map(|s| peer(s, &[20])).collect();
        assert_eq!(Genesis { peers: most, ..g.clone() }.validate(), Ok(()));
        // A set that is not valid never parses (the set's own checks).
        let dup = format!(
            "{}\n[[peers]]\nshard_id = 2\nvalidators = [{{ key = \"{k}\", power = 1 }}, {{ key = \"{k}\", power = 1 }}]\n",
            g.to_toml(),
            k = crate::Keypair::from_seed([20; 32]).account()
        );
        let err = Genesis::from_toml(&dup).expect_err("duplicate validator refused");
        assert!(err.to_string().contains("listed twice"), "{err}");
        let empty = format!("{}\n[[peers]]\nshard_id = 2\nvalidators = []\n", g.to_toml());
        assert!(Genesis::from_toml(&empty).is_err(), "an empty set is refused");
    }

    #[test]
    fn an_options_market_round_trips_and_is_validated() {
        let g = Genesis::example_options(
            Authorities { deposit: AccountId([1; 32]), oracle: AccountId([2; 32]), admin: AccountId([3; 32]) },
            crate::Keypair::from_seed([4; 32]).account(),
        );
        let text = g.to_toml();
        assert!(text.contains("[market.options]"), "{text}");
        assert_eq!(Genesis::from_toml(&text), Ok(g.clone()));
        let record = g.market_record();
        assert_eq!(record.kind, pb::MarketKind::Options as i32);
        assert_eq!(record.options, Some(OptionsParams::default().to_pb()));
        let perp = Genesis { market: MarketParams { options: None, ..g.market.clone() }, ..g.clone() };
        assert_eq!((perp.market_record().kind, perp.market_record().options), (pb::MarketKind::Perpetual as i32, None));

        let by_hand = text.replace("max_expiries = 16", "max_expiries = 0");
        let err = Genesis::from_toml(&by_hand).expect_err("no expiries");
        assert!(matches!(err, GenesisError::Invalid { field: "market.options", .. }), "{err}");
        assert!(err.to_string().contains("max_expiries must be 1 to 64"), "{err}");
        // Portfolio margin: off with a zero shock, else every shock within its bounds.
        let off = text.replace("pm_spot_shock_bps = 2000", "pm_spot_shock_bps = 0");
        assert_eq!(
            Genesis::from_toml(&off).map(|g| g.market_record().options.map(|o| o.pm_spot_shock_bps)),
            Ok(Some(0))
        );
        let wild = text.replace("pm_spot_shock_bps = 2000", "pm_spot_shock_bps = 6000");
        let err = Genesis::from_toml(&wild).expect_err("shock above 50%");
        assert!(err.to_string().contains("pm_spot_shock_bps must be 100 to 5000"), "{err}");
        let mut funded = g.clone();
        funded.market.trading.funding_interval_ms = 60_000;
        let err = funded.validate().expect_err("funding on options");
        assert!(matches!(err, GenesisError::Invalid { field: "market.trading.funding_interval_ms", .. }), "{err}");
        // Defaults fill what an operator leaves out.
        let short = text.replace("max_vol_points = 64\n", "");
        assert_eq!(Genesis::from_toml(&short), Ok(g));
    }
}
