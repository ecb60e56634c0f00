//! One connection to Redis for a coordinator or a worker: URLs checked and shown with the
//! password masked (given on the command line or, kept out of `ps`, in `TAME_REDIS_URL`),
//! sockets with read and write timeouts and TCP keepalive, commands retried with backoff while
//! the server is unreachable (or loading its AOF after a restart), and a clear error once it
//! stays gone past the timeout.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{Connection, ErrorKind, IntoConnectionInfo, RedisError, RedisResult, ServerErrorKind};

/// The URL forms `tame` accepts, for error messages.
const ACCEPTED: &str =
    "redis://[user[:password]@]host[:port][/db] or rediss://... (TLS; /#insecure skips verifying the server's certificate)";

/// The environment variable that may hold the URL: unlike an argument, it is not shown by `ps`.
pub const URL_ENV: &str = "TAME_REDIS_URL";

/// The URL a command names: `--redis URL`, or `--redis` given bare (`Some("")`) or left out
/// where it is required anyway (`None`), read from [`URL_ENV`]; with `--redis-ca FILE`.
pub fn url_from(flag: Option<&str>, ca: Option<&Path>) -> anyhow::Result<RedisUrl> {
    let raw = match flag {
        Some(url) if !url.is_empty() => url.to_string(),
        _ => match std::env::var(URL_ENV) {
            Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
            _ => bail!("no Redis URL: give --redis URL, or set {URL_ENV} (which `ps` does not show) and give --redis alone"),
        },
    };
    let mut url = RedisUrl::parse(&raw)?;
    if let Some(ca) = ca {
        url = url.with_ca(ca)?;
    }
    Ok(url)
}

/// A Redis URL as given and as it may be shown (password replaced by `***`).
#[derive(Clone)]
pub struct RedisUrl {
    raw: String,
    shown: String,
    /// The password, as written and percent-decoded, to scrub from any message that might
    /// echo it.
    secrets: Vec<String>,
    /// `--redis-ca`: a private CA to trust for rediss://, its path and PEM text.
    ca: Option<(PathBuf, Vec<u8>)>,
}

impl RedisUrl {
    pub fn parse(raw: &str) -> anyhow::Result<RedisUrl> {
        let (shown, secret) = mask(raw);
        let mut secrets: Vec<String> = secret.into_iter().filter(|s| !s.is_empty()).collect();
        if let Some(decoded) = secrets.first().and_then(|s| percent_decoded(s)) {
            secrets.push(decoded);
        }
        let url = RedisUrl { raw: raw.to_string(), shown, secrets, ca: None };
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

    /// Trusts the CA certificate(s) in the PEM file `path` for this rediss:// URL.
    pub fn with_ca(mut self, path: &Path) -> anyhow::Result<RedisUrl> {
        if !self.raw.starts_with("rediss://") {
            bail!("--redis-ca {} applies to rediss:// URLs only; {} is plain TCP", path.display(), self.shown);
        }
        let pem = std::fs::read(path).with_context(|| format!("reading --redis-ca {}", path.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            bail!("--redis-ca {} holds no PEM certificate; accepted: a file with -----BEGIN CERTIFICATE----- blocks", path.display());
        }
        self.ca = Some((path.to_path_buf(), pem));
        Ok(self)
    }

    /// The `--redis-ca` file, to pass on to child processes.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca.as_ref().map(|(p, _)| p.as_path())
    }

    /// Points a child `tame` command at this Redis: the URL goes in [`URL_ENV`], never on its
    /// command line (where `ps` would show the password), with `--redis` given alone.
    pub fn pass_to(&self, cmd: &mut std::process::Command) {
        cmd.env(URL_ENV, &self.raw).arg("--redis");
        if let Some(ca) = self.ca_path() {
            cmd.arg("--redis-ca").arg(ca);
        }
    }

    /// The URL with its password masked: the only form that is ever printed.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// `text` with the password, should it appear, replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        // Longest first, so that a decoded form inside the written one leaves no piece.
        let mut secrets = self.secrets.clone();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
    }
}

/// `(url with the password masked, the password)`, for any text, well-formed or not: the
/// userinfo ends at the last `@` (a password may hold `/`, `@`, `:` or `%`), and starts after
/// whatever scheme-like prefix the text has (`redis://`, or a typo such as `redis:/`); a
/// `pass=` or `password=` query value is masked too.
fn mask(raw: &str) -> (String, Option<String>) {
    let secret_key = |kv: &str| kv.split_once('=').is_some_and(|(k, _)| k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password"));
    let (head, query) = match raw.split_once('?') {
        Some((h, q)) if !q.contains('@') || q.split('&').any(secret_key) => (h, Some(q)),
        _ => (raw, None),
    };
    let mut secret = None;
    let mut shown = match head.rfind('@') {
        Some(at) => {
            // The scheme, then its separator: `:` and slashes (`://`, or typos such as `:/`, `//`).
            let scheme = head.find(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c))).unwrap_or(0);
            let rest = &head[scheme..];
            let after_colon = rest.strip_prefix(':').unwrap_or(rest);
            let prefix_end = (head.len() - after_colon.trim_start_matches('/').len()).min(at);
            let (prefix, userinfo, host) = (&head[..prefix_end], &head[prefix_end..at], &head[at + 1..]);
            match userinfo.split_once(':') {
                Some((user, pass)) => {
                    secret = Some(pass.to_string());
                    format!("{prefix}{user}:***@{host}")
                }
                // `redis://secret@host`: the lone part may be a password; show none of it.
                None => {
                    secret = Some(userinfo.to_string());
                    format!("{prefix}***@{host}")
                }
            }
        }
        None => head.to_string(),
    };
    if let Some(query) = query {
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if secret_key(kv) => {
                    secret.get_or_insert_with(|| v.to_string());
                    format!("{k}=***")
                }
                _ => kv.to_string(),
            })
            .collect();
        shown = format!("{shown}?{}", parts.join("&"));
    }
    (shown, secret)
}

