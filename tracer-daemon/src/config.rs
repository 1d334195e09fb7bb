//! Daemon configuration: the TOML file (`/etc/tracer/tracer.toml`) and the
//! command-line flags that override it.
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::persist::{Fsync, StoreConfig};
use std::time::Duration;

use serde::Deserialize;
use tracer_common::wire::{
    self, COMM_LEN, MAX_RULES, RULE_EXCLUDE, RULE_INCLUDE, RULE_MATCH_CGROUP, RULE_MATCH_COMM,
    RULE_MATCH_PID, RULE_MATCH_UID, SNAPSHOT_LIMIT_DEFAULT, SNAPSHOT_LIMIT_MAX,
};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/tracer";
pub const DEFAULT_LISTEN: &str = "unix:/run/tracer/tracer.sock";
pub const DEFAULT_RING_SIZE: u32 = 64 << 20;
/// Niceness of the thread that assembles and stores events (the drain
/// thread and the API keep the default): the lowest, so that the recorder
/// gives way to what it records, and its backlog waits in memory meanwhile.
/// `cargo xtask bench --record-only`: dd ran 2.91x slower at 10, 2.51x at 19.
pub const DEFAULT_ASSEMBLER_NICE: i32 = 19;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Include,
    Exclude,
}

/// One filter rule; exactly one matcher is set.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FilterRule {
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub cgroup: Option<u64>,
    pub uid: Option<u32>,
    #[serde(default = "include")]
    pub action: Action,
    #[serde(default = "yes")]
    pub payload: bool,
    /// Record this rule's processes' time reads exactly (patch their
    /// vDSO); unset, the global `exact_time` decides.
    pub exact_time: Option<bool>,
}

fn include() -> Action {
    Action::Include
}
fn yes() -> bool {
    true
}

/// The `[store]` table: rotation, retention, fsync.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    pub segment_bytes: Option<u64>,
    pub segment_age_s: Option<u64>,
    pub retain_bytes: Option<u64>,
    pub retain_age_s: Option<u64>,
    pub fsync: Option<Fsync>,
}

impl StoreFile {
    pub fn apply(&self, c: &mut StoreConfig) {
        if let Some(v) = self.segment_bytes {
            c.segment_bytes = v;
        }
        if let Some(v) = self.segment_age_s {
            c.segment_age = Duration::from_secs(v);
        }
        if let Some(v) = self.retain_bytes {
            c.retain_bytes = v;
        }
        if let Some(v) = self.retain_age_s {
            c.retain_age = Duration::from_secs(v);
        }
        if let Some(v) = self.fsync {
            c.fsync = v;
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub store: StoreFile,
    /// PEM files for https listeners: the server's certificate and key, and
    /// the CA that client certificates must be signed by.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<Vec<String>>,
    pub snapshot_limit: Option<u32>,
    pub ring_size: Option<u32>,
    #[serde(default)]
    pub filter: Vec<FilterRule>,
    /// What happens to a task no rule matches.
    pub default_action: Option<Action>,
    pub default_payload: Option<bool>,
    /// Record every time read exactly (default true): the daemon makes each
    /// new program's vDSO time functions syscalls, which it records. Off,
    /// replay answers time reads from the recorded timeline.
    pub exact_time: Option<bool>,
    /// Niceness (-20..=19) of the thread that assembles and stores events.
    pub assembler_nice: Option<i32>,
    /// Serve Prometheus metrics at http://ADDR/metrics (`127.0.0.1:9464`).
    pub metrics: Option<String>,
}

/// The configuration in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: Vec<Listen>,
    pub snapshot_limit: u32,
    pub ring_size: u32,
    pub rules: Vec<FilterRule>,
    pub default_action: Action,
    pub default_payload: bool,
    pub exact_time: bool,
    pub assembler_nice: i32,
    pub store: StoreConfig,
    pub tls: Option<TlsFiles>,
    /// Where `/metrics` is served (plain HTTP, counts only), if anywhere.
    pub metrics: Option<String>,
}

/// What an https listener needs; client certificates are required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(String),
}

