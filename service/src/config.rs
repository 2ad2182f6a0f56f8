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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Cfg {
        a: u64,
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
}
