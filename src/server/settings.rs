//! The server's settings: built-in defaults, then `Leptos.toml`, then
//! environment variables, then command-line flags, each overriding the last.
//!
//! cargo-leptos reads its *build* settings from `[package.metadata.leptos]`
//! in `Cargo.toml`; `Leptos.toml` holds only what the running server needs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{builder::BoolishValueParser, Parser, ValueEnum};
use serde::Deserialize;

/// Slowest and fastest `--rate` besides 0, in posts per second.
pub const MIN_RATE: f64 = 0.001;
pub const MAX_RATE: f64 = 1_000_000.0;

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "Leptos.toml";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the settings file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Where posts come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Built-in generator: offline, no account.
    Demo,
    /// An NDJSON file of posts.
    Replay,
    /// X API v2 filtered stream.
    X,
    /// Bluesky Jetstream.
    Bluesky,
    /// Mastodon streaming API.
    Mastodon,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Demo => "demo",
            SourceKind::Replay => "replay",
            SourceKind::X => "x",
            SourceKind::Bluesky => "bluesky",
            SourceKind::Mastodon => "mastodon",
        }
    }
}

/// Options of the upstream source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSettings {
    pub kind: SourceKind,
    /// Posts per second for `demo` and `replay`; `Some(0.0)` means as fast as
    /// possible; `None` means the source's own pace.
    pub rate: Option<f64>,
    /// Seed of the demo generator: the same seed gives the same posts.
    pub seed: u64,
    pub replay_file: Option<PathBuf>,
    /// Start the replay file again when it ends.
    pub loop_replay: bool,
    /// Append every post received to this NDJSON replay file.
    pub record: Option<PathBuf>,
    pub x: XSettings,
    pub bluesky: BlueskySettings,
    pub mastodon: MastodonSettings,
}

/// The `x` source: X API v2 filtered stream (token: `X_BEARER_TOKEN`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XSettings {
    /// Base URL of the X API v2. Default `https://api.x.com`.
    pub api_url: String,
    /// Rules the app may hold (one per distinct search). Default 1000, the
    /// pay-per-use limit.
    pub max_rules: usize,
    /// Longest rule, in characters. Default 1024.
    pub max_rule_length: usize,
    /// Seconds without a byte (X sends a keep-alive every 20 s) before the
    /// stream is taken for dead and reopened. Default 30.
    pub stall_timeout_secs: u64,
}

impl Default for XSettings {
    fn default() -> Self {
        XSettings {
            api_url: "https://api.x.com".to_owned(),
            max_rules: 1000,
            max_rule_length: 1024,
            stall_timeout_secs: 30,
        }
    }
}

/// The `bluesky` source: Jetstream, with profiles from an AppView.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlueskySettings {
    /// WebSocket URL of Jetstream's `/subscribe`.
    pub jetstream_url: String,
    /// Where `app.bsky.actor.getProfiles` is asked for names and avatars.
    pub appview_url: String,
    /// Authors whose profile is kept in memory (at least 10 000, so a busy
    /// stream rarely waits). Default 50 000.
    pub profile_cache: usize,
}

impl Default for BlueskySettings {
    fn default() -> Self {
        BlueskySettings {
            jetstream_url: "wss://jetstream2.us-east.bsky.network/subscribe".to_owned(),
            appview_url: "https://public.api.bsky.app".to_owned(),
            profile_cache: 50_000,
        }
    }
}

/// The `mastodon` source: an instance's streaming API (token: `MASTODON_TOKEN`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MastodonSettings {
    /// Base URL of the instance, e.g. `https://mastodon.social`.
    pub url: Option<String>,
    /// The timeline to follow: `public`, `public:local` or `public:remote`.
    pub stream: String,
}

impl Default for MastodonSettings {
    fn default() -> Self {
        MastodonSettings {
            url: None,
            stream: "public".to_owned(),
        }
    }
}

