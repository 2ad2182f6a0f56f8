//! Config files: TOML sections, every value overridable by a `--section.key` flag, then checked.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("config {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A value is out of range.
    #[error("config value {key}: {problem}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// `[[shards]]`: one shard a service follows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardSection {
    /// gRPC endpoint of the shard node, e.g. `http://127.0.0.1:7100`.
    pub endpoint: String,
    /// The shard's genesis file: chain id, shard id and validator set come from it.
    pub genesis: PathBuf,
}

/// One shard of a `[[shards]]` list: its genesis and every endpoint listed for it, in list order.
#[derive(Debug, Clone)]
pub struct ShardEndpoints {
    /// The shard's genesis.
    pub genesis: shardex_core::genesis::Genesis,
    /// Its nodes' gRPC endpoints.
    pub endpoints: Vec<String>,
}

/// Reads the genesis of every `[[shards]]` entry and groups the entries by shard, in order of first mention:
/// entries naming one shard are its several endpoints and must name the same genesis and distinct
/// endpoints; all shards must be of one chain. Errors are `shards` config errors naming the problem.
pub fn group_shards(shards: &[ShardSection]) -> Result<Vec<ShardEndpoints>, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid { key: "shards", problem };
    let mut grouped: Vec<ShardEndpoints> = Vec::new();
    for s in shards {
        let g = shardex_core::genesis::Genesis::read_file(&s.genesis).map_err(|e| invalid(e.to_string()))?;
        if let Some(first) = grouped.first().filter(|f| f.genesis.chain_id != g.chain_id) {
            return Err(invalid(format!(
                "shard {} is on chain {}, shard {} on chain {}",
                g.shard_id, g.chain_id, first.genesis.shard_id, first.genesis.chain_id
            )));
        }
        match grouped.iter_mut().find(|known| known.genesis.shard_id == g.shard_id) {
            Some(known) if known.genesis != g => {
                return Err(invalid(format!(
                    "shard {} listed with two different genesis files ({})",
                    g.shard_id,
                    s.genesis.display()
                )))
            }
            Some(known) if known.endpoints.contains(&s.endpoint) => {
                return Err(invalid(format!("shard {} endpoint {} listed twice", g.shard_id, s.endpoint)))
            }
            Some(known) => known.endpoints.push(s.endpoint.clone()),
            None => grouped.push(ShardEndpoints { genesis: g, endpoints: vec![s.endpoint.clone()] }),
        }
    }
    Ok(grouped)
}

/// Replaces `shards` with the repeatable `--shard ENDPOINT=GENESIS` flags, when any were given.
pub fn set_shards(flags: &[String], shards: &mut Vec<ShardSection>) -> Result<(), ConfigError> {
    if flags.is_empty() {
        return Ok(());
    }
    *shards = flags
        .iter()
        .map(|s| match s.split_once('=') {
            Some((endpoint, genesis)) if !endpoint.is_empty() && !genesis.is_empty() => {
                Ok(ShardSection { endpoint: endpoint.to_owned(), genesis: PathBuf::from(genesis) })
            }
            _ => Err(ConfigError::Invalid { key: "shard", problem: format!("{s:?} is not ENDPOINT=GENESIS") }),
        })
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// The config in `file`, or the defaults when no file is given.
pub fn read_toml<T: DeserializeOwned + Default>(file: Option<&Path>) -> Result<T, ConfigError> {
    let Some(path) = file else { return Ok(T::default()) };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })
}

/// Sets `field` from a flag that was given.
pub fn set<T>(flag: Option<T>, field: &mut T) {
    if let Some(value) = flag {
        *field = value;
    }
}

/// The first failed check, as `(key, holds, problem)`, becomes the error.
pub fn check<'a>(checks: impl IntoIterator<Item = (&'static str, bool, &'a str)>) -> Result<(), ConfigError> {
    match checks.into_iter().find(|(_, holds, _)| !holds) {
        Some((key, _, problem)) => Err(ConfigError::Invalid { key, problem: problem.to_owned() }),
        None => Ok(()),
    }
}

/// The environment variable of the option `--long` under `prefix`: `{prefix}_{LONG}` in upper case, with `.`
/// and `-` as `_` (`--rpc.addr` of `SHARDEX_NODE` is `SHARDEX_NODE_RPC_ADDR`).
pub fn env_var_name(prefix: &str, long: &str) -> String {
    format!("{prefix}_{}", long.replace(['.', '-'], "_").to_uppercase())
}

