//! The ODE REST client: reqwest over rustls, timeouts, a bound on requests in flight, retries
//! with backoff on 429 and 5xx, and paging.

use super::query::{check_results, OdeQuery, QueryError};
use super::reply::{parse_reply, OdeReply, ReplyError};
use crate::product::ProductEntry;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The public service.
pub const DEFAULT_URL: &str = "https://oderest.rsl.wustl.edu/live2/";

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first backoff; each retry doubles it, with full jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A server's `Retry-After` is honoured up to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: uniform in [0, min(max, base * 2^retry)].
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.min(20))
            .min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }

    /// How long to wait before retry number `retry`: the backoff, or longer when the server
    /// asked for it (`Retry-After`, honoured up to `max_retry_after`).
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry);
        retry_after.map_or(backoff, |asked| {
            asked.min(self.max_retry_after).max(backoff)
        })
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    /// Whole-request timeout for queries (downloads set their own, per read).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Downloads fail over to a resumed attempt when no byte arrives for this long (they
    /// have no whole-request timeout: a HiRISE JP2 is hundreds of MB).
    pub read_timeout: Duration,
    /// Queries to the service in flight at once, across all users of the client. (Parallel
    /// downloads are bounded by whoever starts them.)
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: DEFAULT_URL.into(),
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(60),
            max_in_flight: 4,
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OdeError {
    #[error("invalid query: {0}")]
    Query(#[from] QueryError),
    #[error("invalid ODE URL {url:?}: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(reqwest::Error),
    #[error("{url}: HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("{url}: {source}")]
    Reply { url: String, source: ReplyError },
    #[error("{url}: the reply has no Count although results asked for c")]
    NoCount { url: String },
}

/// What a paged search saw.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchSummary {
    /// The server's count of matching products.
    pub count: u64,
    pub pages: u64,
    /// Distinct products handed to the caller.
    pub products: u64,
    /// Products seen again on a later page (the result set shifted while paging).
    pub duplicates: u64,
}

#[derive(Clone)]
pub struct OdeClient {
    http: reqwest::Client,
    downloads: reqwest::Client,
    base: reqwest::Url,
    permits: Arc<Semaphore>,
    retry: RetryPolicy,
}

/// Why one attempt failed, and whether another may succeed.
enum Attempt {
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    Fatal(OdeError),
}

impl OdeClient {
    pub fn new(config: &ClientConfig) -> Result<Self, OdeError> {
        let base = reqwest::Url::parse(&config.base_url).map_err(|e| OdeError::BaseUrl {
            url: config.base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(OdeError::BaseUrl {
                url: config.base_url.clone(),
                reason: "only http and https are supported".into(),
            });
        }
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(config.connect_timeout)
                .user_agent(concat!("areo/", env!("CARGO_PKG_VERSION")))
        };
        let http = builder()
            .timeout(config.timeout)
            .build()
            .map_err(OdeError::Setup)?;
        let downloads = builder()
            .read_timeout(config.read_timeout)
            .build()
            .map_err(OdeError::Setup)?;
        Ok(OdeClient {
            http,
            downloads,
            base,
            permits: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            retry: config.retry.clone(),
        })
    }

    pub fn base_url(&self) -> &reqwest::Url {
        &self.base
    }

    pub(crate) fn download_client(&self) -> &reqwest::Client {
        &self.downloads
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    fn url(&self, params: &[(&str, String)]) -> reqwest::Url {
        let mut url = self.base.clone();
        url.query_pairs_mut().extend_pairs(params);
        url
    }

    /// One GET with retries: 429 (after `Retry-After` when given), 5xx, timeouts and dropped
    /// connections are retried with jittered exponential backoff; other statuses are final.
    async fn get(&self, url: &reqwest::Url) -> Result<Vec<u8>, OdeError> {
        let mut last = String::new();
        for attempt in 0..self.retry.attempts {
            if attempt > 0 {
                tracing::debug!(%url, attempt, "retrying: {last}");
            }
            match self.try_get(url).await {
                Ok(body) => return Ok(body),
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Retry { reason, wait }) => {
                    last = reason;
                    if attempt + 1 < self.retry.attempts {
                        tokio::time::sleep(self.retry.wait(attempt, wait)).await;
                    }
                }
            }
        }
        Err(OdeError::GaveUp {
            url: url.to_string(),
            attempts: self.retry.attempts,
            last,
        })
    }

