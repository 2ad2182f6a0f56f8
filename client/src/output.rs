//! `--output json`: every command can print one JSON document instead of its text. Money is an exact
//! decimal string of USD (`"1500.250000"`), never a float; hashes, keys and roots are hex without `0x`;
//! heights, lots and counts are numbers.

use serde_json::{json, Value};
use shardex_client::core::{pb, Usd};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Readable lines (the default).
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

impl Output {
    /// True for `--output json`.
    pub fn json(self) -> bool {
        self == Output::Json
    }
}

/// Prints `doc` as pretty JSON on stdout.
pub fn emit(doc: &Value) -> eyre::Result<()> {
    println!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}

/// Exact USD of signed micro-USD, e.g. `"-12.000345"`.
pub fn usd(micros: i64) -> String {
    let text = Usd::from_micros(micros).to_string();
    text.trim_end_matches(" USD").to_owned()
}

/// Exact USD of unsigned micro-USD.
pub fn usd_u(micros: u64) -> String {
    match i64::try_from(micros) {
        Ok(m) => usd(m),
        Err(_) => format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000),
    }
}

/// One event: the account it touches, its kind, and the line the text output shows for it.
pub fn event(e: &pb::Event) -> Value {
    let kind = e.kind.as_ref().map(|k| {
        let debug = format!("{k:?}");
        debug.split('(').next().unwrap_or_default().to_owned()
    });
    json!({
        "account": hex::encode(&e.account),
        "kind": kind,
        "description": crate::events::describe(e),
    })
}

/// A tx's status: `unknown`, `pending`, `included` (height, index, events) or `rejected` (reason, message).
pub fn tx_status(s: &pb::TxStatus) -> Value {
    use pb::tx_status::Status as S;
    let hash = hex::encode(&s.tx_hash);
    match &s.status {
        Some(S::Included(i)) => json!({
            "tx_hash": hash,
            "status": "included",
            "height": i.height,
            "index": i.index,
            "events": i.receipt.as_ref().map_or_else(Vec::new, |r| r.events.iter().map(event).collect()),
        }),
        Some(S::Pending(_)) => json!({ "tx_hash": hash, "status": "pending" }),
        Some(S::Rejected(r)) => {
            json!({ "tx_hash": hash, "status": "rejected", "reason": r.reason, "message": r.message })
        }
        Some(S::Unknown(_)) | None => json!({ "tx_hash": hash, "status": "unknown" }),
    }
}

/// An account record (null when the account has none).
pub fn account_record(r: Option<&pb::AccountRecord>) -> Value {
    match r {
        Some(r) => json!({
            "collateral_usd": usd(r.collateral_micros),
            "escrow_usd": usd_u(r.escrow_micros),
            "nonces": r.nonces,
            "portfolio_margin": r.portfolio_margin,
        }),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_and_events_name_their_kind() {
        assert_eq!(usd(-12_000_345), "-12.000345");
        assert_eq!(usd_u(1_500_250_000), "1500.250000");
        assert_eq!(usd_u(u64::MAX), "18446744073709.551615");
        let e = pb::Event {
            account: vec![1; 32],
            kind: Some(pb::event::Kind::CollateralChanged(pb::CollateralChanged {
                delta_micros: 5,
                balance_micros: 7,
                ..Default::default()
            })),
        };
        let v = event(&e);
        assert_eq!(v["kind"], "CollateralChanged");
        assert_eq!(v["account"], hex::encode([1; 32]));
        assert!(v["description"].as_str().is_some_and(|d| d.contains("collateral")), "{v}");
    }
}
