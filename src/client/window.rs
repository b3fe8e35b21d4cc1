// SPDX-License-Identifier: MPL-2.0
//! Window polls beside the rest of the client's IO.
//!
//! Why: on a slow line the answer to a window poll waits behind everything queued
//! on the downlink (an ADSL modem holds two seconds of it), and the swarm bench saw
//! polls take 0.8-2 s there. Awaited in line with the engine's actions, each such
//! poll held the next crumb 1's download and the engine's deadlines for as long: a
//! Segment was begun and its crumb asked for 3.5 s later, 0.4 s before its deadline.
//! So a poll is a task of its own; the runner takes its answer when it is there.

use std::time::Duration;

use anyhow::Context;

/// A window poll on its way.
pub(super) struct WindowPoll {
    /// When it was sent (the runner's clock, ns): the upload governor's delay sample.
    pub sent: u64,
    pub task: tokio::task::JoinHandle<anyhow::Result<WindowAnswer>>,
}

/// What the channel answered.
pub(super) struct WindowAnswer {
    /// The channel's receive time of the request (its `received-ns` header).
    pub received: Option<u64>,
    /// When the answer's headers arrived (the runner's clock, ns).
    pub answered: u64,
    pub body: Vec<u8>,
}

impl WindowPoll {
    /// Sends `GET url` at `sent`; `clock` gives the runner's clock (ns) for the answer.
    pub fn start(
        http: reqwest::Client,
        url: String,
        timeout: Duration,
        sent: u64,
        clock: impl Fn() -> u64 + Send + 'static,
    ) -> WindowPoll {
        let task = tokio::spawn(async move {
            let r = super::send_get(&http, &url, timeout).await?;
            let answered = clock();
            let received = r
                .headers()
                .get(crate::core::api::RECEIVED_HEADER)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let body = r.bytes().await.with_context(|| format!("GET {url}"))?;
            Ok(WindowAnswer {
                received,
                answered,
                body: body.to_vec(),
            })
        });
        WindowPoll { sent, task }
    }

    /// The answer, once the task is done (None while it runs).
    pub async fn take(&mut self) -> Option<anyhow::Result<WindowAnswer>> {
        if !self.task.is_finished() {
            return None;
        }
        Some(Self::joined((&mut self.task).await))
    }

    /// Waits for the answer.
    pub async fn answer(self) -> anyhow::Result<WindowAnswer> {
        Self::joined(self.task.await)
    }

    fn joined(
        r: Result<anyhow::Result<WindowAnswer>, tokio::task::JoinError>,
    ) -> anyhow::Result<WindowAnswer> {
        r.unwrap_or_else(|e| Err(anyhow::anyhow!("window poll: {e}")))
    }
}
