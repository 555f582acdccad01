//! Files on the pool. A regular file is always "ready" to epoll (it refuses to watch
//! one at all), so reading it would block the loop: each call here runs on a worker and
//! its callback runs on the loop thread. Errors name the path.

use crate::event_loop::Loop;
use crate::handle::Work;
use crate::pool::Lane;
use std::io;
use std::path::{Path, PathBuf};

/// Run a blocking fs call on the pool; put `what` and the path in front of any error.
fn on_pool<T: Send + 'static>(
    lp: &mut Loop,
    what: &'static str,
    path: &Path,
    job: impl FnOnce(&Path) -> io::Result<T> + Send + 'static,
    cb: impl FnOnce(&mut Loop, io::Result<T>) + 'static,
) -> Work {
    let path = path.to_path_buf();
    let shown = path.display().to_string();
    let queued = lp.now();
    lp.queue_work_in(
        Lane::Fast,
        move || job(&path),
        move |lp, _work, r| {
            let r = match r {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(crate::error::context(
                    format!("{what} {shown} on the pool"),
                    e,
                )),
                // No answer from the pool (cancelled, a scope's deadline, a panic): how
                // long it had waited is part of the story.
                Err(w) => Err(crate::Error::wrap_after(
                    format!("{what} {shown} on the pool"),
                    lp.now().saturating_duration_since(queued),
                    io::Error::from(w),
                )),
            };
            cb(lp, r)
        },
    )
}

/// Read a whole file.
pub fn read(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    cb: impl FnOnce(&mut Loop, io::Result<Vec<u8>>) + 'static,
) -> Work {
    on_pool(lp, "reading", path.as_ref(), |p| std::fs::read(p), cb)
}

/// Create or truncate a file and write `data` to it.
pub fn write(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    data: impl Into<Vec<u8>>,
    cb: impl FnOnce(&mut Loop, io::Result<()>) + 'static,
) -> Work {
    let data = data.into();
    on_pool(
        lp,
        "writing",
        path.as_ref(),
        move |p| std::fs::write(p, data),
        cb,
    )
}

/// Metadata of a path (follows symlinks).
pub fn stat(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    cb: impl FnOnce(&mut Loop, io::Result<std::fs::Metadata>) + 'static,
) -> Work {
    on_pool(lp, "stat of", path.as_ref(), |p| std::fs::metadata(p), cb)
}

/// The entries of a directory, as full paths sorted by name.
pub fn read_dir(
    lp: &mut Loop,
    path: impl AsRef<Path>,
    cb: impl FnOnce(&mut Loop, io::Result<Vec<PathBuf>>) + 'static,
) -> Work {
    on_pool(
        lp,
        "listing",
        path.as_ref(),
        |p| {
            let mut names = std::fs::read_dir(p)?
                .map(|e| e.map(|e| e.path()))
                .collect::<io::Result<Vec<_>>>()?;
            names.sort();
            Ok(names)
        },
        cb,
    )
}
