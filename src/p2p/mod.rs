// SPDX-License-Identifier: MPL-2.0
//! The BitTorrent IO adapter: every BitTorrent byte of crumbs goes through librqbit,
//! on one shared tokio runtime.
//!
//! - [`runtime`]: the static [`RUNTIME`] every p2p task runs on.
//! - [`torrent`]: [`make_torrent`] builds a BitTorrent v1, single-file `.torrent` in
//!   memory (one per crumb).
//! - [`session`]: [`P2pSession`] wraps one `librqbit::Session` (TCP only, no DHT, no
//!   LSD, no persistence): seed a crumb already on disk, download one, watch its
//!   progress, remove it, change rate limits live, shut down.
//!
//! - [`memory`]: removed torrents' memory goes back to the system (`malloc_trim`).
//!
//! GStreamer threads call the async functions through `RUNTIME.block_on(..)` (never
//! from inside a task of the runtime itself) or `RUNTIME.spawn(..)`. Completed crumbs
//! are read from their file on disk ([`P2pSession::read_file`]), never through a
//! librqbit `FileStream` (every open stream holds a blocking permit of the session).

pub mod log;
pub mod memory;
pub mod runtime;
pub mod session;
pub mod torrent;

pub use runtime::RUNTIME;
pub use session::{Fetch, P2pSession, Progress, Seeding, SessionConfig, TorrentId};
pub use torrent::{MadeTorrent, TorrentInfo, make_torrent, parse_torrent};

#[cfg(test)]
mod tests;
