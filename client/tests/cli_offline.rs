//! The `shardex` CLI without a node: key files, argument errors, and a clear message when no node answers.

use std::process::Command;

fn shardex(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shardex")).args(args).output().expect("run shardex")
}

#[test]
fn keys_new_show_and_refuse_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("a.key");
    let path = key.to_str().expect("utf8");
    let new = shardex(&["keys", "new", "--out", path]);
    assert!(new.status.success());
    let account = String::from_utf8_lossy(&new.stdout).trim().to_owned();
    assert_eq!(account.len(), 64);
    let show = shardex(&["keys", "show", path]);
    assert_eq!(String::from_utf8_lossy(&show.stdout).trim(), account);
    let again = shardex(&["keys", "new", "--out", path]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secret key file must not be readable by others");
    }
}

#[test]
fn unreachable_node_and_bad_key_are_clear_errors() {
    let out = shardex(&["--node", "http://127.0.0.1:9", "status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to http://127.0.0.1:9"));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not hex").expect("write");
    let out = shardex(&["keys", "show", bad.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ed25519 secret key"));
}

#[test]
fn completion_scripts_name_every_command_and_bad_shells_are_refused() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = shardex(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8_lossy(&out.stdout);
        for command in ["deposit", "order", "history", "transfer", "completions"] {
            assert!(script.contains(command), "{shell}: no {command} in the script");
        }
    }
    // Works without a node: nothing is dialled.
    let out = shardex(&["--node", "http://127.0.0.1:9", "completions", "bash"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("_shardex"));
    let out = shardex(&["completions", "tcsh"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"));
}
