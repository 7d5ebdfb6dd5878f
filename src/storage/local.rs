//! Local directory storage: temporary name, fsync, rename, fsync the directory.
//! Files are created 0600, directories 0700 (design.md section 4).

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{ObjectWriter, Storage};
use crate::archive::partial::{LOCK_FILE, PARTIAL_DIR};
use crate::archive::{is_run_id, run_sort_key};

/// A directory holding runs.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Storage rooted at `root` (created on the first run, with parents).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run a command-line argument names as a path: `run` is a run directory if it holds a
    /// manifest, or if it is an existing directory written as a path (with a `/`). Returns the
    /// storage of its parent directory and the run id, `None` if `run` is not such a path.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path when it cannot be resolved.
    #[must_use]
    pub fn run_at(run: &str) -> Option<io::Result<(Self, String)>> {
        let path = Path::new(run);
        if !(path.join(crate::archive::MANIFEST_FILE).exists()
            || (path.is_dir() && run.contains('/')))
        {
            return None;
        }
        Some(fs_err::canonicalize(path).map(|canonical| {
            let id = canonical
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parent = canonical
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            (Self::new(parent), id)
        }))
    }

    /// Refuse a root that exists but is no directory, or that is itself a run (a run inside a
    /// run would become an "extra file" of the older run and fail its verification: later
    /// runs never touch earlier ones).
    fn refuse_unusable_root(&self) -> io::Result<()> {
        if self.root.exists() && !self.root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!(
                    "destination `{}` exists and is not a directory",
                    self.root.display()
                ),
            ));
        }
        if self.root.join(crate::archive::MANIFEST_FILE).exists() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "destination `{}` is itself a run (it holds {}); give the directory that holds runs",
                    self.root.display(),
                    crate::archive::MANIFEST_FILE
                ),
            ));
        }
        Ok(())
    }

    fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join(run_id)
    }

    /// A writer to the temporary name of `name`; with `replace`, commit may overwrite an
    /// existing object (and a stale temporary file is reused), otherwise both are refused.
    #[allow(
        clippy::disallowed_methods,
        reason = "the error keeps the OS reason in its text, which verify and dump print"
    )]
    fn writer(&self, run_id: &str, name: &str, replace: bool) -> io::Result<LocalWriter> {
        // `dir/name` (the records under `.partial/`): the directory is created on first use.
        let (dir, name) = match name.split_once('/') {
            Some((sub, file)) => {
                let dir = self.run_dir(run_id).join(sub);
                if !dir.is_dir() {
                    mkdir_0700(&dir)?;
                }
                (dir, file)
            }
            None => (self.run_dir(run_id), name),
        };
        let tmp = dir.join(temp_name(name));
        let file = OpenOptions::new()
            .write(true)
            .create_new(!replace)
            .create(replace)
            .truncate(replace)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("failed to create `{}`: {e}", tmp.display()),
                )
            })?;
        Ok(LocalWriter {
            file: Some(fs_err::File::from_parts(file, &tmp)),
            tmp,
            dest: dir.join(name),
            dir,
            replace,
        })
    }
}

/// The temporary name of an object while it is written: hidden, and ending in `.tmp`.
#[must_use]
pub fn temp_name(name: &str) -> String {
    format!(".{name}.{}.tmp", std::process::id())
}

/// Whether a directory entry is a temporary file of an unfinished write.
#[must_use]
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.rsplit('.').next() == Some("tmp")
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs_err::File::open(dir)?.sync_all()
}

fn mkdir_0700(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("failed to create directory `{}`: {e}", path.display()),
            )
        })
}

