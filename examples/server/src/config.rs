//! The configuration file (TOML), read once at start-up.
//!
//! Every path in it is relative to the file's own directory. A missing or malformed file, an
//! unknown key, an unreadable or malformed key file: [`Config::load`] returns a
//! [`ConfigError`] whose one line names the setting and says what is wrong, and the server
//! does not start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey};
use paystate::webhook::wechatpay::{ApiV3Key, PlatformKey};
use serde::Deserialize;

/// A configuration the server cannot start with: one line, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {setting}: {reason}")]
pub struct ConfigError {
    /// The configuration file.
    pub file: String,
    /// The setting (`listen`, `[alipay].app_private_key`).
    pub setting: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One API key of the merchant's own systems (`[[api_keys]]`).
#[derive(Clone)]
pub struct ApiKey {
    /// Sent as `X-Paystate-Key`.
    pub id: String,
    /// The HMAC-SHA256 secret.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// `[alipay]`: the application, its keys and the gateway.
#[derive(Clone)]
pub struct AlipayConfig {
    /// `app_id`, checked in every notification and sent with every request.
    pub app_id: String,
    /// `seller_id` (the PID, `2088…`), checked in every notification.
    pub seller_id: String,
    /// The application's private key: signs requests.
    pub app_private_key: Arc<Rsa2PrivateKey>,
    /// Alipay's public key (key mode): verifies notifications and answers.
    pub alipay_public_key: Rsa2PublicKey,
    /// The gateway URL requests go to.
    pub gateway: String,
    /// The content-encryption key (AES, base64 in the file), if enabled in the console.
    pub aes_key: Option<paystate::alipay::encryption::AesKey>,
}

/// `[wechatpay]`: the merchant, its keys and the gateway (notifications are verified with
/// the platform keys and the APIv3 key; closes and refunds are signed with the merchant key).
#[derive(Clone)]
pub struct WechatpayConfig {
    /// `mchid`.
    pub mchid: String,
    /// `appid`.
    pub appid: String,
    /// The APIv3 key: decrypts notification resources.
    pub apiv3_key: ApiV3Key,
    /// The merchant certificate's serial number (signs requests, with the private key).
    pub merchant_serial: String,
    /// The merchant's private key.
    pub merchant_private_key: Arc<Rsa2PrivateKey>,
    /// WeChat Pay's platform public keys, by serial (`PUB_KEY_ID_…`).
    pub platform_keys: Vec<PlatformKey>,
    /// The API base URL (`https://api.mch.weixin.qq.com`): closes and refunds go to its
    /// `/v3/…` paths.
    pub gateway: String,
}

/// `[stripe]`: the webhook endpoint's signing secret.
#[derive(Clone)]
pub struct StripeConfig {
    /// HMAC-SHA256 keyed once with the `whsec_…` secret, as Stripe shows it (the whole
    /// string is the key, as Stripe's libraries use it).
    pub webhook_key: paystate::webhook::hmac::HmacKey,
}

/// `[http]`: how long clients may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// How long a client may take to send a request's headers, in seconds, before the
    /// connection is closed (default 10; slow-header clients would otherwise hold
    /// connections for ever).
    pub header_timeout_secs: u64,
    /// How long a request may take once its headers are in (reading the body included), in
    /// seconds, before it is answered `503 {"error":"timeout"}` (default 30).
    pub request_timeout_secs: u64,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            header_timeout_secs: 10,
            request_timeout_secs: 30,
        }
    }
}

/// `[workers]`: timing of the background work. Every field has a default; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workers {
    /// How often the outbox looks for due rows, in milliseconds (default 500).
    pub outbox_interval_ms: u64,
    /// The first retry delay of a failed effect, in milliseconds; it doubles per attempt
    /// (default 1000).
    pub retry_base_ms: u64,
    /// The longest retry delay, in milliseconds (default 300 000: five minutes).
    pub retry_max_ms: u64,
    /// How often the deadline sweeper runs, in milliseconds (default 1000).
    pub sweep_interval_ms: u64,
    /// How long after its `pay_url` was issued a payment without a notification is queried,
    /// in seconds (default 300).
    pub query_after_secs: u64,
    /// How often the query poller runs, in milliseconds (default 5000); a payment is asked
    /// about again after `query_after_secs` more.
    pub poll_interval_ms: u64,
    /// The lease on a claimed outbox row or an in-flight idempotency key, in seconds
    /// (default and maximum 30: docs/spec.md §10).
    pub lease_secs: u64,
    /// Most database connections per instance (default 16).
    pub max_connections: u32,
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            outbox_interval_ms: 500,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            sweep_interval_ms: 1000,
            query_after_secs: 300,
            poll_interval_ms: 5000,
            lease_secs: 30,
            max_connections: 16,
        }
    }
}