    async fn try_get(&self, url: &reqwest::Url) -> Result<Vec<u8>, Attempt> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Attempt::Retry {
                reason: describe(&e),
                wait: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| Attempt::Retry {
                    reason: describe(&e),
                    wait: None,
                });
        }
        let wait = retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(200).collect();
        if status.as_u16() == 429 || status.is_server_error() {
            Err(Attempt::Retry {
                reason: format!("HTTP {}", status.as_u16()),
                wait,
            })
        } else {
            Err(Attempt::Fatal(OdeError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body,
            }))
        }
    }

    /// Fetches and parses one reply for `query` with these `results` letters and paging.
    pub async fn reply(
        &self,
        query: &OdeQuery,
        results: &str,
        page: Option<(u64, u64)>,
    ) -> Result<OdeReply, OdeError> {
        check_results(results)?;
        let mut params = query.params()?;
        params.push(("results", results.to_string()));
        if let Some((offset, limit)) = page {
            params.push(("offset", offset.to_string()));
            params.push(("limit", limit.to_string()));
        }
        let url = self.url(&params);
        let body = self.get(&url).await?;
        parse_reply(&body).map_err(|source| OdeError::Reply {
            url: url.to_string(),
            source,
        })
    }

    /// How many products match (ODE counts with `results=c`).
    pub async fn count(&self, query: &OdeQuery) -> Result<u64, OdeError> {
        let reply = self.reply(query, "c", None).await?;
        reply.count.ok_or_else(|| OdeError::NoCount {
            url: self.base.to_string(),
        })
    }

    /// Counts, then fetches pages of `page_size` until `max` products (or all) have been
    /// handed to `on_page`, as each page arrives. Products already seen on an earlier page are
    /// dropped, so the caller sees each pdsid once.
    pub async fn search<E: From<OdeError>>(
        &self,
        query: &OdeQuery,
        page_size: u64,
        max: Option<u64>,
        mut on_page: impl FnMut(Vec<ProductEntry>, &SearchSummary) -> Result<(), E>,
    ) -> Result<SearchSummary, E> {
        let page_size = page_size.max(1);
        let mut summary = SearchSummary {
            count: self.count(query).await?,
            ..SearchSummary::default()
        };
        let wanted = max.map_or(summary.count, |m| m.min(summary.count));
        let mut seen = HashSet::new();
        let mut offset = 0;
        // Past the count, keep paging only while pages still bring new products: when the
        // result set shifts under us, products seen twice pushed others beyond the count.
        let mut shifted = false;
        while summary.products < wanted && (offset < summary.count || shifted) {
            let limit = page_size.min(wanted - summary.products);
            let reply = self
                .reply(query, &query.results, Some((offset, limit)))
                .await?;
            summary.pages += 1;
            if reply.products.is_empty() {
                break;
            }
            offset += reply.products.len() as u64;
            let room = (wanted - summary.products) as usize;
            let before = summary.duplicates;
            let fresh: Vec<ProductEntry> = reply
                .products
                .into_iter()
                .filter(|entry| {
                    let new = seen.insert(entry.product.pdsid.clone());
                    summary.duplicates += u64::from(!new);
                    new
                })
                .take(room)
                .collect();
            shifted = summary.duplicates > before && !fresh.is_empty();
            summary.products += fresh.len() as u64;
            on_page(fresh, &summary)?;
        }
        Ok(summary)
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// reqwest's Display hides the cause; people need it ("connection refused", "timed out").
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(1),
        };
        for retry in 0..10 {
            let ceiling = Duration::from_millis((100u64 << retry).min(250));
            assert!(policy.backoff(retry) <= ceiling, "retry {retry}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a date in the past"
        );
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn only_web_urls_are_accepted() {
        let config = |url: &str| ClientConfig {
            base_url: url.into(),
            ..ClientConfig::default()
        };
        assert!(OdeClient::new(&config("ftp://example.org/")).is_err());
        assert!(OdeClient::new(&config("not a url")).is_err());
        assert!(OdeClient::new(&config(DEFAULT_URL)).is_ok());
    }
}
