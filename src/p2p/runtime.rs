// SPDX-License-Identifier: MPL-2.0
//! The one tokio runtime of the plugin (as gst-plugins-rs elements keep theirs).

use std::sync::LazyLock;

/// The shared multi-thread runtime: 2 to 4 workers named `crumbs-rt`.
///
/// Every librqbit session lives here: [`super::P2pSession`] spawns its librqbit
/// work onto this runtime whichever context its methods are awaited in.
/// Call `RUNTIME.block_on` only from threads that are not workers of this runtime
/// (GStreamer streaming threads, the application thread).
pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("crumbs-rt")
        .enable_all()
        .build()
        .expect("crumbs: cannot start the tokio runtime")
});
