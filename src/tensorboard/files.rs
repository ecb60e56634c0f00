//! How TensorBoard event files are named: the names the writer gives them, the `<secs>` that
//! orders them, and which files of a run directory the reader, the resume logic and the
//! cluster's streaming treat as event files.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// What every name the writer gives starts with.
pub(crate) const PREFIX: &str = "events.out.tfevents.";

/// `events.out.tfevents.<secs>.<host>.<pid>.<n>`: TensorBoard reads a directory's files in
/// name order, so a later `secs` sorts later whatever the other parts say.
pub(crate) fn file_name(secs: u64, host: &str, pid: u32, n: u64) -> String {
    format!("{PREFIX}{secs}.{host}.{pid}.{n}")
}

/// The `<secs>` of a name of that form.
pub(crate) fn file_secs(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?.split('.').next()?.parse().ok()
}

/// A name the writer could have given (what a run directory streams to the coordinator).
pub(crate) fn is_written_name(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// TensorBoard's own rule for which files it reads: "tfevents" anywhere in the name.
fn is_read_by_tensorboard(name: &str) -> bool {
    name.contains("tfevents")
}

/// The event files directly inside `dir`, sorted by name as TensorBoard reads them.
pub(crate) fn event_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && is_read_by_tensorboard(&entry.file_name().to_string_lossy()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_seconds_and_sort_by_them() {
        let a = file_name(999, "zeta", 7, 0);
        let b = file_name(1000, "alpha", 1, 0);
        assert_eq!(a, "events.out.tfevents.999.zeta.7.0");
        assert_eq!((file_secs(&a), file_secs(&b)), (Some(999), Some(1000)));
        assert!(is_written_name(&a) && !is_written_name("x.tfevents.1"));
        assert!(is_read_by_tensorboard("x.tfevents.1") && !is_read_by_tensorboard("config.toml"));
        assert_eq!(file_secs("events.out.tfevents.x.host"), None);
    }
}
