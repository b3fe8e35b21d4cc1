// SPDX-License-Identifier: MPL-2.0
//! Removes private spool folders that killed processes left behind (the rule is
//! `core::spool::is_stale`). Linux only: without `/proc` nothing is removed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::core::spool::{SpoolFacts, is_stale, parse_spool_name};

/// What one sweep did.
#[derive(Debug, Default)]
pub struct Sweep {
    pub removed: Vec<PathBuf>,
    /// Folders found stale that could not be removed, with the error.
    pub failed: Vec<(PathBuf, String)>,
}

/// Removes the stale private spool folders (`crumbsrc-<pid>-<n>`,
/// `crumbs-<channel>-<pid>-<n>`) in `dir`, normally the temporary directory.
pub fn remove_stale_folders(dir: &Path) -> Sweep {
    let mut sweep = Sweep::default();
    let Ok(me) = std::fs::metadata("/proc/self") else {
        return sweep; // no /proc: cannot tell live from dead
    };
    let (my_uid, my_pid) = (me.uid(), std::process::id());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return sweep;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(parse_spool_name) else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let pid = owner.pid();
        let process = std::fs::metadata(format!("/proc/{pid}"));
        let quiet_secs = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .map_or(0, |d| d.as_secs());
        let facts = SpoolFacts {
            owned_by_us: meta.uid() == my_uid,
            pid_exists: process.is_ok(),
            pid_ours: process.ok().map(|p| p.uid() == my_uid),
            pid_is_self: pid == my_pid,
            quiet_secs,
        };
        if !is_stale(&facts) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => sweep.removed.push(path),
            Err(e) => sweep.failed.push((path, e.to_string())),
        }
    }
    sweep
}

/// Removes the crumb files a killed channel named `channel` left in its `spool-dir`.
pub fn remove_crumb_files(dir: &Path, channel: &str) -> Sweep {
    let mut sweep = Sweep::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return sweep;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| crate::core::spool::is_crumb_file_of(n, channel))
        {
            continue;
        }
        let path = entry.path();
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => sweep.removed.push(path),
            Err(e) => sweep.failed.push((path, e.to_string())),
        }
    }
    sweep
}

/// A number unique in this process, for private temporary directory names.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