/// `s` with its `%XX` escapes decoded, when it has any.
fn percent_decoded(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().filter(|d| d != s)
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
        let shown_err = |e: RedisError| anyhow::anyhow!("Redis URL '{}': {}", url.shown, url.scrub(&e.to_string()));
        // Keepalive finds a peer that vanished without a word (a half-open connection) on an
        // idle socket; the socket timeouts below bound every blocking call on a busy one.
        let keepalive = TcpKeepalive::new().with_time(Duration::from_secs(10)).with_interval(Duration::from_secs(5)).with_retries(3);
        let info = url
            .raw
            .as_str()
            .into_connection_info()
            .map_err(shown_err)?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true).set_keepalive(keepalive));
        let client = match &url.ca {
            Some((_, pem)) => {
                let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) };
                redis::Client::build_with_tls(info, certs).map_err(shown_err)?
            }
            None => redis::Client::open(info).map_err(shown_err)?,
        };
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
                None => match self.open() {
                    Ok(c) => {
                        self.conn = Some(c);
                        f(self.conn.as_mut().expect("just set"))
                    }
                    Err(e) => {
                        if self.url.raw.starts_with("rediss://") && speaks_plain_redis(&self.client) {
                            bail!(
                                "the TLS handshake with {} failed: the server there speaks plain TCP, not TLS; \
                                 use redis:// for it (or enable TLS on the server)",
                                self.url.shown
                            );
                        }
                        Err(e)
                    }
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

    /// A new connection whose reads and writes time out: redis-rs clears the connect timeout
    /// once connected, and a stalled server would otherwise block a call forever. The bound
    /// is well above the longest wait the protocol asks for (a blocking read of 300 ms, a
    /// checkpoint of up to 256 MiB); a timed-out call counts as an outage and is retried.
    fn open(&self) -> RedisResult<Connection> {
        let c = self.client.get_connection_with_timeout(Duration::from_secs(5))?;
        let io = socket_timeout(self.timeout);
        c.set_read_timeout(Some(io))?;
        c.set_write_timeout(Some(io))?;
        Ok(c)
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

/// The read and write timeout of a socket, for an outage bound of `timeout`: a third of it
/// (so that a stall is found and retried within the bound), between 2 and 30 s.
fn socket_timeout(timeout: Duration) -> Duration {
    (timeout / 3).clamp(Duration::from_secs(2), Duration::from_secs(30))
}

/// Whether the server of a rediss:// client answers a plain-text PING: then the handshake
/// failed because the server does not speak TLS, and retrying will not help.
fn speaks_plain_redis(client: &redis::Client) -> bool {
    use std::io::{Read, Write};
    let redis::ConnectionAddr::TcpTls { host, port, .. } = client.get_connection_info().addr() else { return false };
    let Ok(addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port)) else { return false };
    addrs.take(2).any(|addr| {
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut reply = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut reply).is_ok_and(|n| reply[..n].starts_with(b"+PONG") || reply[..n].starts_with(b"-NOAUTH"))
    })
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

/// The leases a job may ask for: below, renewals could not keep up; above, a dead worker's
/// task would wait more than a day. `--lease` refuses others, and so do workers.
pub(super) const LEASE_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(86_400));

/// A `--lease`: a duration within [`LEASE_RANGE`].
pub fn parse_lease(text: &str) -> Result<Duration, String> {
    let lease = parse_duration(text)?;
    if !(LEASE_RANGE.0..=LEASE_RANGE.1).contains(&lease) {
        return Err(format!("a lease of '{text}' is out of range; accepted: 100ms to 1 day (86400s)"));
    }
    Ok(lease)
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
    fn any_password_is_masked_whatever_it_holds_and_however_the_url_is_misspelt() {
        for pw in ["a/b", "a@b", "a:b", "a%2Fb", "p/@:%x", "s3cret"] {
            for url in [
                format!("redis://:{pw}@127.0.0.1:6379/0"),
                format!("redis://alice:{pw}@h:1"),
                format!("rediss://:{pw}@h:1/#insecure"),
                format!("redis:/:{pw}@127.0.0.1:7711"),
                format!("redis//:{pw}@host"),
                format!("redis+unix:///x.sock?db=1&pass={pw}"),
                format!("redis:{pw}@h"),
            ] {
                let (shown, secret) = mask(&url);
                assert!(!shown.contains(pw), "{url} shown as {shown}");
                assert!(shown.contains("***"), "{url} shown as {shown}");
                // (`redis:a:b@h` reads as user `a`, password `b`.)
                assert!(secret.as_deref().is_some_and(|s| !s.is_empty() && pw.ends_with(s)), "{url}: {secret:?}");
                // Whether the URL is accepted or not, no message names the password.
                let message = match RedisUrl::parse(&url) {
                    Ok(u) => u.scrub(&format!("{} {}", u.shown(), url)),
                    Err(e) => format!("{e:#}"),
                };
                assert!(!message.contains(pw), "{url}: {message}");
            }
        }
        // A percent-encoded password is scrubbed in its decoded form too.
        let url = RedisUrl::parse("redis://:p%40ss@h:1").unwrap();
        assert_eq!(url.scrub("WRONGPASS p@ss and p%40ss"), "WRONGPASS *** and ***");
    }

    #[test]
    fn leases_out_of_range_are_refused() {
        assert_eq!(parse_lease("30s").unwrap(), Duration::from_secs(30));
        for bad in ["0.5ms", "99ms", "2d", "86401"] {
            let err = parse_lease(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains("accepted"), "{err}");
        }
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
