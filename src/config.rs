//! Settings, layered: built-in defaults, then `unitrack.toml` (or the file named by
//! `UNITRACK_CONFIG`), then `UNITRACK_*` environment variables and `DATABASE_URL`.
//! An invalid value is one line that names the setting.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

pub use crate::core::secret::mask_password;
pub use crate::telemetry::LogFormat;

/// A validated configuration. `Debug` masks the database password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// PostgreSQL to use; when unset a private cluster runs in `data_dir`.
    pub database_url: Option<String>,
    /// Address the web server listens on.
    pub listen: SocketAddr,
    /// Folder for the private PostgreSQL cluster and other local state.
    pub data_dir: PathBuf,
    /// Public URL, used in links and to decide whether cookies are `Secure`.
    pub base_url: Option<Url>,
    /// Reverse proxies whose `X-Forwarded-*` headers are believed (comma-separated addresses).
    pub trusted_proxies: String,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// A session ends this many hours after sign-in, whatever happens.
    pub session_max_hours: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest file accepted as a ticket attachment, in bytes. An upload's whole body may be
    /// this plus `max_body_bytes` (files sent together share it).
    pub attachment_max_bytes: usize,
    /// Largest incoming e-mail processed, in bytes; a larger one is kept raw and listed as
    /// failed.
    pub mail_max_bytes: usize,
    /// Where outgoing mail goes: an SMTP relay as `smtp://host:port` (STARTTLS when offered;
    /// `?tls=required` to insist) or `smtps://host:port`. Unset: mail stays in the outbox.
    pub smtp_relay: Option<String>,
    /// User name for the relay, if it wants one.
    pub smtp_username: Option<String>,
    /// Password for the relay. Never logged nor shown.
    pub smtp_password: Option<String>,
    /// The sender of mail about a project without an active mailbox (an address).
    pub mail_from: Option<String>,
    /// Address the SMTP listener accepts mail on (e.g. `127.0.0.1:2525`); off when unset.
    pub smtp_listen: Option<SocketAddr>,
    /// SMTP connections served at once; more are answered 421 and closed.
    pub smtp_max_connections: usize,
    /// An SMTP client silent for this long (one command, one line of data) is disconnected.
    pub smtp_timeout_secs: u64,
    /// A request that takes longer is answered with 408.
    pub request_timeout_secs: u64,
    /// Database connections per app instance.
    pub db_max_connections: u32,
    /// Failed sign-ins for one account before it is locked for a while.
    pub login_max_failures_account: u32,
    /// Failed sign-ins from one client address before it is locked for a while.
    pub login_max_failures_address: u32,
    /// Minutes that failed sign-ins are counted over, and the first lock's length.
    pub login_window_minutes: u32,
    /// `pretty` or `json`.
    pub log_format: LogFormat,
    /// Log filter, as `RUST_LOG` (e.g. `info,unitrack=debug`).
    pub log: String,
    /// Load the demo organisation into an external database too.
    pub demo: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".unitrack"),
            base_url: None,
            trusted_proxies: String::new(),
            session_idle_minutes: 30,
            session_max_hours: 12,
            max_body_bytes: 2 * 1024 * 1024,
            attachment_max_bytes: 25 * 1024 * 1024,
            mail_max_bytes: 35 * 1024 * 1024,
            smtp_relay: None,
            smtp_username: None,
            smtp_password: None,
            mail_from: None,
            smtp_listen: None,
            smtp_max_connections: 50,
            smtp_timeout_secs: 300,
            request_timeout_secs: 30,
            db_max_connections: 16,
            login_max_failures_account: 5,
            login_max_failures_address: 50,
            login_window_minutes: 15,
            log_format: LogFormat::Pretty,
            log: "info".into(),
            demo: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &self.database_url.as_deref().map(mask_password),
            )
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .field("trusted_proxies", &self.trusted_proxies)
            .field("session_idle_minutes", &self.session_idle_minutes)
            .field("session_max_hours", &self.session_max_hours)
            .field("smtp_relay", &self.smtp_relay.as_deref().map(mask_password))
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &self.smtp_password.as_ref().map(|_| "***"))
            .field("mail_from", &self.mail_from)
            .finish_non_exhaustive()
    }
}