/// Bounds on what strangers can make the server do.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Open WebSockets at most; one more is told `serverBusy` and closed
    /// with 1013. Default 10 000.
    pub max_connections: usize,
    /// Largest frame a browser may send, in bytes; a larger one closes the
    /// connection with 1009. Default 4096.
    pub max_frame_bytes: usize,
    /// Longest search, in Unicode characters. Default 512.
    pub max_term_length: usize,
    /// Posts waiting to be written to one connection; past this the
    /// connection is sent `skipped`. Default 256.
    pub outbound_queue: usize,
    /// Messages a browser may send per second on average. Default 10.
    pub messages_per_second: f64,
    /// Messages a browser may send in a burst. Default 20.
    pub message_burst: f64,
    /// Messages refused with `rateLimited` before the connection is closed
    /// with 1008. Default 20.
    pub flood_strikes: u32,
    /// Seconds between pings to each browser. Default 20.
    pub ping_interval_secs: u64,
    /// Seconds without any frame from a browser before it is closed. Default 60.
    pub idle_timeout_secs: u64,
    /// Seconds a browser has to take one frame before it is dropped (it
    /// stopped reading). Default 10.
    pub write_timeout_secs: u64,
    /// Seconds a client has to send its request headers before the
    /// connection is closed. Default 10.
    pub header_timeout_secs: u64,
    /// Answer the page's `ping` with `pong`. Only the page's own liveness
    /// test turns this off, to see the page reconnect. Default true.
    pub answer_pings: bool,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_connections: 10_000,
            max_frame_bytes: 4096,
            max_term_length: crate::query::DEFAULT_MAX_TERM_LENGTH,
            outbound_queue: 256,
            messages_per_second: 10.0,
            message_burst: 20.0,
            flood_strikes: 20,
            ping_interval_secs: 20,
            idle_timeout_secs: 60,
            write_timeout_secs: 10,
            header_timeout_secs: 10,
            answer_pings: true,
        }
    }
}

/// Everything the server needs to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub addr: SocketAddr,
    pub source: SourceSettings,
    pub limits: LimitSettings,
    /// Origins allowed to open a WebSocket besides the server's own host
    /// (exact `scheme://host:port` strings). Requests without `Origin`
    /// (non-browser clients) are allowed.
    pub allowed_origins: Vec<String>,
    /// Several nodes as one app through Redis; `None`: a single node.
    pub cluster: Option<ClusterSettings>,
}

/// `--redis-url` and `--cluster`: nodes with the same Redis server and
/// cluster name share one upstream (docs/protocol.md, "Several nodes").
#[derive(Clone, PartialEq)]
pub struct ClusterSettings {
    /// `redis://[user:password@]host:port[/db]`; it may hold a password, so
    /// it is never printed whole (see [`ClusterSettings::redis_host`]).
    pub redis_url: String,
    /// Prefixes every Redis key. Default `twitter-search`.
    pub name: String,
}

impl ClusterSettings {
    /// Host and port of the Redis server, for logs and messages.
    pub fn redis_host(&self) -> String {
        let rest = self
            .redis_url
            .split_once("://")
            .map_or(self.redis_url.as_str(), |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or(rest);
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host)
            .to_owned()
    }
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("redis", &self.redis_host())
            .field("name", &self.name)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            source: SourceSettings {
                kind: SourceKind::Demo,
                rate: None,
                seed: 1,
                replay_file: None,
                loop_replay: false,
                record: None,
                x: XSettings::default(),
                bluesky: BlueskySettings::default(),
                mastodon: MastodonSettings::default(),
            },
            limits: LimitSettings::default(),
            allowed_origins: Vec::new(),
            cluster: None,
        }
    }
}

/// The layout of `Leptos.toml`. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileSettings {
    addr: Option<SocketAddr>,
    allowed_origins: Option<Vec<String>>,
    source: FileSource,
    limits: Option<LimitSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileSource {
    kind: Option<SourceKind>,
    rate: Option<f64>,
    seed: Option<u64>,
    replay_file: Option<PathBuf>,
    #[serde(rename = "loop")]
    loop_replay: Option<bool>,
    record: Option<PathBuf>,
    x: Option<XSettings>,
    bluesky: Option<BlueskySettings>,
    mastodon: Option<MastodonSettings>,
}

