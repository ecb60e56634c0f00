//! Fencing: the Lua scripts through which every write of a task's owner goes, so that the
//! check "this worker still owns the task" and the write are one atomic step on the server.
//! A worker superseded (its lease ran out while it was stopped or cut off, and another took the
//! task over) learns it from its next write, which changes nothing. The coordinator's queueing
//! is a script too: it adds a run's entry only when the run has no live one, so that it can be
//! repeated after any failure or outage without ever queueing a run twice.

use redis::{Cmd, RedisResult, Script};

use super::{Redis, GROUP, KEY_TTL_S};

/// The guard: the entry is pending to this consumer and, for a sweep run, the run's owner key
/// still holds this worker's token. KEYS[1]: the task stream, KEYS[2]: the owner key or '';
/// ARGV[1..4]: group, entry id, consumer, token.
const GUARD: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then
  return redis.error_reply('FENCED task ' .. ARGV[2] .. ' is no longer pending to ' .. ARGV[3])
end
if KEYS[2] ~= '' then
  local t = redis.call('GET', KEYS[2])
  if t ~= ARGV[4] then
    return redis.error_reply('FENCED the run is now owned by ' .. tostring(t))
  end
end
";

/// After the guard: ARGV[5..] holds commands, each as its word count and its words.
const WRITES: &str = r"
local i = 5
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
";

/// After the guard: hands the task back, as a new entry with the same fields (ARGV[6..]) for
/// any worker, and points the run (ARGV[5]) in the entries hash (KEYS[3]) at it.
const HAND_BACK: &str = r"
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[5], id) end
if KEYS[2] ~= '' then redis.call('DEL', KEYS[2]) end
return id
";

/// Takes ownership of a run whose entry is pending to this worker: a new attempt, and the
/// owner key set to the token `<attempt>:<worker>:<entry>`. KEYS: stream, attempt key, owner
/// key; ARGV: group, entry id, consumer, ttl. Returns (attempt, token, deliveries).
const CLAIM: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then
  return redis.error_reply('FENCED task ' .. ARGV[2] .. ' is no longer pending to ' .. ARGV[3])
end
local a = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local token = a .. ':' .. ARGV[3] .. ':' .. ARGV[2]
redis.call('SET', KEYS[3], token, 'EX', ARGV[4])
return {a, token, p[1][4]}
";

/// Queues run ARGV[1] (task ARGV[2]) unless the entries hash (KEYS[2]) points at a live entry
/// of the stream (KEYS[1]) or marks it done. Returns 1 when it queued.
const QUEUE: &str = r"
local id = redis.call('HGET', KEYS[2], ARGV[1])
if id == 'done' then return 0 end
if id and #redis.call('XRANGE', KEYS[1], id, id) > 0 then return 0 end
local new = redis.call('XADD', KEYS[1], '*', 'run', ARGV[1], 'task', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], new)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
";

/// What a fenced write came to.
#[derive(Debug)]
pub(super) enum Fenced<T> {
    Done(T),
    /// The task is no longer this worker's (or its job is gone); nothing was written.
    Superseded(String),
}

/// Whose task an entry is: what every fenced write checks first.
#[derive(Clone, Debug)]
pub(super) struct Guard {
    pub tasks: String,
    pub entry: String,
    pub consumer: String,
    /// A sweep run's owner key and this worker's token in it.
    pub owner: Option<(String, String)>,
}

/// Commands to run only while a guard holds, in order.
#[derive(Default)]
pub(super) struct Writes {
    words: Vec<Vec<u8>>,
}

impl Writes {
    pub fn add(&mut self, cmd: &Cmd) -> &mut Self {
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => b"0".to_vec(),
            })
            .collect();
        self.words.push(args.len().to_string().into_bytes());
        self.words.extend(args);
        self
    }
}

impl Guard {
    fn invoke<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        let (owner, token) = self.owner.clone().unwrap_or_default();
        inv.key(&self.tasks).key(owner).arg(GROUP).arg(&self.entry).arg(&self.consumer).arg(token);
        inv
    }

    /// Runs `writes` if this guard still holds.
    pub fn write(&self, redis: &mut Redis, writes: &Writes) -> anyhow::Result<Fenced<()>> {
        let script = Script::new(&format!("{GUARD}{WRITES}"));
        let mut inv = self.invoke(&script);
        for w in &writes.words {
            inv.arg(w.as_slice());
        }
        fenced(redis.call_raw(|c| inv.invoke::<i64>(c).map(|_| ()))?)
    }

    /// Hands the task back for any worker (a new entry with `fields`; `run` and `entries`
    /// keep a sweep's entries hash pointing at it) if this guard still holds.
    pub fn hand_back(&self, redis: &mut Redis, run: &str, entries: &str, fields: &[(String, Vec<u8>)]) -> anyhow::Result<Fenced<()>> {
        let script = Script::new(&format!("{GUARD}{HAND_BACK}"));
        let mut inv = self.invoke(&script);
        inv.key(entries).arg(run);
        for (f, v) in fields {
            inv.arg(f).arg(v.as_slice());
        }
        fenced(redis.call_raw(|c| inv.invoke::<String>(c).map(|_| ()))?)
    }
}

/// Claims a sweep run whose entry `entry` of `tasks` is pending to `consumer`: returns the
/// attempt, the token and how often the entry was delivered.
pub(super) fn claim(redis: &mut Redis, tasks: &str, attempt_key: &str, owner_key: &str, entry: &str, consumer: &str) -> anyhow::Result<Fenced<(u64, String, u64)>> {
    let script = Script::new(CLAIM);
    let mut inv = script.prepare_invoke();
    inv.key(tasks).key(attempt_key).key(owner_key).arg(GROUP).arg(entry).arg(consumer).arg(KEY_TTL_S);
    fenced(redis.call_raw(|c| inv.invoke::<(u64, String, u64)>(c))?)
}

/// Queues a run unless it has a live entry or is done; returns whether it queued.
pub(super) fn queue(redis: &mut Redis, tasks: &str, entries: &str, run: &str, task_json: &str) -> anyhow::Result<bool> {
    let script = Script::new(QUEUE);
    let mut inv = script.prepare_invoke();
    inv.key(tasks).key(entries).arg(run).arg(task_json).arg(KEY_TTL_S);
    redis.call(|c| inv.invoke::<i64>(c)).map(|n| n == 1)
}

fn fenced<T>(r: RedisResult<T>) -> anyhow::Result<Fenced<T>> {
    match r {
        Ok(v) => Ok(Fenced::Done(v)),
        Err(e) if e.code() == Some("FENCED") => Ok(Fenced::Superseded(e.detail().unwrap_or("superseded").to_string())),
        Err(e) if e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP") => {
            Ok(Fenced::Superseded("its job is gone (the task stream no longer exists)".into()))
        }
        Err(e) => Err(anyhow::anyhow!("a fenced write failed: {e}")),
    }
}