/// Gives every option of `cmd` that takes a value an environment variable ([`env_var_name`]; an option whose
/// long name is not a `section.key` is named by its dotted alias when it has one). A flag on the command line
/// overrides its variable, which overrides the config file. Returns the command and every variable name.
pub fn with_env_vars(cmd: clap::Command, prefix: &str) -> (clap::Command, std::collections::BTreeSet<String>) {
    let mut names = std::collections::BTreeSet::new();
    let cmd = cmd.mut_args(|arg| {
        let Some(long) = arg.get_long() else { return arg };
        if !arg.get_action().takes_values() {
            return arg;
        }
        let dotted = arg.get_visible_aliases().into_iter().flatten().find(|a| a.contains('.'));
        let name = env_var_name(prefix, if long.contains('.') { long } else { dotted.unwrap_or(long) });
        names.insert(name.clone());
        arg.env(name)
    });
    (cmd, names)
}

/// Every key of `config` (its TOML form: `section.key`, nested tables joined with `.`) that no long flag or
/// alias of `cmd` sets (a key's flag is `--section.key` with `_` as `-`), leaving out `covered`: keys a flag
/// of another name sets, such as `shards` by the repeatable `--shard`. Each server's config test asserts the
/// result is empty, so no key can lack its flag, nor therefore its environment variable.
pub fn keys_without_flags<T: serde::Serialize>(config: &T, cmd: &clap::Command, covered: &[&str]) -> Vec<String> {
    fn walk(prefix: &str, table: &toml::Table, keys: &mut Vec<String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                toml::Value::Table(inner) => walk(&path, inner, keys),
                _ => keys.push(path),
            }
        }
    }
    let flags: std::collections::BTreeSet<String> = cmd
        .get_arguments()
        .flat_map(|a| a.get_long().into_iter().chain(a.get_all_aliases().into_iter().flatten()))
        .map(str::to_owned)
        .collect();
    let table = match toml::Table::try_from(config) {
        Ok(table) => table,
        Err(e) => return vec![format!("(the config does not serialize: {e})")],
    };
    let mut keys = Vec::new();
    walk("", &table, &mut keys);
    keys.into_iter().filter(|k| !covered.contains(&k.as_str()) && !flags.contains(&k.replace('_', "-"))).collect()
}

