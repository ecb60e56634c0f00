//! Full training-state checkpoints: everything a run needs to continue bit for bit.
//!
//! A checkpoint is a directory `checkpoints/step-<12-digit step>/` holding
//!
//! ```text
//! tensors.safetensors   every array: weights, optimiser moments, the replay buffer, θ, ...
//! state.json            everything else: counters, generator positions, the env in mid-episode
//! manifest.json         format version, and size and CRC-32C of the two files above
//! ```
//!
//! It is written into a temporary directory (each file fsynced), renamed into place and the
//! parent synced, so a crash leaves either the whole checkpoint or none of it; the newest
//! [`KEEP`] are kept, so a crash during a write always leaves an older good one. Loading
//! checks both checksums and falls back to the older checkpoint, saying why.
//!
//! Something under `checkpoints/` named like a checkpoint that is none (a stray file, an empty
//! or half-copied directory) never counts towards [`KEEP`]: it is moved into
//! `checkpoints/set-aside/` with a warning, once, and left there for its owner to inspect.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::fsutil::friendly_io;

/// Version of the layout; a checkpoint of another version is refused, naming both.
pub const FORMAT: u32 = 1;
/// Full checkpoints kept per run.
pub const KEEP: usize = 2;

const TENSORS: &str = "tensors.safetensors";
const STATE: &str = "state.json";
const MANIFEST: &str = "manifest.json";
/// Where unusable entries of `checkpoints/` are moved (see the module doc).
pub const SET_ASIDE: &str = "set-aside";

/// What a learner writes into a checkpoint: named arrays and named JSON values.
#[derive(Default)]
pub struct CheckpointWriter {
    arrays: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    state: serde_json::Map<String, serde_json::Value>,
}

impl CheckpointWriter {
    pub fn f32s(&mut self, name: &str, values: &[f32]) {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.arrays.push((name.into(), Dtype::F32, vec![values.len()], bytes));
    }

    pub fn f64s(&mut self, name: &str, values: &[f64]) {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.arrays.push((name.into(), Dtype::F64, vec![values.len()], bytes));
    }

    pub fn i64s(&mut self, name: &str, values: &[i64]) {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.arrays.push((name.into(), Dtype::I64, vec![values.len()], bytes));
    }

    /// An i64 scalar (shape `[]`), as `tame eval` reads a checkpoint's step.
    pub fn i64_scalar(&mut self, name: &str, value: i64) {
        self.arrays.push((name.into(), Dtype::I64, Vec::new(), value.to_le_bytes().to_vec()));
    }

    /// An f32 array with a shape (network weights keep theirs, so `tame eval` reads them).
    pub fn f32_tensor(&mut self, name: &str, shape: &[usize], values: &[f32]) {
        self.f32s(name, values);
        if let Some(last) = self.arrays.last_mut() {
            last.2 = shape.to_vec();
        }
    }

