//! The data directory holds the token hashes and every record: only Caravan's own user may
//! read it. A directory Caravan creates is 0700 and the store file 0600 (SQLite gives its
//! `-wal` and `-shm` files the mode of the database file).

use std::fs;
use std::io;
use std::path::Path;

use tracing::warn;

/// Creates `dir` (and its parents) readable by the owner only; an existing directory that
/// others can read is reported, not changed (it may be shared on purpose, such as `.`).
pub fn dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                warn!(
                    dir = %dir.display(),
                    mode = %format!("{:o}", mode & 0o777),
                    "The data directory is open to other users; `chmod 700` it."
                );
            }
        }
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes `file` owner-only, creating it empty if it does not exist.
pub fn file(file: &Path) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let opened = options.open(file)?;
        let mut permissions = opened.metadata()?.permissions();
        if permissions.mode() & 0o077 != 0 {
            permissions.set_mode(0o600);
            fs::set_permissions(file, permissions)?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        options.open(file).map(|_| ())
    }
}

/// Writes `text` to a new owner-only file, replacing any earlier one.
pub fn write(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    let _ = fs::remove_file(path);
    let mut options = fs::OpenOptions::new();
    options.create_new(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(path)?;
    out.write_all(text.as_bytes())?;
    out.sync_all()
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn a_new_data_directory_and_its_files_are_owner_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = root.path().join("a/b");
        dir(&data).expect("created");
        assert_eq!(mode(&data), 0o700);
        let store = data.join("store");
        fs::write(&store, "x").expect("written");
        fs::set_permissions(&store, fs::Permissions::from_mode(0o644)).expect("chmod");
        file(&store).expect("tightened");
        assert_eq!(mode(&store), 0o600);
        assert_eq!(fs::read_to_string(&store).expect("kept"), "x");
        let token = data.join("token");
        write(&token, "secret").expect("written");
        write(&token, "newer").expect("replaced");
        assert_eq!(mode(&token), 0o600);
        assert_eq!(fs::read_to_string(&token).expect("read"), "newer");
    }
}
