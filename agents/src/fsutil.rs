//! Durable file writes (nothing written is lost or left half-written) and I/O errors in plain
//! words that name the file. Here, below the `tame` binary, so that agents' checkpoint writers
//! share them; the binary re-exports them as `tame::fsutil`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename,
/// then fsync of the directory. Readers see the old file or the new one, never a mix. On any
/// failure the temp file is removed and the error names `path`, in plain words for a full
/// disk, a permission problem or a read-only file system.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Some(name) = path.file_name() else {
        anyhow::bail!("{} has no file name", path.display());
    };
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(friendly_io(e, "writing", path));
    }
    // The rename itself is durable only once the directory entry is synced.
    File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(())
}

/// An I/O error as a user should read it, naming the file: "no space left on device while
/// writing runs/x/summary.json", and likewise for a full quota, permission denied and a
/// read-only file system. Other errors keep the system's message after "ACTION PATH: ".
/// `action` is a verb phrase such as "writing", "creating" or "syncing".
pub fn friendly_io(err: io::Error, action: &str, path: &Path) -> anyhow::Error {
    let reason = match err.kind() {
        io::ErrorKind::StorageFull => "no space left on device",
        io::ErrorKind::QuotaExceeded => "disk quota exceeded",
        io::ErrorKind::PermissionDenied => "permission denied",
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system",
        _ => return anyhow::Error::new(err).context(format!("{action} {}", path.display())),
    };
    anyhow::anyhow!("{reason} while {action} {}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tame-fsutil-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn temp_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let dir = temp_dir("replace");
        let path = dir.join("summary.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert!(temp_files(&dir).is_empty(), "temp files left: {:?}", temp_files(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_into_missing_directory_is_an_error() {
        let path = std::env::temp_dir().join("tame-no-such-dir-xyz").join("a.json");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert!(format!("{err:#}").contains("tame-no-such-dir-xyz"), "{err:#}");
    }

    #[test]
    fn a_failed_rename_removes_the_temp_file_and_names_the_target() {
        // The target is a non-empty directory: everything succeeds up to the rename.
        let dir = temp_dir("rename");
        let target = dir.join("summary.json");
        fs::create_dir_all(target.join("inside")).unwrap();
        let err = format!("{:#}", write_atomic(&target, b"x").unwrap_err());
        assert!(err.starts_with(&format!("writing {}", target.display())), "{err}");
        assert!(temp_files(&dir).is_empty(), "temp files left: {:?}", temp_files(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_real_enospc_from_dev_full_reads_as_no_space_left() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let mut full = fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let err = full.write_all(b"x").and_then(|()| full.flush()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        let msg = format!("{:#}", friendly_io(err, "writing", Path::new("runs/r/summary.json")));
        assert_eq!(msg, "no space left on device while writing runs/r/summary.json");
    }

    #[test]
    fn permission_and_read_only_errors_read_plainly() {
        let path = Path::new("/x/y.json");
        let cases = [
            (io::ErrorKind::PermissionDenied, "permission denied while creating /x/y.json"),
            (io::ErrorKind::ReadOnlyFilesystem, "read-only file system while creating /x/y.json"),
        ];
        for (kind, want) in cases {
            assert_eq!(format!("{:#}", friendly_io(io::Error::from(kind), "creating", path)), want);
        }
        let other = format!("{:#}", friendly_io(io::Error::from(io::ErrorKind::NotFound), "reading", path));
        assert!(other.starts_with("reading /x/y.json: "), "{other}");
    }
}
