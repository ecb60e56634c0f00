//! Advisory exclusive locks on directories, so that two `tame` processes never write into
//! one run or sweep directory at once. The lock is a `.lock` file inside the directory, held
//! with `flock` (`File::try_lock`) for as long as the guard lives; the kernel releases it when
//! the process dies, however it dies. The file holds the holder's PID for error messages and
//! is left in place (deleting it would let a second process lock a fresh file while a third
//! still holds the old one).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The lock file's name inside a locked directory.
pub const LOCK_FILE: &str = ".lock";

/// Holds a directory's lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// The `.lock` file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Locks `dir` (which must exist) for this process, or fails at once, naming the process that
/// holds it.
pub fn lock_dir(dir: &Path) -> anyhow::Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| crate::fsutil::friendly_io(e, "creating the lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("PID {pid}"),
                Err(_) => "another process (its PID is not written yet)".to_owned(),
            };
            bail!(
                "{} is in use by another tame process ({holder}); wait for it to finish or stop \
                 it, or choose another directory",
                dir.display()
            );
        }
        Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
    }
    let pid = std::process::id();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{pid}"))
        .map_err(|e| crate::fsutil::friendly_io(e, "writing", &path))?;
    Ok(DirLock { _file: file, path })
}

/// Whether a live process holds `dir`'s lock; only reads, so it can be asked of any
/// directory (`tame inspect` shows such a run as running).
pub fn is_locked(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else { return false };
    // A shared lock conflicts only with an exclusive holder, and is dropped with the file.
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("tame-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = lock_dir(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(first.path()).unwrap().trim(), std::process::id().to_string());
        // flock locks belong to an open file, so a second open in this process conflicts too.
        let err = lock_dir(&dir).unwrap_err().to_string();
        assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(is_locked(&dir));
        drop(first);
        assert!(!is_locked(&dir));
        lock_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locking_a_missing_directory_names_it() {
        let dir = std::env::temp_dir().join("tame-lock-no-such-dir-xyz");
        let err = format!("{:#}", lock_dir(&dir).unwrap_err());
        assert!(err.contains("tame-lock-no-such-dir-xyz"), "{err}");
    }
}