/// The command line; every option also reads an environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "twitter-search",
    version,
    about = "Live search over social media streams"
)]
pub struct Cli {
    /// Settings file (TOML). Default: ./Leptos.toml when it exists.
    #[arg(long, env = "TWITTER_SEARCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where posts come from.
    #[arg(long, env = "TWITTER_SEARCH_SOURCE", value_enum)]
    pub source: Option<SourceKind>,
    /// Address to listen on [default: 127.0.0.1:3000].
    #[arg(long, env = "LEPTOS_SITE_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Posts per second for demo and replay; 0 means as fast as possible.
    #[arg(long, env = "TWITTER_SEARCH_RATE")]
    pub rate: Option<f64>,
    /// Seed of the demo source (same seed, same posts).
    #[arg(long, env = "TWITTER_SEARCH_SEED")]
    pub seed: Option<u64>,
    /// NDJSON file of posts for the replay source.
    #[arg(long, env = "TWITTER_SEARCH_REPLAY_FILE")]
    pub replay_file: Option<PathBuf>,
    /// Start the replay file again when it ends.
    #[arg(long = "loop", env = "TWITTER_SEARCH_LOOP", num_args = 0..=1,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub loop_replay: Option<bool>,
    /// Append every post received, from any source, to this NDJSON replay file.
    #[arg(long, env = "TWITTER_SEARCH_RECORD")]
    pub record: Option<PathBuf>,
    /// WebSocket URL of Bluesky Jetstream's /subscribe.
    #[arg(long, env = "JETSTREAM_URL")]
    pub jetstream_url: Option<String>,
    /// Where Bluesky profiles are looked up.
    #[arg(long, env = "BSKY_APPVIEW_URL")]
    pub appview_url: Option<String>,
    /// Base URL of the X API v2.
    #[arg(long, env = "X_API_URL")]
    pub x_api_url: Option<String>,
    /// Base URL of a Mastodon instance (token: MASTODON_TOKEN).
    #[arg(long, env = "MASTODON_URL")]
    pub mastodon_url: Option<String>,
    /// Extra origins allowed to open the WebSocket, comma separated.
    #[arg(
        long = "allowed-origin",
        env = "TWITTER_SEARCH_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Open WebSockets at most.
    #[arg(long, env = "TWITTER_SEARCH_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Join a cluster of nodes through this Redis server (`redis://...`);
    /// without it the server is a single node.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Cluster name: nodes with the same Redis server and name share one
    /// upstream (it prefixes every Redis key).
    #[arg(long, env = "TWITTER_SEARCH_CLUSTER")]
    pub cluster: Option<String>,
}