/// Parses the command line of `C` as [`clap::Parser::parse`] does, with [`with_env_vars`] under `prefix`. A
/// variable that starts with `{prefix}_` but names no option is refused (exit 2, listing it), so a misspelt
/// setting is never silently ignored.
pub fn parse_with_env<C: clap::Parser>(prefix: &str) -> C {
    let (mut cmd, names) = with_env_vars(C::command(), prefix);
    let ours = format!("{prefix}_");
    let unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(key, _)| key.into_string().ok())
        .filter(|key| key.starts_with(&ours) && !names.contains(key))
        .collect();
    if !unknown.is_empty() {
        let message = format!(
            "unknown environment variable {}: each setting's is {prefix}_<SECTION>_<KEY> (see --help)",
            unknown.join(", ")
        );
        cmd.error(clap::error::ErrorKind::UnknownArgument, message).exit();
    }
    let matches = cmd.get_matches();
    C::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Cfg {
        a: u64,
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[arg(long = "rpc.addr")]
        rpc_addr: Option<String>,
        #[arg(long = "sync", visible_alias = "sync.mode")]
        sync_mode: Option<String>,
        #[arg(long = "max-things")]
        max_things: Option<u32>,
        #[arg(long)]
        replay_check: bool,
    }

    #[test]
    fn every_option_with_a_value_gets_its_variable() {
        use clap::CommandFactory;
        let (cmd, names) = with_env_vars(Cli::command(), "SHARDEX_T");
        let expected = ["SHARDEX_T_MAX_THINGS", "SHARDEX_T_RPC_ADDR", "SHARDEX_T_SYNC_MODE"];
        assert_eq!(names.iter().map(String::as_str).collect::<Vec<_>>(), expected);
        let env_of = |long: &str| {
            let arg = cmd.get_arguments().find(|a| a.get_long() == Some(long)).expect("option");
            arg.get_env().map(|e| e.to_string_lossy().into_owned())
        };
        assert_eq!(env_of("rpc.addr").as_deref(), Some("SHARDEX_T_RPC_ADDR"));
        assert_eq!(env_of("sync").as_deref(), Some("SHARDEX_T_SYNC_MODE"), "named by its dotted alias");
        assert_eq!(env_of("replay-check"), None, "a switch takes no variable");
    }

    #[test]
    fn reads_overrides_and_checks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        assert_eq!(read_toml::<Cfg>(None).expect("defaults"), Cfg::default());
        assert!(matches!(read_toml::<Cfg>(Some(&path)), Err(ConfigError::Read { .. })));
        std::fs::write(&path, "a = 3\n").expect("write");
        let mut cfg: Cfg = read_toml(Some(&path)).expect("parses");
        assert_eq!(cfg.a, 3);
        set(Some(5), &mut cfg.a);
        set(None, &mut cfg.a);
        assert_eq!(cfg.a, 5);
        std::fs::write(&path, "b = 3\n").expect("write");
        assert!(matches!(read_toml::<Cfg>(Some(&path)), Err(ConfigError::Parse { .. })));
        let err = check([("x.a", true, "fine"), ("x.b", false, "must be positive")]).expect_err("fails");
        assert_eq!(err.to_string(), "config value x.b: must be positive");
    }

    #[test]
    fn keys_without_flags_names_every_uncovered_key() {
        #[derive(serde::Serialize)]
        struct Rpc {
            addr: String,
            max_message_bytes: u64,
            limits: Limits,
        }
        #[derive(serde::Serialize)]
        struct Limits {
            request_timeout_ms: u64,
        }
        #[derive(serde::Serialize)]
        struct Cfg {
            rpc: Rpc,
            shards: Vec<String>,
        }
        let cfg = Cfg {
            rpc: Rpc { addr: String::new(), max_message_bytes: 1, limits: Limits { request_timeout_ms: 1 } },
            shards: vec![],
        };
        let cmd = clap::Command::new("x")
            .arg(clap::Arg::new("a").long("rpc.addr"))
            .arg(clap::Arg::new("t").long("timeout").alias("rpc.limits.request-timeout-ms"));
        assert_eq!(keys_without_flags(&cfg, &cmd, &["shards"]), ["rpc.max_message_bytes"]);
        assert_eq!(keys_without_flags(&cfg, &cmd, &[]), ["rpc.max_message_bytes", "shards"]);
    }

    #[test]
    fn shards_group_by_genesis_and_bad_lists_are_refused() {
        use shardex_core::{genesis::Authorities, genesis::Genesis, ChainId, Keypair, ShardId};
        let dir = tempfile::tempdir().expect("tempdir");
        let key = || Keypair::generate().account();
        let authorities = Authorities { deposit: key(), oracle: key(), admin: key() };
        let write = |name: &str, shard: u32, chain: u64| {
            let mut g = Genesis::example(authorities.clone(), key());
            (g.shard_id, g.chain_id) = (ShardId(shard), ChainId(chain));
            let path = dir.path().join(name);
            std::fs::write(&path, g.to_toml()).expect("write");
            path
        };
        let (a, b, a2, other_chain) = (write("a", 1, 7), write("b", 2, 7), write("a2", 1, 7), write("c", 3, 8));
        let entry =
            |endpoint: &str, genesis: &Path| ShardSection { endpoint: endpoint.into(), genesis: genesis.into() };

        let grouped = group_shards(&[entry("http://a:1", &a), entry("http://b:1", &b), entry("http://a:2", &a)])
            .expect("one network");
        let shape: Vec<(u32, Vec<String>)> =
            grouped.iter().map(|g| (g.genesis.shard_id.0, g.endpoints.clone())).collect();
        assert_eq!(shape, [(1, vec!["http://a:1".into(), "http://a:2".into()]), (2, vec!["http://b:1".into()])]);

        for (list, says) in [
            (vec![entry("http://a:1", &a), entry("http://a:2", &a2)], "two different genesis files"),
            (vec![entry("http://a:1", &a), entry("http://a:1", &a)], "endpoint http://a:1 listed twice"),
            (vec![entry("http://a:1", &a), entry("http://c:1", &other_chain)], "shard 3 is on chain 8"),
            (vec![entry("http://x:1", &dir.path().join("missing"))], "missing"),
        ] {
            match group_shards(&list) {
                Err(ConfigError::Invalid { key: "shards", problem }) => assert!(problem.contains(says), "{problem}"),
                other => panic!("{says}: expected a refusal, got {other:?}"),
            }
        }
    }
}
