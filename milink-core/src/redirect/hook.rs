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

/// Called by the session after each role change (and after a one-way link's removal), once the
/// new primary accepts writes and before anything is dropped on the old side, with where the
/// workload must now connect.
///
/// # At least once per redirect
///
/// The hook is called **at least once** for each redirect, not exactly once:
/// - an `Err` (or no answer within the session's call timeout) stops the workflow in a
///   resumable state with the link intact, and resuming calls the hook again;
/// - the session journals the hook's success only after the hook returns, so a crash of the
///   orchestrator between the two makes the resumed session call the hook again for the same
///   redirect.
///
/// Every call for one redirect carries the same [`RedirectTarget::redirect_id`]
/// (`<link>/redirect/<n>`), across retries, resumes and crashes; the next redirect has another.
/// A hook whose action must not repeat records the id it last applied and returns `Ok` for a
/// repeat without acting again, as [`FileRedirectHook`] does; record it only after the action
/// took effect, so a crash in between repeats the action rather than losing it.
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
/// A repeat of a redirect it already applied (the same [`RedirectTarget::redirect_id`], see
/// [`RedirectHook`]) is skipped: it returns `Ok` without rewriting the file, so readers see one
/// write per redirect. The id it last applied is kept in a small file next to `path`,
/// `<file name>.redirect-id` ([`FileRedirectHook::id_path`]), written the same atomic way
/// (`0600`) after the connection string file, so a crash between the two writes repeats the
/// write instead of losing it. A repeat is skipped only while the file still holds exactly the
/// text the target would write: ids count one link's redirects, so a later link of the same
/// name reuses them, and a file that was changed, removed or written for another target is
/// always written again. If the id cannot be recorded the hook still succeeds (the connection
/// string is in place) and logs a warning; a repeat then writes the same text again. A target
/// without an id (computed outside a session) is always written.
///
/// The writes happen inline, without yielding to the runtime: the files are small and written
/// once per redirect, and an inline write also completes under a virtual-time timer (the
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

    /// The file recording the id of the redirect it last applied: `<file name>.redirect-id`
    /// next to [`FileRedirectHook::path`].
    pub fn id_path(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".redirect-id");
        self.path.with_file_name(name)
    }

    /// The id of the redirect it last applied, if it recorded one.
    pub fn last_applied(&self) -> Option<String> {
        let text = fs::read_to_string(self.id_path()).ok()?;
        let id = text.trim_end_matches(['\r', '\n']);
        (!id.is_empty()).then(|| id.to_owned())
    }
}

#[async_trait]
impl RedirectHook for FileRedirectHook {
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), HookError> {
        let id = target.redirect_id.as_str();
        let mut contents = target.connection_string.expose();
        contents.push('\n');
        if !id.is_empty()
            && self.last_applied().as_deref() == Some(id)
            && fs::read(&self.path).is_ok_and(|held| held == contents.as_bytes())
        {
            tracing::info!(path = %self.path.display(), redirect_id = id, "redirect already applied; not written again");
            return Ok(());
        }
        write_atomically(&self.path, contents.as_bytes()).map_err(|e| {
            HookError::new(format!(
                "could not write the connection string to {}: {e}",
                self.path.display()
            ))
        })?;
        let id_path = self.id_path();
        let recorded = if id.is_empty() {
            match fs::remove_file(&id_path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            write_atomically(&id_path, format!("{id}\n").as_bytes())
        };
        if let Err(e) = recorded {
            tracing::warn!(path = %id_path.display(), error = %e, "could not record the redirect id; a repeat of this redirect will write the connection string again");
        }
        Ok(())
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

    #[tokio::test]
    async fn a_repeat_of_the_same_redirect_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.connstr");
        let hook = FileRedirectHook::new(&path);
        assert_eq!(hook.id_path(), dir.path().join("app.connstr.redirect-id"));
        assert_eq!(hook.last_applied(), None);
        let first = target("one").with_redirect_id("ToyStoreLink/redirect/1");
        hook.redirect(&first).await.unwrap();
        assert_eq!(
            hook.last_applied().as_deref(),
            Some("ToyStoreLink/redirect/1")
        );
        assert_eq!(
            entries(dir.path()),
            ["app.connstr", "app.connstr.redirect-id"]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(hook.id_path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }

        // A repeat of redirect 1 leaves the file alone (the test's mark on it survives).
        let marked = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(marked)
            .unwrap();
        hook.redirect(&first).await.unwrap();
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), marked);

        // The same id for another target (a later link of the same name counts its redirects
        // from 1 again) is written: only a file holding this very text is left alone.
        let reused = target("other").with_redirect_id("ToyStoreLink/redirect/1");
        hook.redirect(&reused).await.unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("Password=other")
        );
        // So is a file changed since.
        fs::write(&path, "edited\n").unwrap();
        hook.redirect(&reused).await.unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("Password=other")
        );

        // The next redirect is written, and recorded.
        let second = target("two").with_redirect_id("ToyStoreLink/redirect/2");
        hook.redirect(&second).await.unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("Password=two"));
        assert_eq!(
            hook.last_applied().as_deref(),
            Some("ToyStoreLink/redirect/2")
        );

        // A repeat whose file is gone writes it again.
        fs::remove_file(&path).unwrap();
        hook.redirect(&second).await.unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("Password=two"));

        // A target without an id is always written, and forgets the last id.
        fs::write(&path, "old\n").unwrap();
        hook.redirect(&target("three")).await.unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("Password=three")
        );
        assert_eq!(hook.last_applied(), None);
        assert_eq!(entries(dir.path()), ["app.connstr"]);
    }

    #[tokio::test]
    async fn a_failed_write_records_no_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.connstr");
        fs::create_dir(&path).unwrap();
        let hook = FileRedirectHook::new(&path);
        let t = target("x").with_redirect_id("ToyStoreLink/redirect/1");
        assert!(hook.redirect(&t).await.is_err());
        assert_eq!(hook.last_applied(), None);
        // Fixed, the same redirect is written.
        fs::remove_dir(&path).unwrap();
        hook.redirect(&t).await.unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("Password=x"));
        assert_eq!(
            hook.last_applied().as_deref(),
            Some("ToyStoreLink/redirect/1")
        );
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        assert_eq!(
            write_atomically(Path::new("/"), b"x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