    /// A JSON value under `key` (later values under the same key replace earlier ones).
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) -> anyhow::Result<()> {
        let value = serde_json::to_value(value).with_context(|| format!("checkpoint value '{key}'"))?;
        self.state.insert(key.into(), value);
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct FileSum {
    bytes: u64,
    crc32c: u32,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    step: u64,
    files: HashMap<String, FileSum>,
}

/// A checkpoint read back and verified.
pub struct Checkpoint {
    pub step: u64,
    pub dir: PathBuf,
    tensors: Vec<u8>,
    state: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint").field("step", &self.step).field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Checkpoint {
    /// The safetensors file, whose weights `tame eval` reads by name.
    pub fn tensors_path(&self) -> PathBuf {
        self.dir.join(TENSORS)
    }

    fn array(&self, name: &str, dtype: Dtype) -> anyhow::Result<Vec<u8>> {
        let file = SafeTensors::deserialize(&self.tensors)
            .map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e:?})", self.tensors_path().display()))?;
        let view = file.tensor(name).map_err(|_| {
            anyhow::anyhow!("checkpoint {} has no array '{name}': it was written by another configuration", self.dir.display())
        })?;
        if view.dtype() != dtype {
            bail!("checkpoint {} array '{name}' is {:?}, expected {dtype:?}", self.dir.display(), view.dtype());
        }
        Ok(view.data().to_vec())
    }

    /// The f32 array `name`, which must have `len` elements.
    pub fn f32s(&self, name: &str, len: usize) -> anyhow::Result<Vec<f32>> {
        let bytes = self.array(name, Dtype::F32)?;
        self.check_len(name, bytes.len() / 4, len)?;
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// The f32 array `name`, whatever its length (the caller checks it).
    pub fn f32s_any(&self, name: &str) -> anyhow::Result<Vec<f32>> {
        let bytes = self.array(name, Dtype::F32)?;
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    pub fn f64s(&self, name: &str, len: usize) -> anyhow::Result<Vec<f64>> {
        let bytes = self.array(name, Dtype::F64)?;
        self.check_len(name, bytes.len() / 8, len)?;
        Ok(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
    }

    fn check_len(&self, name: &str, got: usize, want: usize) -> anyhow::Result<()> {
        if got != want {
            bail!("checkpoint {} array '{name}' has {got} elements, the configured run needs {want}", self.dir.display());
        }
        Ok(())
    }

    /// The JSON value under `key`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> anyhow::Result<T> {
        let value = self
            .state
            .get(key)
            .with_context(|| format!("checkpoint {} has no '{key}' in {STATE}", self.dir.display()))?;
        serde_json::from_value(value.clone()).with_context(|| format!("checkpoint {}: '{key}' in {STATE}", self.dir.display()))
    }
}

/// `step-000000012000`: names sort by step.
fn dir_name(step: u64) -> String {
    format!("step-{step:012}")
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = File::create(path).map_err(|e| friendly_io(e, "creating", path))?;
    f.write_all(bytes).map_err(|e| friendly_io(e, "writing", path))?;
    f.sync_all().map_err(|e| friendly_io(e, "syncing", path))
}

fn sync_dir(dir: &Path) {
    // Makes renames durable; a directory that cannot be opened for it is no reason to fail.
    File::open(dir).and_then(|d| d.sync_all()).ok();
}

/// Writes `w` as the checkpoint of `step` under `checkpoints/`, then keeps the newest [`KEEP`].
/// On any failure the partial checkpoint is removed and the older ones are untouched.
pub fn write(checkpoints: &Path, step: u64, w: CheckpointWriter) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(checkpoints).map_err(|e| friendly_io(e, "creating", checkpoints))?;
    let fin = checkpoints.join(dir_name(step));
    let tmp = checkpoints.join(format!(".{}.{}.tmp", dir_name(step), std::process::id()));
    let result = (|| {
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| friendly_io(e, "removing", &tmp))?;
        }
        fs::create_dir(&tmp).map_err(|e| friendly_io(e, "creating", &tmp))?;
        let views: Vec<(String, TensorView<'_>)> = w
            .arrays
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("checkpoint arrays: {e:?}"))?;
        let tensors = safetensors::tensor::serialize(views, &None).map_err(|e| anyhow::anyhow!("checkpoint arrays: {e:?}"))?;
        let state = serde_json::to_vec_pretty(&w.state).context("serialising the checkpoint state")?;
        let sum = |b: &[u8]| FileSum { bytes: b.len() as u64, crc32c: crc32c::crc32c(b) };
        let manifest = Manifest {
            format: FORMAT,
            step,
            files: [(TENSORS.to_string(), sum(&tensors)), (STATE.to_string(), sum(&state))].into_iter().collect(),
        };
        write_synced(&tmp.join(TENSORS), &tensors)?;
        write_synced(&tmp.join(STATE), &state)?;
        write_synced(&tmp.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
        sync_dir(&tmp);
        if fin.exists() {
            // The same step checkpointed twice (a stop right at an evaluation): replace it.
            fs::remove_dir_all(&fin).map_err(|e| friendly_io(e, "replacing", &fin))?;
        }
        fs::rename(&tmp, &fin).map_err(|e| friendly_io(e, "renaming the new checkpoint to", &fin))?;
        sync_dir(checkpoints);
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    prune(checkpoints)?;
    Ok(fin)
}

/// Writes checkpoints on a thread of its own, one at a time: the state is copied into memory
/// on the caller's thread (so training can move on at once), and the disk work, whose fsyncs
/// take tenths of a second on a busy disk, overlaps with training. A checkpoint counts only
/// once [`Background::wait`] has seen it complete; until then the older ones stay.
#[derive(Default)]
pub struct Background {
    pending: Option<(u64, std::thread::JoinHandle<anyhow::Result<PathBuf>>)>,
    /// The step of the newest checkpoint known to be complete.
    pub last_complete: Option<u64>,
}

impl Background {
    /// Waits for the previous write, then starts writing `w` as the checkpoint of `step`.
    pub fn submit(&mut self, checkpoints: &Path, step: u64, w: CheckpointWriter) -> anyhow::Result<()> {
        self.wait()?;
        let dir = checkpoints.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("checkpoint-writer".into())
            .spawn(move || write(&dir, step, w))
            .context("starting the checkpoint writer thread")?;
        self.pending = Some((step, handle));
        Ok(())
    }

    /// Waits for the write in flight, if any; its error, if it failed.
    pub fn wait(&mut self) -> anyhow::Result<()> {
        if let Some((step, handle)) = self.pending.take() {
            match handle.join() {
                Ok(result) => {
                    result?;
                    self.last_complete = Some(step);
                }
                Err(_) => bail!("the checkpoint writer thread panicked while writing step {step}"),
            }
        }
        Ok(())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Never leave a write half done behind an early return.
        let _ = self.wait();
    }
}

/// Every entry of `checkpoints/` named `step-<step>`, directory or not, newest first.
fn named_entries(checkpoints: &Path) -> anyhow::Result<Vec<(u64, PathBuf, bool)>> {
    let entries = match fs::read_dir(checkpoints) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(friendly_io(e, "listing", checkpoints)),
    };
    let mut found: Vec<(u64, PathBuf, bool)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse().ok()?;
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            Some((step, e.path(), is_dir))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(found)
}