impl Workers {
    /// The delay before attempt `attempts + 1` of a failed effect: `retry_base_ms · 2^attempts`,
    /// at most `retry_max_ms`.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 1u64.checked_shl(attempts.min(32)).unwrap_or(u64::MAX);
        Duration::from_millis(
            self.retry_base_ms
                .saturating_mul(factor)
                .min(self.retry_max_ms),
        )
    }
}

/// The whole configuration, with every key file loaded and checked.
#[derive(Clone)]
pub struct Config {
    /// Where the file was read from.
    pub file: PathBuf,
    /// The address to listen on (`127.0.0.1:8080`).
    pub listen: String,
    /// The database URL: `sqlite://FILE` (relative to the config file) or `postgres://…`.
    pub database: String,
    /// The server's public base URL: `notify_url` and `return_url` are built from it.
    pub public_url: String,
    /// The merchant's API keys.
    pub api_keys: Vec<ApiKey>,
    /// Alipay, if configured.
    pub alipay: Option<AlipayConfig>,
    /// WeChat Pay, if configured.
    pub wechatpay: Option<WechatpayConfig>,
    /// Stripe, if configured.
    pub stripe: Option<StripeConfig>,
    /// Background work timing.
    pub workers: Workers,
    /// Client timeouts.
    pub http: Http,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    database: String,
    public_url: String,
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
    alipay: Option<RawAlipay>,
    wechatpay: Option<RawWechatpay>,
    stripe: Option<RawStripe>,
    #[serde(default)]
    workers: Workers,
    #[serde(default)]
    http: Http,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    id: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlipay {
    app_id: String,
    seller_id: String,
    app_private_key: String,
    alipay_public_key: Option<String>,
    app_cert: Option<String>,
    alipay_cert: Option<String>,
    alipay_root_cert: Option<String>,
    #[serde(default = "default_alipay_gateway")]
    gateway: String,
    aes_key: Option<String>,
}

fn default_alipay_gateway() -> String {
    paystate::alipay::request::GATEWAY.to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWechatpay {
    mchid: String,
    appid: String,
    apiv3_key: String,
    merchant_serial: String,
    merchant_private_key: String,
    #[serde(default)]
    platform_keys: Vec<RawPlatformKey>,
    #[serde(default = "default_wechatpay_gateway")]
    gateway: String,
}

fn default_wechatpay_gateway() -> String {
    "https://api.mch.weixin.qq.com".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatformKey {
    serial: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStripe {
    webhook_secret: String,
}

/// An `http://` or `https://` URL with a host.
fn check_url(text: &str) -> Result<(), String> {
    match reqwest::Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Ok(())
        }
        Ok(_) => Err(format!(
            "{text:?} is not an http:// or https:// URL with a host"
        )),
        Err(e) => Err(format!("{text:?} is not a URL: {e}")),
    }
}

impl Config {
    /// Reads, parses and checks the configuration file at `path`, and loads every key file
    /// it names (relative to the file's directory).
    ///
    /// Errors: one [`ConfigError`] for the first problem found: the file unreadable or not
    /// TOML, a missing or unknown key, an empty value, a key file that cannot be read or is
    /// not an RSA key, certificate mode (not supported by this server yet), a malformed
    /// `aes_key` or `apiv3_key`, a gateway that is not an http(s) URL with a host.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let err = |setting: &str, reason: String| ConfigError {
            file: file.clone(),
            setting: setting.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("(file)", format!("cannot read the configuration: {e}")))?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let setting = e
                .span()
                .map(|s| {
                    let line = text.get(..s.start).map_or(0, |t| t.lines().count().max(1));
                    format!("line {line}")
                })
                .unwrap_or_else(|| "(file)".to_owned());
            err(&setting, e.message().replace('\n', " "))
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let nonempty = |setting: &str, value: &str| -> Result<(), ConfigError> {
            if value.trim().is_empty() {
                Err(err(setting, "is empty".to_owned()))
            } else {
                Ok(())
            }
        };
        nonempty("listen", &raw.listen)?;
        nonempty("database", &raw.database)?;
        nonempty("public_url", &raw.public_url)?;
        check_url(&raw.public_url).map_err(|reason| err("public_url", reason))?;
        let database = if let Some(rest) = raw.database.strip_prefix("sqlite://") {
            let (file_part, query) = match rest.split_once('?') {
                Some((f, q)) => (f, Some(q)),
                None => (rest, None),
            };
            nonempty("database", file_part)?;
            let full = resolve(file_part);
            match query {
                Some(q) => format!("sqlite://{}?{q}", full.display()),
                None => format!("sqlite://{}", full.display()),
            }
        } else if raw.database.starts_with("postgres://")
            || raw.database.starts_with("postgresql://")
        {
            raw.database.clone()
        } else {
            return Err(err(
                "database",
                "must start with sqlite:// or postgres://".to_owned(),
            ));
        };
        let mut api_keys = Vec::new();
        for (i, k) in raw.api_keys.iter().enumerate() {
            let setting = format!("[[api_keys]] #{}", i.saturating_add(1));
            nonempty(&format!("{setting}.id"), &k.id)?;
            if k.secret.len() < 16 {
                return Err(err(
                    &format!("{setting}.secret"),
                    "must be at least 16 bytes".to_owned(),
                ));
            }
            if api_keys.iter().any(|a: &ApiKey| a.id == k.id) {
                return Err(err(
                    &format!("{setting}.id"),
                    format!("{:?} is listed twice", k.id),
                ));
            }
            api_keys.push(ApiKey {
                id: k.id.clone(),
                secret: k.secret.as_bytes().to_vec(),
            });
        }
        let read_key_file = |setting: &str, p: &str| -> Result<Vec<u8>, ConfigError> {
            nonempty(setting, p)?;
            let full = resolve(p);
            std::fs::read(&full)
                .map_err(|e| err(setting, format!("cannot read {}: {e}", full.display())))
        };
        let alipay = match raw.alipay {
            None => None,
            Some(a) => {
                nonempty("[alipay].app_id", &a.app_id)?;
                nonempty("[alipay].seller_id", &a.seller_id)?;
                if a.app_cert.is_some() || a.alipay_cert.is_some() || a.alipay_root_cert.is_some() {
                    return Err(err(
                        "[alipay].app_cert",
                        "certificate mode is not supported by this server yet; configure alipay_public_key".to_owned(),
                    ));
                }
                let private = read_key_file("[alipay].app_private_key", &a.app_private_key)?;
                let private = Rsa2PrivateKey::parse(&private).map_err(|e| {
                    err(
                        "[alipay].app_private_key",
                        format!("not an RSA private key: {e}"),
                    )
                })?;
                let Some(public_path) = a.alipay_public_key.as_deref() else {
                    return Err(err("[alipay].alipay_public_key", "is missing".to_owned()));
                };
                let public = read_key_file("[alipay].alipay_public_key", public_path)?;
                let public = Rsa2PublicKey::parse(&public).map_err(|e| {
                    err(
                        "[alipay].alipay_public_key",
                        format!("not an RSA public key: {e}"),
                    )
                })?;
                check_url(&a.gateway).map_err(|reason| err("[alipay].gateway", reason))?;
                let aes_key = match a.aes_key.as_deref() {
                    None => None,
                    Some(b64) => Some(
                        paystate::alipay::encryption::AesKey::from_base64(b64.trim())
                            .map_err(|e| err("[alipay].aes_key", e.to_string()))?,
                    ),
                };
                Some(AlipayConfig {
                    app_id: a.app_id,
                    seller_id: a.seller_id,
                    app_private_key: Arc::new(private),
                    alipay_public_key: public,
                    gateway: a.gateway,
                    aes_key,
                })
            }
        };
        let wechatpay = match raw.wechatpay {
            None => None,
            Some(w) => {
                nonempty("[wechatpay].mchid", &w.mchid)?;
                nonempty("[wechatpay].appid", &w.appid)?;
                nonempty("[wechatpay].merchant_serial", &w.merchant_serial)?;
                let apiv3_key = ApiV3Key::from_slice(w.apiv3_key.as_bytes())
                    .map_err(|e| err("[wechatpay].apiv3_key", e.to_string()))?;
                let private =
                    read_key_file("[wechatpay].merchant_private_key", &w.merchant_private_key)?;
                let private = Rsa2PrivateKey::parse(&private).map_err(|e| {
                    err(
                        "[wechatpay].merchant_private_key",
                        format!("not an RSA private key: {e}"),
                    )
                })?;
                let mut platform_keys = Vec::new();
                for (i, k) in w.platform_keys.iter().enumerate() {
                    let setting = format!("[wechatpay].platform_keys[{i}]");
                    let bytes = read_key_file(&format!("{setting}.key"), &k.key)?;
                    let key = Rsa2PublicKey::parse(&bytes).map_err(|e| {
                        err(
                            &format!("{setting}.key"),
                            format!("not an RSA public key: {e}"),
                        )
                    })?;
                    let key = PlatformKey::from_public_key(&k.serial, key)
                        .map_err(|e| err(&format!("{setting}.serial"), e.to_string()))?;
                    platform_keys.push(key);
                }
                check_url(&w.gateway).map_err(|reason| err("[wechatpay].gateway", reason))?;
                if platform_keys.is_empty() {
                    return Err(err(
                        "[wechatpay].platform_keys",
                        "needs at least one key".to_owned(),
                    ));
                }
                Some(WechatpayConfig {
                    mchid: w.mchid,
                    appid: w.appid,
                    apiv3_key,
                    merchant_serial: w.merchant_serial,
                    merchant_private_key: Arc::new(private),
                    platform_keys,
                    gateway: w.gateway,
                })
            }
        };
        let stripe = match raw.stripe {
            None => None,
            Some(s) => {
                if !s.webhook_secret.starts_with("whsec_") || s.webhook_secret.len() < 10 {
                    return Err(err(
                        "[stripe].webhook_secret",
                        "must be the endpoint's signing secret, whsec_…".to_owned(),
                    ));
                }
                let webhook_key =
                    paystate::webhook::hmac::HmacKey::new(s.webhook_secret.as_bytes())
                        .map_err(|_| err("[stripe].webhook_secret", "is empty".to_owned()))?;
                Some(StripeConfig { webhook_key })
            }
        };
        if api_keys.is_empty() {
            return Err(err(
                "[[api_keys]]",
                "at least one key is needed: every /v1/ request is signed with one".to_owned(),
            ));
        }
        let w = raw.workers;
        if w.retry_max_ms < w.retry_base_ms {
            return Err(err(
                "[workers].retry_max_ms",
                format!("must be at least retry_base_ms ({})", w.retry_base_ms),
            ));
        }
        if w.lease_secs == 0 || w.lease_secs > 30 {
            return Err(err(
                "[workers].lease_secs",
                "must be 1..=30 seconds".to_owned(),
            ));
        }
        if w.outbox_interval_ms == 0 || w.sweep_interval_ms == 0 || w.poll_interval_ms == 0 {
            return Err(err("[workers]", "intervals must be above zero".to_owned()));
        }
        if raw.http.header_timeout_secs == 0 || raw.http.request_timeout_secs == 0 {
            return Err(err("[http]", "timeouts must be above zero".to_owned()));
        }
        if w.max_connections == 0 {
            return Err(err(
                "[workers].max_connections",
                "must be above zero".to_owned(),
            ));
        }
        Ok(Config {
            file: path.to_path_buf(),
            listen: raw.listen,
            database,
            public_url: raw.public_url.trim_end_matches('/').to_owned(),
            api_keys,
            alipay,
            wechatpay,
            stripe,
            workers: w,
            http: raw.http,
        })
    }

    /// The API key with this id.
    pub fn api_key(&self, id: &str) -> Option<&ApiKey> {
        self.api_keys.iter().find(|k| k.id == id)
    }
}
