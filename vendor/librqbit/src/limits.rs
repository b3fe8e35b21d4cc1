use arc_swap::ArcSwapOption;
use governor::DefaultDirectRateLimiter as RateLimiter;
use governor::Quota;
use serde::Deserialize;
use serde::Serialize;
use std::num::NonZeroU32;
use std::sync::Arc;

#[derive(Default, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    pub upload_bps: Option<NonZeroU32>,
    pub download_bps: Option<NonZeroU32>,
}

/// crumbs patch: one block (librqbit acquires whole 16 KiB chunks).
const MIN_BURST: NonZeroU32 = NonZeroU32::new(16 * 1024).unwrap();

struct Limit {
    limiter: ArcSwapOption<RateLimiter>,
    current_bps: std::sync::atomic::AtomicU32,
    /// crumbs patch: acquires of the first class waiting now; the others wait for
    /// them (`acquire_class`).
    first_waiting: std::sync::atomic::AtomicUsize,
    first_done: tokio::sync::Notify,
}

/// crumbs patch: counts one waiting first-class acquire while it lives.
struct FirstWaiting<'a>(&'a Limit);

impl Drop for FirstWaiting<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        if self.0.first_waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.first_done.notify_waiters();
        }
    }
}

impl Limit {
    fn new_inner(bps: Option<NonZeroU32>) -> Option<Arc<RateLimiter>> {
        let bps = bps?;
        // crumbs patch: the burst is at least one 16 KiB block, so a limit below
        // 16 KiB/s slows transfers down instead of failing every acquire of a block
        // (upstream's burst was `bps`, and a block larger than it never passed).
        let burst = bps.max(MIN_BURST);
        Some(Arc::new(RateLimiter::direct(
            Quota::per_second(bps).allow_burst(burst),
        )))
    }

    fn new(bps: Option<NonZeroU32>) -> Self {
        use std::sync::atomic::AtomicU32;
        Self {
            limiter: ArcSwapOption::new(Self::new_inner(bps)),
            current_bps: AtomicU32::new(bps.map(|v| v.get()).unwrap_or(0)),
            first_waiting: Default::default(),
            first_done: Default::default(),
        }
    }

    /// crumbs patch: [`Self::acquire`] in two classes. A first-class acquire waits
    /// only for the rate; the others also wait while any first-class one waits, so
    /// the first class takes the whole rate when it wants it. (The limiter is a
    /// GCRA, not a queue: waiters retry when their cells are due, and without the
    /// classes whichever retries first wins.)
    async fn acquire_class(&self, size: NonZeroU32, first: bool) -> crate::Result<()> {
        use std::sync::atomic::Ordering;
        let lim = self.limiter.load().clone();
        let Some(rl) = lim.as_ref() else {
            return Ok(());
        };
        if first {
            self.first_waiting.fetch_add(1, Ordering::AcqRel);
            let _waiting = FirstWaiting(self);
            rl.until_n_ready(size).await?;
            return Ok(());
        }
        loop {
            while self.first_waiting.load(Ordering::Acquire) > 0 {
                let done = self.first_done.notified();
                tokio::pin!(done);
                done.as_mut().enable();
                if self.first_waiting.load(Ordering::Acquire) == 0 {
                    break;
                }
                done.await;
            }
            match rl.check_n(size)? {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    use governor::clock::Clock;
                    tokio::time::sleep(not_until.wait_time_from(rl.clock().now())).await;
                }
            }
        }
    }

    async fn acquire(&self, size: NonZeroU32) -> crate::Result<()> {
        let lim = self.limiter.load().clone();
        if let Some(rl) = lim.as_ref() {
            rl.until_n_ready(size).await?;
        }
        Ok(())
    }

    fn set(&self, limit: Option<NonZeroU32>) {
        use std::sync::atomic::Ordering;
        let new = Self::new_inner(limit);
        self.limiter.swap(new);
        self.current_bps
            .store(limit.map(|v| v.get()).unwrap_or(0), Ordering::Relaxed);
    }

    fn get(&self) -> Option<NonZeroU32> {
        use std::sync::atomic::Ordering;
        NonZeroU32::new(self.current_bps.load(Ordering::Relaxed))
    }
}

pub struct Limits {
    down: Limit,
    up: Limit,
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Self {
        Self {
            down: Limit::new(config.download_bps),
            up: Limit::new(config.upload_bps),
        }
    }

    pub async fn prepare_for_upload(&self, len: NonZeroU32) -> crate::Result<()> {
        self.up.acquire(len).await
    }

    /// crumbs patch: [`Self::prepare_for_upload`] for a torrent whose blocks go
    /// before the others' (`first`) or after them.
    pub async fn prepare_for_upload_class(&self, len: NonZeroU32, first: bool) -> crate::Result<()> {
        self.up.acquire_class(len, first).await
    }

    pub async fn prepare_for_download(&self, len: NonZeroU32) -> crate::Result<()> {
        self.down.acquire(len).await
    }

    pub fn set_upload_bps(&self, bps: Option<NonZeroU32>) {
        self.up.set(bps);
    }

    pub fn set_download_bps(&self, bps: Option<NonZeroU32>) {
        self.down.set(bps);
    }

    pub fn get_upload_bps(&self) -> Option<NonZeroU32> {
        self.up.get()
    }

    pub fn get_download_bps(&self) -> Option<NonZeroU32> {
        self.down.get()
    }

    pub fn get_config(&self) -> LimitsConfig {
        LimitsConfig {
            upload_bps: self.get_upload_bps(),
            download_bps: self.get_download_bps(),
        }
    }
}
