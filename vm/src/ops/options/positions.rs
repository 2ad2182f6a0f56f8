//! Option positions: one record per (account, series), and per account the ascending list of the series it
//! holds a position in, kept in step so margin reads exactly those and never scans. A flat position is
//! deleted and leaves the list.

use prost::Message;
use shardex_core::{
    option::series::{self, SeriesId},
    pb, AccountId,
};

use crate::{error::ExecError, records::load_record, view::TxScope};

/// `account`'s position in `series` (default when it holds none).
pub fn load(scope: &mut TxScope<'_>, account: &AccountId, s: &SeriesId) -> Result<pb::OptionPositionRecord, ExecError> {
    load_record(scope, &series::position_key(account, s), "option position")
}

/// The series `account` holds positions in, ascending.
pub fn held(scope: &mut TxScope<'_>, account: &AccountId) -> Result<Vec<SeriesId>, ExecError> {
    let record: pb::AccountSeriesRecord = load_record(scope, &series::account_series_key(account), "account series")?;
    record
        .series
        .iter()
        .map(|bytes| {
            SeriesId::from_bytes(bytes).ok_or_else(|| ExecError::Corrupt {
                what: "account series",
                detail: format!("{} bytes name no series", bytes.len()),
            })
        })
        .collect()
}

/// Writes `account`'s position in `series`, adding the series to the account's list when it opens (refused
/// past `max_series`) and removing it when it closes.
pub fn store(
    scope: &mut TxScope<'_>,
    account: &AccountId,
    s: &SeriesId,
    record: &pb::OptionPositionRecord,
    max_series: u32,
) -> Result<(), ExecError> {
    let mut list = held(scope, account)?;
    let at = list.binary_search(s);
    let changed = match (at, record.size_lots != 0) {
        (Err(at), true) => {
            if list.len() >= max_series as usize {
                return Err(ExecError::InvalidOp(format!(
                    "the account holds positions in {} series, the market's limit; close one first",
                    list.len()
                )));
            }
            list.insert(at, *s);
            true
        }
        (Ok(at), false) => {
            list.remove(at);
            true
        }
        _ => false,
    };
    if changed {
        let series = list.iter().map(|s| s.to_bytes().to_vec()).collect();
        scope.write(series::account_series_key(account), pb::AccountSeriesRecord { series }.encode_to_vec());
    }
    let key = series::position_key(account, s);
    match record.size_lots {
        0 => scope.write(key, Vec::new()),
        _ => scope.write(key, record.encode_to_vec()),
    }
    Ok(())
}
