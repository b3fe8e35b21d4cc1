// SPDX-License-Identifier: MPL-2.0
//! The next crumbs' .torrent files, fetched while the current ones download.
//!
//! Why: a crumb's download starts with its .torrent from the channel, an HTTP round
//! trip through the channel's uplink queue and the client's own downlink queue (full
//! of the crumbs in flight). On the swarm bench a 3 Mbit/s client started each crumb
//! 0-117 ms after it asked for it, while a crumb there takes 170 ms of the line: with
//! two crumbs in flight the line waited on those starts. Fetched ahead, the .torrent
//! is there when the engine asks for its crumb.

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Crumbs of the current Segment whose .torrent is fetched ahead of the one just
/// asked for: the engine asks for crumbs in index order, two in flight.
pub(super) const LOOKAHEAD: u16 = 2;

/// .torrent fetches on their way or done, by (Segment, crumb index).
#[derive(Default)]
pub(super) struct TorrentPrefetch {
    pending: HashMap<(u64, u16), JoinHandle<anyhow::Result<Vec<u8>>>>,
}

impl TorrentPrefetch {
    /// Fetches `url` for crumb `key` unless it is on its way already.
    pub fn start(
        &mut self,
        http: &reqwest::Client,
        key: (u64, u16),
        url: String,
        timeout: Duration,
    ) {
        let http = http.clone();
        self.pending.entry(key).or_insert_with(|| {
            tokio::spawn(async move {
                let r = super::send_get(&http, &url, timeout).await?;
                Ok(r.bytes().await?.to_vec())
            })
        });
    }

    /// The .torrent of crumb `key` if it was fetched ahead (waits for a fetch on its
    /// way); `None` when it was not, or the fetch failed (the caller fetches it then).
    pub async fn take(&mut self, key: (u64, u16)) -> Option<Vec<u8>> {
        let task = self.pending.remove(&key)?;
        task.await.ok()?.ok()
    }

    /// Whether the fetch of crumb `key` has ended (so [`Self::take`] does not wait);
    /// false when none was started.
    pub fn is_ready(&self, key: (u64, u16)) -> bool {
        self.pending.get(&key).is_some_and(|t| t.is_finished())
    }

    /// Forgets the crumbs of Segments before `first` (they left the window).
    pub fn forget_before(&mut self, first: u64) {
        self.pending.retain(|(seq, _), task| {
            let keep = *seq >= first;
            if !keep {
                task.abort();
            }
            keep
        });
    }
}

impl Drop for TorrentPrefetch {
    fn drop(&mut self) {
        for task in self.pending.values() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::p2p::RUNTIME;

    /// An HTTP server on loopback answering `/tN` with body `torrent N` and
    /// anything else with 404; counts the requests.
    fn server() -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().take(16) {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                // The headers, up to the empty line.
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let answer = match path.strip_prefix("/t") {
                    Some(n) => {
                        let body = format!("torrent {n}");
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        (format!("http://{addr}"), count)
    }

    #[test]
    fn fetched_ahead_once_and_taken_once() {
        let (origin, count) = server();
        RUNTIME.block_on(async {
            let http = reqwest::Client::new();
            let mut p = TorrentPrefetch::default();
            let t = Duration::from_secs(5);
            p.start(&http, (4, 2), format!("{origin}/t2"), t);
            p.start(&http, (4, 2), format!("{origin}/t2"), t); // on its way: not again
            p.start(&http, (4, 3), format!("{origin}/missing"), t);
            assert_eq!(p.take((4, 2)).await.as_deref(), Some(&b"torrent 2"[..]));
            assert_eq!(p.take((4, 2)).await, None, "taken once");
            assert_eq!(
                p.take((4, 3)).await,
                None,
                "a failed fetch: the caller's turn"
            );
            assert_eq!(p.take((5, 1)).await, None, "never asked for");
            assert_eq!(count.load(Ordering::SeqCst), 2);
            // Segments that left the window go, fetched or not.
            p.start(&http, (6, 2), format!("{origin}/t6"), t);
            p.start(&http, (7, 2), format!("{origin}/t7"), t);
            p.forget_before(7);
            assert_eq!(p.take((6, 2)).await, None);
            assert_eq!(p.take((7, 2)).await.as_deref(), Some(&b"torrent 7"[..]));
        });
    }
}