/// Every checkpoint directory under `checkpoints/`, newest first (a regular file named like
/// one is not listed: [`write`] sets it aside).
pub fn list(checkpoints: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    Ok(named_entries(checkpoints)?.into_iter().filter(|e| e.2).map(|(step, path, _)| (step, path)).collect())
}

/// Why `dir` is not a complete checkpoint, by a check that reads only its manifest and file
/// sizes (cheap enough for every prune; [`read`] verifies the checksums too).
fn incomplete(dir: &Path) -> Option<String> {
    let missing = |name: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => format!("it has no {name}"),
        _ => format!("{:#}", friendly_io(e, "reading", &dir.join(name))),
    };
    let bytes = match fs::read(dir.join(MANIFEST)) {
        Err(e) => return Some(missing(MANIFEST, e)),
        Ok(bytes) => bytes,
    };
    let damaged = |e: &dyn std::fmt::Display| Some(format!("its {MANIFEST} is damaged or not a tame checkpoint manifest: {e}"));
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return damaged(&e),
    };
    if value.get("format").and_then(|f| f.as_u64()).is_some_and(|f| f != u64::from(FORMAT)) {
        // Another version's checkpoint is one: `read` refuses it by name, nothing moves it.
        return None;
    }
    let manifest: Manifest = match serde_json::from_value(value) {
        Ok(m) => m,
        Err(e) => return damaged(&e),
    };
    for name in [TENSORS, STATE] {
        let Some(want) = manifest.files.get(name) else { return Some(format!("its {MANIFEST} lists no {name}")) };
        match fs::metadata(dir.join(name)) {
            Ok(m) if m.len() == want.bytes => {}
            Ok(m) => return Some(format!("its {name} is truncated: {} bytes, the manifest says {}", m.len(), want.bytes)),
            Err(e) => return Some(missing(name, e)),
        }
    }
    None
}

/// Moves `entry` (under `checkpoints/`) into `checkpoints/set-aside/`, under its own name or,
/// if that is taken, the name suffixed `-2`, `-3`, ...; returns where it went.
pub fn set_aside(checkpoints: &Path, entry: &Path) -> anyhow::Result<PathBuf> {
    let aside = checkpoints.join(SET_ASIDE);
    fs::create_dir_all(&aside).map_err(|e| friendly_io(e, "creating", &aside))?;
    let name = entry.file_name().with_context(|| format!("{} has no file name", entry.display()))?.to_string_lossy().into_owned();
    let mut target = aside.join(&name);
    for n in 2.. {
        if fs::symlink_metadata(&target).is_err() {
            break;
        }
        target = aside.join(format!("{name}-{n}"));
    }
    fs::rename(entry, &target).map_err(|e| friendly_io(e, "setting aside (renaming)", entry))?;
    sync_dir(checkpoints);
    Ok(target)
}

