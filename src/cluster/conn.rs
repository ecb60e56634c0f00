//! One connection to Redis for a coordinator or a worker: URLs checked and shown with the
//! password masked, commands retried with backoff while the server is unreachable (or loading
//! its AOF after a restart), and a clear error once it stays gone past the timeout.

use std::time::{Duration, Instant};

use anyhow::bail;
use redis::{Connection, ErrorKind, RedisError, RedisResult, ServerErrorKind};

/// The URL forms `tame` accepts, for error messages.
const ACCEPTED: &str =
    "redis://[user[:password]@]host[:port][/db] or rediss://... (TLS; /#insecure skips verifying the server's certificate)";

/// A Redis URL as given and as it may be shown (password replaced by `***`).
#[derive(Clone)]
pub struct RedisUrl {
    raw: String,
    shown: String,
    /// The password, to scrub from any message that might echo it.
    secret: Option<String>,
}

impl RedisUrl {
    pub fn parse(raw: &str) -> anyhow::Result<RedisUrl> {
        let (shown, secret) = mask(raw);
        let url = RedisUrl { raw: raw.to_string(), shown, secret };
        let Some((scheme, rest)) = raw.split_once("://") else {
            bail!("Redis URL '{}' has no scheme; accepted: {ACCEPTED}", url.shown);
        };
        if scheme != "redis" && scheme != "rediss" {
            bail!("Redis URL '{}' has scheme '{scheme}'; accepted: {ACCEPTED}", url.shown);
        }
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        if host.split(['/', ':']).next().unwrap_or("").is_empty() {
            bail!("Redis URL '{}' names no host; accepted: {ACCEPTED}", url.shown);
        }
        if let Err(e) = redis::Client::open(raw) {
            bail!("Redis URL '{}' is not valid ({}); accepted: {ACCEPTED}", url.shown, url.scrub(&e.to_string()));
        }
        Ok(url)
    }

    /// The URL with its password masked: the only form that is ever printed.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// `text` with the password, should it appear, replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        match self.secret.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) => text.replace(secret, "***"),
            None => text.to_string(),
        }
    }
}

/// `(url with the password masked, the password)`.
fn mask(raw: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = raw.split_once("://") else { return (raw.to_string(), None) };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return (raw.to_string(), None) };
    match userinfo.split_once(':') {
        Some((user, pass)) => (format!("{scheme}://{user}:***@{host}{path}"), Some(pass.to_string())),
        // `redis://secret@host`: the lone part may be a password; show none of it.
        None => (format!("{scheme}://***@{host}{path}"), Some(userinfo.to_string())),
    }
}

/// A connection that reconnects on its own.
pub struct Redis {
    url: RedisUrl,
    client: redis::Client,
    conn: Option<Connection>,
    /// How long the server may stay unreachable before a command gives up.
    timeout: Duration,
    /// Commands (or pipelines) sent, for `tame bench es --redis`.
    calls: u64,
    /// Times the server came back after being unreachable: what it had not yet made durable
    /// may be gone, so callers re-check what they wait for.
    outages: u64,
}

impl Redis {
    /// Connects (retrying up to `timeout`) and checks that the server answers PING.
    pub fn connect(url: &RedisUrl, timeout: Duration) -> anyhow::Result<Redis> {
        // rediss:// needs a process-wide TLS crypto provider; an Err means one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(url.raw.as_str())
            .map_err(|e| anyhow::anyhow!("Redis URL '{}': {}", url.shown, url.scrub(&e.to_string())))?;
        let mut redis = Redis { url: url.clone(), client, conn: None, timeout, calls: 0, outages: 0 };
        let pong: String = redis.call(|c| redis::cmd("PING").query(c))?;
        if pong != "PONG" {
            bail!("the server at {} answered PING with '{pong}': it is not Redis", url.shown);
        }
        Ok(redis)
    }

    /// Runs `f` on the connection. While the server is unreachable, reconnects with backoff
    /// (saying so once) for up to the timeout; any other error is reported at once. Commands
    /// may thus run twice; every write of the protocol is idempotent or harmless twice.
    pub fn call<T>(&mut self, f: impl FnMut(&mut Connection) -> RedisResult<T>) -> anyhow::Result<T> {
        match self.call_raw(f)? {
            Ok(v) => Ok(v),
            Err(e) => bail!("{}", self.describe(&e)),
        }
    }

