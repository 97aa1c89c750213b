//! The application's redirect hook, and a ready-made one that writes the connection string to
//! a file atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::target::RedirectTarget;

/// Why a redirect hook failed. The message must not contain a password; the session also
/// scrubs it with [`RedirectTarget::scrub`] before journaling it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    message: String,
}

impl HookError {
    /// A failure with a message (cause and, where known, fix).
    pub fn new(message: impl Into<String>) -> Self {
        HookError {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `target`'s secrets replaced by `***`.
    pub fn scrubbed(self, target: &RedirectTarget) -> Self {
        HookError {
            message: target.scrub(&self.message),
        }
    }
}

/// Called by the session once per role change, after the new primary accepts writes and
/// before anything is dropped on the old side, with where the workload must now connect.
///
/// An `Err` stops the workflow in a resumable state with the link intact; resuming calls the
/// hook again, so it must be idempotent (pointing the workload at the same target twice is
/// harmless).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RedirectHook: Send + Sync {
    /// Points the workload at `target`.
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), HookError>;
}

/// A hook for tools that read their connection string from a file: writes
/// `target.connection_string` (password included, followed by a newline) to `path`.
///
/// The file is replaced atomically: the text goes to a new temporary file in the same
/// directory, which is flushed to disk, renamed over `path`, and the directory is flushed, so a
/// reader sees either the old file or the new one, never a mix, even after a crash. On Unix the
/// file is created with permissions `0600` (it may hold a password), whatever the old file
/// had. A symbolic link at `path` is replaced by the file, not followed.
///
/// The write happens inline, without yielding to the runtime: the file is small and written
/// once per role change, and an inline write also completes under a virtual-time timer (the
/// simulator), where work on another thread would look like a hook that never answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRedirectHook {
    path: PathBuf,
}

impl FileRedirectHook {
    /// A hook writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileRedirectHook { path: path.into() }
    }

    /// The file it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl RedirectHook for FileRedirectHook {
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), HookError> {
        let mut contents = target.connection_string.expose();
        contents.push('\n');
        write_atomically(&self.path, contents.as_bytes()).map_err(|e| {
            HookError::new(format!(
                "could not write the connection string to {}: {e}",
                self.path.display()
            ))
        })
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` atomically (see [`FileRedirectHook`]).
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_temp_then_rename(&temp, path, contents).and_then(|()| sync_dir(&dir));
    if result.is_err() {
        // Nothing to clean up if the rename happened; otherwise do not leave the copy behind.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_temp_then_rename(temp: &Path, path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = create_private(temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(temp, path)
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The mode above is filtered by the umask; make sure nothing else is granted either.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        // Some file systems cannot flush a directory; the rename has happened regardless.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Side;
    use crate::redirect::{ConnectionString, RedirectAuth, RedirectOptions};
    use crate::secret::Secret;

    fn target(password: &str) -> RedirectTarget {
        let options = RedirectOptions {
            auth: RedirectAuth::SqlPassword {
                user: "tailspin_app".to_owned(),
                password: Secret::new(password),
            },
            ..RedirectOptions::new(
                ConnectionString::parse("Server=TailspinSql;Database=ToyStore;App=Tailspin")
                    .unwrap(),
            )
        };
        RedirectTarget::for_primary(
            &crate::redirect::target::tests::spec(),
            Side::ManagedInstance,
            &options,
        )
        .unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn writes_the_connection_string_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.connstr");
        let t = target("p;w=d");
        FileRedirectHook::new(&path).redirect(&t).await.unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", t.connection_string.expose()));
        assert_eq!(ConnectionString::parse(&text).unwrap(), t.connection_string);
        assert_eq!(
            entries(dir.path()),
            ["app.connstr"],
            "no temporary file left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn replaces_an_existing_file_and_tightens_its_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.connstr");
        fs::write(&path, "Server=old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let t = target("new");
        FileRedirectHook::new(&path).redirect(&t).await.unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("Password=new"));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn a_failed_write_leaves_the_old_state_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The destination is a non-empty directory: the rename fails.
        let path = dir.path().join("app.connstr");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), "old").unwrap();
        let t = target("Hunter2!");
        let err = FileRedirectHook::new(&path).redirect(&t).await.unwrap_err();
        assert!(err.message().contains("app.connstr"), "{err}");
        assert!(!err.message().contains("Hunter2"), "{err}");
        assert_eq!(entries(dir.path()), ["app.connstr"]);
        assert_eq!(fs::read_to_string(path.join("keep")).unwrap(), "old");

        let missing = dir.path().join("no-such-dir").join("app.connstr");
        assert!(FileRedirectHook::new(&missing).redirect(&t).await.is_err());
    }

    #[test]
    fn readers_see_the_old_or_the_new_file_never_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.connstr");
        let a = "A".repeat(256 * 1024);
        let b = "B".repeat(256 * 1024);
        write_atomically(&path, a.as_bytes()).unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, a, b, done) = (path.clone(), a.clone(), b.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let text = fs::read_to_string(&path).unwrap();
                    assert!(text == a || text == b, "torn read of {} bytes", text.len());
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..60 {
            let next = if i % 2 == 0 { &b } else { &a };
            write_atomically(&path, next.as_bytes()).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads > 0);
        assert_eq!(entries(dir.path()), ["app.connstr"]);
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        assert_eq!(
            write_atomically(Path::new("/"), b"x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
