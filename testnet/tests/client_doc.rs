//! The Python client of `docs/clients.md`, run as written against a live network: every `python` block of
//! the page in order (scripts/run-client-doc.py), with the packages `scripts/client-setup.sh` installs
//! (`scripts/test.sh` runs it first). It discovers the API by reflection, signs txs, and verifies an
//! account from its proof; a rule the page states wrongly makes it fail.

mod support;

use std::{path::Path, process::Command};

use support::{bin_dir, testnet, text, Down};

#[test]
fn the_python_client_in_the_docs_runs_against_a_node() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("SHARDEX_CLIENT_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv-clients/bin/python"));
    assert!(python.exists(), "{} is missing: run scripts/client-setup.sh", python.display());
    let bins = bin_dir();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let up = testnet(&dir, &bins, &["up", "--base-port", "0", "--shards", "BTC-PERP", "--sequencers", "1"]);
    let _down = Down(&dir, &bins);
    let out = text(&up);
    assert!(up.status.success(), "{out}");
    let node = out
        .lines()
        .find_map(|l| l.strip_prefix("btc-perp-0")?.split_whitespace().nth(1)?.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("`up` names no endpoint for btc-perp-0: {out}"))
        .to_owned();

    let run = Command::new(&python)
        .arg(repo.join("scripts/run-client-doc.py"))
        .arg(repo.join("docs/clients.md"))
        .env("SHARDEX_NODE", &node)
        .env("SHARDEX_TESTNET_DIR", &dir)
        .output()
        .expect("run python");
    let said = text(&run);
    assert!(run.status.success(), "the client walkthrough failed:\n{said}");
    for line in [
        "services: ",
        "node: chain 31337, shard 1 (BTC-PERP)",
        "alice holds 1000.000000 USD, proven at height",
        "alice bids 2 lots at 99000.000000 USD",
        "nonce 5 again: NONCE_USED",
        "alice's nonces [0, 5]",
        "the walkthrough is complete",
    ] {
        assert!(said.contains(line), "missing {line:?} in:\n{said}");
    }
}
