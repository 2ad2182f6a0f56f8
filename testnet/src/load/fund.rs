//! Funding many accounts from the deposit key: the takers of a wide load, and `--prefill`'s accounts.
//!
//! Deposits are signed on every core, a batch at a time, while earlier batches are being sent; at most
//! [`FUND_IN_FLIGHT`] batches are unfinal at once, so funding a million accounts never fills the node's
//! mempool (50,000 txs by default) and is paced by what the node includes.

use std::collections::VecDeque;

use rayon::prelude::*;

use super::*;

/// Deposits per `SubmitBatch` while funding (the node's default `rpc.max_batch_txs`).
const FUND_BATCH: usize = 1024;
/// Funding batches sent but not yet final, at most.
const FUND_IN_FLIGHT: usize = 16;
/// Signed funding batches waiting to be sent, at most.
const FUND_SIGNED_AHEAD: usize = 8;
/// How often funding prints its progress (only funding longer than that prints any).
const FUND_PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// What each `--prefill` account holds.
const PREFILL_USD: u64 = 1_000;

/// The `i`-th `--prefill` account: `prefill\0`, zeros, then `i` big-endian. No key signs for it; the ids are the
/// same on every run, so a later run finds the accounts an earlier one funded.
pub(super) fn prefill_account(i: u64) -> AccountId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(b"prefill\0");
    id[24..].copy_from_slice(&i.to_be_bytes());
    AccountId(id)
}

/// How many of the prefill accounts `0..want` the shard holds already, by bisection: [`prefill`] funds them in
/// order from one key, so the funded ones are a prefix.
async fn prefilled(client: &ShardClient, want: u64) -> eyre::Result<u64> {
    let (mut funded, mut unfunded) = (0, want);
    while funded < unfunded {
        let mid = funded + (unfunded - funded) / 2;
        match client.account(&prefill_account(mid)).await.wrap_err("reading a prefill account")? {
            Some(_) => funded = mid + 1,
            None => unfunded = mid,
        }
    }
    Ok(funded)
}

/// Makes the shard of `client` hold the prefill accounts `0..want`, funding those it lacks with
/// [`PREFILL_USD`] each. Returns how many were funded now.
pub(super) async fn prefill(client: &ShardClient, deposit: &Keypair, name: &str, want: u64) -> eyre::Result<u64> {
    let have = prefilled(client, want).await?;
    if have >= want {
        return Ok(0);
    }
    let recipients = (have..want).map(|i| (prefill_account(i), PREFILL_USD * USD)).collect();
    fund(client, deposit, recipients, &format!("{name}: prefill accounts {have} to {want}")).await?;
    Ok(want - have)
}

/// Deposits each `(account, micro-USD)` of `recipients` from `deposit`, in order, and waits until the last is
/// final; `what` names the funding in errors and in the progress lines. Every deposit must be accepted.
pub(super) async fn fund(
    client: &ShardClient,
    deposit: &Keypair,
    recipients: Vec<(AccountId, u64)>,
    what: &str,
) -> eyre::Result<()> {
    let total = recipients.len();
    let first_nonce =
        Wallet::new(deposit.clone(), client).await.wrap_err("reading the deposit key's nonce")?.next_nonce();
    let (batches_tx, mut batches) = mpsc::channel::<Vec<pb::SignedTx>>(FUND_SIGNED_AHEAD);
    let (key, domain) = (deposit.clone(), client.domain());
    let signer = std::thread::Builder::new()
        .name("sign-funding".into())
        .spawn(move || {
            for (b, chunk) in recipients.chunks(FUND_BATCH).enumerate() {
                let base = first_nonce + (b * FUND_BATCH) as u64;
                let batch = chunk
                    .par_iter()
                    .enumerate()
                    .map(|(j, (account, micros))| {
                        let op = Op::Deposit(pb::Deposit { account: account.0.to_vec(), amount_micros: *micros });
                        sign_tx(&key, domain, base + j as u64, op)
                    })
                    .collect();
                if batches_tx.blocking_send(batch).is_err() {
                    return;
                }
            }
        })
        .wrap_err("starting the funding signer")?;
    let started = Instant::now();
    let mut printed = started;
    let (mut sent, mut unfinal) = (0usize, VecDeque::new());
    while let Some(batch) = batches.recv().await {
        let n = batch.len();
        let results = client.submit_batch(batch).await.wrap_err_with(|| format!("submitting {what}"))?;
        for r in &results {
            ensure!(r.accepted, "{what}: a deposit was refused: {} {}", r.reason, r.message);
        }
        if let Some(last) = results.last().and_then(|r| b256_from_slice(&r.tx_hash)) {
            unfinal.push_back(last);
        }
        if unfinal.len() > FUND_IN_FLIGHT {
            if let Some(hash) = unfinal.pop_front() {
                client.wait_final(hash, SETUP_FINAL).await.wrap_err_with(|| format!("{what} did not become final"))?;
            }
        }
        sent += n;
        if printed.elapsed() >= FUND_PROGRESS_EVERY {
            printed = Instant::now();
            let rate = sent as f64 / started.elapsed().as_secs_f64();
            println!("  {what}: {sent} of {total} deposits sent ({rate:.0}/s)");
        }
    }
    if signer.join().is_err() {
        bail!("{what}: the signing thread panicked");
    }
    if let Some(last) = unfinal.pop_back() {
        client.wait_final(last, SETUP_FINAL).await.wrap_err_with(|| format!("{what} did not become final"))?;
    }
    ensure!(sent == total, "{what}: {sent} of {total} deposits sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_accounts_are_distinct_and_fixed() {
        assert_ne!(prefill_account(0), prefill_account(1));
        assert_ne!(prefill_account(1), prefill_account(1 << 32));
        assert_eq!(&prefill_account(258).0[..8], b"prefill\0");
        assert_eq!(&prefill_account(258).0[24..], &[0, 0, 0, 0, 0, 0, 1, 2]);
    }
}