impl Settings {
    /// Reads the settings file named by `cli` (or `./Leptos.toml` if present)
    /// and lays the command line over it.
    pub fn load(cli: &Cli) -> Result<Settings, SettingsError> {
        let file = match &cli.config {
            Some(path) => Some(read_file(path)?),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                Some(read_file(Path::new(DEFAULT_CONFIG_FILE))?)
            }
            None => None,
        };
        let mut settings = Settings::default();
        if let Some(file) = file {
            settings.apply_file(file);
        }
        settings.apply_cli(cli);
        settings.validate()?;
        Ok(settings)
    }

    /// Parses settings from TOML text (the content of `Leptos.toml`).
    pub fn from_toml(text: &str) -> Result<Settings, SettingsError> {
        let file: FileSettings = toml::from_str(text).map_err(|e| SettingsError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })?;
        let mut settings = Settings::default();
        settings.apply_file(file);
        settings.validate()?;
        Ok(settings)
    }

    fn apply_file(&mut self, file: FileSettings) {
        let source = &mut self.source;
        if let Some(addr) = file.addr {
            self.addr = addr;
        }
        if let Some(origins) = file.allowed_origins {
            self.allowed_origins = origins;
        }
        if let Some(limits) = file.limits {
            self.limits = limits;
        }
        let f = file.source;
        if let Some(kind) = f.kind {
            source.kind = kind;
        }
        if f.rate.is_some() {
            source.rate = f.rate;
        }
        if let Some(seed) = f.seed {
            source.seed = seed;
        }
        if f.replay_file.is_some() {
            source.replay_file = f.replay_file;
        }
        if let Some(loop_replay) = f.loop_replay {
            source.loop_replay = loop_replay;
        }
        if f.record.is_some() {
            source.record = f.record;
        }
        if let Some(x) = f.x {
            source.x = x;
        }
        if let Some(bluesky) = f.bluesky {
            source.bluesky = bluesky;
        }
        if let Some(mastodon) = f.mastodon {
            source.mastodon = mastodon;
        }
    }

    fn apply_cli(&mut self, cli: &Cli) {
        if let Some(url) = &cli.redis_url {
            self.cluster = Some(ClusterSettings {
                redis_url: url.clone(),
                name: cli
                    .cluster
                    .clone()
                    .unwrap_or_else(|| "twitter-search".to_owned()),
            });
        }
        let source = &mut self.source;
        if let Some(kind) = cli.source {
            source.kind = kind;
        }
        if let Some(addr) = cli.addr {
            self.addr = addr;
        }
        if cli.rate.is_some() {
            source.rate = cli.rate;
        }
        if let Some(seed) = cli.seed {
            source.seed = seed;
        }
        if cli.replay_file.is_some() {
            source.replay_file = cli.replay_file.clone();
        }
        if let Some(loop_replay) = cli.loop_replay {
            source.loop_replay = loop_replay;
        }
        if cli.record.is_some() {
            source.record = cli.record.clone();
        }
        if let Some(url) = &cli.jetstream_url {
            source.bluesky.jetstream_url = url.clone();
        }
        if let Some(url) = &cli.appview_url {
            source.bluesky.appview_url = url.clone();
        }
        if let Some(url) = &cli.x_api_url {
            source.x.api_url = url.clone();
        }
        if cli.mastodon_url.is_some() {
            source.mastodon.url = cli.mastodon_url.clone();
        }
        if !cli.allowed_origins.is_empty() {
            self.allowed_origins = cli.allowed_origins.clone();
        }
        if let Some(max) = cli.max_connections {
            self.limits.max_connections = max;
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if let Some(cluster) = &self.cluster {
            if !cluster.redis_url.starts_with("redis://") {
                return Err(SettingsError::Invalid(format!(
                    "--redis-url must be a redis:// URL (got one for {})",
                    cluster.redis_host()
                )));
            }
            let name_ok = !cluster.name.is_empty()
                && cluster.name.len() <= 64
                && cluster
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !name_ok {
                return Err(SettingsError::Invalid(format!(
                    "--cluster must be 1 to 64 letters, digits, '-', '_' or '.' (got {:?})",
                    cluster.name
                )));
            }
        }
        if let Some(rate) = self.source.rate {
            // Below one post in 1000 s the pacing interval is absurd (and
            // past ~1e-19 it overflows a Duration).
            if !rate.is_finite() || !(rate == 0.0 || (MIN_RATE..=MAX_RATE).contains(&rate)) {
                return Err(SettingsError::Invalid(format!(
                    "--rate must be 0 (as fast as possible) or between {MIN_RATE} and {MAX_RATE} posts per second (got {rate})"
                )));
            }
        }
        let within = |name: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(SettingsError::Invalid(format!(
                    "{name} must be between {min} and {max} (got {value})"
                )))
            }
        };
        let limits = &self.limits;
        within(
            "limits.ping_interval_secs",
            limits.ping_interval_secs,
            1,
            3600,
        )?;
        within(
            "limits.idle_timeout_secs",
            limits.idle_timeout_secs,
            2,
            86_400,
        )?;
        within(
            "limits.write_timeout_secs",
            limits.write_timeout_secs,
            1,
            3600,
        )?;
        within(
            "limits.max_term_length",
            limits.max_term_length as u64,
            8,
            limits.max_frame_bytes as u64,
        )?;
        within(
            "limits.max_frame_bytes",
            limits.max_frame_bytes as u64,
            64,
            1 << 20,
        )?;
        within(
            "limits.outbound_queue",
            limits.outbound_queue as u64,
            1,
            1 << 20,
        )?;
        within(
            "limits.max_connections",
            limits.max_connections as u64,
            1,
            1 << 24,
        )?;
        within(
            "limits.flood_strikes",
            u64::from(limits.flood_strikes),
            1,
            1_000_000,
        )?;
        if !(limits.messages_per_second.is_finite() && limits.message_burst.is_finite()) {
            return Err(SettingsError::Invalid(
                "limits.messages_per_second and limits.message_burst must be numbers".to_owned(),
            ));
        }
        let x = &self.source.x;
        within("source.x.max_rules", x.max_rules as u64, 1, 100_000)?;
        within(
            "source.x.max_rule_length",
            x.max_rule_length as u64,
            16,
            100_000,
        )?;
        within(
            "source.bluesky.profile_cache",
            self.source.bluesky.profile_cache as u64,
            10_000,
            10_000_000,
        )?;
        if !matches!(
            self.source.mastodon.stream.as_str(),
            "public" | "public:local" | "public:remote"
        ) {
            return Err(SettingsError::Invalid(format!(
                "source.mastodon.stream must be public, public:local or public:remote (got {:?})",
                self.source.mastodon.stream
            )));
        }
        if self.source.kind == SourceKind::Replay && self.source.replay_file.is_none() {
            return Err(SettingsError::Invalid(
                "the replay source needs a file: pass --replay-file <path.ndjson>".to_owned(),
            ));
        }
        if !(limits.messages_per_second > 0.0 && limits.message_burst >= 1.0) {
            return Err(SettingsError::Invalid(
                "limits.messages_per_second must be above 0 and limits.message_burst at least 1"
                    .to_owned(),
            ));
        }
        if limits.write_timeout_secs == 0 {
            return Err(SettingsError::Invalid(
                "limits.write_timeout_secs must be at least 1".to_owned(),
            ));
        }
        if limits.ping_interval_secs == 0 || limits.idle_timeout_secs <= limits.ping_interval_secs {
            return Err(SettingsError::Invalid(
                "limits.idle_timeout_secs must be longer than limits.ping_interval_secs (> 0)"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<FileSettings, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["twitter-search"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn defaults_run_the_demo_offline_on_port_3000() {
        let settings = Settings::default();
        assert_eq!(settings.source.kind, SourceKind::Demo);
        assert_eq!(settings.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(settings.limits.max_frame_bytes, 4096);
        assert_eq!(settings.limits.max_term_length, 512);
    }

    #[test]
    fn the_project_leptos_toml_parses() {
        let text = include_str!("../../Leptos.toml");
        let settings = Settings::from_toml(text).unwrap();
        assert_eq!(settings.source.kind, SourceKind::Demo);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "addr = \"127.0.0.1:4000\"\n[source]\nkind = \"replay\"\nreplay_file = \"a.ndjson\"\nrate = 2.0\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let settings = Settings::load(&cli(&["--config", config])).unwrap();
        assert_eq!(settings.addr.to_string(), "127.0.0.1:4000");
        assert_eq!(settings.source.kind, SourceKind::Replay);
        assert_eq!(settings.source.rate, Some(2.0));
        let settings = Settings::load(&cli(&[
            "--config",
            config,
            "--rate",
            "0",
            "--loop",
            "--addr",
            "127.0.0.1:5000",
        ]))
        .unwrap();
        assert_eq!(settings.source.rate, Some(0.0));
        assert!(settings.source.loop_replay);
        assert_eq!(settings.addr.to_string(), "127.0.0.1:5000");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "adress = \"x\"\n").unwrap();
        let error = Settings::load(&cli(&["--config", path.to_str().unwrap()])).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("s.toml") && message.contains("adress"),
            "{message}"
        );
    }

    #[test]
    fn bad_values_are_refused_clearly() {
        assert!(Cli::try_parse_from(["twitter-search", "--source", "myspace"]).is_err());
        let error = Settings::load(&cli(&["--rate=-1"])).unwrap_err();
        assert!(error.to_string().contains("--rate"));
        let error = Settings::load(&cli(&["--source", "replay"])).unwrap_err();
        assert!(error.to_string().contains("--replay-file"));
    }

    #[test]
    fn settings_that_would_panic_later_are_refused_at_start() {
        for rate in ["1e-20", "inf", "NaN", "1e300"] {
            let error = Settings::load(&cli(&["--rate", rate])).unwrap_err();
            assert!(error.to_string().contains("--rate"), "{rate}: {error}");
        }
        assert!(Settings::load(&cli(&["--rate", "0"])).is_ok());
        assert!(Settings::load(&cli(&["--rate", "0.5"])).is_ok());
        for (text, key) in [
            ("[limits]\nping_interval_secs = 18446744073709551615\nidle_timeout_secs = 18446744073709551615\n", "ping_interval_secs"),
            ("[limits]\nmax_term_length = 0\n", "max_term_length"),
            ("[limits]\nwrite_timeout_secs = 99999999999\n", "write_timeout_secs"),
            ("[source.x]\nmax_rules = 0\n", "max_rules"),
            ("[source.bluesky]\nprofile_cache = 1\n", "profile_cache"),
            ("[source.mastodon]\nstream = \"home\"\n", "stream"),
        ] {
            let error = Settings::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(key), "{text}: {error}");
        }
    }

    #[test]
    fn each_real_source_has_its_own_section_and_flags() {
        let settings = Settings::from_toml(
            "[source.x]\nmax_rules = 5\n[source.bluesky]\nappview_url = \"http://127.0.0.1:9\"\n[source.mastodon]\nurl = \"http://m.local\"\n",
        )
        .unwrap();
        assert_eq!(settings.source.x.max_rules, 5);
        assert_eq!(settings.source.x.max_rule_length, 1024);
        assert_eq!(settings.source.bluesky.appview_url, "http://127.0.0.1:9");
        assert_eq!(
            settings.source.mastodon.url.as_deref(),
            Some("http://m.local")
        );
        let settings = Settings::load(&cli(&[
            "--x-api-url",
            "http://127.0.0.1:1",
            "--jetstream-url",
            "ws://127.0.0.1:2/subscribe",
            "--record",
            "out.ndjson",
        ]))
        .unwrap();
        assert_eq!(settings.source.x.api_url, "http://127.0.0.1:1");
        assert_eq!(
            settings.source.bluesky.jetstream_url,
            "ws://127.0.0.1:2/subscribe"
        );
        assert_eq!(
            settings.source.record.as_deref(),
            Some(Path::new("out.ndjson"))
        );
    }
}