/// Sets aside every entry of `checkpoints/` named like a checkpoint that is not a complete
/// one (a regular file, a directory without a valid manifest or with a file of the wrong
/// size); returns one warning per entry, naming it, why, and where it went.
pub fn set_aside_incomplete(checkpoints: &Path) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    for (_, path, is_dir) in named_entries(checkpoints)? {
        let why = if is_dir { incomplete(&path) } else { Some("it is not a directory".to_string()) };
        if let Some(why) = why {
            let to = set_aside(checkpoints, &path)?;
            notes.push(format!(
                "{} is not a usable checkpoint ({why}); set aside as {}, so it does not count among the {KEEP} kept",
                path.display(),
                to.display()
            ));
        }
    }
    Ok(notes)
}

/// Removes all but the newest [`KEEP`] complete checkpoints (setting aside what is not one, with
/// a warning), and temporary ones a crash left behind.
fn prune(checkpoints: &Path) -> anyhow::Result<()> {
    for note in set_aside_incomplete(checkpoints)? {
        eprintln!("warning: {note}");
    }
    for (_, dir) in list(checkpoints)?.into_iter().skip(KEEP) {
        fs::remove_dir_all(&dir).map_err(|e| friendly_io(e, "removing the old checkpoint", &dir))?;
    }
    if let Ok(entries) = fs::read_dir(checkpoints) {
        let mine = format!(".{}.tmp", std::process::id());
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".step-") && name.ends_with(".tmp") && !name.ends_with(&mine) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// Reads and verifies one checkpoint directory.
pub fn read(dir: &Path) -> anyhow::Result<Checkpoint> {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).map_err(|e| friendly_io(e, "reading", &path))
    };
    let manifest: Manifest = serde_json::from_slice(&read(MANIFEST)?)
        .map_err(|e| anyhow::anyhow!("{} is damaged or not a tame checkpoint manifest ({e})", dir.join(MANIFEST).display()))?;
    if manifest.format != FORMAT {
        bail!(
            "checkpoint {} has format {}, this tame reads format {FORMAT}: it was written by an incompatible version",
            dir.display(),
            manifest.format
        );
    }
    let verified = |name: &str| -> anyhow::Result<Vec<u8>> {
        let bytes = read(name)?;
        let want = manifest.files.get(name).with_context(|| format!("{} lists no {name}", dir.join(MANIFEST).display()))?;
        if bytes.len() as u64 != want.bytes {
            bail!("{} is truncated: {} bytes, the manifest says {}", dir.join(name).display(), bytes.len(), want.bytes);
        }
        let crc = crc32c::crc32c(&bytes);
        if crc != want.crc32c {
            bail!("{} fails its checksum (CRC-32C {crc:08x}, the manifest says {:08x})", dir.join(name).display(), want.crc32c);
        }
        Ok(bytes)
    };
    let tensors = verified(TENSORS)?;
    let state = serde_json::from_slice(&verified(STATE)?)
        .with_context(|| format!("{} is not a JSON object", dir.join(STATE).display()))?;
    Ok(Checkpoint { step: manifest.step, dir: dir.to_path_buf(), tensors, state })
}