/// A configuration problem, as one line naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads defaults, the TOML file and the environment. `file` overrides `UNITRACK_CONFIG`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env_file = std::env::var_os("UNITRACK_CONFIG").map(PathBuf::from);
        let explicit = file.map(Path::to_path_buf).or(env_file);
        if let Some(path) = &explicit
            && !path.is_file()
        {
            return Err(ConfigError(format!(
                "configuration file {} does not exist",
                path.display()
            )));
        }
        let path = explicit.unwrap_or_else(|| PathBuf::from("unitrack.toml"));
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            .merge(Env::prefixed("UNITRACK_").ignore(&["CONFIG"]))
            .merge(Env::raw().only(&["DATABASE_URL"]));
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|e| ConfigError(describe(&e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges and cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |setting: &str, why: &str| {
            Err(ConfigError(format!(
                "invalid setting {setting} ({}): {why}",
                env_name(setting)
            )))
        };
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!(
                "invalid setting DATABASE_URL ({}): must start with postgres:// or postgresql://",
                mask_password(url)
            )));
        }
        if let Some(base) = &self.base_url
            && !matches!(base.scheme(), "http" | "https")
        {
            return bad("base_url", "must be an http:// or https:// URL");
        }
        if let Err(why) = self.trusted_proxy_addrs() {
            return bad("trusted_proxies", &why);
        }
        if self.session_idle_minutes == 0 {
            return bad("session_idle_minutes", "must be at least 1");
        }
        if self.session_max_hours == 0 {
            return bad("session_max_hours", "must be at least 1");
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        if self.attachment_max_bytes == 0 {
            return bad("attachment_max_bytes", "must be at least 1");
        }
        if self.mail_max_bytes < 1024 {
            return bad("mail_max_bytes", "must be at least 1024");
        }
        if let Some(relay) = &self.smtp_relay {
            match Url::parse(relay) {
                Ok(url) if matches!(url.scheme(), "smtp" | "smtps") && url.has_host() => {
                    if url.password().is_some() || !url.username().is_empty() {
                        return bad(
                            "smtp_relay",
                            "put the user name and password in smtp_username and smtp_password",
                        );
                    }
                }
                _ => {
                    return bad(
                        "smtp_relay",
                        "must be an smtp://host:port or smtps://host:port URL",
                    );
                }
            }
        }
        if let Some(from) = &self.mail_from
            && (from.contains(['\r', '\n', ' ', '<', '>']) || !from.contains('@'))
        {
            return bad("mail_from", "must be a plain e-mail address");
        }
        if self.smtp_max_connections == 0 {
            return bad("smtp_max_connections", "must be at least 1");
        }
        if self.smtp_timeout_secs == 0 {
            return bad("smtp_timeout_secs", "must be at least 1");
        }
        if self.request_timeout_secs == 0 {
            return bad("request_timeout_secs", "must be at least 1");
        }
        if self.db_max_connections == 0 {
            return bad("db_max_connections", "must be at least 1");
        }
        if self.login_max_failures_account == 0 {
            return bad("login_max_failures_account", "must be at least 1");
        }
        if self.login_max_failures_address == 0 {
            return bad("login_max_failures_address", "must be at least 1");
        }
        if self.login_window_minutes == 0 {
            return bad("login_window_minutes", "must be at least 1");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            return bad("log", "not a valid log filter (e.g. info,unitrack=debug)");
        }
        Ok(())
    }

    /// The trusted proxy addresses.
    pub fn trusted_proxy_addrs(&self) -> Result<Vec<IpAddr>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| format!("{s:?} is not an IP address")))
            .collect()
    }

    /// How long a session lasts: idle and absolute.
    pub fn session_lifetime(&self) -> crate::people::sessions::Lifetime {
        crate::people::sessions::Lifetime {
            idle: minutes(self.session_idle_minutes),
            max: jiff::SignedDuration::from_hours(i64::from(self.session_max_hours)),
        }
    }

    /// Sign-in throttling, per account and per client address.
    pub fn login_limits(&self) -> crate::people::LoginLimits {
        use crate::people::throttle::Limit;
        let window = minutes(self.login_window_minutes);
        crate::people::LoginLimits {
            account: Limit {
                max_failures: self.login_max_failures_account,
                window,
            },
            address: Limit {
                max_failures: self.login_max_failures_address,
                window,
            },
        }
    }

    /// What the periodic sweep may forget: sessions past their lifetime, failures past their
    /// window.
    pub fn retention(&self) -> crate::people::Retention {
        crate::people::Retention {
            sessions: self.session_lifetime(),
            login: self.login_limits(),
        }
    }

    /// The size limits of incoming mail.
    pub fn mail_limits(&self) -> crate::mail::Limits {
        crate::mail::Limits {
            max_bytes: self.mail_max_bytes,
            attachment_max_bytes: self.attachment_max_bytes,
        }
    }

    /// What outgoing mail needs: the public URL (links, Message-ID host), the default sender
    /// and the relay.
    pub fn mail_out(&self) -> crate::mail::out::Settings {
        crate::mail::out::Settings::new(
            &self.public_url(),
            self.mail_from.clone(),
            self.smtp_relay.as_ref().map(|url| crate::mail::out::Relay {
                url: url.clone(),
                username: self.smtp_username.clone(),
                password: self.smtp_password.clone().map(crate::mail::out::Secret),
            }),
        )
    }

    /// How the SMTP listener behaves.
    pub fn smtp_settings(&self) -> crate::mail::smtp::Settings {
        crate::mail::smtp::Settings {
            hostname: self
                .base_url
                .as_ref()
                .and_then(|u| u.host_str())
                .unwrap_or("localhost")
                .to_owned(),
            limits: self.mail_limits(),
            max_connections: self.smtp_max_connections,
            timeout: std::time::Duration::from_secs(self.smtp_timeout_secs),
        }
    }

    /// The largest request body an upload route accepts: one attachment plus a form.
    pub fn upload_body_limit(&self) -> usize {
        self.attachment_max_bytes
            .saturating_add(self.max_body_bytes)
    }

    /// Cookies get `Secure` when the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.base_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }

    /// The URL people use: the base URL, else the listen address.
    pub fn public_url(&self) -> String {
        match &self.base_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

fn minutes(m: u32) -> jiff::SignedDuration {
    jiff::SignedDuration::from_mins(i64::from(m))
}

fn env_name(setting: &str) -> String {
    if setting == "database_url" {
        "DATABASE_URL".into()
    } else {
        format!("UNITRACK_{}", setting.to_ascii_uppercase())
    }
}

fn describe(e: &figment::Error) -> String {
    let setting = e.path.last().cloned().unwrap_or_default();
    let source = e
        .metadata
        .as_ref()
        .map(|m| m.name.to_string())
        .unwrap_or_default();
    let detail = e.kind.to_string().replace('\n', " ");
    if setting.is_empty() {
        format!("invalid configuration: {detail}")
    } else {
        format!(
            "invalid setting {setting} ({}, from {source}): {detail}",
            env_name(&setting)
        )
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail returns its own large error
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn environment_overrides_file_and_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "unitrack.toml",
                "listen = \"127.0.0.1:9000\"\nsession_idle_minutes = 10",
            )?;
            jail.set_env("UNITRACK_LISTEN", "127.0.0.1:9100");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.port(), 9100);
            assert_eq!(config.session_idle_minutes, 10);
            assert_eq!(config.session_max_hours, 12);
            Ok(())
        });
    }

    #[test]
    fn invalid_values_name_the_setting_on_one_line() {
        Jail::expect_with(|jail| {
            jail.set_env("UNITRACK_LISTEN", "not-an-address");
            let err = Config::load(None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("UNITRACK_LISTEN"), "{err}");
            assert!(!err.contains('\n'), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("UNITRACK_TRUSTED_PROXIES", "10.0.0.1, nope");
            let err = Config::load(None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("UNITRACK_TRUSTED_PROXIES"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "mysql://u:hunter2@db/x");
            let err = Config::load(None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("DATABASE_URL"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn each_login_limit_names_its_own_setting() {
        for (setting, config) in [
            (
                "UNITRACK_LOGIN_MAX_FAILURES_ACCOUNT",
                Config {
                    login_max_failures_account: 0,
                    ..Config::default()
                },
            ),
            (
                "UNITRACK_LOGIN_MAX_FAILURES_ADDRESS",
                Config {
                    login_max_failures_address: 0,
                    ..Config::default()
                },
            ),
            (
                "UNITRACK_LOGIN_WINDOW_MINUTES",
                Config {
                    login_window_minutes: 0,
                    ..Config::default()
                },
            ),
        ] {
            let err = config
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(&format!("({setting})")), "{setting}: {err}");
        }
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://u:hunter2@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        let config = Config {
            database_url: Some("postgres://u:hunter2@db/x".into()),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
        let config = Config {
            smtp_relay: Some("smtp://relay.example.org:587?tls=required".into()),
            smtp_username: Some("unitrack".into()),
            smtp_password: Some("hunter2".into()),
            ..Config::default()
        };
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", config.mail_out()).contains("hunter2"));
    }

    #[test]
    fn the_relay_is_an_smtp_url_without_credentials() {
        for bad in ["http://relay:25", "smtp://u:hunter2@relay:25", "relay:25"] {
            let config = Config {
                smtp_relay: Some(bad.into()),
                ..Config::default()
            };
            let err = config
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("UNITRACK_SMTP_RELAY"), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let config = Config {
            mail_from: Some("Desk <desk@example.org>".into()),
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }
}
