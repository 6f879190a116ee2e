//! Budget counts shared through Redis (or Valkey) by every replica. Each scope's window is one
//! hash (`ut`/`uu`: used tokens/picodollars, `rt`/`ru`: reserved) that expires with its
//! window. Check-and-reserve is one Lua script over every budget of a request, so two
//! replicas can never both take the last of a budget; settling is plain `HINCRBY`s in one
//! pipeline. Every call is bounded by the store's timeout: past it the store counts
//! as unreachable and each budget's `failureMode` decides.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use llmkube_router::money::Usd;
use llmkube_router::spec::{DEFAULT_KEY_PREFIX, DEFAULT_STORE_TIMEOUT_MS, RedisStoreSpec};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, Script};

use super::{Charge, Counts, Slot};

/// Checks every slot, then reserves on all of them; returns 0, or the 1-based index of the
/// first spent slot. ARGV: tokens, picodollars, then per key: max tokens, max picodollars
/// (-1: no cap), seconds to live.
const RESERVE: &str = r"
local t, u = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, k in ipairs(KEYS) do
  local mt, mu = tonumber(ARGV[i * 3]), tonumber(ARGV[i * 3 + 1])
  local v = redis.call('HMGET', k, 'ut', 'rt', 'uu', 'ru')
  local tok = tonumber(v[1] or 0) + tonumber(v[2] or 0)
  local usd = tonumber(v[3] or 0) + tonumber(v[4] or 0)
  if (mt >= 0 and tok >= mt) or (mu >= 0 and usd >= mu) then return i end
end
for i, k in ipairs(KEYS) do
  redis.call('HINCRBY', k, 'rt', t)
  redis.call('HINCRBY', k, 'ru', u)
  redis.call('EXPIRE', k, tonumber(ARGV[i * 3 + 2]))
end
return 0
";

/// Why the store did not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within the timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// It failed moments ago; not asked again until the back-off passes.
    #[error("redis failed less than {0:?} ago ({1})")]
    Down(Duration, String),
}

/// How long after a failure requests do not wait for Redis: they go straight to their
/// `failureMode`, so an outage costs no latency. The first request after it tries again.
const BACK_OFF: Duration = Duration::from_secs(1);

/// A connection to the shared store.
pub struct RedisStore {
    conn: ConnectionManager,
    reserve: Script,
    timeout: Duration,
    key_prefix: String,
    /// What it was built from: a reload with the same spec and password keeps the connection.
    identity: (RedisStoreSpec, Option<String>),
    /// Until when (and why) the store counts as down.
    down: Mutex<Option<(Instant, String)>>,
}

impl RedisStore {
    /// A lazily connected store (the first request connects; a down server is not an error
    /// here). `username`/`password` come from the credentials Secret.
    pub fn new(
        spec: &RedisStoreSpec,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<RedisStore, StoreError> {
        let db = spec.database.unwrap_or(0);
        let info = format!("redis://{}/{db}", spec.address).into_connection_info()?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &username {
            settings = settings.set_username(user);
        }
        if let Some(pass) = &password {
            settings = settings.set_password(pass);
        }
        let info = info.set_redis_settings(settings);
        let timeout = Duration::from_millis(u64::from(
            spec.timeout_ms.unwrap_or(DEFAULT_STORE_TIMEOUT_MS),
        ));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let client = redis::Client::open(info)?;
        Ok(RedisStore {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            reserve: Script::new(RESERVE),
            timeout,
            key_prefix: spec
                .key_prefix
                .clone()
                .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned()),
            identity: (spec.clone(), password),
            down: Mutex::new(None),
        })
    }

    /// Whether this store was built from `spec` and `password`.
    pub fn is_for(&self, spec: &RedisStoreSpec, password: &Option<String>) -> bool {
        self.identity.0 == *spec && self.identity.1 == *password
    }

    /// The prefix of every key.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Runs `op` within the timeout, unless the store failed within the back-off.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        {
            let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((until, why)) = down.as_ref()
                && Instant::now() < *until
            {
                return Err(StoreError::Down(BACK_OFF, why.clone()));
            }
        }
        let result = match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Redis(e)),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(_) => *down = None,
            Err(e) => *down = Some((Instant::now() + BACK_OFF, e.to_string())),
        }
        result
    }

    /// Reserves `charge` on every slot unless one is spent (`Ok(Err(i))`: slot `i` is).
    pub async fn reserve(
        &self,
        slots: &[Slot],
        charge: Charge,
    ) -> Result<Result<(), usize>, StoreError> {
        let mut inv = self.reserve.prepare_invoke();
        inv.arg(charge.tokens).arg(charge.usd.0);
        let now = super::unix_now();
        for slot in slots {
            let cap = |c: Option<u64>| c.map_or(-1i128, i128::from).to_string();
            inv.key(&slot.key)
                .arg(cap(slot.limits.max_tokens))
                .arg(cap(slot.limits.max_usd.map(|u| u.0)))
                // A little past the window, so a late settle still finds its hash.
                .arg(slot.expires.saturating_sub(now) + 60);
        }
        let mut conn = self.conn.clone();
        let spent: usize = self.bounded(inv.invoke_async(&mut conn)).await?;
        Ok(match spent {
            0 => Ok(()),
            i => Err((i - 1).min(slots.len().saturating_sub(1))),
        })
    }

    /// Replaces the reservation `reserved` by `used` on every slot.
    pub async fn settle(
        &self,
        slots: &[Slot],
        reserved: Charge,
        used: Charge,
    ) -> Result<(), StoreError> {
        // Each HINCRBY is atomic on its own; a MULTI/EXEC around them would only add a round of
        // work on the server.
        let mut pipe = redis::pipe();
        let neg = |n: u64| -i64::try_from(n).unwrap_or(i64::MAX);
        let pos = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let now = super::unix_now();
        for slot in slots {
            // A settle after the window lapsed must not leave a hash that never expires.
            let ttl = i64::try_from(slot.expires.saturating_sub(now) + 60).unwrap_or(i64::MAX);
            pipe.expire(&slot.key, ttl).ignore();
            pipe.hincr(&slot.key, "rt", neg(reserved.tokens)).ignore();
            pipe.hincr(&slot.key, "ru", neg(reserved.usd.0)).ignore();
            pipe.hincr(&slot.key, "ut", pos(used.tokens)).ignore();
            pipe.hincr(&slot.key, "uu", pos(used.usd.0)).ignore();
        }
        let mut conn = self.conn.clone();
        self.bounded(pipe.query_async::<()>(&mut conn)).await
    }

    /// The counts of every key starting with `prefix` (a budget's current window).
    pub async fn read(&self, prefix: &str) -> Result<Vec<(String, Counts)>, StoreError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", escape_glob(prefix));
        let keys: Vec<String> = self
            .bounded(async {
                let mut keys = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut conn)
                        .await?;
                    keys.extend(batch);
                    if next == 0 || keys.len() >= 10_000 {
                        return Ok(keys);
                    }
                    cursor = next;
                }
            })
            .await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let v: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = self
                .bounded(
                    redis::cmd("HMGET")
                        .arg(&key)
                        .arg(&["ut", "rt", "uu", "ru"][..])
                        .query_async(&mut conn),
                )
                .await?;
            let n = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
            let charge = |t, u| Charge {
                tokens: n(t),
                usd: Usd(n(u)),
            };
            out.push((
                key,
                Counts {
                    used: charge(v.0, v.2),
                    reserved: charge(v.1, v.3),
                },
            ));
        }
        Ok(out)
    }
}

/// `s` with Redis glob metacharacters escaped.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