impl Storage for LocalStorage {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn create_run(&self, run_id: &str) -> io::Result<String> {
        self.refuse_unusable_root()?;
        if !self.root.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "failed to create destination `{}`: {e}",
                            self.root.display()
                        ),
                    )
                })?;
        }
        for n in 0..1000 {
            let id = if n == 0 {
                run_id.to_owned()
            } else {
                format!("{run_id}-{}", n + 1)
            };
            match mkdir_0700(&self.run_dir(&id)) {
                Ok(()) => {
                    sync_dir(&self.root)?;
                    return Ok(id);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("too many runs named {run_id} in `{}`", self.root.display()),
        ))
    }

    fn create_object(&self, run_id: &str, name: &str) -> io::Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(self.writer(run_id, name, false)?))
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "the error keeps the OS reason in its text, as the writer's does"
    )]
    fn probe(&self, name: &str) -> io::Result<()> {
        self.refuse_unusable_root()?;
        // The directories a dump would create, top-most first; removed again below.
        let mut missing: Vec<PathBuf> = self
            .root
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && fs_err::symlink_metadata(p).is_err())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        let mut created = Vec::new();
        let mut result = Ok(());
        for dir in &missing {
            if let Err(e) = mkdir_0700(dir) {
                result = Err(e);
                break;
            }
            created.push(dir.clone());
        }
        if result.is_ok() {
            let path = self.root.join(name);
            result = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| {
                    f.write_all(b"exporter check: this file is removed at once\n")?;
                    f.sync_all()
                })
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot write `{}`: {e}", path.display()))
                })
                .and_then(|()| fs_err::remove_file(&path));
        }
        for dir in created.iter().rev() {
            let _ = fs_err::remove_dir(dir);
        }
        result
    }

    fn put_object(&self, run_id: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut w = Box::new(self.writer(run_id, name, true)?);
        w.write_all(bytes)?;
        w.commit()
    }

    fn open_object(&self, run_id: &str, name: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(fs_err::File::open(
            self.run_dir(run_id).join(name),
        )?))
    }

    fn list_objects(&self, run_id: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs_err::read_dir(self.run_dir(run_id))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_temp_name(&name) && name != PARTIAL_DIR {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn list_dir(&self, run_id: &str, dir: &str) -> io::Result<Vec<String>> {
        let path = self.run_dir(run_id).join(dir);
        if !path.is_dir() {
            return Ok(Vec::new());
        }
        let mut names = Vec::new();
        for entry in fs_err::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_temp_name(&name) && entry.file_type()?.is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn remove_object(&self, run_id: &str, name: &str) -> io::Result<()> {
        let path = self.run_dir(run_id).join(name);
        match fs_err::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(&self.root)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn remove_dir(&self, run_id: &str, dir: &str) -> io::Result<()> {
        let run = self.run_dir(run_id);
        match fs_err::remove_dir_all(run.join(dir)) {
            Ok(()) => sync_dir(&run),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn list_unfinished_runs(&self) -> io::Result<Vec<String>> {
        Ok(self
            .list_runs()?
            .into_iter()
            .filter(|r| !self.run_dir(r).join(crate::archive::MANIFEST_FILE).exists())
            .collect())
    }

    fn discard_unfinished(&self, run_id: &str) -> io::Result<usize> {
        let run = self.run_dir(run_id);
        let mut discarded = 0;
        for dir in [run.clone(), run.join(PARTIAL_DIR)] {
            if !dir.is_dir() {
                continue;
            }
            for entry in fs_err::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if is_temp_name(&name) && entry.file_type()?.is_file() {
                    fs_err::remove_file(entry.path())?;
                    discarded += 1;
                }
            }
            if discarded > 0 {
                sync_dir(&dir)?;
            }
        }
        Ok(discarded)
    }

    /// An exclusive `flock` on `<run>/.partial/lock`: the kernel releases it when the process
    /// ends, however it ends, so a killed dump never leaves its run locked.
    #[allow(
        clippy::disallowed_methods,
        reason = "the error keeps the OS reason in its text, which dump prints"
    )]
    fn lock_run(&self, run_id: &str) -> io::Result<Option<super::RunLock>> {
        let dir = self.run_dir(run_id).join(PARTIAL_DIR);
        if !dir.is_dir() {
            mkdir_0700(&dir)?;
        }
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("failed to open `{}`: {e}", path.display()),
                )
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(super::RunLock::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "run `{}` is being written by another exporter process (it holds `{}`)",
                    self.run_dir(run_id).display(),
                    path.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(io::Error::new(
                e.kind(),
                format!("failed to lock `{}`: {e}", path.display()),
            )),
        }
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a missing root is an empty list; other errors keep the OS reason in their text"
    )]
    fn list_runs(&self) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("failed to list `{}`: {e}", self.root.display()),
                ));
            }
        };
        let mut runs = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_run_id(&name) && entry.file_type()?.is_dir() {
                runs.push(name);
            }
        }
        runs.sort_by_key(|r| run_sort_key(r));
        Ok(runs)
    }

    fn remove_uncommitted_run(&self, run_id: &str) -> io::Result<()> {
        let dir = self.run_dir(run_id);
        if dir.join(crate::archive::MANIFEST_FILE).exists() {
            return Err(io::Error::other(format!(
                "run `{}` is committed; not removing it",
                dir.display()
            )));
        }
        fs_err::remove_dir_all(&dir)?;
        sync_dir(&self.root)
    }
}

