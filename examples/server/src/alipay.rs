//! Calls to the Alipay gateway: requests signed by the crate's `RequestSigner`, sent with
//! reqwest (rustls), answers returned as raw text for the crate to verify byte for byte.

use std::time::Duration;

use paystate::alipay::request::{RequestSigner, TradeRequest};
use paystate::provider::alipay::{Request, verify_answer, verify_encrypted_answer};
use paystate::{Input, Timestamp};

use crate::config::AlipayConfig;

/// The Alipay side of the server.
#[derive(Clone)]
pub struct AlipayClient {
    /// The configuration.
    pub config: AlipayConfig,
    signer: RequestSigner,
    http: reqwest::Client,
}

/// Why a gateway call gave no verified answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request could not be built or signed.
    #[error("request: {0}")]
    Request(String),
    /// The gateway could not be reached, or answered with an HTTP error status.
    #[error("gateway unreachable: {0}")]
    Transport(String),
    /// The answer failed verification or could not be read: never acted on.
    #[error("answer refused: {0}")]
    Answer(String),
}

impl AlipayClient {
    /// A client for `config`, whose `notify_url` and `return_url` point at `public_url`.
    pub fn new(config: AlipayConfig, public_url: &str) -> AlipayClient {
        let signer = RequestSigner::new(config.app_id.clone(), config.app_private_key.clone())
            .with_gateway(config.gateway.clone())
            .with_notify_url(format!("{public_url}/notify/alipay"))
            .with_return_url(format!("{public_url}/return/alipay"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        AlipayClient {
            config,
            signer,
            http,
        }
    }

    /// The signed `alipay.trade.page.pay` URL for the customer's browser.
    ///
    /// Errors: the crate's `RequestError` (a non-CNY amount, a blank subject…), as text.
    pub fn pay_url(&self, request: &TradeRequest<'_>, now: Timestamp) -> Result<String, String> {
        self.signer
            .sign(request, now)
            .map(|s| s.url())
            .map_err(|e| e.to_string())
    }

    /// Sends `request` (signed at `now`) and returns the raw answer text.
    ///
    /// Errors: [`CallError::Request`], [`CallError::Transport`] (a connection failure, a
    /// timeout, a non-2xx status: the provider is down; retry later).
    pub async fn call(
        &self,
        request: &TradeRequest<'_>,
        now: Timestamp,
    ) -> Result<String, CallError> {
        let signed = self
            .signer
            .sign(request, now)
            .map_err(|e| CallError::Request(e.to_string()))?;
        let response = self
            .http
            .post(signed.gateway())
            .header(
                "content-type",
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(signed.body().to_owned())
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(CallError::Transport(format!("HTTP {status}")));
        }
        response
            .text()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))
    }

    /// Verifies the raw answer to `request` with the configured Alipay key (decrypting it
    /// when content encryption is configured) and maps it with `map`.
    ///
    /// Errors: [`CallError::Answer`] for an answer that fails verification or parsing.
    pub fn verify<T>(
        &self,
        raw: &str,
        request: Request<'_>,
        map: impl FnOnce(&paystate::provider::Verified<paystate::provider::alipay::Answer<'_, '_>>) -> T,
    ) -> Result<T, CallError> {
        match &self.config.aes_key {
            None => {
                let answer = verify_answer(raw, request, &self.config.alipay_public_key)
                    .map_err(|e| CallError::Answer(e.to_string()))?;
                Ok(map(&answer))
            }
            Some(key) => {
                let mut buf = vec![0u8; raw.len()];
                let answer = verify_encrypted_answer(
                    raw,
                    request,
                    &self.config.alipay_public_key,
                    key,
                    &mut buf,
                )
                .map_err(|e| CallError::Answer(e.to_string()))?;
                Ok(map(&answer))
            }
        }
    }
}

/// An input mapped from a verified answer, or why there is none.
pub type Mapped = Result<Input, paystate::provider::MapError>;
