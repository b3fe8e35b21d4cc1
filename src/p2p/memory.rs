// SPDX-License-Identifier: MPL-2.0
//! Giving the memory of removed torrents back to the system.
//!
//! Each crumb is a torrent, so a channel and each client add and remove a few
//! torrents every Segment, forever. librqbit frees a removed torrent (its handle,
//! tasks, peers and buffers: `removed_torrents_are_freed` in the p2p tests), but
//! glibc's malloc keeps what was freed in its per-thread arenas, spread over pages
//! that still hold a few live blocks, and its dynamic mmap threshold moves
//! piece-sized buffers from `mmap` (given back at `free`) into those arenas. The heap
//! in use stays flat (heaptrack: about 20 MB for a channel) while the resident size
//! crept up 120-330 kB a minute. `malloc_trim(0)` hands every free page of every
//! arena back; it is run once every [`TRIM_EVERY_REMOVED`] torrents removed in the
//! process, which bounds what removed torrents leave resident.

use std::sync::atomic::{AtomicU64, Ordering};

/// Torrents removed (in all sessions of the process) between two trims. A channel
/// removes 3-10 per Segment of 1-3 s, so this trims every 1-8 s; a trim walks the
/// free lists only (0.1-0.2 ms in the p2p test). With 64 (a trim every 10-60 s) the
/// channel's resident size rose by about 8 MB between two trims and fell back at each
/// one: a sawtooth that the one-hour slope read as noise or growth (docs/memory.md).
pub const TRIM_EVERY_REMOVED: u64 = 8;

static REMOVED: AtomicU64 = AtomicU64::new(0);
static TRIMS: AtomicU64 = AtomicU64::new(0);

/// Counts one removed torrent; trims every [`TRIM_EVERY_REMOVED`]th.
pub(crate) fn torrent_removed() {
    if (REMOVED.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(TRIM_EVERY_REMOVED) {
        trim();
    }
}

/// Returns the allocator's free pages to the system now (a no-op where the C library
/// is not glibc).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free lists,
    // under its locks; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    TRIMS.fetch_add(1, Ordering::Relaxed);
}

/// Trims done in this process so far.
pub fn trims() -> u64 {
    TRIMS.load(Ordering::Relaxed)
}