/// The newest checkpoint that verifies, and each newer one that did not with why.
pub fn read_newest(checkpoints: &Path) -> anyhow::Result<(Checkpoint, Vec<(PathBuf, String)>)> {
    let mut skipped = Vec::new();
    for (_, dir) in list(checkpoints)? {
        match read(&dir) {
            Ok(c) => return Ok((c, skipped)),
            Err(e) => skipped.push((dir, format!("{e:#}"))),
        }
    }
    if skipped.is_empty() {
        bail!("{} holds no checkpoint yet", checkpoints.display());
    }
    let notes: Vec<&str> = skipped.iter().map(|(_, why)| why.as_str()).collect();
    bail!("no checkpoint under {} can be loaded: {}", checkpoints.display(), notes.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tame-ckpt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sample(step: u64) -> CheckpointWriter {
        let mut w = CheckpointWriter::default();
        w.f32s("a", &[1.5, -0.0, f32::MIN_POSITIVE / 2.0]);
        w.f64s("b", &[std::f64::consts::PI]);
        w.put("step", &step).unwrap();
        w
    }

    #[test]
    fn round_trip_keeps_bits_and_only_the_newest_two() {
        let dir = scratch("round");
        for step in [10, 20, 30] {
            write(&dir, step, sample(step)).unwrap();
        }
        let steps: Vec<u64> = list(&dir).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, vec![30, 20]);
        let (c, notes) = read_newest(&dir).unwrap();
        assert!(notes.is_empty());
        assert_eq!(c.step, 30);
        let a = c.f32s("a", 3).unwrap();
        assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), [1.5f32, -0.0, f32::MIN_POSITIVE / 2.0].map(f32::to_bits));
        assert_eq!(c.f64s("b", 1).unwrap(), vec![std::f64::consts::PI]);
        assert_eq!(c.get::<u64>("step").unwrap(), 30);
        assert!(c.f32s("a", 4).unwrap_err().to_string().contains("3 elements"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_newest_checkpoint_falls_back_to_the_older_one_and_says_why() {
        let dir = scratch("damaged");
        write(&dir, 1, sample(1)).unwrap();
        let newest = write(&dir, 2, sample(2)).unwrap();
        let mut bytes = fs::read(newest.join(TENSORS)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(newest.join(TENSORS), &bytes).unwrap();
        let (c, notes) = read_newest(&dir).unwrap();
        assert_eq!(c.step, 1);
        assert!(notes[0].1.contains("fails its checksum") && notes[0].0 == newest, "{notes:?}");
        fs::write(newest.join(STATE), b"{").unwrap();
        fs::write(newest.join(TENSORS), &bytes[..10]).unwrap();
        let err = read(&newest).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stray_empty_directory_is_set_aside_and_does_not_count_towards_the_kept_two() {
        let dir = scratch("stray-dir");
        write(&dir, 10, sample(10)).unwrap();
        // Sorts newest; before the fix it was kept and the step-10 checkpoint pruned.
        fs::create_dir_all(dir.join("step-999999999999")).unwrap();
        write(&dir, 20, sample(20)).unwrap();
        let steps: Vec<u64> = list(&dir).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, vec![20, 10]);
        assert!(dir.join(SET_ASIDE).join("step-999999999999").is_dir());
        // Set aside once: later writes have nothing more to move or say.
        fs::create_dir_all(dir.join("step-999999999999")).unwrap();
        assert_eq!(set_aside_incomplete(&dir).unwrap().len(), 1);
        assert!(dir.join(SET_ASIDE).join("step-999999999999-2").is_dir(), "a second stray of the same name keeps the first");
        assert!(set_aside_incomplete(&dir).unwrap().is_empty());
        write(&dir, 30, sample(30)).unwrap();
        assert_eq!(list(&dir).unwrap().iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![30, 20]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stray_file_named_like_a_checkpoint_is_skipped_not_fatal() {
        let dir = scratch("stray-file");
        write(&dir, 10, sample(10)).unwrap();
        fs::write(dir.join("step-000000000001"), b"not a checkpoint").unwrap();
        assert_eq!(list(&dir).unwrap().len(), 1, "a file is never listed as a checkpoint");
        // Before the fix the prune of this write failed: "removing the old checkpoint ...: Not a directory".
        write(&dir, 20, sample(20)).unwrap();
        write(&dir, 30, sample(30)).unwrap();
        assert_eq!(list(&dir).unwrap().iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![30, 20]);
        assert_eq!(fs::read(dir.join(SET_ASIDE).join("step-000000000001")).unwrap(), b"not a checkpoint");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_half_copied_checkpoint_is_set_aside_but_another_format_is_left_for_read_to_refuse() {
        let dir = scratch("half");
        let a = write(&dir, 10, sample(10)).unwrap();
        let b = write(&dir, 20, sample(20)).unwrap();
        let bytes = fs::read(b.join(TENSORS)).unwrap();
        fs::write(b.join(TENSORS), &bytes[..bytes.len() / 2]).unwrap();
        let text = fs::read_to_string(a.join(MANIFEST)).unwrap().replace("\"format\": 1", "\"format\": 99");
        fs::write(a.join(MANIFEST), text).unwrap();
        let notes = set_aside_incomplete(&dir).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("truncated") && notes[0].contains("set-aside"), "{notes:?}");
        assert_eq!(list(&dir).unwrap(), vec![(10, a.clone())]);
        assert!(read(&a).unwrap_err().to_string().contains("format 99"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn other_formats_and_empty_directories_are_refused_by_name() {
        let dir = scratch("format");
        assert!(read_newest(&dir).unwrap_err().to_string().contains("no checkpoint yet"));
        let c = write(&dir, 5, sample(5)).unwrap();
        let text = fs::read_to_string(c.join(MANIFEST)).unwrap().replace("\"format\": 1", "\"format\": 99");
        fs::write(c.join(MANIFEST), text).unwrap();
        let err = read(&c).unwrap_err().to_string();
        assert!(err.contains("format 99") && err.contains("incompatible version"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