struct LocalWriter {
    file: Option<fs_err::File>,
    tmp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
    replace: bool,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .as_mut()
            .expect("writer used after commit")
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("writer used after commit")
            .flush()
    }
}

impl LocalWriter {
    fn finish(&mut self) -> io::Result<()> {
        let file = self.file.take().expect("commit once");
        file.sync_all()?;
        drop(file);
        if !self.replace && self.dest.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "`{}` already exists; archives are written once",
                    self.dest.display()
                ),
            ));
        }
        fs_err::rename(&self.tmp, &self.dest)?;
        sync_dir(&self.dir)
    }
}

impl ObjectWriter for LocalWriter {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let result = self.finish();
        if result.is_err() {
            let _ = fs_err::remove_file(&self.tmp);
        }
        // Mark as done so Drop does not remove the committed file's temp twice.
        self.tmp = PathBuf::new();
        result
    }

    fn abort(mut self: Box<Self>) {
        self.file = None;
        let _ = fs_err::remove_file(&self.tmp);
        self.tmp = PathBuf::new();
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file = None;
            let _ = fs_err::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The check's probe: a missing destination is created and removed again with the test
    /// object; an existing one keeps its contents and gets nothing new; a path under a file,
    /// and a run given as the destination, are refused naming them.
    #[test]
    fn probe_writes_and_removes_leaving_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/dest");
        LocalStorage::new(&nested)
            .probe(".exporter-check-1")
            .unwrap();
        assert!(!dir.path().join("a").exists(), "created directories stay");
        let existing = dir.path().join("runs");
        fs_err::create_dir(&existing).unwrap();
        fs_err::write(existing.join("keep"), b"x").unwrap();
        LocalStorage::new(&existing)
            .probe(".exporter-check-2")
            .unwrap();
        let names: Vec<_> = fs_err::read_dir(&existing)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["keep"]);
        let file = dir.path().join("file");
        fs_err::write(&file, b"x").unwrap();
        let e = LocalStorage::new(file.join("dest"))
            .probe(".exporter-check-3")
            .unwrap_err();
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");
        let run = existing.join("20261129T074800Z");
        fs_err::create_dir(&run).unwrap();
        fs_err::write(run.join(crate::archive::MANIFEST_FILE), b"{}").unwrap();
        let e = LocalStorage::new(&run)
            .probe(".exporter-check-4")
            .unwrap_err();
        assert!(e.to_string().contains("is itself a run"), "{e}");
    }

    #[test]
    fn commit_makes_visible_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path().join("dest"));
        let run = s.create_run("20261129T074800Z").unwrap();
        assert_eq!(run, "20261129T074800Z");
        assert_eq!(
            s.create_run("20261129T074800Z").unwrap(),
            "20261129T074800Z-2"
        );

        let mut w = s.create_object(&run, "a.sql.zst").unwrap();
        w.write_all(b"hello").unwrap();
        assert!(
            s.list_objects(&run).unwrap().is_empty(),
            "not visible before commit"
        );
        w.commit().unwrap();
        assert_eq!(s.list_objects(&run).unwrap(), vec!["a.sql.zst".to_owned()]);
        let mut text = String::new();
        s.open_object(&run, "a.sql.zst")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");
        let mode = fs_err::metadata(dir.path().join("dest").join(&run).join("a.sql.zst"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = fs_err::metadata(dir.path().join("dest").join(&run))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);

        let mut w = s.create_object(&run, "b.sql.zst").unwrap();
        w.write_all(b"partial").unwrap();
        w.abort();
        let mut w = s.create_object(&run, "c.sql.zst").unwrap();
        w.write_all(b"dropped").unwrap();
        drop(w);
        let all: Vec<_> = fs_err::read_dir(dir.path().join("dest").join(&run))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(all.len(), 1, "{all:?}");

        assert_eq!(
            s.list_runs().unwrap(),
            vec![
                "20261129T074800Z".to_owned(),
                "20261129T074800Z-2".to_owned()
            ]
        );
        s.remove_uncommitted_run("20261129T074800Z-2").unwrap();
        assert_eq!(s.list_runs().unwrap(), vec![run]);
    }

    #[test]
    fn a_run_is_never_created_inside_a_run_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        let run = s.create_run("20261129T074800Z").unwrap();
        s.put_object(&run, "manifest.json", b"{}").unwrap();
        let nested = LocalStorage::new(dir.path().join(&run));
        let err = nested.create_run("20261129T074801Z").unwrap_err();
        assert!(err.to_string().contains("is itself a run"), "{err}");
        assert!(
            s.remove_uncommitted_run(&run).is_err(),
            "committed runs are never removed"
        );
        let file = dir.path().join("plain");
        fs_err::write(&file, b"x").unwrap();
        let err = LocalStorage::new(&file)
            .create_run("20261129T074800Z")
            .unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        let run2 = s.create_run("20261129T074900Z").unwrap();
        s.put_object(&run2, "a.sql.zst", b"x").unwrap();
        s.remove_uncommitted_run(&run2).unwrap();
        assert_eq!(s.list_runs().unwrap(), vec![run]);
    }

    /// The records of an unfinished run live under `.partial/`, invisible to `list_objects`;
    /// `discard_unfinished` removes only temporary files; a run is locked by one process.
    #[test]
    fn unfinished_runs_records_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        let done = s.create_run("20261129T074800Z").unwrap();
        let open = s.create_run("20261129T074900Z").unwrap();
        s.put_object(&done, "manifest.json", b"{}").unwrap();
        s.put_object(&open, ".partial/run.json", b"{}").unwrap();
        s.put_object(&open, ".partial/a.sql.zst.json", b"{}")
            .unwrap();
        let mut w = s.create_object(&open, "a.sql.zst").unwrap();
        w.write_all(b"archive").unwrap();
        w.commit().unwrap();
        assert_eq!(s.list_objects(&open).unwrap(), vec!["a.sql.zst".to_owned()]);
        assert_eq!(
            s.list_dir(&open, PARTIAL_DIR).unwrap(),
            vec!["a.sql.zst.json".to_owned(), "run.json".to_owned()]
        );
        assert_eq!(
            s.list_dir(&done, PARTIAL_DIR).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(s.list_unfinished_runs().unwrap(), vec![open.clone()]);
        let mode = fs_err::metadata(dir.path().join(&open).join(PARTIAL_DIR))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        // A killed writer's temporary files, in the run and in `.partial`.
        fs_err::write(dir.path().join(&open).join(".b.sql.zst.1.tmp"), b"x").unwrap();
        fs_err::write(
            dir.path()
                .join(&open)
                .join(PARTIAL_DIR)
                .join(".b.json.1.tmp"),
            b"x",
        )
        .unwrap();
        assert_eq!(s.discard_unfinished(&open).unwrap(), 2);
        assert_eq!(s.discard_unfinished(&open).unwrap(), 0);
        assert_eq!(s.list_objects(&open).unwrap(), vec!["a.sql.zst".to_owned()]);

        let held = s.lock_run(&open).unwrap().expect("a local lock");
        let err = s.lock_run(&open).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(
            err.to_string().contains("another exporter process"),
            "{err}"
        );
        drop(held);
        assert!(
            s.lock_run(&open).unwrap().is_some(),
            "released when dropped"
        );

        s.remove_object(&open, "a.sql.zst").unwrap();
        s.remove_object(&open, "a.sql.zst").unwrap();
        s.remove_object(&open, ".partial/a.sql.zst.json").unwrap();
        assert_eq!(
            s.list_dir(&open, PARTIAL_DIR).unwrap(),
            vec![LOCK_FILE.to_owned(), "run.json".to_owned()]
        );
        s.remove_dir(&open, PARTIAL_DIR).unwrap();
        s.remove_dir(&open, PARTIAL_DIR).unwrap();
        assert!(!dir.path().join(&open).join(PARTIAL_DIR).exists());
    }

    #[test]
    fn destination_under_a_file_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs_err::write(&file, b"x").unwrap();
        let s = LocalStorage::new(file.join("sub"));
        let err = s.create_run("20261129T074800Z").unwrap_err();
        assert!(err.to_string().contains("plain"), "{err}");
    }
}