    /// As [`call`](Self::call), but an error that retrying does not cure comes back as the
    /// inner `Err`, for callers that expect some (a stream deleted meanwhile).
    pub fn call_raw<T>(&mut self, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> anyhow::Result<RedisResult<T>> {
        let mut since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        self.calls += 1;
        loop {
            let attempt = match self.conn.as_mut() {
                Some(c) => f(c),
                None => match self.client.get_connection_with_timeout(Duration::from_secs(5)) {
                    Ok(c) => {
                        self.conn = Some(c);
                        f(self.conn.as_mut().expect("just set"))
                    }
                    Err(e) => Err(e),
                },
            };
            let err = match attempt {
                Ok(v) => {
                    if let Some(t) = since {
                        self.outages += 1;
                        eprintln!("tame: Redis at {} is back after {:.1} s", self.url.shown, t.elapsed().as_secs_f64());
                    }
                    return Ok(Ok(v));
                }
                Err(e) => e,
            };
            if !transient(&err) || tls_refused(&err) {
                // A server's error reply leaves the connection usable; anything else may not.
                if !matches!(err.kind(), ErrorKind::Server(_) | ErrorKind::Extension) {
                    self.conn = None;
                }
                return Ok(Err(err));
            }
            self.conn = None;
            let first_failure = since.is_none();
            let first = *since.get_or_insert_with(Instant::now);
            if first_failure {
                eprintln!(
                    "tame: Redis at {} is unreachable ({}); retrying for up to {} s",
                    self.url.shown,
                    self.url.scrub(&err.to_string()),
                    self.timeout.as_secs()
                );
            }
            if first.elapsed() >= self.timeout {
                bail!(
                    "Redis at {} is still unreachable after {} s ({}); check that redis-server runs there \
                     (raise the wait with --redis-timeout)",
                    self.url.shown,
                    self.timeout.as_secs(),
                    self.url.scrub(&err.to_string())
                );
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// How long the server may stay unreachable from now on before a command gives up.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Commands (or pipelines) sent so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Outages survived so far (the server unreachable, then back).
    pub fn outages(&self) -> u64 {
        self.outages
    }

    /// A clear message for an error that retrying will not cure.
    fn describe(&self, e: &RedisError) -> String {
        let text = self.url.scrub(&e.to_string());
        let shown = &self.url.shown;
        match e.kind() {
            ErrorKind::AuthenticationFailed => {
                format!("Redis at {shown} refused the credentials ({text}); give the right user and password in the URL")
            }
            _ if e.code() == Some("NOAUTH") => {
                format!("Redis at {shown} requires a password ({text}); give it in the URL: redis://:PASSWORD@host:port")
            }
            ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
                format!("the server at {shown} does not speak the Redis protocol ({text}); is it a redis-server?")
            }
            _ if tls_refused(e) => format!(
                "the TLS handshake with {shown} failed ({text}); for a self-signed server certificate \
                 add #insecure to the URL (rediss://host:port/#insecure), which skips its verification"
            ),
            _ if text.contains("WRONGPASS") || text.contains("invalid password") => {
                format!("Redis at {shown} refused the credentials ({text}); give the right user and password in the URL")
            }
            _ => format!("Redis at {shown}: {text}"),
        }
    }
}

/// A TLS handshake that failed on the certificate: trying again will not help.
fn tls_refused(e: &RedisError) -> bool {
    let text = e.to_string();
    text.contains("certificate") || text.contains("CertificateRequired")
}

/// Errors a reconnect may cure: the server gone, restarting, or loading its data.
fn transient(e: &RedisError) -> bool {
    (e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout())
        && e.kind() != ErrorKind::Parse
        || e.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading)
}

/// `30s`, `500ms`, `2m` or plain seconds, for --lease and --redis-timeout.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Duration::from_secs_f64(v * scale)),
        _ => Err(format!("'{text}' is not a duration; accepted: a positive number with ms, s or m, e.g. 30s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_scrubbed() {
        let url = RedisUrl::parse("redis://alice:s3cret@localhost:6379/2").unwrap();
        assert_eq!(url.shown(), "redis://alice:***@localhost:6379/2");
        assert_eq!(url.scrub("auth s3cret failed"), "auth *** failed");
        assert_eq!(RedisUrl::parse("rediss://:pw@h:1").unwrap().shown(), "rediss://:***@h:1");
        assert_eq!(mask("redis://lonely@h").0, "redis://***@h");
        assert_eq!(RedisUrl::parse("redis://h").unwrap().shown(), "redis://h");
    }

    #[test]
    fn bad_urls_name_the_url_masked_and_the_accepted_forms() {
        for bad in ["localhost:6379", "http://u:topsecret@h", "redis://:topsecret@"] {
            let err = RedisUrl::parse(bad).err().unwrap().to_string();
            assert!(err.contains("accepted: redis://"), "{err}");
            assert!(!err.contains("topsecret"), "{err}");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("-1s").is_err() && parse_duration("soon").is_err());
    }
}