impl Listen {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                bail!("--listen {s}: empty socket path");
            }
            Ok(Self::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("https://") {
            Ok(Self::Tcp(a.to_owned()))
        } else {
            bail!("--listen {s}: expected unix:PATH or https://ADDR:PORT")
        }
    }
}

pub fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
}

impl Settings {
    pub fn from_file(file: Option<FileConfig>) -> anyhow::Result<Self> {
        let f = file.unwrap_or(FileConfig {
            store: StoreFile::default(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            data_dir: None,
            listen: None,
            snapshot_limit: None,
            ring_size: None,
            filter: vec![],
            default_action: None,
            default_payload: None,
            exact_time: None,
            assembler_nice: None,
            metrics: None,
        });
        let listen = f
            .listen
            .unwrap_or_else(|| vec![DEFAULT_LISTEN.to_owned()])
            .iter()
            .map(|s| Listen::parse(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let s = Self {
            data_dir: f
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen,
            snapshot_limit: f.snapshot_limit.unwrap_or(SNAPSHOT_LIMIT_DEFAULT),
            ring_size: f.ring_size.unwrap_or(DEFAULT_RING_SIZE),
            rules: f.filter,
            default_action: f.default_action.unwrap_or(Action::Include),
            default_payload: f.default_payload.unwrap_or(true),
            exact_time: f.exact_time.unwrap_or(true),
            assembler_nice: f.assembler_nice.unwrap_or(DEFAULT_ASSEMBLER_NICE),
            store: {
                let mut c = StoreConfig::default();
                f.store.apply(&mut c);
                c
            },
            tls: match (f.tls_cert, f.tls_key, f.tls_client_ca) {
                (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
                    cert,
                    key,
                    client_ca,
                }),
                (None, None, None) => None,
                _ => bail!("tls_cert, tls_key and tls_client_ca go together"),
            },
            metrics: f.metrics,
        };
        Ok(s)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.snapshot_limit > SNAPSHOT_LIMIT_MAX {
            bail!(
                "snapshot_limit {} is above the maximum {SNAPSHOT_LIMIT_MAX}",
                self.snapshot_limit
            );
        }
        if !self.ring_size.is_power_of_two() || self.ring_size < 4096 {
            bail!(
                "ring_size {} must be a power of two of at least 4096 bytes",
                self.ring_size
            );
        }
        if !(-20..=19).contains(&self.assembler_nice) {
            bail!("assembler_nice {} is outside -20..=19", self.assembler_nice);
        }
        if self.listen.iter().any(|l| matches!(l, Listen::Tcp(_))) && self.tls.is_none() {
            bail!(
                "an https listener needs tls_cert, tls_key and tls_client_ca (remote access requires client certificates)"
            );
        }
        if self.store.segment_bytes < 4096 {
            bail!(
                "store.segment_bytes {} is below 4096",
                self.store.segment_bytes
            );
        }
        if self.rules.len() > MAX_RULES {
            bail!(
                "{} filter rules; at most {MAX_RULES} are supported",
                self.rules.len()
            );
        }
        for (i, r) in self.rules.iter().enumerate() {
            let set = [
                r.pid.is_some(),
                r.comm.is_some(),
                r.cgroup.is_some(),
                r.uid.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if set != 1 {
                bail!("filter rule {i}: set exactly one of pid, comm, cgroup, uid");
            }
            if let Some(c) = &r.comm
                && (c.is_empty() || c.len() >= COMM_LEN)
            {
                bail!(
                    "filter rule {i}: comm {c:?} must be 1 to {} bytes",
                    COMM_LEN - 1
                );
            }
        }
        Ok(())
    }

    /// The kernel's view of the configuration.
    pub fn to_wire(&self, self_pid: u32) -> wire::Config {
        let mut c = wire::Config {
            self_pid,
            snapshot_limit: self.snapshot_limit,
            rule_count: self.rules.len().min(MAX_RULES) as u32,
            default_action: match self.default_action {
                Action::Include => RULE_INCLUDE,
                Action::Exclude => RULE_EXCLUDE,
            },
            default_payload: self.default_payload as u32,
            track_descendants: self.rules.iter().any(|r| r.pid.is_some()) as u32,
            // A quarter of the ring, at most 512 KiB: a batch big enough to
            // amortize the wakeup, small enough to leave room while the
            // reader wakes up.
            wake_bytes: (self.ring_size / 4).min(512 * 1024),
            default_exact_time: self.exact_time as u32,
            ..Default::default()
        };
        for (slot, r) in c.rules.iter_mut().zip(&self.rules) {
            slot.action = match r.action {
                Action::Include => RULE_INCLUDE,
                Action::Exclude => RULE_EXCLUDE,
            };
            slot.payload = r.payload as u32;
            slot.exact_time = r.exact_time.unwrap_or(self.exact_time) as u32;
            if let Some(p) = r.pid {
                slot.matcher = RULE_MATCH_PID;
                slot.value = p as u64;
            } else if let Some(u) = r.uid {
                slot.matcher = RULE_MATCH_UID;
                slot.value = u as u64;
            } else if let Some(g) = r.cgroup {
                slot.matcher = RULE_MATCH_CGROUP;
                slot.value = g;
            } else if let Some(comm) = &r.comm {
                slot.matcher = RULE_MATCH_COMM;
                let n = comm.len().min(COMM_LEN - 1);
                slot.comm[..n].copy_from_slice(&comm.as_bytes()[..n]);
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_documented_config() {
        let f: FileConfig = toml::from_str(
            r#"
            data_dir = "/tmp/x"
            listen = ["unix:/tmp/x/s"]
            snapshot_limit = 4096
            default_action = "exclude"
            assembler_nice = -5
            [store]
            retain_bytes = 1000000
            fsync = "batch"
            [[filter]]
            comm = "nginx"
            payload = false
            [[filter]]
            pid = 42
            "#,
        )
        .unwrap();
        let s = Settings::from_file(Some(f)).unwrap();
        s.validate().unwrap();
        let w = s.to_wire(7);
        assert_eq!(w.self_pid, 7);
        assert_eq!(w.rule_count, 2);
        assert_eq!(w.default_action, RULE_EXCLUDE);
        assert_eq!(w.rules[0].matcher, RULE_MATCH_COMM);
        assert_eq!(&w.rules[0].comm[..6], b"nginx\0");
        assert_eq!(w.rules[0].payload, 0);
        assert_eq!(w.rules[1].value, 42);
        assert_eq!(w.track_descendants, 1);
        assert_eq!(s.store.retain_bytes, 1_000_000);
        assert_eq!(s.store.fsync, Fsync::Batch);
        assert_eq!(s.store.segment_bytes, 64 << 20);
        assert_eq!(s.assembler_nice, -5);
    }

    #[test]
    fn rejects_bad_configs_with_a_reason() {
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
        let bad = FilterRule {
            pid: Some(1),
            comm: Some("x".into()),
            cgroup: None,
            uid: None,
            action: Action::Include,
            payload: true,
            exact_time: None,
        };
        let mut s = Settings::from_file(None).unwrap();
        s.rules = vec![bad];
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
        let mut s = Settings::from_file(None).unwrap();
        s.ring_size = 5000;
        assert!(s.validate().is_err());
        let mut s = Settings::from_file(None).unwrap();
        assert_eq!(s.assembler_nice, DEFAULT_ASSEMBLER_NICE);
        s.assembler_nice = 20;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("assembler_nice")
        );
        assert!(Listen::parse("tcp://x").is_err());
        assert_eq!(Listen::parse("unix:/a").unwrap(), Listen::Unix("/a".into()));
    }
}

#[cfg(test)]
mod readme {
    use super::*;

    /// The example in README.md is a valid configuration.
    #[test]
    fn the_documented_example_parses() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("```toml\n")
            .expect("a toml example in README.md")
            + 8;
        let end = start + readme[start..].find("```").expect("closing fence");
        let f: FileConfig = toml::from_str(&readme[start..end]).expect("README example parses");
        let s = Settings::from_file(Some(f)).expect("settings");
        s.validate().expect("valid");
        assert_eq!(s.rules.len(), 1);
    }
}
